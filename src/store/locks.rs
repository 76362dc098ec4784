//! The store's lock files (`locks/`), one `flock` each; the model they implement is in the README
//! ("Locking"). In short:
//!
//! - `layer-<diffID>`: held *shared* by every command that relies on a layer with that diffID, from
//!   before it looks for it until the image that uses it is recorded (load, pull, import, commit);
//!   taken *exclusive*, without waiting, by whoever deletes such a layer (rmi, prune, fsck
//!   --repair). A remover that cannot have it leaves the layer alone: a running command uses it.
//! - `unpack-<diffID>` and `chain-<chainID>`: exclusive while a layer is looked for and unpacked, so
//!   two loads unpack a layer once; `chain-` stays held until a parent-dependent layer (stored
//!   under its chainID) is committed, not only staged.
//! - `mount-<id>`: exclusive while mount `<id>` is made or removed; `mount-<id>.new` exists while it
//!   is being made, so that a mount whose maker was killed is undone by the next command.
//!
//! A lock file is unlinked by its last holder (who can take it exclusively on release), so `locks/`
//! holds only the locks of running commands. Every acquisition checks, after the `flock`, that the
//! path still names the inode it locked, and starts again if not: a lock taken on a file another
//! holder unlinked meanwhile would exclude nobody.

use rustix::fs::{flock, fstat, stat, FlockOperation};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock file; released (and unlinked when nobody else holds it) on drop.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    file: Option<File>,
}

impl FileLock {
    /// Waits for the lock.
    pub fn acquire(path: &Path, mode: LockMode) -> io::Result<FileLock> {
        match lock(path, mode, true)? {
            Some(l) => Ok(l),
            None => Err(io::Error::from(io::ErrorKind::WouldBlock)),
        }
    }

    /// The lock if nobody holds it in a conflicting mode; `None` if somebody does.
    pub fn try_acquire(path: &Path, mode: LockMode) -> io::Result<Option<FileLock>> {
        lock(path, mode, false)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock(path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<FileLock>> {
    let op = match (mode, wait) {
        (LockMode::Shared, true) => FlockOperation::LockShared,
        (LockMode::Shared, false) => FlockOperation::NonBlockingLockShared,
        (LockMode::Exclusive, true) => FlockOperation::LockExclusive,
        (LockMode::Exclusive, false) => FlockOperation::NonBlockingLockExclusive,
    };
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(super::perms::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        match flock(&file, op) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        // The holder before us may have unlinked the file between our open and our flock.
        let held = fstat(&file)?;
        match stat(path) {
            Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                return Ok(Some(FileLock {
                    path: path.to_path_buf(),
                    file: Some(file),
                }))
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else { return };
        // Exclusive now (without waiting) means no one else holds it: the file can go. A process
        // waiting on it wakes on the unlinked inode, sees the path changed, and starts again.
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = fs::remove_file(&self.path);
        }
        drop(file);
    }
}

#[cfg(test)]
#[path = "locks_tests.rs"]
mod tests;
