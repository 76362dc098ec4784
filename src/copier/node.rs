//! Creating one entry of the merged tree in the target: the node, its data, then its metadata.
//!
//! Metadata order matters: `chown` clears setuid/setgid and `security.capability`, so the owner is
//! set first, then the mode, then xattrs, and the times last (every earlier step touches ctime only,
//! but a write would touch mtime).

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fstat, futimens, ioctl_ficlone, linkat, mkdirat, mknodat,
    openat, readlinkat, statat, symlinkat, utimensat, AtFlags, FileType, Gid, Mode, OFlags, Stat,
    Timestamps, Uid,
};
use rustix::io::Errno;

use super::merge::{Entry, Kind};
use super::xattr::{self, Handle};
use super::{CopyError, CopyReport, Tree};
use crate::sys::open::{open_beneath, proc_fd_child, DirAccess};
use crate::sys::xattr::{list_xattrs, list_xattrs_at, Xattr};

fn split(rel: &Path) -> (&Path, &OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or(OsStr::new(".")),
    )
}

fn parent_fd<Fd: AsFd>(root: Fd, rel: &Path) -> std::io::Result<OwnedFd> {
    open_beneath(root, rel.as_os_str(), DirAccess::Path)
}

/// Create the (still private, `0700`) dir; [`finish_dir`] gives it its metadata once it is filled.
pub(super) fn create_dir(tree: &Tree<'_>, entry: &Entry) -> Result<(), CopyError> {
    if entry.rel.as_os_str().is_empty() {
        return Ok(());
    }
    let (parent, name) = split(&entry.rel);
    let at = || tree.target.join(&entry.rel);
    let parent = parent_fd(tree.target_root, parent)
        .map_err(|e| CopyError::io("open target dir for", at(), e))?;
    mkdirat(&parent, name, Mode::from_raw_mode(0o700)).map_err(|e| CopyError::io("mkdir", at(), e))
}

/// Owner, mode, xattrs and times of a dir, from its topmost layer.
pub(super) fn finish_dir(tree: &Tree<'_>, entry: &Entry) -> Result<(), CopyError> {
    let src_at = || tree.view.path(entry.layer).join(&entry.rel);
    let dst_at = || tree.target.join(&entry.rel);
    let src = tree
        .view
        .open_dir(entry.layer, &entry.rel, DirAccess::Read)?;
    let dst = open_beneath(tree.target_root, entry.rel.as_os_str(), DirAccess::Read)
        .map_err(|e| CopyError::io("open target dir", dst_at(), e))?;
    let st = fstat(&src).map_err(|e| CopyError::io("stat", src_at(), e))?;
    let xattrs = list_xattrs(&src).map_err(|e| CopyError::io("read xattrs of", src_at(), e))?;
    apply_fd_metadata(tree, &dst, &st, &xattrs)
        .map_err(|e| CopyError::io("set metadata of", dst_at(), e))
}

/// Create a file, symlink or special file with its data and metadata.
pub(super) fn create_leaf(
    tree: &Tree<'_>,
    entry: &Entry,
    reflink: &AtomicBool,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let (parent, name) = split(&entry.rel);
    let src_at = || tree.view.path(entry.layer).join(&entry.rel);
    let dst_at = || tree.target.join(&entry.rel);
    let src_dir = parent_fd(tree.view.layer_root(entry.layer), parent)
        .map_err(|e| CopyError::io("open layer dir of", src_at(), e))?;
    let dst_dir = parent_fd(tree.target_root, parent)
        .map_err(|e| CopyError::io("open target dir of", dst_at(), e))?;
    if entry.kind == Kind::File {
        let src = openat(
            &src_dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| CopyError::io("open", src_at(), e))?;
        let st = fstat(&src).map_err(|e| CopyError::io("stat", src_at(), e))?;
        let create =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dst = openat(&dst_dir, name, create, Mode::from_raw_mode(0o600))
            .map_err(|e| CopyError::io("create", dst_at(), e))?;
        if st.st_size > 0 {
            let cloned = copy_data(&src, &dst, reflink)
                .map_err(|e| CopyError::io("copy data to", dst_at(), e))?;
            report.reflinked_files += u64::from(cloned);
            report.bytes += st.st_size as u64;
        }
        let xattrs = list_xattrs(&src).map_err(|e| CopyError::io("read xattrs of", src_at(), e))?;
        apply_fd_metadata(tree, &dst, &st, &xattrs)
            .map_err(|e| CopyError::io("set metadata of", dst_at(), e))?;
        report.files += 1;
        return Ok(());
    }
    let st = statat(&src_dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| CopyError::io("stat", src_at(), e))?;
    let file_type = FileType::from_raw_mode(st.st_mode as _);
    match (entry.kind, file_type) {
        (Kind::Symlink, FileType::Symlink) => {
            let target = readlinkat(&src_dir, name, Vec::new())
                .map_err(|e| CopyError::io("readlink", src_at(), e))?;
            symlinkat(target.as_c_str(), &dst_dir, name)
                .map_err(|e| CopyError::io("symlink", dst_at(), e))?;
            report.symlinks += 1;
        }
        (
            Kind::Special,
            FileType::Fifo | FileType::Socket | FileType::CharacterDevice | FileType::BlockDevice,
        ) => {
            mknodat(
                &dst_dir,
                name,
                file_type,
                Mode::from_raw_mode(0o600),
                st.st_rdev as _,
            )
            .map_err(|e| CopyError::io("mknod", dst_at(), e))?;
            report.specials += 1;
        }
        _ => {
            return Err(CopyError::io(
                "copy",
                src_at(),
                std::io::Error::other("file type changed while copying"),
            ))
        }
    }
    let dst_path = proc_fd_child(&dst_dir, name.as_bytes());
    let xattrs = list_xattrs_at(&src_dir, name.as_bytes())
        .map_err(|e| CopyError::io("read xattrs of", src_at(), e))?;
    apply_path_metadata(tree, &dst_dir, name, &dst_path, file_type, &st, &xattrs)
        .map_err(|e| CopyError::io("set metadata of", dst_at(), e))
}

/// Give `name` another name in the target, `first`, made earlier from the same source inode.
pub(super) fn link(tree: &Tree<'_>, name: &Path, first: &Path) -> Result<(), CopyError> {
    let at = || tree.target.join(name);
    let (first_parent, first_name) = split(first);
    let (parent, new_name) = split(name);
    let from = parent_fd(tree.target_root, first_parent)
        .map_err(|e| CopyError::io("open target dir of", tree.target.join(first), e))?;
    let to = parent_fd(tree.target_root, parent)
        .map_err(|e| CopyError::io("open target dir of", at(), e))?;
    linkat(&from, first_name, &to, new_name, AtFlags::empty())
        .map_err(|e| CopyError::io("hardlink", at(), e))
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn shown(tree: &Tree<'_>, xattrs: &[Xattr]) -> Vec<Xattr> {
    xattrs
        .iter()
        .filter_map(|(name, value)| Some((xattr::shown_name(name, &tree.opts)?, value.clone())))
        .collect()
}

fn apply_fd_metadata(
    tree: &Tree<'_>,
    fd: &OwnedFd,
    st: &Stat,
    xattrs: &[Xattr],
) -> rustix::io::Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(fd, Mode::from_raw_mode((st.st_mode & 0o7777) as _))?;
    xattr::write_all(Handle::Fd(fd.as_fd()), &shown(tree, xattrs))?;
    futimens(fd, &times(st))
}

fn apply_path_metadata(
    tree: &Tree<'_>,
    dir: &OwnedFd,
    name: &OsStr,
    proc: &Path,
    file_type: FileType,
    st: &Stat,
    xattrs: &[Xattr],
) -> rustix::io::Result<()> {
    chownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    // A symlink's own mode is always 0777 on Linux and cannot be changed.
    if file_type != FileType::Symlink {
        chmodat(
            dir,
            name,
            Mode::from_raw_mode((st.st_mode & 0o7777) as _),
            AtFlags::empty(),
        )?;
    }
    xattr::write_all(Handle::NoFollow(proc), &shown(tree, xattrs))?;
    utimensat(dir, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)
}

/// Share or copy the data of `src` into the empty `dst`; true if it was reflinked.
fn copy_data(src: &OwnedFd, dst: &OwnedFd, reflink: &AtomicBool) -> rustix::io::Result<bool> {
    if reflink.load(Ordering::Relaxed) {
        match ioctl_ficlone(dst, src) {
            Ok(()) => return Ok(true),
            // This filesystem (or this pair of files) cannot share extents: stop trying.
            Err(
                Errno::OPNOTSUPP
                | Errno::XDEV
                | Errno::INVAL
                | Errno::NOTTY
                | Errno::NOSYS
                | Errno::PERM,
            ) => reflink.store(false, Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    // Hole for hole: a sparse file of a terabyte must not fill the disk.
    let len = fstat(src)?.st_size as u64;
    crate::sys::sparse::copy_sparse(src, dst, len)
        .map(|()| false)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}
