//! The store's errors, and the kinds a caller branches on (as containerd's errdefs: not found,
//! already exists, in use, invalid, corrupt), so that "image in use" and "record missing" are told
//! apart without reading messages.

use super::db::DbError;
use super::fserror::FsError;
use std::io;
use std::path::PathBuf;

/// What kind of failure an error is, for callers that act on it (a server maps these to status
/// codes; the CLI only prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The image, mount, layer or record asked for is not there.
    NotFound,
    /// Something by that name exists already.
    AlreadyExists,
    /// A mount (or another user) holds it; forcing or unmounting first is needed.
    InUse,
    /// The request itself is wrong: a bad name, id or option.
    Invalid,
    /// What is stored does not match what was recorded (fsck reports it).
    Corrupt,
    /// The store's filesystem is full: no free blocks, no free inodes, or the quota is used up.
    NoSpace,
    /// The store's filesystem is mounted read-only.
    ReadOnly,
    /// The store (or a file in it) is not this user's to read or write.
    PermissionDenied,
    /// Anything else: I/O, the kernel, the network.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Db(#[from] DbError),
    /// The filesystem refused: full, read-only, or not ours (see `fserror`).
    #[error(transparent)]
    Filesystem(FsError),
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
    /// An image's stored config does not parse.
    #[error("image {image}: {reason}")]
    BadConfig { image: String, reason: String },
    /// A layer lacks a record a later lamina keeps (tar-split, file list).
    #[error("image layer {key}: has no {what} (it was stored by an older lamina)")]
    NoRecord { key: String, what: String },
    /// A request about one of containerd's snapshots refused (see `snapshots`).
    #[error("snapshot {key}: {refusal}")]
    Snapshot {
        key: String,
        refusal: super::SnapshotRefusal,
    },
    /// A layer's `layer.json` cannot be written.
    #[error("image {layer}: cannot encode layer record: {reason}")]
    LayerRecord { layer: String, reason: String },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Filesystem(f) | StoreError::Db(DbError::Filesystem(f)) => f.cause.kind(),
            StoreError::NoSuchImage(_)
            | StoreError::NoSuchMount(_)
            | StoreError::NoRecord { .. } => ErrorKind::NotFound,
            StoreError::MountExists(_) => ErrorKind::AlreadyExists,
            StoreError::Db(DbError::GainedMount(_)) => ErrorKind::InUse,
            StoreError::BadName { .. }
            | StoreError::Ambiguous { .. }
            | StoreError::BadMountId(_)
            | StoreError::LayerRecord { .. } => ErrorKind::Invalid,
            StoreError::MissingLayer { .. }
            | StoreError::BadConfig { .. }
            | StoreError::Db(DbError::Corrupt { .. }) => ErrorKind::Corrupt,
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            StoreError::Io { .. } | StoreError::Db(_) => ErrorKind::Other,
            StoreError::Snapshot { refusal, .. } => refusal.kind(),
        }
    }
}
