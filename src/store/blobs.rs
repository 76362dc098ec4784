//! Which small blobs (`blobs/sha256/`) the store keeps, in one place for `rmi`, `prune` and `fsck`.
//!
//! A blob is kept while something refers to it: an image (its config), a repository digest (the
//! manifest, or the index, a name was loaded or pulled by), or an index kept for that reason (the
//! platform manifest a multi-platform pull chose from it). The last rule is what lets `fsck` see
//! that the manifest a pull through an index stored is still needed.

use super::{Result, Store};
use crate::digest::Digest;
use crate::image::{parse_manifest, ManifestKind};
use std::collections::BTreeSet;
use std::fs;

impl Store {
    /// Every blob something refers to.
    pub(crate) fn referenced_blobs(&self) -> Result<BTreeSet<Digest>> {
        let mut keep: BTreeSet<Digest> = self.db.images()?.into_iter().map(|i| i.id).collect();
        keep.extend(self.blob_closure(self.db.manifest_digests()?));
        Ok(keep)
    }

    /// `roots` and, transitively, the manifests listed by those of them that are stored indexes.
    pub(crate) fn blob_closure(&self, roots: Vec<Digest>) -> BTreeSet<Digest> {
        let mut seen = BTreeSet::new();
        let mut todo = roots;
        while let Some(d) = todo.pop() {
            if seen.insert(d.clone()) {
                todo.extend(self.index_members(&d));
            }
        }
        seen
    }

    /// The manifests a stored index lists; none when the blob is absent or is not an index.
    fn index_members(&self, digest: &Digest) -> Vec<Digest> {
        let Ok(bytes) = fs::read(self.layout.blob(digest)) else {
            return Vec::new();
        };
        match parse_manifest(&bytes, None) {
            Ok(ManifestKind::Index(index)) => {
                index.manifests.into_iter().map(|m| m.digest).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Removes those of `candidates` nothing refers to any more (best effort: a blob left behind is
    /// only garbage, which `fsck --repair` clears).
    pub(crate) fn drop_unreferenced_blobs(&self, candidates: &BTreeSet<Digest>) -> Result<()> {
        let keep = self.referenced_blobs()?;
        for d in candidates.difference(&keep) {
            let _ = fs::remove_file(self.layout.blob(d));
        }
        Ok(())
    }

    /// Forgets the reference `repository@digest` and the blobs only it kept.
    pub fn untag_digest(&mut self, repository: &str, digest: &Digest) -> Result<()> {
        let blobs = self.blob_closure(vec![digest.clone()]);
        self.db.delete_repo_digest(repository, digest)?;
        self.drop_unreferenced_blobs(&blobs)
    }
}
