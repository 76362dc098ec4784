//! Stored layers: the `layer.json` record kept beside each `diff/`, finding a layer for a position
//! in an image, moving a staged layer into place, and the per-layer locks (see `locks`).

use super::db::LayerRow;
use super::layout::{LayerKey, LayerPaths};
use super::locks::{FileLock, LockMode};
use super::staging::{self, Staging};
use super::{IoContext, Result, Store, StoreError};
use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

/// The record kept beside each layer's `diff/`, written before the layer is renamed into place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: Digest,
    pub chain_id: Digest,
    pub parent_dependent: bool,
    pub blob_digest: Digest,
    pub compressed_size: u64,
    pub size: u64,
    pub entries: u64,
}

impl LayerRecord {
    /// Where the layer lives: under its diffID, or its chainID when its tree depends on its parents.
    pub fn key(&self) -> LayerKey {
        if self.parent_dependent {
            LayerKey::of(&self.chain_id)
        } else {
            LayerKey::of(&self.diff_id)
        }
    }

    pub fn row(&self) -> LayerRow {
        LayerRow {
            key: self.key(),
            diff_id: self.diff_id.clone(),
            chain_id: self.chain_id.clone(),
            parent_dependent: self.parent_dependent,
            size: self.size,
            entries: self.entries,
        }
    }
}

impl Store {
    /// A stored layer for this position: from the database, or a complete layer dir whose row was
    /// never written (the process that stored it was killed before recording it). A recorded layer
    /// whose `layer.json` is gone gets it back from its row (`blob`: the blob it is loaded from), so
    /// that it is not unpacked again and thrown away by every load.
    pub fn find_layer(
        &self,
        diff_id: &Digest,
        chain_id: &Digest,
        blob: (&Digest, u64),
    ) -> Result<Option<LayerRecord>> {
        if let Some(row) = self.db.find_layer(diff_id, chain_id)? {
            if self.layout.layer(&row.key).diff().is_dir() {
                if let Some(rec) = self.layer_record(&row.key)? {
                    return Ok(Some(rec));
                }
                let rec = record_of_row(&row, blob);
                self.write_layer_record(&row.key, &rec)?;
                return Ok(Some(rec));
            }
        }
        for key in [LayerKey::of(diff_id), LayerKey::of(chain_id)] {
            if let Some(rec) = self.layer_record(&key)? {
                if &rec.diff_id == diff_id && (!rec.parent_dependent || &rec.chain_id == chain_id) {
                    // Adopted: recorded as a layer no image uses yet (df counts it from now on).
                    // The load that renamed it makes the rename durable only before recording its
                    // image (`load_batch`): we may record it first, so we make it durable too.
                    self.sync_layers_dir()?;
                    self.db.insert_layers(&[rec.row()])?;
                    return Ok(Some(rec));
                }
            }
        }
        Ok(None)
    }

    /// A layer's `layer.json`; `None` when it is missing or does not parse.
    pub fn layer_record(&self, key: &LayerKey) -> Result<Option<LayerRecord>> {
        let path = self.layout.layer(key).record();
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// Writes (or re-writes, atomically) the `layer.json` of a stored layer.
    pub(crate) fn write_layer_record(&self, key: &LayerKey, rec: &LayerRecord) -> Result<()> {
        let path = self.layout.layer(key).record();
        staging::write_atomic(&path, &encode(rec)?).at(&path)
    }

    /// Writes the layer record into the staged layer dir, renames it into `layers/` and records it
    /// as a layer no image uses yet (so that `df` counts it and `prune` removes it if the load that
    /// stored it fails). If another process stored the same layer meanwhile, ours is discarded and
    /// theirs is used.
    pub fn commit_layer(&self, staging: Staging, record: &LayerRecord) -> Result<()> {
        self.place_layer(staging, record)?;
        self.db.insert_layers(&[record.row()])?;
        Ok(())
    }

    /// `commit_layer` without the record: the staged layer dir, with its `layer.json`, renamed
    /// into `layers/` (or discarded for one stored meanwhile). The caller records it.
    pub(super) fn place_layer(&self, staging: Staging, record: &LayerRecord) -> Result<()> {
        prepare_staged_layer(&staging, record)?;
        let dest = self.layout.layer(&record.key());
        staging.commit_to(dest.dir()).at(dest.dir())?;
        Ok(())
    }

    /// Renames a prepared layer, already on disk (its flush shared with others, see
    /// `group_sync`), into `layers/`; discarded if another process stored it meanwhile. The rename
    /// is durable only after `sync_layers_dir`, which must come before the layer is recorded.
    pub fn rename_layer(&self, staging: Staging, record: &LayerRecord) -> Result<()> {
        let dest = self.layout.layer(&record.key());
        staging.rename_to(dest.dir()).at(dest.dir())?;
        Ok(())
    }

    /// Makes the renames of `rename_layer` durable: one fsync of `layers/` for all of them.
    pub fn sync_layers_dir(&self) -> Result<()> {
        let dir = self.layout.layers_dir();
        staging::fsync_dir(&dir).at(&dir)
    }

    /// Records layers renamed into place that no image uses yet (a load that failed after storing
    /// some: `df` counts them and `prune` removes them).
    pub fn record_layers(&self, records: &[LayerRecord]) -> Result<()> {
        let rows: Vec<LayerRow> = records.iter().map(LayerRecord::row).collect();
        self.db.insert_layers(&rows)?;
        Ok(())
    }

    /// `locks/layer-<diffID>`, shared: held from before a layer is looked for until the image that
    /// uses it is recorded, so that no remover deletes it meanwhile (see `locks`).
    pub fn lock_layer_use(&self, diff_id: &Digest) -> Result<FileLock> {
        let path = self.layout.layer_lock(diff_id);
        FileLock::acquire(&path, LockMode::Shared).at(&path)
    }

    /// `locks/unpack-<diffID>`, exclusive: held while a layer is looked for and unpacked.
    pub fn lock_unpack(&self, diff_id: &Digest) -> Result<FileLock> {
        let path = self.layout.unpack_lock(diff_id);
        FileLock::acquire(&path, LockMode::Exclusive).at(&path)
    }

    /// `locks/chain-<chainID>`, exclusive, if free: held until the layer at this chain is committed.
    pub fn try_lock_chain(&self, chain_id: &Digest) -> Result<Option<FileLock>> {
        let path = self.layout.chain_lock(chain_id);
        FileLock::try_acquire(&path, LockMode::Exclusive).at(&path)
    }
}

/// Writes the staged layer's `layer.json` (the mark by which a layer renamed into place but not
/// recorded is adopted, see `find_layer`) and gives its records the store's file mode. Flushed
/// with the layer before it is renamed.
pub fn prepare_staged_layer(staging: &Staging, record: &LayerRecord) -> Result<()> {
    let json = encode(record)?;
    let staged = LayerPaths::staged(staging.path());
    let rec_path = staged.record();
    std::io::Write::write_all(&mut private_file(&rec_path).at(&rec_path)?, &json).at(&rec_path)?;
    // The records other modules wrote into the staged dir take the store's file mode too.
    for path in [staged.tar_split(), staged.files()] {
        super::perms::tighten(&path, super::perms::FILE_MODE).at(&path)?;
    }
    Ok(())
}

/// The record a layer's row gives back when its `layer.json` is lost; the blob is the one the
/// caller has at hand (a re-created record of `fsck --repair` names the diffID, the uncompressed
/// tar, as its blob).
pub(crate) fn record_of_row(row: &LayerRow, blob: (&Digest, u64)) -> LayerRecord {
    LayerRecord {
        diff_id: row.diff_id.clone(),
        chain_id: row.chain_id.clone(),
        parent_dependent: row.parent_dependent,
        blob_digest: blob.0.clone(),
        compressed_size: blob.1,
        size: row.size,
        entries: row.entries,
    }
}

fn encode(record: &LayerRecord) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(record).map_err(|e| StoreError::LayerRecord {
        layer: record.diff_id.to_string(),
        reason: e.to_string(),
    })
}

/// A new file of the store, created exclusively (never through a planted name) and 0600.
fn private_file(path: &std::path::Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(super::perms::FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
#[path = "layers_tests.rs"]
mod tests;
