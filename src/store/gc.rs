//! Untagging and deleting images, with layers removed only when their last user goes.
//!
//! The database transaction decides what goes; directories are removed after it commits, by renaming
//! them into `tmp/` first so that a layer dir is either whole in `layers/` or gone. A process killed in
//! between leaves a staging dir that the next command clears. Which images to delete (docker's `rmi`
//! and `prune` rules) is the engine's choice; this is the mechanism.

use super::layout::LayerKey;
use super::staging::{self, Staging};
use super::{IoContext, Result, Store};
use crate::digest::Digest;
use std::fs;

#[derive(Debug, Default)]
pub struct RemoveReport {
    /// Familiar names removed.
    pub untagged: Vec<String>,
    /// Image IDs deleted.
    pub deleted_images: Vec<Digest>,
    /// Layers deleted: (diffID, layer key, bytes).
    pub deleted_layers: Vec<(Digest, LayerKey, u64)>,
}

impl RemoveReport {
    /// Bytes freed: the sizes of the layers removed.
    pub fn reclaimed(&self) -> u64 {
        self.deleted_layers.iter().map(|(_, _, size)| size).sum()
    }
}

impl Store {
    pub fn untag(&mut self, full_name: &str) -> Result<()> {
        Ok(self.db.untag(full_name)?)
    }

    /// Points `full_name` at image `id`.
    pub fn tag(&mut self, id: &Digest, full_name: &str) -> Result<()> {
        Ok(self.db.tag(full_name, id)?)
    }

    /// Deletes an image (which must have no mounts) and every layer no other image uses.
    pub fn delete_image(&mut self, id: &Digest, report: &mut RemoveReport) -> Result<()> {
        // Its config, and the manifests (and indexes) it was loaded with, unless another image
        // came with the same one.
        let mut blobs = self.blob_closure(
            self.db
                .repo_digests_of(id)?
                .into_iter()
                .map(|(_, d)| d)
                .collect(),
        );
        blobs.insert(id.clone());
        let gone = self.db.delete_image(id)?;
        report.deleted_images.push(id.clone());
        for l in gone {
            self.remove_layer_dir(&l.key)?;
            report.deleted_layers.push((l.diff_id, l.key, l.size));
        }
        self.drop_unreferenced_blobs(&blobs)
    }

    /// Forgets a layer no image uses, and removes its dir.
    pub fn delete_unused_layer(&mut self, key: &LayerKey) -> Result<()> {
        self.db.delete_unused_layer(key)?;
        self.remove_layer_dir(key)
    }

    /// Takes a layer dir out of `layers/` atomically (rename into tmp/), then deletes it.
    pub fn remove_layer_dir(&self, key: &LayerKey) -> Result<()> {
        let dir = self.layout.layer(key).dir().to_path_buf();
        if !dir.exists() {
            return Ok(());
        }
        let trash = Staging::new(&self.layout.tmp_dir(), "delete").at(&self.layout.tmp_dir())?;
        let dest = trash.path().join("layer");
        fs::rename(&dir, &dest).at(&dir)?;
        staging::fsync_dir(&self.layout.layers_dir()).at(&self.layout.layers_dir())?;
        drop(trash); // removes the tree
        Ok(())
    }
}
