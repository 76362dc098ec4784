//! Staging: how changes reach the store atomically.
//!
//! Work happens in `tmp/<name>/`, which its process holds an exclusive `flock` on (through
//! `tmp/<name>.lock`) for as long as it lives. When the work is complete it is flushed (one `syncfs`
//! for the whole tree, far cheaper than an fsync per file) and renamed into place. A process killed at
//! any instant leaves only a staging dir whose lock nobody holds any more; the next command removes it.
//! Locks die with their process, so a dead owner can never be mistaken for a live one.

use rustix::fs::{flock, FlockOperation};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A staging directory owned by this process; removed on drop unless committed.
pub struct Staging {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
    keep: bool,
}

impl Staging {
    pub fn new(tmp_dir: &Path, purpose: &str) -> io::Result<Staging> {
        let name = format!(
            "{purpose}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let dir = tmp_dir.join(&name);
        let lock_path = tmp_dir.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(super::perms::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)?;
        flock(lock.as_fd(), FlockOperation::NonBlockingLockExclusive)?;
        // Exactly 0700 (the umask may say otherwise): the dir becomes `layers/<key>/` as it is.
        fs::DirBuilder::new()
            .mode(super::perms::DIR_MODE)
            .create(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(super::perms::DIR_MODE))?;
        Ok(Staging {
            dir,
            lock_path,
            _lock: lock,
            keep: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Flushes the staged tree and renames it to `dest`. Returns false (and discards the staged copy)
    /// when `dest` already exists: another process finished the same work first.
    pub fn commit_to(self, dest: &Path) -> io::Result<bool> {
        sync_filesystem(&self.dir)?;
        let renamed = self.rename_to(dest)?;
        if renamed {
            if let Some(parent) = dest.parent() {
                fsync_dir(parent)?;
            }
        }
        Ok(renamed)
    }

    /// `commit_to` for a caller that flushed the tree itself (several staged trees share one flush,
    /// see `group_sync`) and that makes the rename durable (`fsync_dir` of `dest`'s parent) before
    /// anything relies on it.
    pub fn rename_to(mut self, dest: &Path) -> io::Result<bool> {
        match fs::rename(&self.dir, dest) {
            Ok(()) => {
                self.keep = true;
                Ok(true)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_tree(&self.dir);
        }
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Removes staging dirs whose owner is gone. Returns how many were removed.
pub fn clear_abandoned(tmp_dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(tmp_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".lock") {
            continue;
        }
        let lock_path = tmp_dir.join(format!("{name}.lock"));
        let abandoned = match OpenOptions::new().write(true).open(&lock_path) {
            // Holding the lock ourselves proves the owner is dead.
            Ok(lock) => flock(lock.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok(),
            // A dir without a lock file: killed between creating the lock's dir and... or by hand.
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        if abandoned {
            // A process killed while it had something mounted in its staging dir (the kernel
            // feature probe does) left that mount; detached first, or the removal fails.
            for m in crate::mount::mounts_below(&entry.path()) {
                let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
            }
            remove_tree(&entry.path())?;
            let _ = fs::remove_file(&lock_path);
            removed += 1;
        }
    }
    // Lock files whose dir is gone (killed between unlink of the dir and of the lock).
    for entry in fs::read_dir(tmp_dir)? {
        let entry = entry?;
        let path = entry.path();
        if let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".lock"))
        {
            if !tmp_dir.join(stem).exists() {
                if let Ok(lock) = OpenOptions::new().write(true).open(&path) {
                    if flock(lock.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok() {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
    }
    Ok(removed)
}

/// Removes a tree that may contain read-only directories (layers have them: mode 0555 dirs), or
/// that a container made thousands of levels deep: one fd-bounded walk (`sys::walk`).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    crate::sys::walk::remove_tree(path)
}

/// Writes a small file of the store atomically: an exclusively created 0600 temp file in the
/// same dir (see `sys::create`), fsync, rename, fsync the dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "path has no parent or name");
    let dir = path.parent().ok_or_else(bad)?;
    let name = path.file_name().ok_or_else(bad)?;
    let dir_fd = File::open(dir)?;
    let mode = rustix::fs::Mode::from_raw_mode(super::perms::FILE_MODE);
    let stem = name.to_string_lossy();
    let (mut f, tmp) = crate::sys::create::create_temp(&dir_fd, &stem, mode)?;
    let result = (|| {
        crate::sys::create::set_mode(&f, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        rustix::fs::renameat(&dir_fd, &tmp, &dir_fd, name)?;
        dir_fd.sync_all()
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&dir_fd, &tmp, rustix::fs::AtFlags::empty());
    }
    result
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One `syncfs(2)` flushes every file staged on this filesystem.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    rustix::fs::syncfs(f.as_fd())?;
    Ok(())
}

#[cfg(test)]
#[path = "staging_tests.rs"]
mod tests;
