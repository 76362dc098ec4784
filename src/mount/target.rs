//! Mount targets, opened once without following symlinks and mounted onto by fd.
//!
//! A target named by path is resolved at mount time: a `rootfs` someone planted as a symlink to
//! `/etc` would have the image mounted over `/etc`. So a target is walked one component at a time
//! with `O_NOFOLLOW` (any symlink on the way refuses the mount), and the mount is attached to the
//! directory that walk opened (`move_mount` onto the fd, or `mount(2)` onto `/proc/self/fd/N`,
//! which names exactly that inode), so nothing can redirect it between the check and the mount.

use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::Mode;
use rustix::io::Errno;

use super::MountError;
use crate::sys::create::open_dir_nofollow;
use crate::sys::open::proc_fd_path;

/// An opened mount target.
#[derive(Debug)]
pub struct Target {
    fd: OwnedFd,
    path: PathBuf,
}

impl Target {
    /// Opens the existing directory `path`, refusing any symlink in it.
    pub fn open(path: &Path) -> Result<Target, MountError> {
        let fd = open_dir_nofollow(path, None).map_err(|e| refused(path, e))?;
        Ok(Target {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the directory `path`, making it (and missing parents) with `mode` where missing,
    /// refusing any symlink in it. `path` is made absolute first (without resolving anything).
    pub fn create(path: &Path, mode: u32) -> Result<Target, MountError> {
        let abs = std::path::absolute(path)
            .map_err(|e| refused(path, e))?
            .components()
            .collect::<PathBuf>();
        let fd = open_dir_nofollow(&abs, Some(Mode::from_raw_mode(mode)))
            .map_err(|e| refused(path, e))?;
        Ok(Target { fd, path: abs })
    }

    /// The path it was opened by, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `/proc/self/fd/N`: the opened directory itself, for calls that take a path.
    pub fn proc_path(&self) -> String {
        proc_fd_path(&self.fd)
    }
}

/// The error for a target that cannot be opened safely.
pub fn refused(path: &Path, e: std::io::Error) -> MountError {
    let reason = match e.raw_os_error() {
        Some(code) if code == Errno::LOOP.raw_os_error() => {
            "a component of it is a symlink, and mount targets are never reached through symlinks \
             (give the real path)"
                .to_string()
        }
        Some(code) if code == Errno::NOTDIR.raw_os_error() => "not a directory".to_string(),
        _ => e.to_string(),
    };
    MountError::UnsafeTarget {
        path: path.to_path_buf(),
        reason,
    }
}
