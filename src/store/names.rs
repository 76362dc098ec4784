//! Names: the full form tags are stored under, the familiar form docker shows, and finding images
//! and mounts by what a person types: `name[:tag]`, `name@sha256:…`, a full image ID, or a unique
//! prefix of one, as docker resolves them. Every name is parsed here, once, as an
//! [`image::Reference`](crate::image::Reference).

use super::{MountRow, Result, Store, StoreError};
use crate::digest::Digest;
use crate::image::{ImageError, Reference};
use std::path::Path;

/// The full name a tag is stored under (docker.io/library/debian:latest for `debian`).
pub fn normalize_tag(name: &str) -> Result<String> {
    let r = Reference::parse(name).map_err(|e| StoreError::BadName {
        name: name.to_string(),
        // BadName says "invalid reference NAME" itself: only the reason, not the whole message.
        reason: match e {
            ImageError::InvalidReference { reason, .. } => reason,
            other => other.to_string(),
        },
    })?;
    if r.digest.is_some() {
        return Err(StoreError::BadName {
            name: name.to_string(),
            reason: "a tag cannot carry a digest".into(),
        });
    }
    Ok(r.with_default_tag().full())
}

/// How docker shows a stored full name (debian:latest, example.com/x/y:1).
pub fn familiar(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// How docker shows a full repository name (`docker.io/library/debian` -> `debian`).
pub fn familiar_repository(full_repo: &str) -> String {
    Reference::parse(full_repo)
        .map(|r| r.repository_familiar())
        .unwrap_or_else(|_| full_repo.to_string())
}

/// The repository part of a full name (`docker.io/library/debian:gzip` -> `docker.io/library/debian`).
pub fn repository_of(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.repository())
        .unwrap_or_else(|_| full.to_string())
}

fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True when `name` denotes image `id` by ID (full or prefix) rather than by a tag.
pub fn names_id_of(name: &str, id: &Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty() && id.hex().starts_with(hex)
}

impl Store {
    /// Resolves IMAGE to an image ID.
    pub fn resolve_image(&self, name: &str) -> Result<Digest> {
        // A full ID, with or without its algorithm.
        if let Ok(d) = name.parse::<Digest>() {
            if self.db.image(&d)?.is_some() {
                return Ok(d);
            }
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(digest) = &r.digest {
                if let Some(id) = self.db.digest_target(&r.repository(), digest)? {
                    return Ok(id);
                }
                return Err(StoreError::NoSuchImage(name.to_string()));
            }
            if let Some(id) = self.db.tag_target(&r.with_default_tag().full())? {
                return Ok(id);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if is_hex_prefix(hex) {
            let found = self.db.images_by_prefix(hex)?;
            match found.len() {
                0 => {}
                1 => return Ok(found[0].clone()),
                n => {
                    return Err(StoreError::Ambiguous {
                        name: name.to_string(),
                        count: n,
                    })
                }
            }
        }
        Err(StoreError::NoSuchImage(name.to_string()))
    }

    /// Full names of an image's tags, sorted.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self.db.tags_of(id)?)
    }

    /// Familiar names of an image's tags (`debian:gzip`), sorted.
    pub fn familiar_tags(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self.db.tags_of(id)?.iter().map(|t| familiar(t)).collect())
    }

    /// Finds a mount by id, unique id prefix, or mount target.
    pub fn find_mount(&self, id_or_dir: &str) -> Result<MountRow> {
        if let Some(m) = self.db.mount(id_or_dir)? {
            return Ok(m);
        }
        let all = self.db.mounts()?;
        let as_path = Path::new(id_or_dir).canonicalize().ok();
        if let Some(p) = as_path {
            if let Some(m) = all.iter().find(|m| Path::new(&m.target) == p) {
                return Ok(m.clone());
            }
        }
        let by_prefix: Vec<&MountRow> = all
            .iter()
            .filter(|m| m.id.as_str().starts_with(id_or_dir))
            .collect();
        match by_prefix.as_slice() {
            [one] if !id_or_dir.is_empty() => Ok((*one).clone()),
            _ => Err(StoreError::NoSuchMount(id_or_dir.to_string())),
        }
    }
}
