//! Applying tar members to a layer directory, in archive order.
//!
//! Invariants: every name is created beneath the layer dir through a parent fd that was reached
//! with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (see `beneath`), and nothing follows a symlink;
//! names with `..` are refused, a leading `/` is dropped (as docker and containerd do). A later
//! member for a path replaces the earlier one, except directory over directory, which merges
//! metadata. Directory modes and mtimes are applied after the last member, so creating children
//! cannot disturb them and a read-only directory can still be filled.
//!
//! Whiteouts are applied as docker applies them onto one tree, which is what a merged overlay
//! must show: `.wh.NAME` deletes NAME from the lower layers and from what this layer wrote before
//! it (a char device 0/0 replaces it); a member written at NAME after its whiteout is new, and if
//! it is a directory it must not show the deleted lower one's children, so it becomes opaque.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::beneath::{self, is_dir_mode, is_overlay_xattr, join, lstat_at, split_parent};
use super::tarstream::{FrameError, Kind, Member, TarReader, Time};
use super::UnpackError;
use crate::digest::Digest;

const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// Parent directory fds kept open; tar members come grouped by directory, so a small cache hits.
const DIR_CACHE: usize = 128;

struct DirMeta {
    mode: u32,
    mtime: Time,
    atime: Option<Time>,
}

enum Room {
    /// A directory is there and the new member is a directory too: merge.
    Merge,
    /// The name is free now; `was_whiteout` if what was removed was this layer's whiteout.
    Free { was_whiteout: bool },
}

/// What one layer's members did to its directory; becomes the `LayerReport`.
pub(crate) struct Applied {
    pub entries: u64,
    pub files_size: u64,
    pub implied_dirs: Vec<PathBuf>,
    pub lower_hardlinks: Vec<(PathBuf, PathBuf)>,
}

pub(crate) struct Applier<'a> {
    root: Rc<OwnedFd>,
    dest: &'a Path,
    blob: &'a Digest,
    opaque_xattr: &'static str,
    own_ids: (u32, u32),
    cache: HashMap<Vec<u8>, Rc<OwnedFd>>,
    dir_meta: BTreeMap<Vec<u8>, DirMeta>,
    implied: BTreeSet<Vec<u8>>,
    whiteouts: BTreeSet<Vec<u8>>,
    lower_links: BTreeMap<Vec<u8>, Vec<u8>>,
    entries: u64,
    files_size: u64,
}

fn os(p: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(p))
}

pub(crate) fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

impl<'a> Applier<'a> {
    pub fn new(dest: &'a Path, blob: &'a Digest, opaque_xattr: &'static str) -> io::Result<Self> {
        let root = fs::open(
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // The layer root is 0755 unless the layer lists "./" (the staging dir may be 0700).
        fs::fchmod(&root, Mode::from_raw_mode(0o755))?;
        Ok(Applier {
            root: Rc::new(root),
            dest,
            blob,
            opaque_xattr,
            own_ids: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
            cache: HashMap::new(),
            dir_meta: BTreeMap::new(),
            implied: BTreeSet::new(),
            whiteouts: BTreeSet::new(),
            lower_links: BTreeMap::new(),
            entries: 0,
            files_size: 0,
        })
    }

    /// Applies every member up to the end-of-archive marker, then the directories' metadata.
    pub fn apply_all<R: BufRead>(mut self, tar: &mut TarReader<R>) -> Result<Applied, UnpackError> {
        while let Some(m) = tar.next_member().map_err(|e| self.frame_err(e))? {
            self.entries += 1;
            self.apply(tar, m)?;
        }
        self.finish_dirs()?;
        Ok(Applied {
            entries: self.entries,
            files_size: self.files_size,
            implied_dirs: self.implied.iter().map(|p| os(p)).collect(),
            lower_hardlinks: self
                .lower_links
                .iter()
                .map(|(l, t)| (os(l), os(t)))
                .collect(),
        })
    }

    fn apply<R: BufRead>(&mut self, tar: &mut TarReader<R>, m: Member) -> Result<(), UnpackError> {
        let kind = m
            .kind
            .ok_or_else(|| self.tar_err(&m.path, "unsupported entry type"))?;
        let path = self.normalize(&m.path)?;
        for (name, _) in &m.xattrs {
            if is_overlay_xattr(name) {
                return Err(UnpackError::OverlayXattr {
                    blob: self.blob.clone(),
                    path: lossy(&m.path),
                    name: lossy(name),
                });
            }
            if name.is_empty() || name.contains(&0) {
                return Err(self.tar_err(&m.path, "malformed xattr name"));
            }
        }
        if path.is_empty() {
            if kind != Kind::Dir {
                return Err(self.tar_err(&m.path, "the layer root must be a directory"));
            }
            let root = self.root.clone();
            return self.dir_metadata(root.as_fd(), &path, &m);
        }
        let (parent, name) = split_parent(&path);
        // aufs bookkeeping (.wh..wh.plnk and friends) is not part of the image's tree.
        if path.starts_with(AUFS_META_PREFIX) && path != OPAQUE_MARKER {
            return Ok(());
        }
        if name == OPAQUE_MARKER {
            return self.make_opaque(parent);
        }
        if name.starts_with(AUFS_META_PREFIX) {
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(parent, target, &m.path);
        }
        self.lower_links.remove(&path);
        let dir = self.parent_dir(parent)?;
        match kind {
            Kind::File => self.file(tar, &dir, name, &path, &m),
            Kind::Dir => self.directory(&dir, name, &path, &m),
            Kind::Symlink => self.symlink(&dir, name, &path, &m),
            Kind::Hardlink => self.hardlink(&dir, name, &path, &m),
            Kind::Char | Kind::Block | Kind::Fifo => self.node(&dir, name, &path, &m, kind),
        }
    }

    /// The relative path of a member: `/` and `.` components dropped, `..` refused.
    fn normalize(&self, raw: &[u8]) -> Result<Vec<u8>, UnpackError> {
        let mut out = Vec::with_capacity(raw.len());
        for comp in raw.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => return Err(self.unsafe_path(raw, "contains a '..' component")),
                c if c.contains(&0) => return Err(self.tar_err(raw, "name contains a NUL byte")),
                c => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(c);
                }
            }
        }
        Ok(out)
    }

    fn file<R: BufRead>(
        &mut self,
        tar: &mut TarReader<R>,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        m: &Member,
    ) -> Result<(), UnpackError> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let (fd, _) = self.create(dir, name, path, false, |d, n| {
            fs::openat(d, n, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
        })?;
        let Some(fd) = fd else {
            unreachable!("files never merge")
        };
        let mut file = File::from(fd);
        let written = self.write_data(tar, &mut file, path, m)?;
        self.files_size += written;
        self.chown_fd(file.as_fd(), path, m)?;
        fs::fchmod(&file, Mode::from_raw_mode(m.mode)).map_err(|e| self.io(path, e.into()))?;
        self.set_xattrs(path, m, |n, v| {
            fs::fsetxattr(&file, n, v, fs::XattrFlags::empty())
        })?;
        fs::futimens(&file, &beneath::timestamps(m.mtime, m.atime))
            .map_err(|e| self.io(path, e.into()))
    }

    /// Streams the member's data into `file` (holes stay holes for GNU sparse members).
    fn write_data<R: BufRead>(
        &self,
        tar: &mut TarReader<R>,
        file: &mut File,
        path: &[u8],
        m: &Member,
    ) -> Result<u64, UnpackError> {
        let Some((real_size, chunks)) = &m.sparse else {
            loop {
                let chunk = tar.data().map_err(|e| self.frame_err(e))?;
                if chunk.is_empty() {
                    return Ok(m.size);
                }
                let n = chunk.len();
                file.write_all(chunk).map_err(|e| self.io(path, e))?;
                tar.consume(n);
            }
        };
        for &(mut offset, len) in chunks {
            let end = offset + len;
            while offset < end {
                let chunk = tar.data().map_err(|e| self.frame_err(e))?;
                let n = chunk
                    .len()
                    .min(usize::try_from(end - offset).unwrap_or(usize::MAX));
                file.write_all_at(&chunk[..n], offset)
                    .map_err(|e| self.io(path, e))?;
                tar.consume(n);
                offset += n as u64;
            }
        }
        file.set_len(*real_size).map_err(|e| self.io(path, e))?;
        Ok(*real_size)
    }

    fn directory(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        m: &Member,
    ) -> Result<(), UnpackError> {
        let (_, was_whiteout) = self.create(dir, name, path, true, |d, n| {
            fs::mkdirat(d, n, Mode::from_raw_mode(0o700))
        })?;
        let fd = fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(path, e.into()))?;
        if was_whiteout {
            self.set_opaque(fd.as_fd(), path)?;
        }
        self.implied.remove(path);
        self.dir_metadata(fd.as_fd(), path, m)?;
        self.cache_dir(path.to_vec(), Rc::new(fd));
        Ok(())
    }

    /// Owner and xattrs now; mode and mtime after the last member (`finish_dirs`).
    fn dir_metadata(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &[u8],
        m: &Member,
    ) -> Result<(), UnpackError> {
        self.chown_fd(fd, path, m)?;
        self.set_xattrs(path, m, |n, v| {
            fs::fsetxattr(fd, n, v, fs::XattrFlags::empty())
        })?;
        self.dir_meta.insert(
            path.to_vec(),
            DirMeta {
                mode: m.mode,
                mtime: m.mtime,
                atime: m.atime,
            },
        );
        Ok(())
    }

    fn symlink(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        m: &Member,
    ) -> Result<(), UnpackError> {
        if m.link.is_empty() || m.link.contains(&0) {
            return Err(self.tar_err(&m.path, "symlink with an empty or malformed target"));
        }
        self.create(dir, name, path, false, |d, n| {
            fs::symlinkat(m.link.as_slice(), d, n)
        })?;
        self.finish_node(dir.as_fd(), name, path, m, false)
    }

    /// Owner, mode (not for symlinks), xattrs and times of a node that has no fd of its own.
    fn finish_node(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        m: &Member,
        chmod: bool,
    ) -> Result<(), UnpackError> {
        let (uid, gid) = self.ids(m)?;
        fs::chownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io(path, e.into()))?;
        if chmod {
            beneath::chmod_nofollow(dir, name, m.mode).map_err(|e| self.io(path, e))?;
        }
        self.set_xattrs(path, m, |n, v| {
            beneath::set_xattr_nofollow(dir, name, n, v)
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
        })?;
        fs::utimensat(
            dir,
            name,
            &beneath::timestamps(m.mtime, m.atime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io(path, e.into()))
    }

    fn node(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        m: &Member,
        kind: Kind,
    ) -> Result<(), UnpackError> {
        let (file_type, dev) = match kind {
            Kind::Char => (
                FileType::CharacterDevice,
                fs::makedev(m.dev_major, m.dev_minor),
            ),
            Kind::Block => (FileType::BlockDevice, fs::makedev(m.dev_major, m.dev_minor)),
            _ => (FileType::Fifo, 0),
        };
        self.create(dir, name, path, false, |d, n| {
            fs::mknodat(d, n, file_type, Mode::from_raw_mode(m.mode & 0o777), dev)
        })?;
        if kind == Kind::Char && dev == 0 {
            self.whiteouts.insert(path.to_vec());
        }
        self.finish_node(dir.as_fd(), name, path, m, true)
    }

    fn hardlink(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        m: &Member,
    ) -> Result<(), UnpackError> {
        let target = self.normalize(&m.link)?;
        if target.is_empty() {
            return Err(self.unsafe_path(&m.link, "hardlink to the layer root"));
        }
        if target == path {
            return Ok(());
        }
        if let Some(lower) = self.lower_links.get(&target).cloned() {
            return self.lower_link(dir, name, path, lower);
        }
        let (tparent, tname) = split_parent(&target);
        let Some(tdir) = self.existing_dir(tparent, &m.link)? else {
            return self.lower_link(dir, name, path, target);
        };
        match lstat_at(tdir.as_fd(), tname) {
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOENT) => {
                return self.lower_link(dir, name, path, target)
            }
            Err(e) => return Err(self.io(&target, e)),
            Ok(st) if is_dir_mode(st.st_mode) => {
                return Err(self.tar_err(&m.path, "hardlink to a directory"))
            }
            Ok(_) if self.whiteouts.contains(&target) => {
                return Err(self.tar_err(&m.path, "hardlink to a file this layer deletes"))
            }
            Ok(_) => {}
        }
        self.create(dir, name, path, false, |d, n| {
            fs::linkat(&*tdir, tname, d, n, AtFlags::empty())
        })?;
        Ok(())
    }

    /// A hardlink whose target is not in this layer: `fix_up_layer` makes it once the lower
    /// layers are known. Its name must be free (a later member for it would remove the record).
    fn lower_link(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        target: Vec<u8>,
    ) -> Result<(), UnpackError> {
        match lstat_at(dir.as_fd(), name) {
            Ok(_) => {
                self.make_room(dir.as_fd(), name, path, false)?;
            }
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOENT) => {}
            Err(e) => return Err(self.io(path, e)),
        }
        self.lower_links.insert(path.to_vec(), target);
        Ok(())
    }

    fn whiteout(&mut self, parent: &[u8], target: &[u8], raw: &[u8]) -> Result<(), UnpackError> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self.unsafe_path(raw, "whiteout names no file in its directory"));
        }
        let path = join(parent, target);
        self.lower_links.remove(&path);
        let dir = self.parent_dir(parent)?;
        self.create(&dir, target, &path, false, |d, n| {
            fs::mknodat(d, n, FileType::CharacterDevice, Mode::empty(), 0)
        })?;
        self.whiteouts.insert(path);
        Ok(())
    }

    fn make_opaque(&mut self, dir_path: &[u8]) -> Result<(), UnpackError> {
        let dir = self.parent_dir(dir_path)?;
        let fd = fs::openat(
            &*dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(dir_path, e.into()))?;
        self.set_opaque(fd.as_fd(), dir_path)
    }

    fn set_opaque(&self, fd: BorrowedFd<'_>, path: &[u8]) -> Result<(), UnpackError> {
        fs::fsetxattr(fd, self.opaque_xattr, b"y", fs::XattrFlags::empty())
            .map_err(|e| self.io(path, e.into()))
    }

    /// Runs `op` to create `name`; if the name is taken, replaces what is there (or reports a
    /// directory merge as `None`). Returns whether a whiteout of this layer was replaced.
    fn create<T>(
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

    fn make_room(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        new_is_dir: bool,
    ) -> Result<Room, UnpackError> {
        let st = lstat_at(dir, name).map_err(|e| self.io(path, e))?;
        if is_dir_mode(st.st_mode) {
            if new_is_dir {
                return Ok(Room::Merge);
            }
            self.cache.clear();
            beneath::remove_tree(self.root.as_fd(), path).map_err(|e| self.io(path, e))?;
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
    fn forget_subtree(&mut self, path: &[u8]) {
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
    fn parent_dir(&mut self, path: &[u8]) -> Result<Rc<OwnedFd>, UnpackError> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some(fd) = self.cache.get(path) {
            return Ok(fd.clone());
        }
        match beneath::open_dir(self.root.as_fd(), path, false) {
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
    fn make_parents(&mut self, path: &[u8]) -> Result<Rc<OwnedFd>, UnpackError> {
        let mut cur = self.root.clone();
        let mut prefix: Vec<u8> = Vec::with_capacity(path.len());
        for comp in path.split(|&b| b == b'/') {
            prefix = join(&prefix, comp);
            let opened = fs::openat2(
                &*cur,
                comp,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                beneath::RESOLVE,
            );
            let next = match opened {
                Ok(fd) => fd,
                Err(Errno::NOENT) => self.new_dir(cur.as_fd(), comp, &prefix, false)?,
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let st = lstat_at(cur.as_fd(), comp).map_err(|e| self.io(&prefix, e))?;
                    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
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
    fn new_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        over_whiteout: bool,
    ) -> Result<OwnedFd, UnpackError> {
        fs::mkdirat(parent, name, Mode::from_raw_mode(0o755))
            .map_err(|e| self.io(path, e.into()))?;
        let fd = fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(path, e.into()))?;
        fs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(|e| self.io(path, e.into()))?;
        if over_whiteout {
            self.set_opaque(fd.as_fd(), path)?;
        } else {
            self.implied.insert(path.to_vec());
        }
        Ok(fd)
    }

    /// The directory `path` if this layer has it (never creates); `None` if it does not exist.
    fn existing_dir(
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
        match beneath::open_dir(self.root.as_fd(), path, false) {
            Ok(fd) => Ok(Some(Rc::new(fd))),
            Err(e) => match Errno::from_io_error(&e) {
                Some(Errno::NOENT) => Ok(None),
                Some(Errno::LOOP | Errno::XDEV) => {
                    Err(self.unsafe_path(raw, "hardlink target goes through a symlink"))
                }
                Some(Errno::NOTDIR) if beneath::has_symlink(self.root.as_fd(), path) => {
                    Err(self.unsafe_path(raw, "hardlink target goes through a symlink"))
                }
                Some(Errno::NOTDIR) => {
                    Err(self.tar_err(raw, "hardlink target's parent is not a directory"))
                }
                _ => Err(self.io(path, e)),
            },
        }
    }

    fn cache_dir(&mut self, path: Vec<u8>, fd: Rc<OwnedFd>) {
        if self.cache.len() >= DIR_CACHE {
            self.cache.clear();
        }
        self.cache.insert(path, fd);
    }

    fn ids(&self, m: &Member) -> Result<(u32, u32), UnpackError> {
        let conv = |v: u64| u32::try_from(v).ok().filter(|&v| v != u32::MAX);
        match (conv(m.uid), conv(m.gid)) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => Err(self.tar_err(&m.path, format!("uid/gid {}:{} out of range", m.uid, m.gid))),
        }
    }

    fn chown_fd(&self, fd: BorrowedFd<'_>, path: &[u8], m: &Member) -> Result<(), UnpackError> {
        let ids = self.ids(m)?;
        if ids == self.own_ids {
            return Ok(()); // new inodes are ours already (no parent is setgid while we unpack)
        }
        fs::fchown(fd, Some(Uid::from_raw(ids.0)), Some(Gid::from_raw(ids.1)))
            .map_err(|e| self.io(path, e.into()))
    }

    /// Xattr policy: overlay's own were refused up front, `security.selinux` is the host's
    /// business and dropped, the rest is kept. Like docker, a filesystem that does not support an
    /// xattr (or a name the kernel refuses on this file type, e.g. `user.*` on a symlink) only
    /// costs a warning.
    fn set_xattrs(
        &self,
        path: &[u8],
        m: &Member,
        set: impl Fn(&[u8], &[u8]) -> rustix::io::Result<()>,
    ) -> Result<(), UnpackError> {
        for (name, value) in &m.xattrs {
            if name.as_slice() == b"security.selinux" {
                tracing::debug!(path = %lossy(path), "dropping security.selinux");
                continue;
            }
            match set(name, value) {
                Ok(()) => {}
                Err(e @ (Errno::OPNOTSUPP | Errno::PERM)) => tracing::warn!(
                    blob = %self.blob, path = %lossy(path), xattr = %lossy(name),
                    "xattr not set: {e}"
                ),
                Err(e) => return Err(self.io(path, e.into())),
            }
        }
        Ok(())
    }

    fn finish_dirs(&self) -> Result<(), UnpackError> {
        for (path, meta) in &self.dir_meta {
            let fd =
                beneath::open_dir(self.root.as_fd(), path, true).map_err(|e| self.io(path, e))?;
            fs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(|e| self.io(path, e.into()))?;
            fs::futimens(&fd, &beneath::timestamps(meta.mtime, meta.atime))
                .map_err(|e| self.io(path, e.into()))?;
        }
        Ok(())
    }

    fn frame_err(&self, e: FrameError) -> UnpackError {
        match e {
            FrameError::Read(source) => UnpackError::Decompress {
                blob: self.blob.clone(),
                source,
            },
            FrameError::Format { entry, reason } => self.tar_err(&entry, reason),
        }
    }

    fn tar_err(&self, entry: &[u8], reason: impl Into<String>) -> UnpackError {
        UnpackError::Tar {
            blob: self.blob.clone(),
            entry: lossy(entry),
            reason: reason.into(),
        }
    }

    fn unsafe_path(&self, path: &[u8], reason: &str) -> UnpackError {
        UnpackError::UnsafePath {
            blob: self.blob.clone(),
            path: lossy(path),
            reason: reason.into(),
        }
    }

    fn io(&self, path: &[u8], source: io::Error) -> UnpackError {
        UnpackError::Io {
            blob: Some(self.blob.clone()),
            path: self.dest.join(os(path)),
            source,
        }
    }
}
