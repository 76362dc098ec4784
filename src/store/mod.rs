//! The on-disk store: layer directories, blobs, and the metadata database that ties them together.
//!
//! Invariants:
//! - A directory under `layers/` is complete: it was staged under `tmp/`, verified (blob digest and
//!   diffID), flushed and renamed into place. Its row in the database is written afterwards, so a row
//!   never names an incomplete layer; a layer dir without a row is adopted from its `layer.json`.
//! - A stored layer is never written to again. Mounts stack them read-only under their own upper dir.
//! - Nothing outside `tmp/` is ever half-written; `tmp/` is cleared of dead processes' work by every
//!   command that opens the store.

mod build;
pub mod db;
mod df;
pub mod filelist;
mod fsck;
mod ingest;
pub mod layout;
mod mounts;
mod names;
mod prune;
mod recorded;
mod remove;
mod save;
pub mod staging;

pub use db::{DbError, ImageRow, LayerRow, MountRow};
pub use df::{DiskUsage, ImageUsage, LayerUsage, MountUsage};
pub use fsck::{FsckOptions, FsckReport, Problem, ProblemKind};
pub use ingest::{LayerEvent, LayerStatus, LoadedImage};
pub use layout::Layout;
pub use mounts::{Driver, MountOptions, MountedImage};
pub use names::{familiar, normalize_tag};
pub use remove::RemoveReport;
pub use save::{ArchiveFormat, SavedImage};

use crate::digest::Digest;
use db::Db;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Source(#[from] crate::source::SourceError),
    #[error("{0}")]
    Unpack(#[from] crate::unpack::UnpackError),
    #[error("{0}")]
    Mount(#[from] crate::mount::MountError),
    #[error("{0}")]
    Copy(#[from] crate::copier::CopyError),
    #[error("{0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("invalid reference {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image reference {name} is ambiguous: it matches {count} images")]
    Ambiguous { name: String, count: usize },
    #[error("no such mount: {0}")]
    NoSuchMount(String),
    #[error("mount {0} already exists")]
    MountExists(String),
    #[error("invalid mount id {0:?}: use letters, digits, '.', '_' and '-'")]
    BadMountId(String),
    #[error("layer {key} of image {image} is missing from the store (run `lamina fsck`)")]
    MissingLayer { image: String, key: String },
    #[error("image {image}: {reason}")]
    Image { image: String, reason: String },
    #[error("mount target {path}: {reason}")]
    Target { path: PathBuf, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// An open store.
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
        fs::create_dir_all(root).at(root)?;
        let root = root.canonicalize().at(root)?;
        let layout = Layout::new(&root);
        for dir in layout.dirs() {
            fs::create_dir_all(&dir).at(&dir)?;
        }
        if clear_tmp {
            staging::clear_abandoned(&layout.tmp_dir()).at(&layout.tmp_dir())?;
        }
        let db = Db::open(&layout.meta_db())?;
        Ok(Store { layout, db })
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

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The stored config of an image.
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>> {
        let path = self.layout.blob(id);
        fs::read(&path).at(&path)
    }

    pub fn config(&self, id: &Digest) -> Result<crate::image::ImageConfig> {
        let bytes = self.config_bytes(id)?;
        crate::image::ImageConfig::parse(bytes).map_err(|e| StoreError::Image {
            image: id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Stores a small blob (manifest or config) under its digest, atomically.
    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.layout.blob(digest);
        if path.exists() {
            return Ok(());
        }
        staging::write_atomic(&path, bytes).at(&path)
    }

    /// The diff dirs of an image's layers, top (nearest) first, as overlay wants them.
    pub fn lower_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        let layers = self.db.image_layers(id)?;
        let mut dirs = Vec::with_capacity(layers.len());
        for l in layers.iter().rev() {
            let dir = self.layout.layer_diff(&l.key);
            if !dir.is_dir() {
                return Err(StoreError::MissingLayer {
                    image: id.to_string(),
                    key: l.key.clone(),
                });
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }
}
