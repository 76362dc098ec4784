//! The on-disk store: layer directories, blobs, and the metadata database that ties them together.
//! Storage only: the operations that bring images in or out, or mount them, are the engine's.
//!
//! Invariants:
//! - A directory under `layers/` is complete: it was staged under `tmp/`, verified (blob digest and
//!   diffID), flushed and renamed into place. Its row in the database is written afterwards, so a row
//!   never names an incomplete layer; a layer dir without a row is adopted from its `layer.json`.
//! - A stored layer is never written to again. Mounts stack them read-only under their own upper dir.
//! - Nothing outside `tmp/` is ever half-written; `tmp/` is cleared of dead processes' work by every
//!   command that opens the store.
//! - Only the owner reads the store: dirs 0700, files lamina writes 0600 (see `perms`), so no local
//!   user reaches a layer tree or a mount, or the setuid binaries in them.
//! - The database is reached only through the named operations here (its module is private), and
//!   only typed keys ([`LayerKey`], [`MountId`], digests) become paths.

mod blobs;
mod db;
mod df;
mod error;
pub mod filelist;
mod fsck;
mod fsck_layers;
mod fserror;
mod gc;
pub mod group_sync;
mod kept_blobs;
mod layers;
pub mod layout;
pub mod locks;
mod manifest_lists;
mod names;
pub mod perms;
pub(crate) mod recorded;
mod snapshot_layers;
mod snapshots;
pub mod staging;

pub use db::{DbError, ImageRow, LayerRow, MountRow};
pub use df::{DiskUsage, ImageUsage, LayerUsage, MountUsage};
pub use error::{ErrorKind, StoreError};
pub use fsck::{FsckOptions, FsckReport, Problem, ProblemKind};
pub use fserror::{FsCause, FsError};
pub use gc::RemoveReport;
pub use kept_blobs::KeptBlob;
pub use layers::{prepare_staged_layer, LayerRecord};
pub use layout::{LayerKey, LayerPaths, Layout, MountId};
pub use locks::{FileLock, LockMode};
pub use manifest_lists::ListMember;
pub use names::{familiar, familiar_repository, names_id_of, normalize_tag, repository_of};
pub use snapshots::{
    disk_usage, refused, NewSnapshot, SnapshotCommit, SnapshotKind, SnapshotRefusal, SnapshotRow,
};

use crate::digest::Digest;
use db::{Db, NewImage};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    /// A full, read-only or forbidden filesystem becomes [`StoreError::Filesystem`], which names
    /// the device; any other error keeps its path.
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| {
            let doing = |cause| match cause {
                FsCause::Denied => format!("opening {}", path.display()),
                _ => format!("writing {}", path.display()),
            };
            match FsError::from_io(&source, path, doing) {
                Some(f) => StoreError::Filesystem(f),
                None => StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            }
        })
    }
}

/// An open store: its layout and one connection to its database. A thread that needs the database
/// opens its own with [`Store::connect`] (SQLite connections are not shared between threads).
pub struct Store {
    layout: Layout,
    db: Db,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and clears what dead processes left in `tmp/`.
    pub fn open(root: &Path) -> Result<Store> {
        Self::open_with(root, true)
    }

    /// Opens the store leaving `tmp/` as it is, so that `fsck` can report what dead processes left.
    pub fn open_for_fsck(root: &Path) -> Result<Store> {
        Self::open_with(root, false)
    }

    fn open_with(root: &Path, clear_tmp: bool) -> Result<Store> {
        // Mount targets and layer paths are recorded and printed; a relative `--root` would make them
        // mean something else from another working directory.
        perms::create_private_dir(root).at(root)?;
        let root = root.canonicalize().at(root)?;
        let layout = Layout::new(&root);
        // On a read-only filesystem nothing is tightened, created or cleared: reading commands work.
        let writable = !crate::sys::fsinfo::space(&root).is_ok_and(|s| s.read_only);
        let clear_tmp = clear_tmp && writable;
        // fsck opens the store as it is, so that it can report wrong modes; everything else
        // tightens what an older lamina left 0755/0644 (see `perms`).
        if clear_tmp {
            perms::tighten_on_open(&layout).at(&root)?;
        }
        for dir in layout.dirs() {
            perms::create_private_dir(&dir).at(&dir)?;
        }
        if writable {
            perms::precreate_db(&layout).at(&layout.meta_db())?;
        }
        if clear_tmp {
            staging::clear_abandoned(&layout.tmp_dir()).at(&layout.tmp_dir())?;
        }
        let mut store = Self::connect(&layout)?;
        if clear_tmp {
            // What a killed rmi or prune left recorded and not done (cheap when there is none).
            // Best effort: a command that only reads must work on a store it cannot change.
            if let Err(e) = store.finish_removals() {
                tracing::warn!(error = %e, "could not finish a removal a killed command left");
            }
        }
        Ok(store)
    }

    /// Another connection to an opened store (for a worker thread).
    pub fn connect(layout: &Layout) -> Result<Store> {
        let db = Db::open(&layout.meta_db())?;
        Ok(Store {
            layout: layout.clone(),
            db,
        })
    }

    /// The default root: /var/lib/lamina for root, $XDG_DATA_HOME/lamina otherwise.
    pub fn default_root() -> PathBuf {
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/lamina");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("lamina")
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The stored config of an image.
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>> {
        let path = self.layout.blob(id);
        fs::read(&path).at(&path)
    }

    pub fn config(&self, id: &Digest) -> Result<crate::image::ImageConfig> {
        let bytes = self.config_bytes(id)?;
        crate::image::ImageConfig::parse(bytes).map_err(|e| StoreError::BadConfig {
            image: id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Stores a small blob (manifest or config) under its digest, atomically.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.layout.blob(digest);
        if path.exists() {
            return Ok(());
        }
        staging::write_atomic(&path, bytes).at(&path)
    }

    /// The diff dirs of an image's layers, top (nearest) first, as overlay wants them: a layer the
    /// image repeats (one dir, keyed by diffID) only at its topmost place (`topmost_distinct`).
    pub fn lower_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        let layers = self.db.image_layers(id)?;
        let mut dirs = Vec::with_capacity(layers.len());
        for l in layers.iter().rev() {
            let dir = self.layout.layer(&l.key).diff();
            if !dir.is_dir() {
                return Err(StoreError::MissingLayer {
                    image: id.to_string(),
                    key: l.key.to_string(),
                });
            }
            dirs.push(dir);
        }
        Ok(crate::layerfs::topmost_distinct(dirs, PathBuf::clone))
    }

    /// A new staging dir under `tmp/` (see `staging`).
    pub fn stage(&self, purpose: &str) -> Result<staging::Staging> {
        let tmp = self.layout.tmp_dir();
        staging::Staging::new(&tmp, purpose).at(&tmp)
    }

    // ---- images

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRow>> {
        Ok(self.db.image(id)?)
    }

    /// Every image, most recently loaded first.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        Ok(self.db.images()?)
    }

    /// An image's layers, bottom first.
    pub fn image_layers(&self, id: &Digest) -> Result<Vec<LayerRow>> {
        Ok(self.db.image_layers(id)?)
    }

    pub fn layers(&self) -> Result<Vec<LayerRow>> {
        Ok(self.db.layers()?)
    }

    /// (full repository, manifest digest) pairs an image came with.
    pub fn repo_digests_of(&self, id: &Digest) -> Result<Vec<(String, Digest)>> {
        Ok(self.db.repo_digests_of(id)?)
    }

    /// The image a full tag name points at.
    pub fn tag_target(&self, full_name: &str) -> Result<Option<Digest>> {
        Ok(self.db.tag_target(full_name)?)
    }

    /// True when image `id` is stored, `repository@digest` names it, and `tag` (if any) points at
    /// it: pulling it again would change nothing.
    pub fn is_current(
        &self,
        id: &Digest,
        repository: &str,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<bool> {
        Ok(self.db.image(id)?.is_some()
            && self.db.digest_target(repository, digest)?.as_ref() == Some(id)
            && match tag {
                Some(t) => self.db.tag_target(t)?.as_ref() == Some(id),
                None => true,
            })
    }

    /// Records a loaded image: its layers' rows (bottom first), the image, its tags and the
    /// repository digest, in one transaction. Returns the images that lost a tag to it.
    pub fn record_image(
        &mut self,
        row: &ImageRow,
        layers: &[LayerRow],
        tags: &[String],
        repo_digest: Option<(&str, &Digest)>,
    ) -> Result<Vec<Digest>> {
        Ok(self.db.record_image(&NewImage {
            row,
            layers,
            tags,
            repo_digest,
        })?)
    }

    // ---- mounts

    pub fn mounts(&self) -> Result<Vec<MountRow>> {
        Ok(self.db.mounts()?)
    }

    pub fn mounts_of_image(&self, id: &Digest) -> Result<Vec<MountRow>> {
        Ok(self
            .db
            .mounts()?
            .into_iter()
            .filter(|m| &m.image_id == id)
            .collect())
    }

    /// Whether a mount id is taken (by a row, or by a dir a failed command left).
    pub fn mount_exists(&self, id: &MountId) -> Result<bool> {
        Ok(self.db.mount(id.as_str())?.is_some() || self.layout.mount(id).exists())
    }

    /// Records a mount (before anything is mounted: the row pins its image).
    pub fn add_mount(&mut self, row: &MountRow) -> Result<()> {
        Ok(self.db.insert_mount(row)?)
    }

    /// Forgets a mount that is no longer mounted: its dirs (and writable layer) go, then its row.
    pub fn forget_mount(&mut self, id: &MountId) -> Result<()> {
        let dir = self.layout.mount(id);
        staging::remove_tree(&dir).at(&dir)?;
        Ok(self.db.delete_mount(id)?)
    }
}

/// The current time in unix seconds (what rows record).
pub fn now() -> i64 {
    db::now()
}

#[cfg(test)]
mod store_tests;
