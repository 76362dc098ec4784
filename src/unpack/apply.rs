//! Applying tar members to a layer directory, in archive order.
//!
//! Invariants: every name is created beneath the layer dir through a parent fd that was reached
//! with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (see `beneath`), and nothing follows a symlink;
//! names with `..` and absolute names are refused (docker and containerd drop a leading `/`; the
//! design refuses it, as a layer that names one was not made by an ordinary tool). A later
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
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::beneath::{self, join, split_parent};
use super::layerdir::{lossy, os, DirMeta, LayerDir};
use super::UnpackError;
use crate::digest::Digest;
use crate::layerfs::{is_overlay_xattr, AUFS_META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::sys::open::{chmod_nofollow, file_type, lstat_at, open_child_dir, DirAccess};
use crate::sys::writeback::start_writeback;
use crate::sys::xattr::set_xattr_nofollow;
use crate::tar::reader::{Kind, Member, TarReader};
/// What one layer's members did to its directory; becomes the `LayerReport`.
pub(crate) struct Applied {
    pub entries: u64,
    pub files_size: u64,
    pub implied_dirs: Vec<PathBuf>,
    pub lower_hardlinks: Vec<(PathBuf, PathBuf)>,
}

pub(crate) struct Applier<'a> {
    layer: LayerDir<'a>,
    own_ids: (u32, u32),
    entries: u64,
    files_size: u64,
    /// Apparent bytes of the regular files so far (sparse members at their full size).
    claimed: u64,
    /// (most bytes the files may claim, the blob's size)
    claim_limit: Option<(u64, u64)>,
}

impl<'a> Applier<'a> {
    pub fn new(dest: &'a Path, blob: &'a Digest) -> io::Result<Self> {
        Ok(Applier {
            layer: LayerDir::new(dest, blob)?,
            own_ids: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
            entries: 0,
            files_size: 0,
            claimed: 0,
            claim_limit: None,
        })
    }

    /// Refuse the layer once its files claim more than `limit` (see `UnpackOptions`).
    pub fn with_claim_limit(mut self, limit: Option<(u64, u64)>) -> Self {
        self.claim_limit = limit;
        self
    }

    /// Counts a regular file's apparent size against the cap, before any of it is written: a
    /// sparse member claiming a terabyte is refused without writing or summing its holes.
    fn claim(&mut self, path: &[u8], m: &Member) -> Result<(), UnpackError> {
        let apparent = m.sparse.as_ref().map_or(m.size, |(real, _)| *real);
        self.claimed = self.claimed.saturating_add(apparent);
        match self.claim_limit {
            Some((limit, blob_size)) if self.claimed > limit => Err(UnpackError::TooLarge {
                blob: self.layer.blob.clone(),
                path: String::from_utf8_lossy(path).into_owned(),
                claimed: self.claimed,
                limit,
                blob_size,
            }),
            _ => Ok(()),
        }
    }

    /// Applies every member up to the end-of-archive marker, then the directories' metadata.
    pub fn apply_all<R: BufRead>(mut self, tar: &mut TarReader<R>) -> Result<Applied, UnpackError> {
        while let Some(m) = tar.next_member().map_err(|e| self.layer.frame_err(e))? {
            self.entries += 1;
            self.apply(tar, m)?;
        }
        self.layer.finish_dirs()?;
        Ok(Applied {
            entries: self.entries,
            files_size: self.files_size,
            implied_dirs: self.layer.implied.iter().map(|p| os(p)).collect(),
            lower_hardlinks: self
                .layer
                .lower_links
                .iter()
                .map(|(l, t)| (os(l), os(t)))
                .collect(),
        })
    }

    fn apply<R: BufRead>(&mut self, tar: &mut TarReader<R>, m: Member) -> Result<(), UnpackError> {
        let kind = m.kind.ok_or_else(|| {
            let t = m.typeflag as char;
            self.layer
                .tar_err(&m.path, format!("unsupported entry type {t:?}"))
        })?;
        let path = self.normalize(&m.path)?;
        for (name, _) in &m.xattrs {
            if is_overlay_xattr(name) {
                return Err(UnpackError::OverlayXattr {
                    blob: self.layer.blob.clone(),
                    path: lossy(&m.path),
                    name: lossy(name),
                });
            }
            if name.is_empty() || name.contains(&0) {
                return Err(self.layer.tar_err(&m.path, "malformed xattr name"));
            }
        }
        if path.is_empty() {
            if kind != Kind::Dir {
                return Err(self
                    .layer
                    .tar_err(&m.path, "the layer root must be a directory"));
            }
            let root = self.layer.root.clone();
            return self.dir_metadata(root.as_fd(), &path, &m);
        }
        let (parent, name) = split_parent(&path);
        // aufs bookkeeping (.wh..wh.plnk and friends) is not part of the image's tree.
        if path.starts_with(AUFS_META_PREFIX) && path != OPAQUE_MARKER {
            return Ok(());
        }
        if name == OPAQUE_MARKER {
            return self.layer.make_opaque(parent);
        }
        if name.starts_with(AUFS_META_PREFIX) {
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(parent, target, &m);
        }
        self.layer.lower_links.remove(&path);
        let dir = self.layer.parent_dir(parent)?;
        match kind {
            Kind::File => self.file(tar, &dir, name, &path, &m),
            Kind::Dir => self.directory(&dir, name, &path, &m),
            Kind::Symlink => self.symlink(&dir, name, &path, &m),
            Kind::Hardlink => self.hardlink(&dir, name, &path, &m),
            Kind::Char | Kind::Block | Kind::Fifo => self.node(&dir, name, &path, &m, kind),
        }
    }

    /// The relative path of a member: `.` components dropped; absolute names and `..` refused
    /// (DESIGN.md: a layer names paths relative to its root, and nothing else is trusted).
    fn normalize(&self, raw: &[u8]) -> Result<Vec<u8>, UnpackError> {
        if raw.first() == Some(&b'/') {
            return Err(self.layer.unsafe_path(raw, "is an absolute name"));
        }
        let mut out = Vec::with_capacity(raw.len());
        for comp in raw.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => return Err(self.layer.unsafe_path(raw, "contains a '..' component")),
                c if c.contains(&0) => {
                    return Err(self.layer.tar_err(raw, "name contains a NUL byte"))
                }
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
        self.claim(path, m)?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let (fd, _) = self.layer.create(dir, name, path, false, |d, n| {
            fs::openat(d, n, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
        })?;
        let Some(fd) = fd else {
            return Err(self
                .layer
                .tar_err(path, "a file cannot merge with a directory"));
        };
        let mut file = File::from(fd);
        let written = self.write_data(tar, &mut file, path, m)?;
        self.files_size += written;
        if written >= EARLY_WRITEBACK {
            // Advisory: errors are ignored (the store's `syncfs` reports real ones).
            let _ = start_writeback(&file);
        }
        self.chown_fd(file.as_fd(), path, m)?;
        fs::fchmod(&file, Mode::from_raw_mode(m.mode))
            .map_err(|e| self.layer.io(path, e.into()))?;
        self.set_xattrs(path, m, |n, v| {
            fs::fsetxattr(&file, n, v, fs::XattrFlags::empty())
        })?;
        fs::futimens(&file, &beneath::timestamps(m.mtime, m.atime))
            .map_err(|e| self.layer.io(path, e.into()))
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
                let chunk = tar.data().map_err(|e| self.layer.frame_err(e))?;
                if chunk.is_empty() {
                    return Ok(m.size);
                }
                let n = chunk.len();
                file.write_all(chunk).map_err(|e| self.layer.io(path, e))?;
                tar.consume(n);
            }
        };
        for &(mut offset, len) in chunks {
            let end = offset + len;
            while offset < end {
                let chunk = tar.data().map_err(|e| self.layer.frame_err(e))?;
                let n = chunk
                    .len()
                    .min(usize::try_from(end - offset).unwrap_or(usize::MAX));
                file.write_all_at(&chunk[..n], offset)
                    .map_err(|e| self.layer.io(path, e))?;
                tar.consume(n);
                offset += n as u64;
            }
        }
        file.set_len(*real_size)
            .map_err(|e| self.layer.io(path, e))?;
        Ok(*real_size)
    }

    fn directory(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        m: &Member,
    ) -> Result<(), UnpackError> {
        let (_, was_whiteout) = self.layer.create(dir, name, path, true, |d, n| {
            fs::mkdirat(d, n, Mode::from_raw_mode(0o700))
        })?;
        let fd = open_child_dir(dir, name, DirAccess::Read)
            .map_err(|e| self.layer.io(path, e.into()))?;
        if was_whiteout {
            self.layer.set_opaque(fd.as_fd(), path)?;
        }
        self.layer.implied.remove(path);
        self.dir_metadata(fd.as_fd(), path, m)?;
        self.layer.cache_dir(path.to_vec(), Rc::new(fd));
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
        self.layer.dir_meta.insert(
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
            return Err(self
                .layer
                .tar_err(&m.path, "symlink with an empty or malformed target"));
        }
        self.layer.create(dir, name, path, false, |d, n| {
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
        .map_err(|e| self.layer.io(path, e.into()))?;
        if chmod {
            chmod_nofollow(dir, name, Mode::from_raw_mode(m.mode))
                .map_err(|e| self.layer.io(path, e))?;
        }
        self.set_xattrs(path, m, |n, v| set_xattr_nofollow(dir, name, n, v))?;
        fs::utimensat(
            dir,
            name,
            &beneath::timestamps(m.mtime, m.atime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.layer.io(path, e.into()))
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
        self.layer.create(dir, name, path, false, |d, n| {
            fs::mknodat(d, n, file_type, Mode::from_raw_mode(m.mode & 0o777), dev)
        })?;
        if kind == Kind::Char && dev == 0 {
            self.layer.whiteouts.insert(path.to_vec());
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
            return Err(self
                .layer
                .unsafe_path(&m.link, "hardlink to the layer root"));
        }
        if target == path {
            return Ok(());
        }
        if let Some(lower) = self.layer.lower_links.get(&target).cloned() {
            return self.lower_link(dir, name, path, lower);
        }
        let (tparent, tname) = split_parent(&target);
        let Some(tdir) = self.layer.existing_dir(tparent, &m.link)? else {
            return self.lower_link(dir, name, path, target);
        };
        match lstat_at(tdir.as_fd(), tname) {
            Err(Errno::NOENT) => return self.lower_link(dir, name, path, target),
            Err(e) => return Err(self.layer.io(&target, e.into())),
            Ok(st) if file_type(&st) == FileType::Directory => {
                return Err(self.layer.tar_err(&m.path, "hardlink to a directory"))
            }
            Ok(_) => {}
        }
        self.layer.create(dir, name, path, false, |d, n| {
            fs::linkat(&*tdir, tname, d, n, AtFlags::empty())
        })?;
        // A second name of a whiteout device is a whiteout too (overlayfs itself shares one
        // whiteout inode among many names).
        if self.layer.whiteouts.contains(&target) {
            self.layer.whiteouts.insert(path.to_vec());
        }
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
                self.layer.make_room(dir.as_fd(), name, path, false)?;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(self.layer.io(path, e.into())),
        }
        self.layer.lower_links.insert(path.to_vec(), target);
        Ok(())
    }

    /// `.wh.NAME`: a char device 0/0 at NAME, with the whiteout member's owner and times (so an
    /// unpacked layer is the same whatever the day it was unpacked).
    fn whiteout(&mut self, parent: &[u8], target: &[u8], m: &Member) -> Result<(), UnpackError> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self
                .layer
                .unsafe_path(&m.path, "whiteout names no file in its directory"));
        }
        let path = join(parent, target);
        self.layer.lower_links.remove(&path);
        let dir = self.layer.parent_dir(parent)?;
        self.layer.create(&dir, target, &path, false, |d, n| {
            fs::mknodat(d, n, FileType::CharacterDevice, Mode::empty(), 0)
        })?;
        self.layer.whiteouts.insert(path.clone());
        let (uid, gid) = self.ids(m)?;
        fs::chownat(
            &*dir,
            target,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.layer.io(&path, e.into()))?;
        fs::utimensat(
            &*dir,
            target,
            &beneath::timestamps(m.mtime, m.atime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.layer.io(&path, e.into()))
    }

    fn ids(&self, m: &Member) -> Result<(u32, u32), UnpackError> {
        let conv = |v: u64| u32::try_from(v).ok().filter(|&v| v != u32::MAX);
        match (conv(m.uid), conv(m.gid)) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => Err(self
                .layer
                .tar_err(&m.path, format!("uid/gid {}:{} out of range", m.uid, m.gid))),
        }
    }

    fn chown_fd(&self, fd: BorrowedFd<'_>, path: &[u8], m: &Member) -> Result<(), UnpackError> {
        let ids = self.ids(m)?;
        if ids == self.own_ids {
            return Ok(()); // new inodes are ours already (no parent is setgid while we unpack)
        }
        fs::fchown(fd, Some(Uid::from_raw(ids.0)), Some(Gid::from_raw(ids.1)))
            .map_err(|e| self.layer.io(path, e.into()))
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
                    blob = %self.layer.blob, path = %lossy(path), xattr = %lossy(name),
                    "xattr not set: {e}"
                ),
                Err(e) => return Err(self.layer.io(path, e.into())),
            }
        }
        Ok(())
    }
}

/// Files at least this large have their writeback started as soon as they are written. The store
/// makes a layer durable with one `syncfs` before the layer is renamed into place; data already on
/// its way by then keeps that wait short, and the disk works while the next files are unpacked.
const EARLY_WRITEBACK: u64 = 64 * 1024;
