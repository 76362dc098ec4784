//! Opening a file that must be a regular file, without blocking and without following a final
//! symlink. Opening a FIFO for reading blocks until a writer appears (forever, if none does), a
//! device may have side effects on open, and a symlink may point anywhere on the host: a file
//! named by an input (an OCI layout's blob, an archive to read) is opened `O_NONBLOCK |
//! O_NOFOLLOW`, checked with `fstat` to be a regular file, and only then made blocking again.

use rustix::fs::{FileType, Mode, OFlags};
use rustix::path::Arg;
use std::fs::File;
use std::io;

/// Opens `path` read-only if it is a regular file (the last component not a symlink). Anything
/// else is `InvalidInput`, with a message saying what it is instead.
pub fn open_regular<P: Arg>(path: P) -> io::Result<File> {
    open_checked(path, OFlags::NOFOLLOW)
}

/// The same for a path a person named (an archive given to `load`): a symlink to a regular file
/// is followed, as the person meant it, but a FIFO or device is still refused without blocking.
pub fn open_regular_following<P: Arg>(path: P) -> io::Result<File> {
    open_checked(path, OFlags::empty())
}

fn open_checked<P: Arg>(path: P, extra: OFlags) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC | extra;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            not_regular("a symbolic link (not followed)")
        } else {
            io::Error::from(e)
        }
    })?;
    let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
    if kind != FileType::RegularFile {
        return Err(not_regular(describe(kind)));
    }
    let now = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, now - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

fn not_regular(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    )
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

#[cfg(test)]
#[path = "regular_tests.rs"]
mod tests;
