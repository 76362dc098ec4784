//! Filesystem primitives that work beneath a directory fd and never follow a symlink.
//!
//! Every lookup of more than one component goes through `openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, so a symlink planted anywhere in the path (by this
//! layer or a lower one) makes the call fail with `ELOOP` instead of leading outside; where the
//! kernel or a seccomp filter refuses `openat2`, an `O_NOFOLLOW` walk does the same. Single names
//! are handled with `*at` calls that do not follow the final component (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `O_CREAT|O_EXCL`, `mknodat`, `symlinkat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`). Where the kernel offers no fd or no-follow form (chmod of a device node,
//! xattrs of a symlink), the object is opened with `O_PATH|O_NOFOLLOW` and addressed as
//! `/proc/self/fd/N`, which names exactly that inode.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{
    self, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::tar::reader::Time;

pub(crate) const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Set once the kernel says it has no `openat2` (before 5.6); seccomp profiles of older
/// container runtimes also refuse it.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens the directory at `path` (relative, no `..`; empty means `root` itself) beneath `root`.
/// `O_PATH` unless `readable`, which is needed for fchmod, fsetxattr and readdir.
pub(crate) fn open_dir(root: BorrowedFd<'_>, path: &[u8], readable: bool) -> io::Result<OwnedFd> {
    let mode = if readable {
        OFlags::RDONLY
    } else {
        OFlags::PATH
    };
    let flags = mode | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match fs::openat2(root, path, flags, Mode::empty(), RESOLVE) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(Errno::PERM) => {}
            other => return Ok(other?),
        }
    }
    walk_dirs(root, path, flags)
}

/// The `openat2` fallback: one `O_NOFOLLOW` component at a time, refusing `..`; a symlink on
/// the way fails with `ELOOP`, as `RESOLVE_NO_SYMLINKS` would.
fn walk_dirs(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.is_empty() {
        return Ok(fs::openat(root, ".", flags, Mode::empty())?);
    }
    let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur: Option<OwnedFd> = None;
    for (i, comp) in comps.iter().enumerate() {
        if *comp == b".." {
            return Err(Errno::XDEV.into());
        }
        let dir = cur.as_ref().map_or(root, |c| c.as_fd());
        let f = if i + 1 == comps.len() { flags } else { step };
        match fs::openat(dir, *comp, f, Mode::empty()) {
            Ok(fd) => cur = Some(fd),
            Err(Errno::NOTDIR) if is_symlink_at(dir, comp) => return Err(Errno::LOOP.into()),
            Err(e) => return Err(e.into()),
        }
    }
    cur.ok_or_else(|| Errno::NOENT.into())
}

fn is_symlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    lstat_at(dir, name).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Opens one child directory by name, never following it.
pub(crate) fn open_child_dir(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match fs::openat(dir, name, flags, Mode::empty()) {
        Err(Errno::NOTDIR) if is_symlink_at(dir, name) => Err(Errno::LOOP),
        other => other,
    }
}

/// Whether some component of `path` beneath `root` is a symlink (to tell `ENOTDIR` from a
/// planted symlink, which `O_DIRECTORY|O_NOFOLLOW` also reports as `ENOTDIR`).
pub(crate) fn has_symlink(root: BorrowedFd<'_>, path: &[u8]) -> bool {
    let mut cur = match fs::openat(root, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) => return false,
    };
    for comp in path.split(|&b| b == b'/') {
        match lstat_at(cur.as_fd(), comp) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => return true,
            Ok(st) if is_dir_mode(st.st_mode) => {}
            _ => return false,
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match fs::openat(&cur, comp, flags, Mode::empty()) {
            Ok(fd) => cur = fd,
            Err(_) => return false,
        }
    }
    false
}

/// `lstat` of one name in a directory.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<fs::Stat> {
    Ok(fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// The path by which the kernel reaches exactly the inode `fd` refers to.
fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// chmod of a name that must not be followed (device nodes, fifos): there is no fchmod on an
/// `O_PATH` fd and no `AT_SYMLINK_NOFOLLOW` for fchmodat before fchmodat2, so go through /proc.
pub(crate) fn chmod_nofollow(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let fd = fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if fs::fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(io::Error::other("refusing to chmod a symlink"));
    }
    let mode = Mode::from_raw_mode(mode);
    match fs::chmodat(fs::CWD, proc_path(fd.as_fd()), mode, AtFlags::empty()) {
        // No /proc (a bare chroot): the name was just checked not to be a symlink, and the
        // staging directory is ours alone.
        Err(Errno::NOENT) => Ok(fs::chmodat(dir, name, mode, AtFlags::empty())?),
        other => Ok(other?),
    }
}

/// Sets an xattr on a name without following it (symlinks, device nodes, fifos): the object is
/// pinned with `O_PATH|O_NOFOLLOW` and the /proc magic link resolves to that very inode.
pub(crate) fn set_xattr_nofollow(
    dir: BorrowedFd<'_>,
    name: &[u8],
    xname: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let fd = fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(
        fs::lsetxattr(proc_path(fd.as_fd()), xname, value, XattrFlags::empty()).or_else(|e| {
            if e == Errno::PERM || e == Errno::OPNOTSUPP {
                // lsetxattr may refuse the magic link itself; setxattr resolves it to the inode.
                fs::setxattr(proc_path(fd.as_fd()), xname, value, XattrFlags::empty())
            } else {
                Err(e)
            }
        })?,
    )
}

/// All xattrs of an open file (names and values).
pub(crate) fn list_xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match fs::flistxattr(fd, &mut names[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let want = fs::flistxattr_query(fd)?;
                names.resize(want.max(names.len() * 2), 0);
            }
            Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 256];
        let n = loop {
            match fs::fgetxattr(fd, name, &mut value[..]) {
                Ok(n) => break n,
                Err(Errno::RANGE) => {
                    let want = fs::fgetxattr_query(fd, name)?;
                    value.resize(want.max(value.len() * 2), 0);
                }
                Err(Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(e.into()),
            }
        };
        if n != usize::MAX {
            value.truncate(n);
            out.push((name.to_vec(), value));
        }
    }
    Ok(out)
}

/// Whether the directory fd carries the overlay opaque marker `xname` = "y".
pub(crate) fn is_opaque(fd: BorrowedFd<'_>, xname: &str) -> io::Result<bool> {
    let mut v = [0u8; 4];
    match fs::fgetxattr(fd, xname, &mut v[..]) {
        Ok(n) => Ok(&v[..n] == b"y"),
        Err(Errno::NODATA | Errno::RANGE | Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn timestamps(mtime: Time, atime: Option<Time>) -> Timestamps {
    let ts = |t: Time| Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos.into(),
    };
    Timestamps {
        last_access: ts(atime.unwrap_or(mtime)),
        last_modification: ts(mtime),
    }
}

/// Removes the directory `path` (non-empty, relative to `root`) and everything in it. Holds at
/// most one directory fd at a time, so nesting depth cannot exhaust file descriptors.
pub(crate) fn remove_tree(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<()> {
    let subdirs = {
        let dir = open_dir(root, path, true)?;
        let mut subdirs = Vec::new();
        let mut files = Vec::new();
        for entry in fs::Dir::read_from(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => {
                    FileType::from_raw_mode(lstat_at(dir.as_fd(), name)?.st_mode)
                        == FileType::Directory
                }
                _ => false,
            };
            if is_dir {
                subdirs.push(name.to_vec());
            } else {
                files.push(name.to_vec());
            }
        }
        for f in files {
            fs::unlinkat(&dir, f.as_slice(), AtFlags::empty())?;
        }
        subdirs
    };
    for sub in subdirs {
        remove_tree(root, &join(path, &sub))?;
    }
    let (parent, name) = split_parent(path);
    let parent = open_dir(root, parent, false)?;
    Ok(fs::unlinkat(&parent, name, AtFlags::REMOVEDIR)?)
}

/// `a/b` from `a` and `b` (`b` alone when `a` is empty).
pub(crate) fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut v = Vec::with_capacity(a.len() + 1 + b.len());
    v.extend_from_slice(a);
    v.push(b'/');
    v.extend_from_slice(b);
    v
}

/// Splits `a/b/c` into (`a/b`, `c`).
pub(crate) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Whether an xattr belongs to overlayfs itself (its whiteout, opaque, redirect and metacopy
/// markers): a layer must never carry one, or it could change what the mount shows.
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

pub(crate) fn is_dir_mode(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

/// A whiteout in overlay format: a character device 0/0.
pub(crate) fn is_whiteout(st: &fs::Stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `openat2` fallback refuses what `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` refuses.
    #[test]
    fn fallback_walk_never_follows() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/", t.path().join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", t.path().join("a/rel")).unwrap();
        let root = fs::open(t.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        let errno = |p: &[u8]| {
            walk_dirs(root.as_fd(), p, flags)
                .map(|_| ())
                .map_err(|e| Errno::from_io_error(&e))
        };
        assert_eq!(errno(b"a/b"), Ok(()));
        assert_eq!(errno(b"."), Ok(()));
        assert_eq!(errno(b"a/up/etc"), Err(Some(Errno::LOOP)));
        assert_eq!(errno(b"a/rel"), Err(Some(Errno::LOOP)));
        assert_eq!(errno(b"a/../a"), Err(Some(Errno::XDEV)));
        assert_eq!(errno(b"a/missing"), Err(Some(Errno::NOENT)));
        let child = |n: &[u8]| open_child_dir(root.as_fd(), n).map(|_| ());
        assert_eq!(child(b"a"), Ok(()));
        let a = open_dir(root.as_fd(), b"a", false).unwrap();
        assert_eq!(
            open_child_dir(a.as_fd(), b"up").map(|_| ()),
            Err(Errno::LOOP)
        );
    }
}
