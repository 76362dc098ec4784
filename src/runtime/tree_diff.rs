//! `lamina diff` for a copy-driver mount: the container's whole tree against the image it was copied
//! from, since a copy has no upper dir that records what changed.
//!
//! The rules are moby's for drivers without an upper dir (its `ChangesDirs`): a path only in the tree is
//! `A` (and so is everything under it), a path only in the image is `D` (its children are not listed),
//! a path in both is `C` when its type, mode, owner, device number or xattrs differ, or, for a
//! non-directory, its size or nanosecond mtime. A directory's mtime alone is no change, but a directory
//! that holds a change is listed as `C`, so every change's parent is listed, as for overlay mounts.
//!
//! The copier reproduces sizes and nanosecond mtimes, so an untouched file compares equal without
//! reading its data; a write that keeps the size and restores the mtime to the nanosecond is not seen
//! (as with moby's naive diff).
//!
//! The tree belongs to a container that may be running, so it is walked as `upper_changes` walks an
//! upper dir: one directory fd at a time, each opened beneath the tree root without following symlinks.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, FileType, Stat};

use super::diff::{container_path, diff_err, list_dir, open_beneath, open_root, visible_names};
use super::{Change, ChangeKind, RuntimeError};
use crate::layerfs::{is_overlay_xattr, LowerView, MergedDir, Shown};
use crate::sys::open::DirAccess;
use crate::sys::xattr::{list_xattrs_at, Xattr};

/// The changes of the tree at `tree` over the image whose layer dirs are `lowers` (top first), sorted
/// as [`upper_changes`](super::upper_changes) sorts them.
pub fn tree_changes(tree: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, RuntimeError> {
    let view = LowerView::open(lowers)?;
    let root = open_root(tree)?;

    let mut changes: BTreeMap<PathBuf, ChangeKind> = BTreeMap::new();
    // (dir relative to the tree root, the image's dir there, or None when the image has none)
    let mut pending: Vec<(PathBuf, Option<MergedDir>)> = vec![(PathBuf::new(), Some(view.root()))];
    while let Some((rel, below)) = pending.pop() {
        let shown = tree.join(&rel);
        let fd = open_beneath(&root, &rel).map_err(|e| diff_err(&shown, e))?;
        let names = list_dir(&fd).map_err(|e| diff_err(&shown, e))?;
        if let Some(below) = &below {
            for name in visible_names(&view, below)? {
                if !names.contains(&name) {
                    changes.insert(container_path(&rel, &name), ChangeKind::Deleted);
                }
            }
        }
        for name in &names {
            let here = shown.join(name);
            let st = rustix::fs::statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| diff_err(&here, e))?;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let lookup = match &below {
                Some(merged) => view.lookup(merged, name)?,
                None => None,
            };
            // The image's entry: its layer, its stat, and the merged dir if it is one.
            let (image, below_dir) = match lookup {
                None | Some(Shown::WhitedOut) => (None, None),
                Some(Shown::NonDir { layer, stat }) => (Some((layer, stat)), None),
                Some(Shown::Dir { dir, stat }) => (Some((dir.top(), stat)), Some(dir)),
            };
            let kind = match image {
                None => Some(ChangeKind::Added),
                Some((layer, img)) => {
                    let img_dir = view.open_dir(layer, &rel, DirAccess::Read)?;
                    let same = same_node(fd.as_fd(), &st, img_dir.as_fd(), &img, name)
                        .map_err(|e| diff_err(&here, e))?;
                    (!same).then_some(ChangeKind::Changed)
                }
            };
            if let Some(kind) = kind {
                changes.insert(container_path(&rel, name), kind);
            }
            if is_dir {
                // A directory that replaced a non-directory merges with nothing: all under it is new.
                pending.push((rel.join(name), below_dir));
            }
        }
    }
    list_parents(&mut changes);
    Ok(changes
        .into_iter()
        .map(|(path, kind)| Change { kind, path })
        .collect())
}

/// Adds every directory above a change (other than "/") as changed, unless it is listed already.
fn list_parents(changes: &mut BTreeMap<PathBuf, ChangeKind>) {
    let mut parents = Vec::new();
    for path in changes.keys() {
        let mut p = path.parent();
        while let Some(dir) = p {
            if dir == Path::new("/") || changes.contains_key(dir) {
                break;
            }
            parents.push(dir.to_path_buf());
            p = dir.parent();
        }
    }
    for dir in parents {
        changes.entry(dir).or_insert(ChangeKind::Changed);
    }
}

/// Whether the tree's entry `name` in `dir` (stat `st`) still is the image's entry of the same name
/// in `img_dir` (stat `img`).
fn same_node(
    dir: BorrowedFd<'_>,
    st: &Stat,
    img_dir: BorrowedFd<'_>,
    img: &Stat,
    name: &OsStr,
) -> rustix::io::Result<bool> {
    let ft = FileType::from_raw_mode(st.st_mode);
    if st.st_mode != img.st_mode
        || st.st_uid != img.st_uid
        || st.st_gid != img.st_gid
        || st.st_rdev != img.st_rdev
    {
        return Ok(false);
    }
    if ft != FileType::Directory
        && (st.st_size != img.st_size
            || st.st_mtime != img.st_mtime
            || st.st_mtime_nsec != img.st_mtime_nsec)
    {
        return Ok(false);
    }
    if ft == FileType::Symlink {
        let ours = rustix::fs::readlinkat(dir, name, Vec::new())?;
        let theirs = rustix::fs::readlinkat(img_dir, name, Vec::new())?;
        if ours != theirs {
            return Ok(false);
        }
    }
    Ok(visible_xattrs(dir, name)? == visible_xattrs(img_dir, name)?)
}

/// The xattrs of the entry `name` in `dir` (not followed), sorted, without overlay's private ones
/// (the layers keep opaque markers that the copy never shows) and without `security.selinux` (a
/// label the host gives, not image content).
pub(super) fn visible_xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<Vec<Xattr>> {
    let mut out: Vec<Xattr> = list_xattrs_at(dir, name.as_bytes())?
        .into_iter()
        .filter(|(x, _)| !is_overlay_xattr(x) && x.as_slice() != b"security.selinux")
        .collect();
    out.sort();
    Ok(out)
}
