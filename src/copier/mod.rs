//! The copy driver: materialise the tree an overlay mount of some layer dirs would show.
//!
//! Used where overlayfs is unavailable or refused, and by the store to flatten the bottom layers of
//! an image deeper than the kernel's stacking limit into one layer dir.
//!
//! Invariants:
//! - Layer dirs are only read, and only through fds: every path is opened with `openat2`
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` from the layer's root fd, so a symlink inside a layer is
//!   copied, never followed. The target is written the same way, beneath its root fd.
//! - The result equals the overlay view: dirs merge top first; a whiteout (char device 0/0) hides the
//!   name below it; an opaque dir hides the contents below it; a non-dir hides everything below under
//!   its name; the topmost dir's metadata wins. Types, modes (setuid, setgid, sticky), owners, device
//!   numbers, symlink targets, xattrs (overlay-private ones as overlay shows them), nanosecond mtimes
//!   and hardlink groups are reproduced; directory metadata is applied last, so mtimes stick.
//! - File data is reflinked (`FICLONE`) where the filesystem can, else `copy_file_range`, else copied.
//!
//! Where the copy differs from the mount on purpose: a whiteout in a dir that overlay does not merge
//! (one that only its own layer has, or an opaque one) is listed by overlay's readdir as a phantom
//! `c?????????` entry that cannot be stat'ed (seen on 6.18); the copy leaves it out. A file whose
//! other hardlink name is whited out shows `st_nlink` 2 through overlay and 1 in the copy.
//!
//! Known limit: paths are resolved from the layer roots, so trees deeper than `PATH_MAX` (4096
//! bytes of path) fail with `ENAMETOOLONG` rather than being copied partially.

mod merge;
mod node;
mod xattr;

#[cfg(test)]
mod copier_tests;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::layerfs::{LowerView, ViewError};
use crate::sys::open::{open_root, DirAccess};

/// How to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// false: materialise a rootfs, exactly what the mount shows (whiteouts and overlay-private xattrs
    /// gone, escaped `*.overlay.overlay.*` xattrs shown unescaped).
    /// true: produce a layer dir that stands for the *bottom* layers of a stack: nothing lies below it,
    /// so whiteouts (which would hide nothing, and which overlay lists as phantom entries in dirs no
    /// upper layer shares) and opaque markers are dropped, while escaped overlay xattrs stay escaped
    /// so that the mount above still shows them as before.
    pub keep_whiteouts: bool,
}

/// What [`materialize`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    /// Fifos, sockets and device nodes.
    pub specials: u64,
    /// Extra names of hardlink groups (made with `linkat`, no data copied).
    pub hardlinks: u64,
    /// Bytes of regular file data.
    pub bytes: u64,
    /// Files whose data was shared with `FICLONE` rather than copied.
    pub reflinked_files: u64,
    /// Whiteouts hiding a name (not copied).
    pub whiteouts: u64,
}

/// Why a copy failed. `path` is the full path of the entry in the layer or target being handled.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy needs at least one layer dir")]
    NoLowers,
    #[error("copy target {0:?} is not an empty directory")]
    TargetNotEmpty(PathBuf),
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The view's errors read as the copier's own did: "{op} {path}: {cause}".
impl From<ViewError> for CopyError {
    fn from(e: ViewError) -> CopyError {
        CopyError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

impl CopyError {
    fn io(op: &'static str, path: impl Into<PathBuf>, err: impl Into<io::Error>) -> CopyError {
        CopyError::Io {
            op,
            path: path.into(),
            source: err.into(),
        }
    }
}

/// Materialise the merged tree of `lowers` (top first) into `target`, an existing empty directory
/// whose own metadata is replaced by the top layer root's.
///
/// Holds one fd per layer for the whole copy (plus a few per worker). On error the target holds a
/// partial tree; the caller removes it.
pub fn materialize(
    lowers: &[PathBuf],
    target: &Path,
    opts: &CopyOptions,
) -> Result<CopyReport, CopyError> {
    if lowers.is_empty() {
        return Err(CopyError::NoLowers);
    }
    let view = LowerView::open(lowers)?;
    let target_root = open_dir(target)?;
    let mut entries = std::fs::read_dir(target).map_err(|e| CopyError::io("read", target, e))?;
    if entries.next().is_some() {
        return Err(CopyError::TargetNotEmpty(target.to_path_buf()));
    }
    let tree = Tree {
        view: &view,
        target,
        target_root: &target_root,
        opts: *opts,
    };
    let plan = merge::plan(&tree)?;
    let mut report = CopyReport {
        whiteouts: plan.whiteouts,
        ..CopyReport::default()
    };
    for dir in &plan.dirs {
        node::create_dir(&tree, dir)?;
    }
    copy_leaves_parallel(&tree, &plan.leaves, &mut report)?;
    for (name, first) in &plan.links {
        node::link(&tree, name, first)?;
        report.hardlinks += 1;
    }
    // Children before parents: a parent's mode may forbid the writes its children need.
    for dir in plan.dirs.iter().rev() {
        node::finish_dir(&tree, dir)?;
        report.dirs += 1;
    }
    Ok(report)
}

/// The layers being merged and the target, as fds; shared by all copy workers.
pub(crate) struct Tree<'a> {
    view: &'a LowerView,
    target: &'a Path,
    target_root: &'a OwnedFd,
    opts: CopyOptions,
}

fn open_dir(dir: &Path) -> Result<OwnedFd, CopyError> {
    open_root(dir, DirAccess::Read).map_err(|e| CopyError::io("open layer or target dir", dir, e))
}

/// Copy files, symlinks and special files with a few workers pulling from a shared index: the work
/// is syscall-bound (open, copy, chown, setxattr, utimens), so two cores give close to twice the speed.
fn copy_leaves_parallel(
    tree: &Tree<'_>,
    leaves: &[merge::Entry],
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let reflink = AtomicBool::new(true);
    let first_error = Mutex::new(None);
    let totals = Mutex::new(CopyReport::default());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut mine = CopyReport::default();
                while !failed.load(Ordering::Relaxed) {
                    let Some(entry) = leaves.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(err) = node::create_leaf(tree, entry, &reflink, &mut mine) {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(err);
                        break;
                    }
                }
                let mut all = totals.lock().unwrap_or_else(|p| p.into_inner());
                all.files += mine.files;
                all.symlinks += mine.symlinks;
                all.specials += mine.specials;
                all.bytes += mine.bytes;
                all.reflinked_files += mine.reflinked_files;
            });
        }
    });
    if let Some(err) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    let all = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    report.files = all.files;
    report.symlinks = all.symlinks;
    report.specials = all.specials;
    report.bytes = all.bytes;
    report.reflinked_files = all.reflinked_files;
    Ok(())
}
