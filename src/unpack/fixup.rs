//! Fixing up a layer whose tree depends on the layers below it (`LayerReport::needs_parents`).
//!
//! Applying layers in order onto one tree gives a directory the layer did not list the owner,
//! mode, xattrs and mtime it has below (so `/tmp` stays 1777), and makes a hardlink to a lower
//! file share that file. In a per-layer store both must be materialized in the layer itself:
//! implied directories get the metadata of the topmost lower layer that shows the directory, and
//! a lower hardlink's target is copied up into this layer (as overlayfs copies up on a write) so
//! the link can point at it. Lookups in the lowers honour whiteouts and opaque directories the
//! way overlayfs does, and walk one component at a time without following any symlink.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid};
use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::beneath::{join, split_parent};
use super::{LayerReport, UnpackError, UnpackOptions};
use crate::digest::Digest;
use crate::layerfs::{is_opaque, is_overlay_xattr, LowerView, ViewError};
use crate::sys::open::{
    chmod_nofollow, file_type, lstat_at, open_beneath, open_child_dir, open_root, DirAccess,
};
use crate::sys::xattr::list_xattrs;

struct FixUp<'a> {
    dest: &'a Path,
    root: OwnedFd,
    lowers: &'a LowerView,
    implied: BTreeSet<Vec<u8>>,
    blob: Digest,
    /// mtimes of directories of this layer that fix-up adds entries to, restored at the end.
    touched: BTreeMap<Vec<u8>, Timestamps>,
}

/// Completes a layer unpacked with `unpack_layer` once the layers below it are complete.
/// `lowers` are their `diff/` directories, nearest first.
pub fn fix_up_layer(
    dest: &Path,
    report: &LayerReport,
    lowers: &[PathBuf],
    opts: &UnpackOptions,
) -> Result<(), UnpackError> {
    let view = LowerView::open(lowers).map_err(view_err)?;
    fix_up_layer_over(dest, report, &view, opts)
}

/// `fix_up_layer` over a view of the lowers the caller keeps (a load stacks each layer on it).
pub fn fix_up_layer_over(
    dest: &Path,
    report: &LayerReport,
    lowers: &LowerView,
    _opts: &UnpackOptions,
) -> Result<(), UnpackError> {
    let mut fx = FixUp {
        dest,
        root: open_root(dest, DirAccess::Read).map_err(|e| UnpackError::io(dest, e.into()))?,
        lowers,
        implied: report
            .implied_dirs
            .iter()
            .map(|p| rel(p))
            .collect::<Result<_, _>>()?,
        touched: BTreeMap::new(),
        blob: report.blob_digest.clone(),
    };
    // Links first: copying a target up may create more implied directories.
    let mut copied_up = BTreeSet::new();
    for (link, target) in &report.lower_hardlinks {
        fx.lower_hardlink(&rel(link)?, &rel(target)?, &mut copied_up)?;
    }
    let implied = std::mem::take(&mut fx.implied);
    for dir in &implied {
        fx.implied_dir(dir)?;
    }
    for (dir, times) in &fx.touched {
        let fd = open_beneath(&fx.root, dir, DirAccess::Read).map_err(|e| fx.io(dir, e))?;
        fs::futimens(&fd, times).map_err(|e| fx.io(dir, e.into()))?;
    }
    Ok(())
}

/// Report paths are relative and normalized (as `unpack_layer` makes them); anything else is a
/// caller's mistake and refused before it can name a path outside the layer.
fn rel(p: &Path) -> Result<Vec<u8>, UnpackError> {
    let b = p.as_os_str().as_bytes();
    let normal = !b.is_empty()
        && b.split(|&c| c == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b".." && !c.contains(&0));
    if normal {
        Ok(b.to_vec())
    } else {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a normalized relative path",
        );
        Err(UnpackError::io(p, e))
    }
}

impl FixUp<'_> {
    /// Gives an implied directory the metadata of the topmost lower that shows it.
    fn implied_dir(&self, dir: &[u8]) -> Result<(), UnpackError> {
        let Some((parent, st)) = self.find_in_lowers(dir)? else {
            return Ok(()); // no lower has it: it stays 0755, owned by root
        };
        if file_type(&st) != FileType::Directory {
            // The layer writes beneath a path that is a symlink (or file) below it: applied in order
            // onto one tree this would follow the symlink, possibly out of the image. Refused.
            let what = if file_type(&st) == FileType::Symlink {
                "a symlink"
            } else {
                "not a directory"
            };
            return Err(UnpackError::UnsafePath {
                blob: self.blob.clone(),
                path: String::from_utf8_lossy(dir).into_owned(),
                reason: format!("the layer writes beneath it, but it is {what} in a lower layer"),
            });
        }
        let (_, name) = split_parent(dir);
        let src =
            open_child_dir(&parent, name, DirAccess::Read).map_err(|e| self.io(dir, e.into()))?;
        let dst = open_beneath(&self.root, dir, DirAccess::Read).map_err(|e| self.io(dir, e))?;
        self.copy_meta(src.as_fd(), dst.as_fd(), &st, dir)
    }

    /// Owner, then mode (chown clears setuid/setgid), xattrs except overlay's, times.
    fn copy_meta(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        st: &fs::Stat,
        path: &[u8],
    ) -> Result<(), UnpackError> {
        let err = |e: io::Error| self.io(path, e);
        fs::fchown(
            dst,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        )
        .map_err(|e| err(e.into()))?;
        fs::fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777)).map_err(|e| err(e.into()))?;
        for (name, value) in list_xattrs(src).map_err(|e| err(e.into()))? {
            if is_overlay_xattr(&name) || name == b"security.selinux" {
                continue;
            }
            match fs::fsetxattr(dst, name.as_slice(), &value, fs::XattrFlags::empty()) {
                Ok(()) | Err(Errno::OPNOTSUPP | Errno::PERM) => {}
                Err(e) => return Err(err(e.into())),
            }
        }
        fs::futimens(dst, &stat_times(st)).map_err(|e| err(e.into()))
    }

    /// Copies the target of a lower hardlink up into this layer and links the name to it.
    fn lower_hardlink(
        &mut self,
        link: &[u8],
        target: &[u8],
        copied_up: &mut BTreeSet<Vec<u8>>,
    ) -> Result<(), UnpackError> {
        let (lparent, lname) = split_parent(link);
        let (tparent, tname) = split_parent(target);
        let found = self.find_in_lowers(target)?;
        let Some((src_parent, st)) = found.filter(|(_, st)| file_type(st) != FileType::Directory)
        else {
            return Err(UnpackError::io(
                self.dest.join(OsStr::from_bytes(link)),
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "hardlink target {:?} is in no lower layer",
                        String::from_utf8_lossy(target)
                    ),
                ),
            ));
        };
        let link_dir = self.make_dirs(lparent)?;
        // The layer wrote its own file at the target after the link: the link keeps the lower
        // file's content, as it would applying in order, so it gets a copy of its own.
        let target_here = self.exists_here(target)?;
        if target_here && !copied_up.contains(target) {
            self.touch(lparent)?;
            return self.copy_node(
                src_parent.as_fd(),
                tname,
                &st,
                link_dir.as_fd(),
                lname,
                link,
            );
        }
        let target_dir = self.make_dirs(tparent)?;
        if !target_here {
            self.touch(tparent)?;
            self.copy_node(
                src_parent.as_fd(),
                tname,
                &st,
                target_dir.as_fd(),
                tname,
                target,
            )?;
            copied_up.insert(target.to_vec());
        }
        self.touch(lparent)?;
        fs::linkat(&target_dir, tname, &link_dir, lname, AtFlags::empty())
            .map_err(|e| self.io(link, e.into()))
    }

    fn exists_here(&self, path: &[u8]) -> Result<bool, UnpackError> {
        let (parent, name) = split_parent(path);
        let dir = match open_beneath(&self.root, parent, DirAccess::Path) {
            Ok(d) => d,
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(self.io(path, e)),
        };
        match lstat_at(&dir, name) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(self.io(path, e.into())),
        }
    }

    /// Remembers a directory's times before fix-up adds to it (implied ones are set later).
    fn touch(&mut self, dir: &[u8]) -> Result<(), UnpackError> {
        if self.implied.contains(dir) || self.touched.contains_key(dir) {
            return Ok(());
        }
        let fd = open_beneath(&self.root, dir, DirAccess::Path).map_err(|e| self.io(dir, e))?;
        let st = fs::fstat(&fd).map_err(|e| self.io(dir, e.into()))?;
        self.touched.insert(dir.to_vec(), stat_times(&st));
        Ok(())
    }

    /// The directory `path` in this layer, creating missing ones as implied directories.
    fn make_dirs(&mut self, path: &[u8]) -> Result<OwnedFd, UnpackError> {
        let mut cur = fs::openat(
            &self.root,
            ".",
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(path, e.into()))?;
        if path.is_empty() {
            return Ok(cur);
        }
        let mut prefix = Vec::new();
        for comp in path.split(|&b| b == b'/') {
            let parent = prefix.clone();
            prefix = join(&prefix, comp);
            cur = match open_child_dir(&cur, comp, DirAccess::Path) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    self.touch(&parent)?;
                    fs::mkdirat(&cur, comp, Mode::from_raw_mode(0o755))
                        .map_err(|e| self.io(&prefix, e.into()))?;
                    let fd = open_child_dir(&cur, comp, DirAccess::Path)
                        .map_err(|e| self.io(&prefix, e.into()))?;
                    fs::chmodat(&fd, ".", Mode::from_raw_mode(0o755), AtFlags::empty())
                        .map_err(|e| self.io(&prefix, e.into()))?;
                    self.implied.insert(prefix.clone());
                    fd
                }
                Err(e) => return Err(self.io(&prefix, e.into())),
            };
        }
        Ok(cur)
    }

    /// Copies one non-directory (file, symlink, device, fifo) with its metadata.
    fn copy_node(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &[u8],
        st: &fs::Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &[u8],
        path: &[u8],
    ) -> Result<(), UnpackError> {
        let err = |e: io::Error| self.io(path, e);
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::RegularFile {
            let src = fs::openat(
                src_dir,
                src_name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err(e.into()))?;
            let dst = fs::openat(
                dst_dir,
                dst_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| err(e.into()))?;
            copy_data(src.as_fd(), dst.as_fd()).map_err(err)?;
            return self.copy_meta(src.as_fd(), dst.as_fd(), st, path);
        }
        match ft {
            FileType::Symlink => {
                let target =
                    fs::readlinkat(src_dir, src_name, Vec::new()).map_err(|e| err(e.into()))?;
                fs::symlinkat(target.as_c_str(), dst_dir, dst_name).map_err(|e| err(e.into()))?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                fs::mknodat(
                    dst_dir,
                    dst_name,
                    ft,
                    Mode::from_raw_mode(0o600),
                    st.st_rdev,
                )
                .map_err(|e| err(e.into()))?;
            }
            _ => return Err(err(io::Error::other("cannot copy this file type"))),
        }
        fs::chownat(
            dst_dir,
            dst_name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(e.into()))?;
        if ft != FileType::Symlink {
            chmod_nofollow(dst_dir, dst_name, Mode::from_raw_mode(st.st_mode & 0o7777))
                .map_err(err)?;
        }
        fs::utimensat(
            dst_dir,
            dst_name,
            &stat_times(st),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(e.into()))
    }

    /// The topmost lower that shows `path` (its parent dir there and its stat), unless this
    /// layer's own opaque ancestors hide the lowers.
    fn find_in_lowers(&self, path: &[u8]) -> Result<Option<(OwnedFd, fs::Stat)>, UnpackError> {
        let (parent, _) = split_parent(path);
        if !parent.is_empty() && self.opaque_ancestor_here(parent)? {
            return Ok(None);
        }
        let found = self.lowers.find(Path::new(OsStr::from_bytes(path)));
        Ok(found.map_err(view_err)?.map(|(_, dir, st)| (dir, st)))
    }

    /// Whether `dir` or one of its ancestors in this layer is opaque.
    fn opaque_ancestor_here(&self, dir: &[u8]) -> Result<bool, UnpackError> {
        let mut prefix = Vec::new();
        for comp in dir.split(|&b| b == b'/') {
            prefix = join(&prefix, comp);
            let fd = match open_beneath(&self.root, &prefix, DirAccess::Read) {
                Ok(fd) => fd,
                Err(e) if Errno::from_io_error(&e) == Some(Errno::NOENT) => return Ok(false),
                Err(e) => return Err(self.io(&prefix, e)),
            };
            if is_opaque(&fd).map_err(|e| self.io(&prefix, e.into()))? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn io(&self, path: &[u8], source: io::Error) -> UnpackError {
        UnpackError::io(self.dest.join(OsStr::from_bytes(path)), source)
    }
}

fn view_err(e: ViewError) -> UnpackError {
    UnpackError::io(e.path, e.source)
}

fn stat_times(st: &fs::Stat) -> Timestamps {
    Timestamps {
        last_access: fs::Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: fs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Copies file data in the kernel (sharing extents where the filesystem can), else by reading.
/// Hole for hole (`sys::sparse`): a sparse file copied up must not fill the disk.
fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let len = fs::fstat(src)?.st_size as u64;
    crate::sys::sparse::copy_sparse(src, dst, len)
}
