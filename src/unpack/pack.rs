//! Writing a directory tree as a layer tar: a plain root filesystem (`lamina import`) or an
//! overlay upper directory (`lamina commit`), the inverse of `unpack_layer`.
//!
//! The archive is what docker writes: names in lexical order, depth first, relative and without
//! the root; directories end in `/`; headers as `tar::writer` emits them (ustar, with PAX records
//! for what ustar cannot hold); the second and later names of an inode are hardlinks to the first.
//! Sockets are skipped (tar has no type for them). Overlay's own xattrs and `security.selinux`
//! are never written. For an upper directory, a char device 0/0 becomes `.wh.NAME` and an opaque
//! directory is followed by `DIR/.wh..wh..opq` before its children, as the image-spec orders it.
//! Nothing follows a symlink: the walk goes by directory fds with `O_NOFOLLOW`, one level at a
//! time (`sys::walk`), so a container's tree thousands of levels deep is packed like any other.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use rustix::fs::{self, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::beneath::{join, split_parent};
use super::{UnpackError, UnpackOptions, EXPANSION_FLOOR};
use crate::layerfs::{is_overlay_xattr, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::sys::open::{open_root, DirAccess};
use crate::sys::sparse::read_sparse;
use crate::sys::walk::{walk, Entry, Visitor};
use crate::sys::xattr::list_xattrs;
use crate::tar::writer::{self, END_OF_ARCHIVE};

const BUF: usize = 256 * 1024;

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// What kind of tree `write_layer_tar` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A plain directory tree: everything is written as it is.
    Rootfs,
    /// An overlayfs upper directory: whiteouts and opaque directories become OCI whiteouts.
    OverlayUpper,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackReport {
    /// Tar members written (PAX headers not counted).
    pub entries: u64,
}

/// Writes the tree under `dir` to `out` as an uncompressed layer tar, with the default cap on
/// sparse files (see [`write_layer_tar_with`]).
pub fn write_layer_tar<W: Write>(
    dir: &Path,
    out: W,
    kind: TreeKind,
) -> Result<PackReport, UnpackError> {
    write_layer_tar_with(dir, out, kind, &UnpackOptions::default())
}

/// [`write_layer_tar`] under `opts.max_expansion`: the files' apparent sizes may add up to at
/// most that many times the bytes they take on disk (or `EXPANSION_FLOOR`). A container can make
/// a terabyte file with one seek; its holes would go into the tar as a terabyte of zeros, and the
/// layer would then be refused by the same cap at load.
pub fn write_layer_tar_with<W: Write>(
    dir: &Path,
    out: W,
    kind: TreeKind,
    opts: &UnpackOptions,
) -> Result<PackReport, UnpackError> {
    let root = open_root(dir, DirAccess::Read).map_err(|e| UnpackError::io(dir, e.into()))?;
    let mut p = Packer {
        dir,
        kind,
        out: BufWriter::with_capacity(BUF, out),
        inodes: HashMap::new(),
        buf: vec![0u8; BUF],
        entries: 0,
        max_expansion: opts.max_expansion,
        apparent: 0,
        allocated: 0,
    };
    walk(root.as_fd(), &mut p)?;
    p.out
        .write_all(&END_OF_ARCHIVE)
        .and_then(|()| p.out.flush())
        .map_err(|e| UnpackError::io(dir, e))?;
    Ok(PackReport { entries: p.entries })
}

/// One member's header fields.
struct Head<'a> {
    name: &'a [u8],
    typeflag: u8,
    st: &'a fs::Stat,
    mode: u32,
    size: u64,
    link: &'a [u8],
    xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

struct Packer<'a, W: Write> {
    dir: &'a Path,
    kind: TreeKind,
    out: BufWriter<W>,
    /// (dev, ino) of multiply-linked inodes already written, and the name they were written as.
    inodes: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    entries: u64,
    /// The cap of `UnpackOptions::max_expansion` (0: none), and the files' sizes so far.
    max_expansion: u64,
    apparent: u64,
    allocated: u64,
}

/// The walk (`sys::walk`: no recursion, a bounded number of fds, names in byte order) calls
/// `entry` for every name and `enter` for a directory before its children.
impl<W: Write> Visitor for Packer<'_, W> {
    type Error = UnpackError;

    fn entry(&mut self, e: &Entry<'_>) -> Result<bool, UnpackError> {
        too_deep(e.path)?;
        if FileType::from_raw_mode(e.stat.st_mode) == FileType::Directory {
            return Ok(true);
        }
        self.member(e.dir, e.name, e.path, e.stat)?;
        Ok(false)
    }

    fn enter(&mut self, fd: BorrowedFd<'_>, path: &[u8], st: &fs::Stat) -> Result<(), UnpackError> {
        let all = list_xattrs(fd).map_err(|e| self.io(path, e.into()))?;
        let opaque = self.kind == TreeKind::OverlayUpper && self.check_upper_xattrs(path, &all)?;
        let xattrs = keep(all);
        let perm = st.st_mode & 0o7777;
        let dirname = [path, b"/"].concat();
        self.head(&Head {
            xattrs: &xattrs,
            ..Head::plain(&dirname, b'5', st, perm)
        })?;
        if opaque {
            let marker = join(path, OPAQUE_MARKER);
            self.head(&Head::plain(&marker, b'0', st, perm & 0o777))?;
        }
        Ok(())
    }

    fn io_error(&self, path: &[u8], e: io::Error) -> UnpackError {
        self.io(path, e)
    }
}

/// A tree deeper than `PATH_MAX` (a container can make one) is refused with a short message:
/// no layer can hold it, since unpacking resolves every path beneath the layer dir.
fn too_deep(path: &[u8]) -> Result<(), UnpackError> {
    const PATH_MAX: usize = 4096;
    if path.len() < PATH_MAX - 1 {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&path[..64]);
    let e = io::Error::other(format!(
        "a path of {} bytes or more (longer than PATH_MAX, {PATH_MAX}) cannot go into a layer",
        path.len()
    ));
    Err(UnpackError::io(format!("{shown}..."), e))
}

impl<W: Write> Packer<'_, W> {
    /// A member that is not a directory.
    fn member(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        st: &fs::Stat,
    ) -> Result<(), UnpackError> {
        let ft = FileType::from_raw_mode(st.st_mode);
        let perm = st.st_mode & 0o7777;
        let upper = self.kind == TreeKind::OverlayUpper;
        // Overlay shares one whiteout inode among many names, so this comes before hardlinks.
        if upper && ft == FileType::CharacterDevice && st.st_rdev == 0 {
            let (parent, base) = split_parent(path);
            let wh = join(parent, &[WHITEOUT_PREFIX, base].concat());
            return self.head(&Head::plain(&wh, b'0', st, 0));
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.inodes.get(&key).cloned() {
                return self.head(&Head {
                    link: &first,
                    ..Head::plain(path, b'1', st, perm)
                });
            }
            self.inodes.insert(key, path.to_vec());
        }
        match ft {
            FileType::RegularFile => self.file(dir, name, path, st),
            FileType::Symlink => {
                let target =
                    fs::readlinkat(dir, name, Vec::new()).map_err(|e| self.io(path, e.into()))?;
                let xattrs = self.node_xattrs(dir, name, path)?;
                self.head(&Head {
                    link: target.as_bytes(),
                    xattrs: &xattrs,
                    ..Head::plain(path, b'2', st, perm)
                })
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let typeflag = match ft {
                    FileType::CharacterDevice => b'3',
                    FileType::BlockDevice => b'4',
                    _ => b'6',
                };
                let xattrs = self.node_xattrs(dir, name, path)?;
                self.head(&Head {
                    xattrs: &xattrs,
                    ..Head::plain(path, typeflag, st, perm)
                })
            }
            _ => {
                tracing::debug!(path = %String::from_utf8_lossy(path), "skipping socket");
                Ok(())
            }
        }
    }

    fn file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        st: &fs::Stat,
    ) -> Result<(), UnpackError> {
        let fd = fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(path, e.into()))?;
        let all = list_xattrs(fd.as_fd()).map_err(|e| self.io(path, e.into()))?;
        if self.kind == TreeKind::OverlayUpper {
            self.check_upper_xattrs(path, &all)?;
        }
        let xattrs = keep(all);
        let size = st.st_size as u64;
        self.claim(path, st)?;
        self.head(&Head {
            size,
            xattrs: &xattrs,
            ..Head::plain(path, b'0', st, st.st_mode & 0o7777)
        })?;
        // Only the data runs are read; holes are written as zeros (`sys::sparse`).
        let mut buf = std::mem::take(&mut self.buf);
        let out = &mut self.out;
        let mut write_failed = None;
        let read = read_sparse(fd.as_fd(), size, &mut buf, |b| {
            out.write_all(b).inspect_err(|e| {
                // The errno stays (ENOSPC must still read as a full disk above).
                write_failed = Some(match e.raw_os_error() {
                    Some(n) => io::Error::from_raw_os_error(n),
                    None => io::Error::new(e.kind(), e.to_string()),
                });
            })
        });
        self.buf = buf;
        if let Some(e) = write_failed {
            return Err(UnpackError::io(self.dir, e));
        }
        read.map_err(|e| self.io(path, e))?;
        self.pad(size)
    }

    /// Counts a regular file against the cap before a byte of it is written.
    fn claim(&mut self, path: &[u8], st: &fs::Stat) -> Result<(), UnpackError> {
        self.apparent = self.apparent.saturating_add(st.st_size as u64);
        self.allocated = self.allocated.saturating_add(st.st_blocks as u64 * 512);
        if self.max_expansion == 0 {
            return Ok(());
        }
        let limit = self
            .allocated
            .saturating_mul(self.max_expansion)
            .max(EXPANSION_FLOOR);
        if self.apparent <= limit {
            return Ok(());
        }
        let e = io::Error::other(format!(
            "sparse files claim {} bytes on {} bytes of disk, more than {} times that \
             (raise it with --max-layer-expansion)",
            self.apparent, self.allocated, self.max_expansion
        ));
        Err(self.io(path, e))
    }

    /// Xattrs of a node without an fd of its own (symlink, device, fifo), not following it:
    /// the name is looked up under the magic link of its (already safely opened) parent.
    fn node_xattrs(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
    ) -> Result<Xattrs, UnpackError> {
        let at = [
            format!("/proc/self/fd/{}/", dir.as_raw_fd()).as_bytes(),
            name,
        ]
        .concat();
        let mut list = vec![0u8; 4096];
        let n = match fs::llistxattr(at.as_slice(), &mut list[..]) {
            Ok(n) => n,
            Err(rustix::io::Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(self.io(path, e.into())),
        };
        let mut out = Vec::new();
        for x in list[..n].split(|&b| b == 0).filter(|x| !x.is_empty()) {
            let mut value = vec![0u8; 65536];
            if let Ok(len) = fs::lgetxattr(at.as_slice(), x, &mut value[..]) {
                value.truncate(len);
                out.push((x.to_vec(), value));
            }
        }
        if self.kind == TreeKind::OverlayUpper {
            self.check_upper_xattrs(path, &out)?;
        }
        Ok(keep(out))
    }

    /// Whether an upper directory is opaque; refuses what overlay's redirect and metacopy
    /// features leave in an upper dir, since the tree alone would then not hold the content.
    fn check_upper_xattrs(
        &self,
        path: &[u8],
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, UnpackError> {
        // Only the kernel's own `trusted.overlay.*` carry meaning: the store mounts without
        // `userxattr`, so overlay itself ignores `user.overlay.*`, and any such xattr in an upper
        // dir was set by the container as plain data (a container cannot set `trusted.*` through
        // the mount: overlay escapes it). They are dropped from the commit (see `keep`), not
        // refused: the container saw the dir as it was, and the commit must show the same; they
        // are not written either, because a store that mounts with `userxattr` would obey them.
        let mut opaque = false;
        for (name, value) in xattrs {
            let Some(key) = name.strip_prefix(crate::layerfs::PRIVATE_XATTR_PREFIX) else {
                continue;
            };
            match key {
                b"opaque" => opaque |= value.as_slice() == b"y",
                b"redirect" | b"metacopy" => {
                    let what = String::from_utf8_lossy(name);
                    let e = io::Error::other(format!(
                        "carries {what}: mount without redirect_dir/metacopy to commit it"
                    ));
                    return Err(self.io(path, e));
                }
                _ => {}
            }
        }
        Ok(opaque)
    }

    /// Writes a member's header (see `tar::writer`).
    fn head(&mut self, h: &Head) -> Result<(), UnpackError> {
        let dev = h.st.st_rdev;
        let head = writer::Head {
            name: h.name,
            typeflag: h.typeflag,
            mode: h.mode,
            uid: u64::from(h.st.st_uid),
            gid: u64::from(h.st.st_gid),
            mtime: h.st.st_mtime,
            size: h.size,
            link: h.link,
            dev: (fs::major(dev), fs::minor(dev)),
            xattrs: h.xattrs,
        };
        writer::write_header(&mut self.out, &head).map_err(|e| UnpackError::io(self.dir, e))?;
        self.entries += 1;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<(), UnpackError> {
        writer::write_padding(&mut self.out, size).map_err(|e| UnpackError::io(self.dir, e))
    }

    fn io(&self, path: &[u8], e: io::Error) -> UnpackError {
        UnpackError::io(self.dir.join(std::ffi::OsStr::from_bytes(path)), e)
    }
}

impl<'a> Head<'a> {
    fn plain(name: &'a [u8], typeflag: u8, st: &'a fs::Stat, mode: u32) -> Self {
        Head {
            name,
            typeflag,
            st,
            mode,
            size: 0,
            link: b"",
            xattrs: &[],
        }
    }
}

/// The xattrs a layer may carry (the unpacker's policy, applied on the way out).
fn keep(xattrs: Xattrs) -> Xattrs {
    let mut kept: Vec<_> = xattrs
        .into_iter()
        .filter(|(n, _)| !is_overlay_xattr(n) && n.as_slice() != b"security.selinux")
        .collect();
    kept.sort();
    kept
}
