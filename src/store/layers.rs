//! Stored layers: the `layer.json` record kept beside each `diff/`, finding a layer for a position
//! in an image, moving a staged layer into place, and the per-layer lock.

use super::db::LayerRow;
use super::layout::{LayerKey, LayerPaths};
use super::staging::Staging;
use super::{IoContext, Result, Store, StoreError};
use crate::digest::Digest;
use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

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
    /// never written (the process that stored it was killed before recording it).
    pub fn find_layer(&self, diff_id: &Digest, chain_id: &Digest) -> Result<Option<LayerRecord>> {
        if let Some(row) = self.db.find_layer(diff_id, chain_id)? {
            if self.layout.layer(&row.key).diff().is_dir() {
                return self.layer_record(&row.key);
            }
        }
        for key in [LayerKey::of(diff_id), LayerKey::of(chain_id)] {
            if let Some(rec) = self.layer_record(&key)? {
                if &rec.diff_id == diff_id && (!rec.parent_dependent || &rec.chain_id == chain_id) {
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

    /// Writes the layer record into the staged layer dir and renames it into `layers/`. If another
    /// process stored the same layer meanwhile, ours is discarded and theirs is used.
    pub fn commit_layer(&self, staging: Staging, record: &LayerRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(|e| StoreError::LayerRecord {
            layer: record.diff_id.to_string(),
            reason: e.to_string(),
        })?;
        let staged = LayerPaths::staged(staging.path());
        let rec_path = staged.record();
        std::io::Write::write_all(&mut private_file(&rec_path).at(&rec_path)?, &json)
            .at(&rec_path)?;
        // The records other modules wrote into the staged dir take the store's file mode too.
        for path in [staged.tar_split(), staged.files()] {
            super::perms::tighten(&path, super::perms::FILE_MODE).at(&path)?;
        }
        let dest = self.layout.layer(&record.key());
        staging.commit_to(dest.dir()).at(dest.dir())?;
        Ok(())
    }

    /// Holds `locks/<diffID>` while a layer is looked for and unpacked.
    pub fn lock_layer(&self, diff_id: &Digest) -> Result<LayerLock> {
        let path = self.layout.layer_lock(diff_id);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(super::perms::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .at(&path)?;
        flock(f.as_fd(), FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .at(&path)?;
        Ok(LayerLock { path, _file: f })
    }
}

/// A held `locks/<diffID>`. The file is unlinked when the holder is done, so a failed or finished
/// load leaves no trace. (A process that opened the file just before the unlink may lock the orphaned
/// inode and unpack the layer a second time; the rename into `layers/` then keeps exactly one copy.
/// The lock saves work; it is not what keeps the store right.)
pub struct LayerLock {
    path: PathBuf,
    _file: File,
}

impl Drop for LayerLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
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
