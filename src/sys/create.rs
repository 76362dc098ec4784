//! Creating files and reaching directories by a path someone else may share: exclusive creation
//! under random names, and directory walks that never follow a symlink.
//!
//! A root process that writes `DIR/name` with a plain create+truncate writes through whatever
//! symlink another user planted under that name; one that mounts onto `DIR/rootfs` mounts over
//! whatever that name points at. Everything here refuses both: files are created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted name, symlink or not, is `EEXIST`, and a fresh
//! random name is tried), and a path is walked one component at a time with `O_NOFOLLOW`, so any
//! symlink on the way fails with `ELOOP` instead of being resolved.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Component, Path};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, Mode, OFlags, CWD};
use rustix::io::Errno;

use super::open::{file_type, lstat_at};

/// Creates `name` in `dir` for writing, exclusively and without following it: a name that exists
/// already (a symlink, a file, anything) fails with `EEXIST`. `mode` is trimmed by the umask, as
/// `open(2)` does; [`set_mode`] sets it exactly.
pub fn create_exclusive<Fd: AsFd>(dir: Fd, name: &OsStr, mode: Mode) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(fs::openat(dir, name, flags, mode)?))
}

/// `fchmod`: sets a file's permission bits exactly, whatever the umask trimmed at creation.
pub fn set_mode(file: &File, mode: Mode) -> io::Result<()> {
    Ok(fs::fchmod(file, mode)?)
}

/// A new file `.<stem>.<random>` in `dir`, created as [`create_exclusive`] does; a name that is
/// taken (by a planted symlink, say) is passed over for another random one. Returns the file and
/// its name, for a `renameat` into place.
pub fn create_temp<Fd: AsFd>(dir: Fd, stem: &str, mode: Mode) -> io::Result<(File, OsString)> {
    let dir = dir.as_fd();
    for _ in 0..16 {
        let name = OsString::from(format!(".{stem}.{:016x}", rand::random::<u64>()));
        match create_exclusive(dir, &name, mode) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            other => return other.map(|f| (f, name)),
        }
    }
    Err(Errno::EXIST.into())
}

/// Opens the directory at `path` (`O_PATH`), following no symlink anywhere in it: each component
/// is opened with `O_NOFOLLOW` from the one before, so a symlink fails with `ELOOP` and a `..`
/// with `EINVAL`. With `create`, missing directories are made with that mode (exactly).
pub fn open_dir_nofollow(path: &Path, create: Option<Mode>) -> io::Result<OwnedFd> {
    let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = if path.is_absolute() {
        fs::open("/", step, Mode::empty())?
    } else {
        fs::openat(CWD, ".", step, Mode::empty())?
    };
    for comp in path.components() {
        let name = match comp {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => name,
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: '..' is not allowed here", path.display()),
                ))
            }
        };
        cur = open_step(&cur, name, step, create)?;
    }
    Ok(cur)
}

/// One component of [`open_dir_nofollow`]: open it, making it first if asked and missing.
fn open_step(
    dir: &OwnedFd,
    name: &OsStr,
    step: OFlags,
    create: Option<Mode>,
) -> io::Result<OwnedFd> {
    match nofollow_dir(dir, name, step) {
        Err(Errno::NOENT) => {}
        other => return Ok(other?),
    }
    let Some(mode) = create else {
        return Err(Errno::NOENT.into());
    };
    match fs::mkdirat(dir, name, mode) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Ok(nofollow_dir(dir, name, step)?),
        Err(e) => return Err(e.into()),
    }
    // The umask trimmed `mode`; set it exactly on the dir just made (opened readable: fchmod
    // does not work on an O_PATH fd).
    let rd = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = nofollow_dir(dir, name, rd)?;
    fs::fchmod(&fd, mode)?;
    Ok(fd)
}

/// Opens `name` as a directory, telling a symlink (`ELOOP`) from a non-directory (`ENOTDIR`).
fn nofollow_dir(dir: &OwnedFd, name: &OsStr, flags: OFlags) -> Result<OwnedFd, Errno> {
    match fs::openat(dir, name, flags, Mode::empty()) {
        Err(Errno::NOTDIR)
            if lstat_at(dir, name).is_ok_and(|st| file_type(&st) == fs::FileType::Symlink) =>
        {
            Err(Errno::LOOP)
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
