//! The state of one layer directory while its members are applied: the root fd, a cache of
//! open parent directories, and what the layer has done so far (implied directories, whiteouts,
//! pending lower hardlinks, directory metadata to apply last).
//!
//! Invariants: every directory fd here was reached from the root with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`, or created by us under such an fd; the cache is dropped whenever a
//! directory is removed, so no fd can point into a detached tree. Missing parents are created as
//! implied directories (0755, ours) and recorded so `fix_up_layer` can give them the lower
//! layers' metadata; a parent that is this layer's whiteout becomes a fresh opaque directory.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode};
use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::beneath::{self, join};
use super::UnpackError;
use crate::digest::Digest;
use crate::layerfs::set_opaque;
use crate::sys::open::{
    file_type, has_symlink, lstat_at, open_beneath, open_child_dir, open_root, DirAccess,
};
use crate::tar::reader::{FrameError, Time};

/// Parent directory fds kept open; tar members come grouped by directory, so a small cache hits.
const DIR_CACHE: usize = 128;

pub(crate) struct DirMeta {
    pub mode: u32,
    pub mtime: Time,
    pub atime: Option<Time>,
}

pub(crate) enum Room {
    /// A directory is there and the new member is a directory too: merge.
    Merge,
    /// The name is free now; `was_whiteout` if what was removed was this layer's whiteout.
    Free { was_whiteout: bool },
}

pub(crate) struct LayerDir<'a> {
    pub root: Rc<OwnedFd>,
    pub blob: &'a Digest,
    dest: &'a Path,
    cache: HashMap<Vec<u8>, Rc<OwnedFd>>,
    /// Mode and times of the directories the layer listed, applied after the last member.
    pub dir_meta: BTreeMap<Vec<u8>, DirMeta>,
    pub implied: BTreeSet<Vec<u8>>,
    pub whiteouts: BTreeSet<Vec<u8>>,
    /// Hardlinks whose target is not in this layer: link name -> target.
    pub lower_links: BTreeMap<Vec<u8>, Vec<u8>>,
}

pub(crate) fn os(p: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(p))
}

pub(crate) fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

impl<'a> LayerDir<'a> {
    pub fn new(dest: &'a Path, blob: &'a Digest) -> io::Result<Self> {
        let root = open_root(dest, DirAccess::Read)?;
        // The layer root is 0755 unless the layer lists "./" (the staging dir may be 0700).
        fs::fchmod(&root, Mode::from_raw_mode(0o755))?;
        Ok(LayerDir {
            root: Rc::new(root),
            blob,
            dest,
            cache: HashMap::new(),
            dir_meta: BTreeMap::new(),
            implied: BTreeSet::new(),
            whiteouts: BTreeSet::new(),
            lower_links: BTreeMap::new(),
        })
    }

    pub fn make_opaque(&mut self, dir_path: &[u8]) -> Result<(), UnpackError> {
        let dir = self.parent_dir(dir_path)?;
        let fd = open_beneath(&*dir, "", DirAccess::Read).map_err(|e| self.io(dir_path, e))?;
        self.set_opaque(fd.as_fd(), dir_path)
    }

    pub fn set_opaque(&self, fd: BorrowedFd<'_>, path: &[u8]) -> Result<(), UnpackError> {
        set_opaque(fd).map_err(|e| self.io(path, e.into()))
    }

    /// Runs `op` to create `name`; if the name is taken, replaces what is there (or reports a
    /// directory merge as `None`). Returns whether a whiteout of this layer was replaced.
    pub fn create<T>(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        is_dir: bool,
        op: impl Fn(BorrowedFd<'_>, &[u8]) -> rustix::io::Result<T>,
    ) -> Result<(Option<T>, bool), UnpackError> {
        match op(dir.as_fd(), name) {
            Ok(t) => Ok((Some(t), false)),
            Err(Errno::EXIST) => match self.make_room(dir.as_fd(), name, path, is_dir)? {
                Room::Merge => Ok((None, false)),
                Room::Free { was_whiteout } => op(dir.as_fd(), name)
                    .map(|t| (Some(t), was_whiteout))
                    .map_err(|e| self.io(path, e.into())),
            },
            Err(e) => Err(self.io(path, e.into())),
        }
    }

    pub fn make_room(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        new_is_dir: bool,
    ) -> Result<Room, UnpackError> {
        let st = lstat_at(dir, name).map_err(|e| self.io(path, e.into()))?;
        if file_type(&st) == FileType::Directory {
            if new_is_dir {
                return Ok(Room::Merge);
            }
            self.cache.clear();
            crate::sys::walk::remove_tree_at(dir, name).map_err(|e| self.io(path, e))?;
            self.forget_subtree(path);
            return Ok(Room::Free {
                was_whiteout: false,
            });
        }
        fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| self.io(path, e.into()))?;
        Ok(Room::Free {
            was_whiteout: self.whiteouts.remove(path),
        })
    }

    /// Drops what we remembered about `path` and everything below it.
    pub fn forget_subtree(&mut self, path: &[u8]) {
        // Keys below `path` sort between "path/" and "path0" ('0' follows '/').
        let lo = join(path, b"");
        let mut hi = path.to_vec();
        hi.push(b'/' + 1);
        fn drop_range<V>(map: &mut BTreeMap<Vec<u8>, V>, lo: &[u8], hi: &[u8], path: &[u8]) {
            let keys: Vec<Vec<u8>> = map
                .range(lo.to_vec()..hi.to_vec())
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                map.remove(&k);
            }
            map.remove(path);
        }
        fn drop_set(set: &mut BTreeSet<Vec<u8>>, lo: &[u8], hi: &[u8], path: &[u8]) {
            let keys: Vec<Vec<u8>> = set.range(lo.to_vec()..hi.to_vec()).cloned().collect();
            for k in keys {
                set.remove(&k);
            }
            set.remove(path);
        }
        drop_range(&mut self.dir_meta, &lo, &hi, path);
        drop_range(&mut self.lower_links, &lo, &hi, path);
        drop_set(&mut self.implied, &lo, &hi, path);
        drop_set(&mut self.whiteouts, &lo, &hi, path);
    }

    /// The directory `path` (relative; empty for the root), creating missing ones as implied
    /// directories (0755, owned by us) and recording them.
    pub fn parent_dir(&mut self, path: &[u8]) -> Result<Rc<OwnedFd>, UnpackError> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some(fd) = self.cache.get(path) {
            return Ok(fd.clone());
        }
        match open_beneath(&*self.root, path, DirAccess::Path) {
            Ok(fd) => {
                let fd = Rc::new(fd);
                self.cache_dir(path.to_vec(), fd.clone());
                Ok(fd)
            }
            Err(e) => match Errno::from_io_error(&e) {
                Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => self.make_parents(path),
                Some(Errno::XDEV) => Err(self.unsafe_path(path, "leaves the layer directory")),
                Some(Errno::NAMETOOLONG) => Err(self.tar_err(path, "path too long")),
                _ => Err(self.io(path, e)),
            },
        }
    }

    /// Walks `path` one component at a time, creating what is missing.
    pub fn make_parents(&mut self, path: &[u8]) -> Result<Rc<OwnedFd>, UnpackError> {
        let mut cur = self.root.clone();
        let mut prefix: Vec<u8> = Vec::with_capacity(path.len());
        for comp in path.split(|&b| b == b'/') {
            prefix = join(&prefix, comp);
            let next = match open_child_dir(&*cur, comp, DirAccess::Path) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => self.new_dir(cur.as_fd(), comp, &prefix, false)?,
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let st = lstat_at(&*cur, comp).map_err(|e| self.io(&prefix, e.into()))?;
                    if file_type(&st) == FileType::Symlink {
                        return Err(self
                            .unsafe_path(&prefix, "is a symlink; nothing is created through it"));
                    }
                    if !self.whiteouts.remove(&prefix) {
                        return Err(self.tar_err(&prefix, "a parent is not a directory"));
                    }
                    fs::unlinkat(&*cur, comp, AtFlags::empty())
                        .map_err(|e| self.io(&prefix, e.into()))?;
                    self.new_dir(cur.as_fd(), comp, &prefix, true)?
                }
                Err(e) => return Err(self.io(&prefix, e.into())),
            };
            let next = Rc::new(next);
            self.cache_dir(prefix.clone(), next.clone());
            cur = next;
        }
        Ok(cur)
    }

    /// A directory the layer did not list. Over a whiteout of this layer it is a fresh, opaque
    /// directory (the lower one was deleted); otherwise it is implied and `fix_up_layer` gives
    /// it the lower layers' metadata.
    pub fn new_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        over_whiteout: bool,
    ) -> Result<OwnedFd, UnpackError> {
        fs::mkdirat(parent, name, Mode::from_raw_mode(0o755))
            .map_err(|e| self.io(path, e.into()))?;
        let fd =
            open_child_dir(parent, name, DirAccess::Read).map_err(|e| self.io(path, e.into()))?;
        fs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(|e| self.io(path, e.into()))?;
        if over_whiteout {
            self.set_opaque(fd.as_fd(), path)?;
        } else {
            self.implied.insert(path.to_vec());
        }
        Ok(fd)
    }

    /// The directory `path` if this layer has it (never creates); `None` if it does not exist.
    pub fn existing_dir(
        &mut self,
        path: &[u8],
        raw: &[u8],
    ) -> Result<Option<Rc<OwnedFd>>, UnpackError> {
        if path.is_empty() {
            return Ok(Some(self.root.clone()));
        }
        if let Some(fd) = self.cache.get(path) {
            return Ok(Some(fd.clone()));
        }
        match open_beneath(&*self.root, path, DirAccess::Path) {
            Ok(fd) => Ok(Some(Rc::new(fd))),
            Err(e) => match Errno::from_io_error(&e) {
                Some(Errno::NOENT) => Ok(None),
                Some(Errno::LOOP | Errno::XDEV) => {
                    Err(self.unsafe_path(raw, "hardlink target goes through a symlink"))
                }
                Some(Errno::NOTDIR) if has_symlink(&*self.root, path) => {
                    Err(self.unsafe_path(raw, "hardlink target goes through a symlink"))
                }
                Some(Errno::NOTDIR) => {
                    Err(self.tar_err(raw, "hardlink target's parent is not a directory"))
                }
                _ => Err(self.io(path, e)),
            },
        }
    }

    pub fn cache_dir(&mut self, path: Vec<u8>, fd: Rc<OwnedFd>) {
        if self.cache.len() >= DIR_CACHE {
            self.cache.clear();
        }
        self.cache.insert(path, fd);
    }

    pub fn finish_dirs(&self) -> Result<(), UnpackError> {
        for (path, meta) in &self.dir_meta {
            let fd =
                open_beneath(&*self.root, path, DirAccess::Read).map_err(|e| self.io(path, e))?;
            fs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(|e| self.io(path, e.into()))?;
            fs::futimens(&fd, &beneath::timestamps(meta.mtime, meta.atime))
                .map_err(|e| self.io(path, e.into()))?;
        }
        Ok(())
    }

    pub fn frame_err(&self, e: FrameError) -> UnpackError {
        match e {
            FrameError::Read(source) => UnpackError::Decompress {
                blob: self.blob.clone(),
                source,
            },
            FrameError::Format { entry, reason } => self.tar_err(&entry, reason),
        }
    }

    pub fn tar_err(&self, entry: &[u8], reason: impl Into<String>) -> UnpackError {
        UnpackError::Tar {
            blob: self.blob.clone(),
            entry: lossy(entry),
            reason: reason.into(),
        }
    }

    pub fn unsafe_path(&self, path: &[u8], reason: &str) -> UnpackError {
        UnpackError::UnsafePath {
            blob: self.blob.clone(),
            path: lossy(path),
            reason: reason.into(),
        }
    }

    pub fn io(&self, path: &[u8], source: io::Error) -> UnpackError {
        UnpackError::io_of(Some(self.blob.clone()), self.dest.join(os(path)), source)
    }
}
