//! Who may read the store: its owner only.
//!
//! Layer dirs hold whatever images ship, setuid-root binaries included, and mounts' merged dirs
//! show them with their owners and modes. A local user who can walk to them can run such a binary
//! as root (moby's CVE-2021-41091, fixed there by making the driver dirs 0700/0710). So every
//! directory of the store is 0700 and every file lamina writes into it (meta.db and its WAL/SHM,
//! blobs, layer records, locks, features.json) is 0600, whatever the umask. A runtime running as
//! root needs no more (it has `CAP_DAC_OVERRIDE`; the overlay's lowers are opened with the
//! mounter's credentials; a container's own lookups start at its rootfs, never above it). The
//! layer trees (`layers/*/diff`) and mount trees keep the image's modes: they are unreachable
//! behind their 0700 parents.
//!
//! A store made by an older lamina (0755 dirs, 0644 files) is tightened where it is cheap on every
//! open (the root, the fixed dirs and meta.db: enough to cut every path in), and in full by
//! `fsck --repair`, which also reports every wrong mode it finds.

use super::layout::{LayerPaths, Layout};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Every directory of the store.
pub const DIR_MODE: u32 = 0o700;
/// Every file lamina writes into the store (not the files of layer trees).
pub const FILE_MODE: u32 = 0o600;

/// Makes `dir` when it is missing (and its missing parents, with the default mode) and gives it
/// exactly [`DIR_MODE`], whatever the umask. An existing dir is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

/// Sets `path`'s permission bits to `mode` when group or others have any; returns the mode it had
/// when it changed. Never follows a symlink (a symlink is left alone).
pub fn tighten(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let had = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() || had & 0o7077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(Some(had))
}

/// meta.db and the WAL and shared-memory files SQLite keeps beside it (SQLite gives those the
/// database file's mode, so a 0600 meta.db keeps them 0600 too).
pub fn db_files(layout: &Layout) -> [PathBuf; 3] {
    let db = layout.meta_db();
    let with = |suffix: &str| {
        let mut s = db.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    [with("-wal"), with("-shm"), db]
}

/// Creates meta.db empty and 0600 when it does not exist, so SQLite never creates it 0644.
pub fn precreate_db(layout: &Layout) -> io::Result<()> {
    let dir = fs::File::open(layout.root())?;
    let mode = rustix::fs::Mode::from_raw_mode(FILE_MODE);
    match crate::sys::create::create_exclusive(&dir, std::ffi::OsStr::new("meta.db"), mode) {
        Ok(f) => crate::sys::create::set_mode(&f, mode),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tightens what every path into the store goes through: the root, its fixed dirs and meta.db.
pub fn tighten_on_open(layout: &Layout) -> io::Result<()> {
    for dir in layout.dirs() {
        tighten(&dir, DIR_MODE)?;
    }
    tighten(&layout.root().join("blobs"), DIR_MODE)?;
    for f in db_files(layout) {
        tighten(&f, FILE_MODE)?;
    }
    Ok(())
}

/// One path whose mode is wider than the store allows.
#[derive(Debug, Clone)]
pub struct WrongMode {
    pub path: PathBuf,
    pub mode: u32,
    pub want: u32,
}

/// Every path of the store (but for the layer and mount trees) whose mode lets anyone but the owner
/// in, or carries setuid/setgid/sticky bits.
pub fn wrong_modes(layout: &Layout) -> io::Result<Vec<WrongMode>> {
    let mut paths: Vec<(PathBuf, u32)> = vec![];
    for dir in layout.dirs() {
        paths.push((dir, DIR_MODE));
    }
    paths.push((layout.root().join("blobs"), DIR_MODE));
    for f in db_files(layout) {
        paths.push((f, FILE_MODE));
    }
    paths.push((layout.features(), FILE_MODE));
    for (dir, mode) in [
        (layout.blobs_dir(), FILE_MODE),
        (layout.locks_dir(), FILE_MODE),
        (layout.mounts_dir(), DIR_MODE),
        (layout.tmp_dir(), 0),
    ] {
        for entry in read_dir_or_empty(&dir)? {
            let entry = entry?;
            let is_dir = entry.file_type()?.is_dir();
            let want = if mode == 0 && is_dir {
                DIR_MODE
            } else if mode == 0 {
                FILE_MODE
            } else {
                mode
            };
            paths.push((entry.path(), want));
        }
    }
    for entry in read_dir_or_empty(&layout.layers_dir())? {
        let dir = entry?.path();
        let layer = LayerPaths::staged(&dir);
        paths.push((dir.clone(), DIR_MODE));
        for f in [layer.record(), layer.tar_split(), layer.files()] {
            paths.push((f, FILE_MODE));
        }
    }
    let mut wrong = vec![];
    for (path, want) in paths {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if !meta.file_type().is_symlink() && mode & 0o7077 != 0 {
            wrong.push(WrongMode { path, mode, want });
        }
    }
    Ok(wrong)
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Vec<io::Result<fs::DirEntry>>> {
    match fs::read_dir(dir) {
        Ok(it) => Ok(it.collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "perms_tests.rs"]
mod tests;
