//! Finding images by what a person types: `name[:tag]`, `name@sha256:…`, a full image ID, or a unique
//! prefix of one, as docker resolves them.

use super::{Result, Store, StoreError};
use crate::digest::Digest;
use crate::image::Reference;

/// The full name a tag is stored under (docker.io/library/debian:latest for `debian`).
pub fn normalize_tag(name: &str) -> Result<String> {
    let r = Reference::parse(name).map_err(|e| StoreError::BadName {
        name: name.to_string(),
        reason: e.to_string(),
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

fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
                let repo = format!("{}/{}", r.domain, r.path);
                if let Some(id) = self.db.digest_target(&repo, digest)? {
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

    /// Familiar names of an image's tags (`debian:gzip`), sorted.
    pub fn familiar_tags(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self.db.tags_of(id)?.iter().map(|t| familiar(t)).collect())
    }
}
