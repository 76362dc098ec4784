//! Extended attributes: listing all of them (names and values) by fd or at a name in a directory,
//! reading one, and setting one on a name that must not be followed.
//!
//! The size of a list or value can change between asking and reading (`ERANGE`); every read
//! starts with a buffer that fits the common case, asks for the size only when that is too small,
//! and retries a bounded number of times. A filesystem without xattrs (`EOPNOTSUPP`) has none.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fd::AsFd;
use rustix::fs::{self, XattrFlags};
use rustix::io::{Errno, Result};

use super::open::{pin_nofollow, proc_fd_child, proc_fd_path};

/// An xattr name and value.
pub type Xattr = (Vec<u8>, Vec<u8>);

/// Enough for the name list of almost every file (most have none), so one call usually does.
const FIRST_LIST: usize = 1024;
const FIRST_VALUE: usize = 256;
const TRIES: usize = 8;

/// Calls `read` with a growing buffer until the answer fits; `read(&mut [])` asks for the size.
fn sized(first: usize, mut read: impl FnMut(&mut [u8]) -> Result<usize>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; first];
    for _ in 0..TRIES {
        match read(&mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => {
                let want = read(&mut [])?;
                buf.resize(want.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
    Err(Errno::RANGE)
}

/// All xattrs of an open file or directory, in list order.
pub fn list_xattrs<Fd: AsFd>(fd: Fd) -> Result<Vec<Xattr>> {
    let fd = fd.as_fd();
    collect(
        |buf| fs::flistxattr(fd, buf),
        |name, buf| fs::fgetxattr(fd, name, buf),
    )
}

/// All xattrs of the entry `name` in `dir`, which is not followed (for symlinks and device nodes,
/// which cannot be opened for `f*xattr`): reached as `/proc/self/fd/N/name` with the `l*` calls.
pub fn list_xattrs_at<Fd: AsFd>(dir: Fd, name: &[u8]) -> Result<Vec<Xattr>> {
    let path = proc_fd_child(dir, name);
    let path: &Path = &path;
    collect(
        |buf| fs::llistxattr(path, buf),
        |xname, buf| fs::lgetxattr(path, xname, buf),
    )
}

fn collect(
    mut list: impl FnMut(&mut [u8]) -> Result<usize>,
    mut get: impl FnMut(&OsStr, &mut [u8]) -> Result<usize>,
) -> Result<Vec<Xattr>> {
    let names = match sized(FIRST_LIST, &mut list) {
        Ok(names) => names,
        Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let xname = OsStr::from_bytes(name);
        match sized(FIRST_VALUE, |buf| get(xname, buf)) {
            Ok(value) => out.push((name.to_vec(), value)),
            // Removed between list and get: it is no longer there.
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The value of one xattr of an open file, `None` if it has none of that name.
pub fn get_xattr<Fd: AsFd, N: rustix::path::Arg + Copy>(
    fd: Fd,
    name: N,
) -> Result<Option<Vec<u8>>> {
    let fd = fd.as_fd();
    match sized(FIRST_VALUE, |buf| fs::fgetxattr(fd, name, buf)) {
        Ok(value) => Ok(Some(value)),
        Err(Errno::NODATA | Errno::OPNOTSUPP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets an xattr on the entry `name` in `dir` without following it (symlinks, device nodes,
/// fifos): the entry is pinned with `O_PATH|O_NOFOLLOW` and the /proc magic link resolves to
/// that very inode.
pub fn set_xattr_nofollow<Fd: AsFd>(
    dir: Fd,
    name: &[u8],
    xname: &[u8],
    value: &[u8],
) -> Result<()> {
    let fd = pin_nofollow(dir, name)?;
    let path = proc_fd_path(&fd);
    fs::lsetxattr(&path, xname, value, XattrFlags::empty()).or_else(|e| {
        if e == Errno::PERM || e == Errno::OPNOTSUPP {
            // lsetxattr may refuse the magic link itself; setxattr resolves it to the inode.
            fs::setxattr(&path, xname, value, XattrFlags::empty())
        } else {
            Err(e)
        }
    })
}

#[cfg(test)]
#[path = "xattr_tests.rs"]
mod tests;
