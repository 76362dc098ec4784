//! The unpacker's path helpers over `sys::open`: relative paths as bytes, times, and removing a
//! tree beneath the layer dir.
//!
//! Every lookup of more than one component goes through `sys::open::open_beneath` (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or an `O_NOFOLLOW` walk), so a symlink planted anywhere
//! in the path (by this layer or a lower one) fails with `ELOOP` instead of leading outside. Single
//! names are handled with `*at` calls that do not follow the final component (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `O_CREAT|O_EXCL`, `mknodat`, `symlinkat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`). Where the kernel offers no fd or no-follow form (chmod of a device node,
//! xattrs of a symlink), `sys` pins the object with `O_PATH|O_NOFOLLOW` and addresses it as
//! `/proc/self/fd/N`, which names exactly that inode.

use rustix::fd::BorrowedFd;
use rustix::fs::{self, AtFlags, FileType, Timespec, Timestamps};
use std::io;

use crate::sys::open::{lstat_at, open_beneath, DirAccess};

use crate::tar::reader::Time;

pub(crate) fn timestamps(mtime: Time, atime: Option<Time>) -> Timestamps {
    let ts = |t: Time| Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos.into(),
    };
    Timestamps {
        last_access: ts(atime.unwrap_or(mtime)),
        last_modification: ts(mtime),
    }
}

/// Removes the directory `path` (non-empty, relative to `root`) and everything in it. Holds at
/// most one directory fd at a time, so nesting depth cannot exhaust file descriptors.
pub(crate) fn remove_tree(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<()> {
    let subdirs = {
        let dir = open_beneath(root, path, DirAccess::Read)?;
        let mut subdirs = Vec::new();
        let mut files = Vec::new();
        for entry in fs::Dir::read_from(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => {
                    FileType::from_raw_mode(lstat_at(&dir, name)?.st_mode) == FileType::Directory
                }
                _ => false,
            };
            if is_dir {
                subdirs.push(name.to_vec());
            } else {
                files.push(name.to_vec());
            }
        }
        for f in files {
            fs::unlinkat(&dir, f.as_slice(), AtFlags::empty())?;
        }
        subdirs
    };
    for sub in subdirs {
        remove_tree(root, &join(path, &sub))?;
    }
    let (parent, name) = split_parent(path);
    let parent = open_beneath(root, parent, DirAccess::Path)?;
    Ok(fs::unlinkat(&parent, name, AtFlags::REMOVEDIR)?)
}

/// `a/b` from `a` and `b` (`b` alone when `a` is empty).
pub(crate) fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut v = Vec::with_capacity(a.len() + 1 + b.len());
    v.extend_from_slice(a);
    v.push(b'/');
    v.extend_from_slice(b);
    v
}

/// Splits `a/b/c` into (`a/b`, `c`).
pub(crate) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}
