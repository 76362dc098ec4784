//! Untagging and deleting images, with layers removed only when their last user goes.
//!
//! Removal is two steps, each idempotent, so that a command killed at any instant leaves only work
//! the next one finishes: (1) one transaction deletes the image's rows and records, in the
//! `removals` table, the layers and blobs it leaves unused (their rows stay, so `df` still counts
//! them); (2) each recorded removal is then done and forgotten. A layer's step (2) runs holding its
//! `locks/layer-<diffID>` exclusively (taken without waiting: a running load, pull or commit that
//! found the layer holds it shared, and the layer is then left for later), and inside one
//! transaction it checks that no image uses the layer, renames its dir out of `layers/` (into a
//! `tmp/` staging dir, so that a layer dir is either whole or gone) and deletes its row. Blobs are
//! deleted inside one transaction that checks nothing refers to them. Every command that opens the
//! store finishes what a killed one left (see `Store::open`). Which images to delete (docker's `rmi`
//! and `prune` rules) is the engine's choice; this is the mechanism.

use super::db::LayerRow;
use super::layout::LayerKey;
use super::locks::{FileLock, LockMode};
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

    fn removed(&mut self, l: LayerRow) {
        self.deleted_layers.push((l.diff_id, l.key, l.size));
    }
}

/// What finishing one recorded layer removal did.
#[derive(Debug)]
pub(crate) enum LayerRemoval {
    /// Its dir and row are gone.
    Removed(LayerRow),
    /// An image uses it again: the removal is cancelled.
    Kept,
    /// A running command holds it: the removal stays recorded, for a later command.
    Busy,
    /// There was nothing left to remove.
    Gone,
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
        let blobs: Vec<Digest> = blobs.into_iter().collect();
        let unused = self.db.delete_image(id, &blobs)?;
        report.deleted_images.push(id.clone());
        for l in unused {
            if let LayerRemoval::Removed(row) = self.finish_layer_removal(&l.key)? {
                report.removed(row);
            }
        }
        self.finish_blob_removals()
    }

    /// Removes every layer no image uses and no running command holds (`prune`): those of loads
    /// that failed or were killed, and those a removal had to leave because a command held them.
    pub fn remove_unused_layers(&mut self, report: &mut RemoveReport) -> Result<()> {
        for key in self.db.mark_unused_layers()? {
            if let LayerRemoval::Removed(row) = self.finish_layer_removal(&key)? {
                report.removed(row);
            }
        }
        Ok(())
    }

    /// Removes a layer no image uses (unless a running command holds it).
    pub(crate) fn delete_unused_layer(&mut self, key: &LayerKey) -> Result<LayerRemoval> {
        self.db.mark_layer_removal(key)?;
        self.finish_layer_removal(key)
    }

    /// Finishes the removals recorded and not done: a killed `rmi` or `prune`, or layers a running
    /// command held at the time. Returns how many layers it removed.
    pub fn finish_removals(&mut self) -> Result<usize> {
        let mut removed = 0;
        for name in self.db.removals("layer")? {
            let Some(key) = LayerKey::parse(&name) else {
                self.db.drop_removal("layer", &name)?;
                continue;
            };
            if let LayerRemoval::Removed(_) = self.finish_layer_removal(&key)? {
                removed += 1;
            }
        }
        self.finish_blob_removals()?;
        Ok(removed)
    }

    /// Step (2) for one layer (see the module's comment).
    pub(crate) fn finish_layer_removal(&self, key: &LayerKey) -> Result<LayerRemoval> {
        let Some(row) = self.db.layer(key)? else {
            self.db.drop_removal("layer", key.as_str())?;
            return Ok(LayerRemoval::Gone);
        };
        let lock_path = self.layout.layer_lock(&row.diff_id);
        let Some(lock) = FileLock::try_acquire(&lock_path, LockMode::Exclusive).at(&lock_path)?
        else {
            return Ok(LayerRemoval::Busy);
        };
        self.finish_held_layer_removal(key, row, lock)
    }

    /// The layer's lock, exclusive, if it is free (not waiting, as for step (2)): a remover that
    /// takes it before step (1) is seen at work from the start by `fsck`, which leaves a held
    /// layer alone and would otherwise report a removal recorded and not yet under way.
    pub(crate) fn try_lock_layer_removal(
        &self,
        key: &LayerKey,
    ) -> Result<Option<(LayerRow, FileLock)>> {
        let Some(row) = self.db.layer(key)? else {
            return Ok(None);
        };
        let lock_path = self.layout.layer_lock(&row.diff_id);
        let lock = FileLock::try_acquire(&lock_path, LockMode::Exclusive).at(&lock_path)?;
        Ok(lock.map(|lock| (row, lock)))
    }

    /// Step (2) for one layer whose lock the caller holds (`try_lock_layer_removal`).
    pub(crate) fn finish_held_layer_removal(
        &self,
        key: &LayerKey,
        row: LayerRow,
        lock: FileLock,
    ) -> Result<LayerRemoval> {
        let trash = Staging::new(&self.layout.tmp_dir(), "delete").at(&self.layout.tmp_dir())?;
        let removed = self.db.locked(|| {
            if self.db.layer_users(key)? > 0 {
                self.db.drop_removal("layer", key.as_str())?;
                return Ok(false);
            }
            self.take_out_layer_dir(key, &trash)?;
            self.db.drop_layer_row(key)?;
            Ok::<_, super::StoreError>(true)
        })?;
        // Nobody can find the layer any more: loads need not wait for its tree to be deleted.
        drop(lock);
        drop(trash);
        Ok(if removed {
            LayerRemoval::Removed(row)
        } else {
            LayerRemoval::Kept
        })
    }

    /// Deletes the blobs whose removal is recorded and that nothing refers to, holding the
    /// database's write lock: a load records its image (which refers to its config) either before
    /// (the blob is kept) or after (it finds the blob gone and writes it again).
    pub(crate) fn finish_blob_removals(&self) -> Result<()> {
        let names = self.db.removals("blob")?;
        if names.is_empty() {
            return Ok(());
        }
        self.db.locked(|| {
            let keep = self.referenced_blobs()?;
            for name in &names {
                if let Ok(d) = name.parse::<Digest>() {
                    if !keep.contains(&d) {
                        let path = self.layout.blob(&d);
                        match fs::remove_file(&path) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e).at(&path),
                        }
                    }
                }
                self.db.drop_removal("blob", name)?;
            }
            Ok(())
        })
    }

    /// Takes a layer dir out of `layers/` (if it is there) with one rename into the staging dir
    /// `trash`, whose drop deletes it.
    pub(crate) fn take_out_layer_dir(&self, key: &LayerKey, trash: &Staging) -> Result<()> {
        let dir = self.layout.layer(key).dir().to_path_buf();
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        let dest = trash.path().join("layer");
        fs::rename(&dir, &dest).at(&dir)?;
        staging::fsync_dir(&self.layout.layers_dir()).at(&self.layout.layers_dir())
    }

    /// Takes a layer dir no row names out of `layers/` and deletes it.
    pub fn remove_layer_dir(&self, key: &LayerKey) -> Result<()> {
        let trash = Staging::new(&self.layout.tmp_dir(), "delete").at(&self.layout.tmp_dir())?;
        self.take_out_layer_dir(key, &trash)
    }
}
