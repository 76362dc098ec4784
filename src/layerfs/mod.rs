//! The overlay layer format, once: how a layer dir marks what it hides from the layers below it,
//! which xattrs belong to overlayfs itself, and one fd-based view of a stack of layer dirs with
//! overlayfs's merged lookup (used by the copier, `lamina diff` and the unpacker's fix-up).
//!
//! Invariants: the format here is the one the store writes and the kernel reads (a 0/0 character
//! device is a whiteout; `trusted.overlay.opaque=y` marks an opaque dir; the store never mounts
//! with `userxattr`). The view only reads layer dirs, only through fds: every dir is opened
//! beneath its layer's root without following a symlink.
//!
//! Sits below source, unpack, mount, copier and runtime; uses only `sys`.

mod format;
mod view;

use std::io;
use std::path::PathBuf;

pub use format::{
    is_opaque, is_overlay_xattr, is_whiteout, set_opaque, AUFS_META_PREFIX, OPAQUE_MARKER,
    OPAQUE_XATTR, PRIVATE_XATTR_PREFIX, WHITEOUT_PREFIX,
};
pub use view::{LowerView, MergedDir, Shown};

/// A view operation failed on `path` (a layer dir's path joined with the entry's).
#[derive(Debug, thiserror::Error)]
#[error("{op} {path:?}: {source}")]
pub struct ViewError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}
