//! Whiteouts, opaque dirs and overlay-private xattrs, as the OCI image-spec and overlayfs
//! define them.

use rustix::fd::AsFd;
use rustix::fs::{FileType, Stat, XattrFlags};

use crate::sys::xattr::get_xattr;

/// A tar member `.wh.NAME` deletes NAME from the layers below (image-spec "Whiteouts").
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// A tar member `DIR/.wh..wh..opq` hides every child DIR has in the layers below.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// aufs's own bookkeeping names (`.wh..wh.plnk`, ...), which are no part of an image's tree.
pub const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// The xattr that marks a layer dir's directory opaque (value `y`). Always the `trusted.`
/// name: the store mounts without `userxattr`.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// overlayfs's whiteout: a character device with device number 0/0.
pub fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// The xattr namespace an overlay mount (without `userxattr`, as the store mounts) keeps for itself:
/// it hides these names, and shows an escaped `trusted.overlay.overlay.X` as `trusted.overlay.X`.
pub const PRIVATE_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// Whether an xattr belongs to overlayfs itself (its whiteout, opaque, redirect and metacopy
/// markers, in either namespace): a layer must never carry one, or it could change what the
/// mount shows.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(PRIVATE_XATTR_PREFIX) || name.starts_with(b"user.overlay.")
}

/// Whether the open directory carries the opaque marker.
pub fn is_opaque<Fd: AsFd>(dir: Fd) -> rustix::io::Result<bool> {
    Ok(get_xattr(dir, OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
}

/// Marks the open directory opaque.
pub fn set_opaque<Fd: AsFd>(dir: Fd) -> rustix::io::Result<()> {
    rustix::fs::fsetxattr(dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
