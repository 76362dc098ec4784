//! `lamina diff`: what a writable mount changed, from its overlay upper dir, as `docker diff` lists it.
//!
//! The rules are those of moby's overlay `Changes` and containerd's overlay diff: every upper entry is a
//! change, `C` when the image (the merged lower layers) has something at that path, else `A`; a whiteout is
//! `D`; directories that only hold changes show as `C` (so every change's parent is listed). An opaque
//! upper directory hides everything the image had under it, so each image entry under it that the upper
//! does not recreate is listed as `D` (docker shows these deletions).
//!
//! The upper dir belongs to a container that may still be running, so it is walked through descriptors:
//! every directory is opened beneath the upper root with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, and
//! only one directory is open at a time, so neither a planted symlink nor a very deep tree can lead the
//! walk out of the upper dir or exhaust descriptors or stack.
//!
//! Not handled: `redirect_dir` / `metacopy` uppers (lamina mounts with both off, the kernel default here);
//! a renamed directory then shows as `A` new + `D` old, as with overlay's copy-up fallback.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Dir, FileType};

use super::RuntimeError;
use crate::layerfs::{is_opaque, is_whiteout, LowerView, MergedDir, Shown, ViewError};
use crate::sys::open::{self, DirAccess};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// docker's one-letter code.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute inside the container: "/etc/x".
    pub path: PathBuf,
}

/// One upper directory still to list.
struct Pending {
    /// Relative to the upper root ("" for the root itself); also the container path without its "/".
    rel: PathBuf,
    /// The image's directory at the same path, when it has one.
    below: Option<MergedDir>,
    /// An opaque directory at or above this one hides the image's entries here.
    hides_below: bool,
}

/// The changes recorded in `upper` over the image whose layer dirs are `lowers` (top first), sorted by
/// path component by component, which is the order of a depth-first walk: "/etc", "/etc/x", "/etc-old".
pub fn upper_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, RuntimeError> {
    let view = LowerView::open(lowers)?;
    let upper_root = open_root(upper)?;

    let mut changes: BTreeMap<PathBuf, ChangeKind> = BTreeMap::new();
    let mut pending = vec![Pending {
        rel: PathBuf::new(),
        below: Some(view.root()),
        hides_below: false,
    }];
    while let Some(dir) = pending.pop() {
        let shown = upper.join(&dir.rel);
        let fd = open_beneath(&upper_root, &dir.rel).map_err(|e| diff_err(&shown, e))?;
        // The upper root can carry no opaque marker of its own that overlayfs would honour.
        let opaque =
            !dir.rel.as_os_str().is_empty() && is_opaque(&fd).map_err(|e| diff_err(&shown, e))?;
        let hides_below = dir.hides_below || opaque;
        let names = list_dir(&fd).map_err(|e| diff_err(&shown, e))?;

        if hides_below {
            if let Some(below) = &dir.below {
                for name in visible_names(&view, below)? {
                    if !names.contains(&name) {
                        changes.insert(container_path(&dir.rel, &name), ChangeKind::Deleted);
                    }
                }
            }
        }

        for name in &names {
            let stat = rustix::fs::statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| diff_err(&shown.join(name), e))?;
            let below = match &dir.below {
                Some(merged) => view.lookup(merged, name)?,
                None => None,
            };
            let exists = matches!(below, Some(Shown::NonDir { .. } | Shown::Dir { .. }));
            let path = container_path(&dir.rel, name);
            if is_whiteout(&stat) {
                // A whiteout of something the image never had deletes nothing.
                if exists {
                    changes.insert(path, ChangeKind::Deleted);
                }
                continue;
            }
            let kind = if exists {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            };
            changes.insert(path, kind);
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                pending.push(Pending {
                    rel: dir.rel.join(name),
                    below: match below {
                        Some(Shown::Dir { dir, .. }) => Some(dir),
                        _ => None,
                    },
                    hides_below,
                });
            }
        }
    }
    Ok(changes
        .into_iter()
        .map(|(path, kind)| Change { kind, path })
        .collect())
}

/// `docker diff`'s output: one "K /path" line per change.
pub fn format_changes(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        out.push(change.kind.letter());
        out.push(' ');
        out.push_str(&change.path.to_string_lossy());
        out.push('\n');
    }
    out
}

pub(super) fn container_path(rel: &Path, name: &OsStr) -> PathBuf {
    Path::new("/").join(rel).join(name)
}

/// The root of a tree that is walked beneath it.
pub(super) fn open_root(path: &Path) -> Result<OwnedFd, RuntimeError> {
    open::open_root(path, DirAccess::Read).map_err(|e| diff_err(path, e))
}

/// A directory of a tree walked from `root`, never following a symlink or leaving the tree.
pub(super) fn open_beneath(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    open::open_beneath(root, rel.as_os_str(), DirAccess::Read)
}

/// The names in a directory, without "." and "..".
pub(super) fn list_dir(fd: &OwnedFd) -> rustix::io::Result<BTreeSet<OsString>> {
    let mut names = BTreeSet::new();
    let mut dir = Dir::read_from(fd)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.insert(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// The names a merged directory of the image shows (whiteouts left out), sorted.
pub(super) fn visible_names(
    view: &LowerView,
    dir: &MergedDir,
) -> Result<BTreeSet<OsString>, RuntimeError> {
    Ok(view
        .read_dir(dir)?
        .into_iter()
        .filter(|(_, shown)| !matches!(shown, Shown::WhitedOut))
        .map(|(name, _)| name)
        .collect())
}

pub(super) fn diff_err(path: &Path, e: impl Into<io::Error>) -> RuntimeError {
    RuntimeError::Diff {
        path: shortened(path),
        source: e.into(),
    }
}

/// A path for a message: one thousands of levels deep (a container can make it, and it then fails
/// with "File name too long") is cut to its start and its length, so the message stays one line.
fn shortened(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() <= 512 {
        return path.to_path_buf();
    }
    let start = String::from_utf8_lossy(&bytes[..200]);
    PathBuf::from(format!("{start}... ({} bytes)", bytes.len()))
}

impl From<ViewError> for RuntimeError {
    fn from(e: ViewError) -> RuntimeError {
        RuntimeError::Diff {
            path: e.path,
            source: e.source,
        }
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
