//! The unpacker's path helpers over `sys::open`: relative paths as bytes, and times.
//!
//! Every lookup of more than one component goes through `sys::open::open_beneath` (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or an `O_NOFOLLOW` walk), so a symlink planted anywhere
//! in the path (by this layer or a lower one) fails with `ELOOP` instead of leading outside. Single
//! names are handled with `*at` calls that do not follow the final component (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `O_CREAT|O_EXCL`, `mknodat`, `symlinkat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`). Where the kernel offers no fd or no-follow form (chmod of a device node,
//! xattrs of a symlink), `sys` pins the object with `O_PATH|O_NOFOLLOW` and addresses it as
//! `/proc/self/fd/N`, which names exactly that inode.

use rustix::fs::{Timespec, Timestamps};

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
