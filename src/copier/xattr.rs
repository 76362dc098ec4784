//! Writing xattrs, and which stored ones an overlay mount would show.

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::Result;

use super::CopyOptions;
use crate::layerfs::PRIVATE_XATTR_PREFIX;
use crate::sys::xattr::Xattr;

/// Where xattrs are set: an open file or dir, or a path whose last component must not be followed
/// (symlinks and device nodes, which cannot be opened for `f*xattr`).
#[derive(Clone, Copy)]
pub(super) enum Handle<'a> {
    Fd(BorrowedFd<'a>),
    NoFollow(&'a Path),
}

/// The name under which an overlay mount would show this stored xattr, or `None` if it hides it.
///
/// overlayfs hides its own `trusted.overlay.*` names and shows an escaped
/// `trusted.overlay.overlay.X` as `trusted.overlay.X` (Linux 6.7+). A layer dir output
/// (`keep_whiteouts`) keeps escaped names as stored, so the mount above it still unescapes them.
pub(super) fn shown_name(name: &[u8], opts: &CopyOptions) -> Option<Vec<u8>> {
    let Some(rest) = name.strip_prefix(PRIVATE_XATTR_PREFIX) else {
        return Some(name.to_vec());
    };
    let unescaped = rest.strip_prefix(b"overlay.".as_slice())?;
    if opts.keep_whiteouts {
        Some(name.to_vec())
    } else {
        Some([PRIVATE_XATTR_PREFIX, unescaped].concat())
    }
}

/// Set every xattr on `handle`.
pub(super) fn write_all(handle: Handle<'_>, xattrs: &[Xattr]) -> Result<()> {
    for (name, value) in xattrs {
        let name = OsStr::from_bytes(name);
        let flags = rustix::fs::XattrFlags::empty();
        match handle {
            Handle::Fd(fd) => rustix::fs::fsetxattr(fd, name, value, flags)?,
            Handle::NoFollow(path) => rustix::fs::lsetxattr(path, name, value, flags)?,
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "xattr_tests.rs"]
mod tests;
