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
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};

use super::lower::{Lookup, LowerView, MergedDir};
use super::RuntimeError;

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
pub fn upper_changes(
    upper: &Path,
    lowers: &[PathBuf],
    userxattr: bool,
) -> Result<Vec<Change>, RuntimeError> {
    let view = LowerView::new(lowers, userxattr);
    let upper_root = open_root(upper)?;

    let mut changes: BTreeMap<PathBuf, ChangeKind> = BTreeMap::new();
    let mut pending = vec![Pending {
        rel: PathBuf::new(),
        below: Some(view.root()?),
        hides_below: false,
    }];
    while let Some(dir) = pending.pop() {
        let shown = upper.join(&dir.rel);
        let fd = open_beneath(&upper_root, &dir.rel).map_err(|e| diff_err(&shown, e))?;
        // The upper root can carry no opaque marker of its own that overlayfs would honour.
        let opaque = !dir.rel.as_os_str().is_empty()
            && is_opaque(&fd, view.opaque_xattr()).map_err(|e| diff_err(&shown, e))?;
        let hides_below = dir.hides_below || opaque;
        let names = list_dir(&fd).map_err(|e| diff_err(&shown, e))?;

        if hides_below {
            if let Some(below) = &dir.below {
                for name in view.children(below)? {
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
                None => Lookup::Absent,
            };
            let path = container_path(&dir.rel, name);
            let file_type = FileType::from_raw_mode(stat.st_mode);
            if file_type == FileType::CharacterDevice && stat.st_rdev == 0 {
                // A whiteout of something the image never had deletes nothing.
                if below.exists() {
                    changes.insert(path, ChangeKind::Deleted);
                }
                continue;
            }
            let kind = if below.exists() {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            };
            changes.insert(path, kind);
            if file_type == FileType::Directory {
                pending.push(Pending {
                    rel: dir.rel.join(name),
                    below: match below {
                        Lookup::Dir(merged) => Some(merged),
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
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| diff_err(path, e))
}

pub(super) fn open_beneath(root: &OwnedFd, rel: &Path) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
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

fn is_opaque(fd: &OwnedFd, xattr: &str) -> rustix::io::Result<bool> {
    let mut value = [0u8; 8];
    match rustix::fs::fgetxattr(fd, xattr, &mut value[..]) {
        Ok(len) => Ok(&value[..len] == b"y"),
        Err(
            rustix::io::Errno::NODATA | rustix::io::Errno::RANGE | rustix::io::Errno::OPNOTSUPP,
        ) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(super) fn diff_err(path: &Path, e: rustix::io::Errno) -> RuntimeError {
    RuntimeError::Diff {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
