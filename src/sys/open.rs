//! Opening directories: a trusted root by path, then everything else beneath it by fd.
//!
//! `open_beneath` resolves with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`, so a symlink planted anywhere in the path makes it fail with `ELOOP`
//! and `..` that leaves the root with `EXDEV`; where the kernel (before 5.6) or a seccomp filter
//! refuses `openat2`, an `O_NOFOLLOW` walk one component at a time gives the same answers.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use rustix::path::Arg;

/// What a directory handle is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirAccess {
    /// `O_PATH`: enough to name it in `*at` calls and through `/proc/self/fd`.
    Path,
    /// Readable: needed for readdir, `f*xattr`, `fchmod`, `fchown`, `futimens`.
    Read,
}

impl DirAccess {
    fn flags(self) -> OFlags {
        let access = match self {
            DirAccess::Path => OFlags::PATH,
            DirAccess::Read => OFlags::RDONLY,
        };
        access | OFlags::DIRECTORY | OFlags::CLOEXEC
    }
}

/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`.
pub const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Set once the kernel says it has no `openat2`; seccomp profiles of older container runtimes
/// also refuse it.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens the directory at `path`, following symlinks: only for paths that come from the store or
/// the caller (a layer dir, a mount target, the store's `l/` short links), never from an image.
#[inline]
pub fn open_root<P: Arg>(path: P, access: DirAccess) -> rustix::io::Result<OwnedFd> {
    fs::open(path, access.flags(), Mode::empty())
}

/// Opens the directory `rel` (relative; empty means `root` itself) beneath `root`, never
/// following a symlink and never leaving `root`.
pub fn open_beneath<Fd: AsFd, P: Arg>(root: Fd, rel: P, access: DirAccess) -> io::Result<OwnedFd> {
    let root = root.as_fd();
    let rel = rel.as_cow_c_str()?;
    let rel: &[u8] = match rel.to_bytes() {
        b"" => b".",
        bytes => bytes,
    };
    let flags = access.flags() | OFlags::NOFOLLOW;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match fs::openat2(root, rel, flags, Mode::empty(), RESOLVE) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(Errno::PERM) => {}
            other => return Ok(other?),
        }
    }
    walk_dirs(root, rel, flags)
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
            Err(Errno::NOTDIR) if is_symlink_at(dir, *comp) => return Err(Errno::LOOP.into()),
            Err(e) => return Err(e.into()),
        }
    }
    cur.ok_or_else(|| Errno::NOENT.into())
}

/// Opens one child directory by name, never following it: a symlink there fails with `ELOOP`
/// (`O_DIRECTORY | O_NOFOLLOW` alone reports it as `ENOTDIR`).
pub fn open_child_dir<Fd: AsFd, P: Arg + Copy>(
    dir: Fd,
    name: P,
    access: DirAccess,
) -> rustix::io::Result<OwnedFd> {
    let dir = dir.as_fd();
    match fs::openat(dir, name, access.flags() | OFlags::NOFOLLOW, Mode::empty()) {
        Err(Errno::NOTDIR) if is_symlink_at(dir, name) => Err(Errno::LOOP),
        other => other,
    }
}

/// Whether some component of `path` beneath `root` is a symlink (to tell `ENOTDIR` from a
/// planted symlink, which `O_DIRECTORY|O_NOFOLLOW` also reports as `ENOTDIR`).
pub fn has_symlink<Fd: AsFd>(root: Fd, path: &[u8]) -> bool {
    let mut cur = match fs::openat(root, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) => return false,
    };
    for comp in path.split(|&b| b == b'/') {
        match lstat_at(&cur, comp).map(|st| file_type(&st)) {
            Ok(FileType::Symlink) => return true,
            Ok(FileType::Directory) => {}
            _ => return false,
        }
        match open_child_dir(&cur, comp, DirAccess::Path) {
            Ok(fd) => cur = fd,
            Err(_) => return false,
        }
    }
    false
}

fn is_symlink_at<P: Arg>(dir: BorrowedFd<'_>, name: P) -> bool {
    lstat_at(dir, name).is_ok_and(|st| file_type(&st) == FileType::Symlink)
}

/// `lstat` of one name in a directory.
#[inline]
pub fn lstat_at<Fd: AsFd, P: Arg>(dir: Fd, name: P) -> rustix::io::Result<Stat> {
    fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

/// The type bits of a stat.
#[inline]
pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// `/proc/self/fd/N`: the path by which the kernel reaches exactly the inode `fd` refers to
/// (short, and free of `:` and `,` whatever the real path).
pub fn proc_fd_path<Fd: AsFd>(fd: Fd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// `/proc/self/fd/N/name`: a name under an open directory, reached without resolving the
/// directory's path again. Only for `l*` calls, which do not follow the last component.
pub fn proc_fd_child<Fd: AsFd>(dir: Fd, name: &[u8]) -> std::path::PathBuf {
    let mut p = proc_fd_path(dir).into_bytes();
    p.push(b'/');
    p.extend_from_slice(name);
    Path::new(std::ffi::OsStr::from_bytes(&p)).to_path_buf()
}

/// An `O_PATH` fd of the entry `name` itself, never following it: whatever it is (a symlink, a
/// device node, a fifo), it stays that inode while /proc's magic link reaches it.
pub fn pin_nofollow<Fd: AsFd>(dir: Fd, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// chmod of a name that must not be followed (device nodes, fifos): there is no fchmod on an
/// `O_PATH` fd and no `AT_SYMLINK_NOFOLLOW` for fchmodat before fchmodat2, so go through /proc.
pub fn chmod_nofollow<Fd: AsFd>(dir: Fd, name: &[u8], mode: Mode) -> io::Result<()> {
    let dir = dir.as_fd();
    let fd = pin_nofollow(dir, name)?;
    if file_type(&fs::fstat(&fd)?) == FileType::Symlink {
        return Err(io::Error::other("refusing to chmod a symlink"));
    }
    match fs::chmodat(fs::CWD, proc_fd_path(&fd), mode, AtFlags::empty()) {
        // No /proc (a bare chroot): the name was just checked not to be a symlink, and the
        // caller's directory is its own.
        Err(Errno::NOENT) => Ok(fs::chmodat(dir, name, mode, AtFlags::empty())?),
        other => Ok(other?),
    }
}

#[cfg(test)]
#[path = "open_tests.rs"]
mod tests;
