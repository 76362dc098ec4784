//! `rmi` and `prune`: which images go, by docker's rules. The store deletes them (and the layers only
//! they used); a mounted image is never deleted, so what a mount shows never changes under it.
//!
//! An image's references are its tags (`repo:tag`) and its digest references (`repo@sha256:…`, the
//! manifest it was pulled or loaded by), as in docker's reference store: `rmi` of a reference removes
//! that reference; removing a repository's last tag also removes that repository's digest
//! references; the image goes when its last reference does (moby daemon/images/image_delete.go).
//!
//! How a removal stays correct beside a running load and survives a kill is the store's
//! (`store::gc`, `store::locks`): a layer a running command found is left for later.

use super::{Engine, EngineError, Result};
use crate::digest::Digest;
use crate::image::Reference;
use crate::store::{self, familiar_repository, RemoveReport};

/// One reference to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ImageRef {
    /// A full tag name (`docker.io/library/debian:gzip`).
    Tag(String),
    /// A full repository and a manifest digest.
    Digest(String, Digest),
}

impl ImageRef {
    /// What `name` denotes, when it is a reference (not an ID).
    fn parse(name: &str) -> Option<ImageRef> {
        let r = Reference::parse(name).ok()?;
        Some(match &r.digest {
            Some(d) => ImageRef::Digest(r.repository(), d.clone()),
            None => ImageRef::Tag(r.with_default_tag().full()),
        })
    }

    fn repository(&self) -> String {
        match self {
            ImageRef::Tag(t) => store::repository_of(t),
            ImageRef::Digest(repo, _) => repo.clone(),
        }
    }

    fn full(&self) -> String {
        match self {
            ImageRef::Tag(t) => t.clone(),
            ImageRef::Digest(repo, d) => format!("{repo}@{d}"),
        }
    }

    /// As docker prints it: `debian:gzip`, `debian@sha256:…`.
    fn familiar(&self) -> String {
        match self {
            ImageRef::Tag(t) => store::familiar(t),
            ImageRef::Digest(repo, d) => format!("{}@{d}", familiar_repository(repo)),
        }
    }

    fn is_tag(&self) -> bool {
        matches!(self, ImageRef::Tag(_))
    }
}

/// docker's isSingleReference: at most one tag, and every digest reference in its repository.
fn is_single_reference(refs: &[ImageRef]) -> bool {
    let tags: Vec<&ImageRef> = refs.iter().filter(|r| r.is_tag()).collect();
    match refs.len() {
        0 => false,
        1 => true,
        _ if tags.len() > 1 => false,
        _ => {
            let repo = tags.first().copied().unwrap_or(&refs[0]).repository();
            refs.iter()
                .filter(|r| !r.is_tag())
                .all(|r| r.repository() == repo)
        }
    }
}

impl Engine {
    /// An image's references, sorted as docker's reference store lists them (by full name).
    fn references(&self, id: &Digest) -> Result<Vec<ImageRef>> {
        let mut refs: Vec<ImageRef> = self
            .store
            .tags_of(id)?
            .into_iter()
            .map(ImageRef::Tag)
            .chain(
                self.store
                    .repo_digests_of(id)?
                    .into_iter()
                    .map(|(repo, d)| ImageRef::Digest(repo, d)),
            )
            .collect();
        refs.sort_by_key(ImageRef::full);
        Ok(refs)
    }

    fn drop_reference(&mut self, r: &ImageRef, report: &mut RemoveReport) -> Result<()> {
        match r {
            ImageRef::Tag(t) => self.store.untag(t)?,
            ImageRef::Digest(repo, d) => self.store.untag_digest(repo, d)?,
        }
        report.untagged.push(r.familiar());
        Ok(())
    }

    /// `rmi`: docker's rules. A reference (`name:tag` or `name@sha256:…`) is removed; removing a
    /// repository's last tag removes its digest references too; the last reference, or an ID,
    /// deletes the image. An ID with references in several repositories, or an image a mount
    /// uses, needs `force` (and a mounted image is then only untagged: its layers stay until it is
    /// unmounted and pruned).
    pub fn remove_image(&mut self, name: &str, force: bool) -> Result<RemoveReport> {
        let id = self.store.resolve_image(name)?;
        let mut refs = self.references(&id)?;
        let mounts = self.store.mounts_of_image(&id)?;
        // docker's conflict with a container: the first mount that uses the image, if any.
        let in_use = mounts.first().map(|m| EngineError::ImageInUse {
            image: name.to_string(),
            mount: m.id.to_string(),
            target: m.target.clone(),
        });
        let mut report = RemoveReport::default();
        let given =
            ImageRef::parse(name).filter(|r| refs.contains(r) && !store::names_id_of(name, &id));

        if let Some(given) = given {
            if let Some(e) = in_use.filter(|_| !force && is_single_reference(&refs)) {
                return Err(e);
            }
            refs.retain(|r| r != &given);
            let mut dropped = vec![given.clone()];
            let repo = given.repository();
            if given.is_tag() && !refs.iter().any(|r| r.is_tag() && r.repository() == repo) {
                let (digests, rest): (Vec<_>, Vec<_>) = refs
                    .into_iter()
                    .partition(|r| !r.is_tag() && r.repository() == repo);
                dropped.extend(digests);
                refs = rest;
            }
            if !refs.is_empty() || !mounts.is_empty() {
                for r in &dropped {
                    self.drop_reference(r, &mut report)?;
                }
                return Ok(report);
            }
            // The last references go with the image, in the one transaction that deletes it: a
            // kill cannot leave it untagged and kept, a `<none>` image nobody asked for.
            report
                .untagged
                .extend(dropped.iter().map(ImageRef::familiar));
        } else {
            if let Some(e) = in_use.filter(|_| !force) {
                return Err(e);
            }
            if refs.len() > 1 && !is_single_reference(&refs) && !force {
                return Err(EngineError::MultipleRepositories {
                    image: id.short().to_string(),
                });
            }
            if !mounts.is_empty() {
                for r in &refs {
                    self.drop_reference(r, &mut report)?;
                }
                return Ok(report);
            }
            report.untagged.extend(refs.iter().map(ImageRef::familiar));
        }
        self.store.delete_image(&id, &mut report)?;
        Ok(report)
    }

    /// Deletes dangling images (with `all`: every image no mount uses) and the layers only they used.
    pub fn prune(&mut self, all: bool) -> Result<RemoveReport> {
        let mut report = RemoveReport::default();
        let mounted: Vec<_> = self
            .store
            .mounts()?
            .into_iter()
            .map(|m| m.image_id)
            .collect();
        for img in self.store.images()? {
            if mounted.contains(&img.id) {
                continue;
            }
            let refs = self.references(&img.id)?;
            if refs.iter().any(ImageRef::is_tag) && !all {
                continue;
            }
            report.untagged.extend(refs.iter().map(ImageRef::familiar));
            self.store.delete_image(&img.id, &mut report)?;
        }
        // Layers no image uses: those of failed or killed loads, and those a removal left because
        // a running command held them then (a layer a running command holds now stays).
        self.store.remove_unused_layers(&mut report)?;
        Ok(report)
    }

    /// `tag`: points TARGET (a name) at the image SOURCE names.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<()> {
        let id = self.store.resolve_image(source)?;
        let target = store::normalize_tag(target)?;
        self.store.tag(&id, &target)?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "remove_tests.rs"]
mod tests;
