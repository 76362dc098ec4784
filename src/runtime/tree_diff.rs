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
use rustix::fs::{AtFlags, FileType};

use super::diff::{container_path, diff_err, list_dir, open_beneath, open_root};
use super::lower::{Lookup, LowerView, MergedDir};
use super::{Change, ChangeKind, RuntimeError};

pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The changes of the tree at `tree` over the image whose layer dirs are `lowers` (top first), sorted
/// as [`upper_changes`](super::upper_changes) sorts them.
pub fn tree_changes(tree: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, RuntimeError> {
    let view = LowerView::new(lowers, false);
    let root = open_root(tree)?;

    let mut changes: BTreeMap<PathBuf, ChangeKind> = BTreeMap::new();
    // (dir relative to the tree root, the image's dir there, or None when the image has none)
    let mut pending: Vec<(PathBuf, Option<MergedDir>)> = vec![(PathBuf::new(), Some(view.root()?))];
    while let Some((rel, below)) = pending.pop() {
        let shown = tree.join(&rel);
        let fd = open_beneath(&root, &rel).map_err(|e| diff_err(&shown, e))?;
        let names = list_dir(&fd).map_err(|e| diff_err(&shown, e))?;
        if let Some(below) = &below {
            for name in view.children(below)? {
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
                None => Lookup::Absent,
            };
            let (kind, below_dir) = match lookup {
                Lookup::Absent => (Some(ChangeKind::Added), None),
                Lookup::NonDir(image_path) => {
                    let same = same_node(fd.as_fd(), name, &st, &image_path)
                        .map_err(|e| diff_err(&here, e))?;
                    (
                        if same {
                            None
                        } else {
                            Some(ChangeKind::Changed)
                        },
                        None,
                    )
                }
                Lookup::Dir(merged) => {
                    let same = same_node(fd.as_fd(), name, &st, &view.top_path(&merged))
                        .map_err(|e| diff_err(&here, e))?;
                    (
                        if same {
                            None
                        } else {
                            Some(ChangeKind::Changed)
                        },
                        Some(merged),
                    )
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

/// Whether the tree's entry `name` in `dir` (stat `st`) still is the image's entry at `image_path`.
fn same_node(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &rustix::fs::Stat,
    image_path: &Path,
) -> rustix::io::Result<bool> {
    let img = rustix::fs::lstat(image_path)?;
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
        let theirs = rustix::fs::readlink(image_path, Vec::new())?;
        if ours != theirs {
            return Ok(false);
        }
    }
    Ok(visible_xattrs(&node_path(dir, name))? == visible_xattrs(image_path.as_os_str())?)
}

/// A name under an open directory as a path that reaches it without resolving the directory's path
/// again: the fd's magic link. The last component is never followed (`l*xattr` calls).
pub(super) fn node_path(dir: BorrowedFd<'_>, name: &OsStr) -> std::ffi::OsString {
    use std::os::fd::AsRawFd;
    let mut p = std::ffi::OsString::from(format!("/proc/self/fd/{}/", dir.as_raw_fd()));
    p.push(name);
    p
}

/// A node's xattrs, sorted, without overlay's private ones (the layers keep opaque markers that the
/// copy never shows) and without `security.selinux` (a label the host gives, not image content).
pub(super) fn visible_xattrs(path: &OsStr) -> rustix::io::Result<Xattrs> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    let mut out = Vec::new();
    for x in names[..n].split(|&b| b == 0).filter(|x| !x.is_empty()) {
        if x.starts_with(b"trusted.overlay.")
            || x.starts_with(b"user.overlay.")
            || x == b"security.selinux"
        {
            continue;
        }
        let mut value = vec![0u8; 65536];
        match rustix::fs::lgetxattr(path, OsStr::from_bytes(x), &mut value[..]) {
            Ok(len) => {
                value.truncate(len);
                out.push((x.to_vec(), value));
            }
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}
