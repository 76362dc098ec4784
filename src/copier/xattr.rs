//! Extended attributes: reading, writing, and which ones an overlay mount would show.

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::{Errno, Result};

use super::CopyOptions;

/// An xattr name and value.
pub(super) type Xattr = (Vec<u8>, Vec<u8>);

/// Where xattrs live: an open file or dir, or a path whose last component must not be followed
/// (symlinks and device nodes, which cannot be opened for `f*xattr`).
#[derive(Clone, Copy)]
pub(super) enum Handle<'a> {
    Fd(BorrowedFd<'a>),
    NoFollow(&'a Path),
}

pub(super) fn opaque_name(userxattr: bool) -> &'static str {
    if userxattr {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

fn private_prefix(userxattr: bool) -> &'static [u8] {
    if userxattr {
        b"user.overlay."
    } else {
        b"trusted.overlay."
    }
}

/// The name under which an overlay mount would show this stored xattr, or `None` if it hides it.
///
/// overlayfs hides its own `trusted.overlay.*` (`user.overlay.*` with `userxattr`) names and shows
/// an escaped `trusted.overlay.overlay.X` as `trusted.overlay.X` (Linux 6.7+). A layer dir output
/// (`keep_whiteouts`) keeps escaped names as stored, so the mount above it still unescapes them.
pub(super) fn shown_name(name: &[u8], opts: &CopyOptions) -> Option<Vec<u8>> {
    let prefix = private_prefix(opts.userxattr);
    let Some(rest) = name.strip_prefix(prefix) else {
        return Some(name.to_vec());
    };
    let unescaped = rest.strip_prefix(b"overlay.".as_slice())?;
    if opts.keep_whiteouts {
        Some(name.to_vec())
    } else {
        Some([prefix, unescaped].concat())
    }
}

/// All xattrs of `handle`, in list order.
pub(super) fn read_all(handle: Handle<'_>) -> Result<Vec<Xattr>> {
    let names = list(handle)?;
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        match get(handle, name) {
            Ok(value) => out.push((name.to_vec(), value)),
            // Removed between list and get: nothing to copy.
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
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

fn list(handle: Handle<'_>) -> Result<Vec<u8>> {
    // Size, then data; a concurrent change between the two shows up as ERANGE, so ask again.
    for _ in 0..4 {
        let size = match handle {
            Handle::Fd(fd) => rustix::fs::flistxattr_query(fd)?,
            Handle::NoFollow(path) => rustix::fs::llistxattr_query(path)?,
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        let got = match handle {
            Handle::Fd(fd) => rustix::fs::flistxattr(fd, &mut buf[..]),
            Handle::NoFollow(path) => rustix::fs::llistxattr(path, &mut buf[..]),
        };
        match got {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::RANGE)
}

fn get(handle: Handle<'_>, name: &[u8]) -> Result<Vec<u8>> {
    let name = OsStr::from_bytes(name);
    for _ in 0..4 {
        let size = match handle {
            Handle::Fd(fd) => rustix::fs::fgetxattr_query(fd, name)?,
            Handle::NoFollow(path) => rustix::fs::lgetxattr_query(path, name)?,
        };
        let mut buf = vec![0u8; size];
        let got = match handle {
            Handle::Fd(fd) => rustix::fs::fgetxattr(fd, name, &mut buf[..]),
            Handle::NoFollow(path) => rustix::fs::lgetxattr(path, name, &mut buf[..]),
        };
        match got {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::RANGE)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn overlay_names_as_the_mount_shows_them() {
        let rootfs = CopyOptions {
            userxattr: false,
            keep_whiteouts: false,
        };
        let layer = CopyOptions {
            userxattr: false,
            keep_whiteouts: true,
        };
        let user = CopyOptions {
            userxattr: true,
            keep_whiteouts: false,
        };
        let cases: &[(&str, CopyOptions, Option<&str>)] = &[
            ("user.mime", rootfs, Some("user.mime")),
            ("security.capability", rootfs, Some("security.capability")),
            ("trusted.overlay.opaque", rootfs, None),
            ("trusted.overlay.opaque", layer, None),
            (
                "trusted.overlay.overlay.opaque",
                rootfs,
                Some("trusted.overlay.opaque"),
            ),
            (
                "trusted.overlay.overlay.opaque",
                layer,
                Some("trusted.overlay.overlay.opaque"),
            ),
            ("user.overlay.opaque", rootfs, Some("user.overlay.opaque")),
            ("user.overlay.opaque", user, None),
            ("user.overlay.overlay.x", user, Some("user.overlay.x")),
            (
                "trusted.overlay.opaque",
                user,
                Some("trusted.overlay.opaque"),
            ),
            ("trusted.overlayfoo", rootfs, Some("trusted.overlayfoo")),
        ];
        for (name, opts, want) in cases {
            let got = shown_name(name.as_bytes(), opts);
            assert_eq!(
                got.as_deref(),
                want.map(str::as_bytes),
                "{name} with {opts:?}"
            );
        }
    }
}
