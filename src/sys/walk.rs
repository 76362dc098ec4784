//! Walking and removing directory trees whose depth someone else decides (an image, a container),
//! with a fixed number of descriptors and no recursion.
//!
//! A tree a few thousand levels deep is cheap to make (a layer of 2000 one-letter dirs is under
//! `PATH_MAX`; a container can `mkdir`+`chdir` forever). Recursing over it overflows a thread's
//! stack, holding one fd per level runs out of descriptors (`EMFILE`), and resolving each dir by
//! its path from the root fails past `PATH_MAX`. So the walk keeps only the current directory
//! open, descends with `openat(O_NOFOLLOW)`, and climbs back with `openat(cur, "..")`, checking
//! that the dir it reaches has the device and inode number recorded on the way down: a dir
//! renamed away meanwhile makes the walk fail instead of wandering elsewhere. The explicit stack
//! holds, per level, the names still to visit there (memory grows with the tree, never fds or
//! stack).
//!
//! Nothing here follows a symlink: names are `lstat`ed and dirs opened `O_NOFOLLOW`.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::open::{file_type, lstat_at, open_child_dir, open_root, DirAccess};

/// One name met by [`walk`].
pub struct Entry<'a> {
    /// The directory holding it (readable).
    pub dir: BorrowedFd<'a>,
    pub name: &'a [u8],
    /// Relative to the walk's root, `/`-separated, without a leading `/`.
    pub path: &'a [u8],
    /// `lstat` of the name (never followed).
    pub stat: &'a Stat,
}

/// What a walk does at each name. Names of one directory come in byte order, each directory's
/// entries before the next sibling's (depth first, pre-order).
pub trait Visitor {
    type Error;

    /// Called for every name. For a directory, `Ok(true)` walks into it.
    fn entry(&mut self, e: &Entry<'_>) -> Result<bool, Self::Error>;

    /// Called with a directory, opened, before its entries.
    fn enter(&mut self, _dir: BorrowedFd<'_>, _path: &[u8], _st: &Stat) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Called with a directory after its entries (not for the root), with its parent and its
    /// name there.
    fn leave(
        &mut self,
        _dir: BorrowedFd<'_>,
        _parent: BorrowedFd<'_>,
        _name: &[u8],
        _path: &[u8],
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The walk's own failure at `path` (listing, opening, climbing back), as the visitor's error.
    fn io_error(&self, path: &[u8], e: io::Error) -> Self::Error;
}

/// A directory's identity, to check the climb back up.
type DirId = (u64, u64);

/// One directory on the way down.
struct Level {
    id: DirId,
    /// Names still to visit, last first.
    names: Vec<Vec<u8>>,
    /// Length of the walk's path buffer at this dir.
    path_len: usize,
}

/// Walks everything beneath `root` (the root itself is not visited). Holds at most three
/// descriptors besides `root`, whatever the depth.
pub fn walk<V: Visitor>(root: BorrowedFd<'_>, v: &mut V) -> Result<(), V::Error> {
    let st = fs::fstat(root).map_err(|e| v.io_error(b"", e.into()))?;
    let mut levels = vec![Level {
        id: dir_id(&st),
        names: list(root).map_err(|e| v.io_error(b"", e))?,
        path_len: 0,
    }];
    // The current dir when below the root (the root itself is borrowed).
    let mut cur: Option<OwnedFd> = None;
    let mut path: Vec<u8> = Vec::new();
    while let Some(level) = levels.last_mut() {
        let dir = cur.as_ref().map_or(root, |fd| fd.as_fd());
        let Some(name) = level.names.pop() else {
            // Done with this dir: climb to its parent, then leave it.
            path.truncate(level.path_len);
            levels.pop();
            let Some(parent) = levels.last() else { break };
            let up = match levels.len() {
                1 => None,
                _ => Some(climb(dir, parent.id).map_err(|e| v.io_error(&path, e))?),
            };
            let parent_fd = up.as_ref().map_or(root, |fd| fd.as_fd());
            let name = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
            v.leave(dir, parent_fd, name, &path)?;
            cur = up;
            continue;
        };
        path.truncate(level.path_len);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let st = match lstat_at(dir, name.as_slice()) {
            Ok(st) => st,
            // Gone since the listing (a running container): nothing to visit.
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(v.io_error(&path, e.into())),
        };
        let e = Entry {
            dir,
            name: &name,
            path: &path,
            stat: &st,
        };
        if !v.entry(&e)? || file_type(&st) != FileType::Directory {
            continue;
        }
        let child = open_child_dir(dir, name.as_slice(), DirAccess::Read)
            .map_err(|e| v.io_error(&path, e.into()))?;
        let child_st = fs::fstat(&child).map_err(|e| v.io_error(&path, e.into()))?;
        if dir_id(&child_st) != dir_id(&st) {
            let e = io::Error::other("directory replaced while being walked");
            return Err(v.io_error(&path, e));
        }
        v.enter(child.as_fd(), &path, &child_st)?;
        let names = list(child.as_fd()).map_err(|e| v.io_error(&path, e))?;
        levels.push(Level {
            id: dir_id(&child_st),
            names,
            path_len: path.len(),
        });
        cur = Some(child);
    }
    Ok(())
}

/// The parent of `dir` by `..`, refused unless it is the dir recorded on the way down.
fn climb(dir: BorrowedFd<'_>, expect: DirId) -> io::Result<OwnedFd> {
    let up = fs::openat(
        dir,
        "..",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if dir_id(&fs::fstat(&up)?) != expect {
        return Err(io::Error::other(
            "directory moved while being walked (its parent is not the one it was entered from)",
        ));
    }
    Ok(up)
}

/// The names in a directory (without `.` and `..`), sorted, last first.
fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

// `Stat` field widths differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn dir_id(st: &Stat) -> DirId {
    (st.st_dev as u64, st.st_ino as u64)
}

/// Removes `name` in `parent`: a whole directory tree, or a single non-directory. A missing name
/// is no error. Bounded in descriptors and stack as [`walk`] is; read-only dirs (layers have
/// 0555 ones) are made writable by their owner first, so this works without `CAP_DAC_OVERRIDE`.
pub fn remove_tree_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let st = match lstat_at(parent, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if file_type(&st) != FileType::Directory {
        return unlink(parent, name, AtFlags::empty());
    }
    let top = open_child_dir(parent, name, DirAccess::Read)?;
    let mut remover = Remover;
    writable(top.as_fd())?;
    walk(top.as_fd(), &mut remover)?;
    drop(top);
    unlink(parent, name, AtFlags::REMOVEDIR)
}

/// Removes the tree at `path`, a store path (its parent dirs are resolved as given; the last
/// component is never followed). A missing path is no error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            },
            n,
        ),
        _ => {
            return Err(io::Error::other(format!(
                "cannot remove {}",
                path.display()
            )))
        }
    };
    let parent = match open_root(parent, DirAccess::Path) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    remove_tree_at(parent.as_fd(), name.as_bytes())
}

/// Unlinks each name as it is met and each directory once it is empty.
struct Remover;

impl Visitor for Remover {
    type Error = io::Error;

    fn entry(&mut self, e: &Entry<'_>) -> io::Result<bool> {
        if file_type(e.stat) == FileType::Directory {
            return Ok(true);
        }
        unlink(e.dir, e.name, AtFlags::empty())?;
        Ok(false)
    }

    fn enter(&mut self, dir: BorrowedFd<'_>, _path: &[u8], _st: &Stat) -> io::Result<()> {
        writable(dir)
    }

    fn leave(
        &mut self,
        _dir: BorrowedFd<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        _path: &[u8],
    ) -> io::Result<()> {
        unlink(parent, name, AtFlags::REMOVEDIR)
    }

    fn io_error(&self, path: &[u8], e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", String::from_utf8_lossy(path)))
    }
}

/// Gives the owner write and search permission on a dir that lacks it, so its entries can be
/// removed without privileges (root needs none of this, but costs one fstat).
fn writable(dir: BorrowedFd<'_>) -> io::Result<()> {
    let st = fs::fstat(dir)?;
    if st.st_mode & 0o300 != 0o300 {
        match fs::fchmod(dir, Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700)) {
            Ok(()) | Err(Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn unlink(dir: BorrowedFd<'_>, name: &[u8], flags: AtFlags) -> io::Result<()> {
    match fs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
