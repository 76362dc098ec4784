//! A copy-driver container's changes laid out as an overlay upper dir, so that `lamina commit` writes
//! its layer tar the one way it writes an overlay mount's: `write_layer_tar(.., OverlayUpper)`.
//!
//! Nothing is copied: added and changed non-directories are hard links to the tree's own inodes (the
//! stage is made in the store's tmp dir, on the tree's filesystem), which keeps their data, metadata,
//! xattrs and hardlink groups as they are; directories are made anew with the tree's metadata (applied
//! last, deepest first, so mtimes stick); a deletion is a 0/0 character device, overlay's whiteout.
//! Overlay-private xattrs and `security.selinux` on the tree's directories are not carried over.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags};

use super::diff::{diff_err, open_beneath, open_root};
use super::tree_diff::visible_xattrs;
use super::{Change, ChangeKind, RuntimeError};
use crate::sys::open::proc_fd_child;

/// Lays out `changes` (from [`tree_changes`](super::tree_changes) over `tree`, in its order) in
/// `staged`, an existing empty directory on the same filesystem as `tree`.
pub fn stage_changes(tree: &Path, changes: &[Change], staged: &Path) -> Result<(), RuntimeError> {
    let tree_root = open_root(tree)?;
    let staged_root = open_root(staged)?;
    let mut dirs: Vec<(PathBuf, rustix::fs::Stat)> = Vec::new();
    for change in changes {
        let rel = change.path.strip_prefix("/").unwrap_or(&change.path);
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue;
        };
        let at_stage = staged.join(rel);
        let stage_dir = open_beneath(&staged_root, parent).map_err(|e| diff_err(&at_stage, e))?;
        if change.kind == ChangeKind::Deleted {
            rustix::fs::mknodat(
                &stage_dir,
                name,
                FileType::CharacterDevice,
                Mode::empty(),
                0,
            )
            .map_err(|e| diff_err(&at_stage, e))?;
            continue;
        }
        let at_tree = tree.join(rel);
        let tree_dir = open_beneath(&tree_root, parent).map_err(|e| diff_err(&at_tree, e))?;
        let st = rustix::fs::statat(&tree_dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| diff_err(&at_tree, e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            rustix::fs::mkdirat(&stage_dir, name, Mode::from_raw_mode(0o700))
                .map_err(|e| diff_err(&at_stage, e))?;
            copy_xattrs(&tree_dir, &stage_dir, name).map_err(|e| diff_err(&at_tree, e))?;
            dirs.push((rel.to_path_buf(), st));
        } else {
            rustix::fs::linkat(&tree_dir, name, &stage_dir, name, AtFlags::empty())
                .map_err(|e| diff_err(&at_tree, e))?;
        }
    }
    for (rel, st) in dirs.iter().rev() {
        let at_stage = staged.join(rel);
        let fd = open_beneath(&staged_root, rel).map_err(|e| diff_err(&at_stage, e))?;
        set_dir_metadata(&fd, st).map_err(|e| diff_err(&at_stage, e))?;
    }
    Ok(())
}

fn copy_xattrs(from: &OwnedFd, to: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    let target = proc_fd_child(to.as_fd(), name.as_bytes());
    for (key, value) in visible_xattrs(from.as_fd(), name)? {
        rustix::fs::lsetxattr(
            &target,
            OsStr::from_bytes(&key),
            &value,
            XattrFlags::empty(),
        )?;
    }
    Ok(())
}

/// Owner before mode (chown may clear setgid), times last.
fn set_dir_metadata(fd: &OwnedFd, st: &rustix::fs::Stat) -> rustix::io::Result<()> {
    use rustix::process::{Gid, Uid};
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    let time = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    rustix::fs::futimens(
        fd,
        &Timestamps {
            last_access: time(st.st_atime, st.st_atime_nsec as i64),
            last_modification: time(st.st_mtime, st.st_mtime_nsec as i64),
        },
    )
}
