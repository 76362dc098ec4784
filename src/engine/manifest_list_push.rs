//! `manifest push LIST`: a local manifest list to its registry, as docker pushes it.
//!
//! A list may only name manifests its repository holds, so a member from another repository of
//! the same registry is brought over first: each blob it references (config and layers) that
//! the target repository lacks is mounted from the member's repository (no byte sent), then its
//! manifest is put by digest ("Pushed ref REPO@DIGEST with digest: DIGEST"). Then the list, by
//! the list's tag. A member on another registry cannot be mounted: the push is refused before
//! anything is sent.
//!
//! The store changes only with `--purge`, after the registry has confirmed the list.

use super::manifest_list::{no_such_list, LocalList};
use super::{Engine, EngineError, Result};
use crate::digest::Digest;
use crate::image::{parse_manifest, ManifestKind, Reference};
use crate::source::registry::{MountOutcome, RegistryOptions, Uploader};

/// What the registry confirmed for a pushed list.
#[derive(Debug, Clone)]
pub struct PushedList {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A member to bring into the target repository before the list.
struct Copy<'a> {
    from: Reference,
    member: &'a crate::store::ListMember,
}

impl Engine {
    /// Pushes the local list `list`; `pushed_ref` hears of every member manifest put into the
    /// list's repository (its `REPO@DIGEST`, and the digest the registry confirmed). With `purge`,
    /// the local list is removed once the registry has it.
    pub fn manifest_list_push(
        &mut self,
        list: &str,
        purge: bool,
        opts: &RegistryOptions,
        pushed_ref: &dyn Fn(&str, &Digest),
    ) -> Result<PushedList> {
        let local = match self.manifest_list(list)? {
            Some(l) => l,
            None => {
                return Err(no_such_list(&Reference::parse(list).map_or_else(
                    |_| list.to_string(),
                    |r| r.with_default_tag().full(),
                )))
            }
        };
        let (media_type, bytes) = checked_document(&local)?;
        let target = &local.reference;
        let copies = local
            .members
            .iter()
            .map(|member| {
                let from = Reference::parse(&member.reference)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                Ok(Copy { from, member })
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|c| c.from.path != target.path)
            .collect::<Vec<_>>();
        let up = Uploader::open(target, opts)?;
        for c in &copies {
            mount_blobs(&up, target, c)?;
        }
        for c in &copies {
            let d = &c.member.descriptor;
            let digest = up.put_manifest(&d.digest.to_string(), &d.media_type, &c.member.raw)?;
            pushed_ref(&format!("{}@{digest}", target.repository()), &digest);
        }
        let tag = target.tag.clone().unwrap_or_default();
        let digest = up.put_manifest(&tag, &media_type, &bytes)?;
        if purge {
            self.store.remove_manifest_list(&target.full())?;
        }
        Ok(PushedList {
            digest,
            media_type,
            size: bytes.len() as u64,
        })
    }
}

/// The list's document, once every member can be pushed: it has an OS and an architecture, and
/// its manifest bytes still hash to its digest.
fn checked_document(local: &LocalList) -> Result<(String, Vec<u8>)> {
    for m in &local.members {
        let d = &m.descriptor;
        if !d
            .platform
            .as_ref()
            .is_some_and(|p| !p.os.is_empty() && !p.architecture.is_empty())
        {
            return Err(EngineError::Invalid(format!(
                "manifest {} must have an OS and Architecture to be pushed to a registry",
                m.reference
            )));
        }
        let got = Digest::of_bytes(&m.raw);
        if got != d.digest {
            return Err(EngineError::Invalid(format!(
                "internal digest mismatch for {}: expected {}, got {got}",
                m.reference, d.digest
            )));
        }
    }
    local.document()
}

/// Mounts into the target repository each blob of the member it lacks. A blob the registry
/// will not mount is an error, except for Windows images, whose foreign layers no registry
/// holds (docker makes the same exception).
fn mount_blobs(up: &Uploader, target: &Reference, c: &Copy) -> Result<()> {
    let d = &c.member.descriptor;
    let manifest = match parse_manifest(&c.member.raw, Some(&d.media_type)) {
        Ok(ManifestKind::Manifest(m)) => m,
        Ok(ManifestKind::Index(_)) => {
            return Err(EngineError::Invalid(format!(
                "{} is a manifest list",
                c.member.reference
            )))
        }
        Err(e) => {
            return Err(EngineError::Invalid(format!(
                "manifest {} of {}: {e}",
                d.digest, c.member.reference
            )))
        }
    };
    let windows = d.platform.as_ref().is_some_and(|p| p.os == "windows");
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if up.has_blob(&blob.digest)? {
            continue;
        }
        if up.mount(&blob.digest, &c.from.path)? == MountOutcome::NotMounted && !windows {
            return Err(EngineError::Invalid(format!(
                "error mounting {}@{} to {}",
                c.from.repository(),
                blob.digest,
                target.full()
            )));
        }
    }
    Ok(())
}
