//! The per-layer file list: every entry of a layer's `diff/` with its type, mode, owner, mtime, size,
//! device number, symlink target, xattrs and, for regular files, a checksum of the content. It is
//! written into the staged layer before the rename, so it describes the layer as it was verified;
//! `fsck --verify` walks the dir again and names every difference.
//!
//! The walk works on directory fds (`openat`, `statat` without following symlinks), so nothing
//! outside the layer dir is ever read. At ingest most content hashes come from the tar stream
//! (`tar::split` hashes each file as it passes), so a layer is not read back; files the stream did
//! not describe (hardlinks, files fixed up from lower layers) are read once.
//!
//! Format (`layers/<key>/files`): a magic, then a zstd stream of entries sorted by path. The magic
//! gives the content sums: `LFL2` XXH3-128 (16 bytes), `LFL1` (older lists) SHA-256 (32 bytes).

use crate::sys::open::{open_root, DirAccess};
use crate::sys::walk::{Entry, Visitor};
use crate::tar::content_sum::{ContentSum, SumKind};
use rustix::fs::{FileType, Mode, OFlags, Stat};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MAGIC: &[u8; 4] = b"LFL2";
const MAGIC_V1: &[u8; 4] = b"LFL1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the layer's diff dir; empty for the dir itself.
    pub path: Vec<u8>,
    /// `d`, `f`, `l`, `c`, `b`, `p` or `s`.
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Bytes, for regular files; 0 otherwise.
    pub size: u64,
    pub rdev: u64,
    pub sum: Option<ContentSum>,
    pub target: Option<Vec<u8>>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Content sums already known (path -> size, sum), so the walk need not read those files.
pub type KnownHashes = HashMap<Vec<u8>, (u64, ContentSum)>;

/// Lists `diff` (sorted by path), summing with `sums` every regular file not in `known`.
pub fn walk(diff: &Path, known: &KnownHashes, sums: SumKind) -> io::Result<Vec<FileEntry>> {
    // The layer dir itself is the store's (its path has no component from an image).
    let root: OwnedFd = open_root(diff, DirAccess::Read).map_err(|e| with_path(e.into(), diff))?;
    let st = rustix::fs::fstat(&root).map_err(|e| with_path(e.into(), diff))?;
    let mut w = Walker {
        known,
        sums,
        by_inode: HashMap::new(),
        out: vec![],
        base: diff,
    };
    let mut top = entry_from_stat(Vec::new(), &st);
    top.xattrs = xattrs_fd(root.as_fd()).map_err(|e| with_path(e, diff))?;
    w.out.push(top);
    crate::sys::walk::walk(root.as_fd(), &mut w)?;
    w.out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(w.out)
}

fn with_path(e: io::Error, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

struct Walker<'a> {
    known: &'a KnownHashes,
    sums: SumKind,
    by_inode: HashMap<(u64, u64), ContentSum>,
    out: Vec<FileEntry>,
    base: &'a Path,
}

/// Called by `sys::walk` (no recursion, a bounded number of fds whatever the depth).
impl Visitor for Walker<'_> {
    type Error = io::Error;

    fn entry(&mut self, w: &Entry<'_>) -> io::Result<bool> {
        let shown = || self.base.join(OsStr::from_bytes(w.path));
        let os = OsStr::from_bytes(w.name);
        let mut e = entry_from_stat(w.path.to_vec(), w.stat);
        match FileType::from_raw_mode(w.stat.st_mode) {
            // Listed, with its xattrs, by `enter` once the walk has it open.
            FileType::Directory => return Ok(true),
            FileType::RegularFile => {
                let fd = rustix::fs::openat(
                    w.dir,
                    os,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| with_path(e.into(), &shown()))?;
                e.xattrs = xattrs_fd(fd.as_fd()).map_err(|e| with_path(e, &shown()))?;
                let sum = self.content_hash(fd, w.path, w.stat);
                e.sum = Some(sum.map_err(|e| with_path(e, &shown()))?);
            }
            ft => {
                e.xattrs = xattrs_at(w.dir, w.name).map_err(|e| with_path(e, &shown()))?;
                if ft == FileType::Symlink {
                    let t = rustix::fs::readlinkat(w.dir, os, Vec::new())
                        .map_err(|e| with_path(e.into(), &shown()))?;
                    e.target = Some(t.into_bytes());
                }
            }
        }
        self.out.push(e);
        Ok(false)
    }

    fn enter(&mut self, dir: BorrowedFd<'_>, path: &[u8], st: &Stat) -> io::Result<()> {
        let mut e = entry_from_stat(path.to_vec(), st);
        let shown = || self.base.join(OsStr::from_bytes(path));
        e.xattrs = xattrs_fd(dir).map_err(|e| with_path(e, &shown()))?;
        self.out.push(e);
        Ok(())
    }

    fn io_error(&self, path: &[u8], e: io::Error) -> io::Error {
        with_path(e, &self.base.join(OsStr::from_bytes(path)))
    }
}

impl Walker<'_> {
    fn content_hash(
        &mut self,
        fd: OwnedFd,
        path: &[u8],
        st: &rustix::fs::Stat,
    ) -> io::Result<ContentSum> {
        let size = st.st_size as u64;
        if let Some((s, h)) = self.known.get(path) {
            if *s == size && h.kind() == self.sums {
                return Ok(*h);
            }
        }
        let inode = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(h) = self.by_inode.get(&inode) {
                return Ok(*h);
            }
        }
        let h = self.sums.sum_file(fd.as_fd(), size)?;
        if st.st_nlink > 1 {
            self.by_inode.insert(inode, h);
        }
        Ok(h)
    }
}

fn entry_from_stat(path: Vec<u8>, st: &rustix::fs::Stat) -> FileEntry {
    let ft = FileType::from_raw_mode(st.st_mode);
    let kind = match ft {
        FileType::Directory => b'd',
        FileType::RegularFile => b'f',
        FileType::Symlink => b'l',
        FileType::CharacterDevice => b'c',
        FileType::BlockDevice => b'b',
        FileType::Fifo => b'p',
        _ => b's',
    };
    FileEntry {
        path,
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        size: if kind == b'f' { st.st_size as u64 } else { 0 },
        rdev: if matches!(kind, b'c' | b'b') {
            st.st_rdev
        } else {
            0
        },
        sum: None,
        target: None,
        xattrs: vec![],
    }
}

/// An entry's xattrs sorted by name, read through its open fd.
fn xattrs_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = crate::sys::xattr::list_xattrs(fd)?;
    out.sort();
    Ok(out)
}

/// Xattrs of an entry that cannot be opened (symlink, device, fifo), never following it.
fn xattrs_at(dirfd: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = crate::sys::xattr::list_xattrs_at(dirfd, name)?;
    out.sort();
    Ok(out)
}

// ---- encoding

fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

/// Writes `entries` (walked with `SumKind::Xxh3`) to `path` in the current format.
pub fn write_list(path: &Path, entries: &[FileEntry]) -> io::Result<()> {
    let mut f = BufWriter::new(File::create(path)?);
    f.write_all(MAGIC)?;
    let mut z = zstd::stream::write::Encoder::new(f, 3)?;
    z.write_all(&(entries.len() as u64).to_le_bytes())?;
    for e in entries {
        put_bytes(&mut z, &e.path)?;
        z.write_all(&[e.kind])?;
        for v in [e.mode, e.uid, e.gid, e.mtime_nsec] {
            z.write_all(&v.to_le_bytes())?;
        }
        z.write_all(&e.mtime.to_le_bytes())?;
        z.write_all(&e.size.to_le_bytes())?;
        z.write_all(&e.rdev.to_le_bytes())?;
        match e.sum {
            Some(ContentSum::Xxh3(b)) => z.write_all(&b)?,
            None => z.write_all(&[0; 16])?,
            Some(other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("file list: a {:?} sum in a list of XXH3 sums", other.kind()),
                ))
            }
        }
        put_bytes(&mut z, e.target.as_deref().unwrap_or(&[]))?;
        z.write_all(&(e.xattrs.len() as u32).to_le_bytes())?;
        for (n, v) in &e.xattrs {
            put_bytes(&mut z, n)?;
            put_bytes(&mut z, v)?;
        }
    }
    // Not fsynced here: the list is written into a staged layer, which is flushed as a whole
    // (one syncfs) before it is renamed into place.
    z.finish()?.flush()
}

struct Input<R>(R);

impl<R: Read> Input<R> {
    fn arr<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.0.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let len = self.u32()? as usize;
        if len > 16 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "file list: oversized field",
            ));
        }
        let mut b = vec![0u8; len];
        self.0.read_exact(&mut b)?;
        Ok(b)
    }
}

/// Reads a list, with the algorithm of its content sums.
pub fn read_list(path: &Path) -> io::Result<(SumKind, Vec<FileEntry>)> {
    let mut f = BufReader::new(File::open(path)?);
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic)?;
    let sums = match &magic {
        m if m == MAGIC => SumKind::Xxh3,
        m if m == MAGIC_V1 => SumKind::Sha256,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a file list", path.display()),
            ))
        }
    };
    let mut r = Input(zstd::stream::read::Decoder::with_buffer(f)?);
    let n = r.u64()?;
    let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
    for _ in 0..n {
        let path = r.bytes()?;
        let [kind] = r.arr()?;
        let (mode, uid, gid, mtime_nsec) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let mtime = r.u64()? as i64;
        let (size, rdev) = (r.u64()?, r.u64()?);
        let sum = sums.read_sum(&mut r.0)?;
        let target = r.bytes()?;
        let nx = r.u32()?;
        let mut xattrs = vec![];
        for _ in 0..nx.min(1 << 16) {
            xattrs.push((r.bytes()?, r.bytes()?));
        }
        out.push(FileEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            mtime_nsec,
            size,
            rdev,
            sum: (kind == b'f').then_some(sum),
            target: (kind == b'l').then_some(target),
            xattrs,
        });
    }
    Ok((sums, out))
}

// ---- comparing

/// One difference between the recorded list and the tree as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    pub what: String,
}

impl Change {
    pub fn shown_path(&self) -> String {
        if self.path.is_empty() {
            "/".to_string()
        } else {
            format!("/{}", String::from_utf8_lossy(&self.path))
        }
    }
}

fn kind_name(k: u8) -> &'static str {
    match k {
        b'd' => "directory",
        b'f' => "file",
        b'l' => "symlink",
        b'c' => "char device",
        b'b' => "block device",
        b'p' => "fifo",
        _ => "socket",
    }
}

/// Differences between `want` (recorded) and `got` (found), both sorted by path.
pub fn compare(want: &[FileEntry], got: &[FileEntry]) -> Vec<Change> {
    let mut out = vec![];
    let (mut i, mut j) = (0, 0);
    let change = |path: &[u8], what: String| Change {
        path: path.to_vec(),
        what,
    };
    while i < want.len() || j < got.len() {
        let ord = match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) => a.path.cmp(&b.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                out.push(change(
                    &want[i].path,
                    format!("{} missing", kind_name(want[i].kind)),
                ));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(change(
                    &got[j].path,
                    format!("{} added", kind_name(got[j].kind)),
                ));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (a, b) = (&want[i], &got[j]);
                let mut what: Vec<String> = vec![];
                if a.kind != b.kind {
                    what.push(format!(
                        "type {} -> {}",
                        kind_name(a.kind),
                        kind_name(b.kind)
                    ));
                } else {
                    if a.size != b.size {
                        what.push(format!("size {} -> {}", a.size, b.size));
                    } else if a.sum != b.sum {
                        what.push("content changed".into());
                    }
                    if a.target != b.target {
                        what.push("symlink target changed".into());
                    }
                    if a.rdev != b.rdev {
                        what.push("device number changed".into());
                    }
                }
                if a.mode != b.mode {
                    what.push(format!("mode {:04o} -> {:04o}", a.mode, b.mode));
                }
                if (a.uid, a.gid) != (b.uid, b.gid) {
                    what.push(format!("owner {}:{} -> {}:{}", a.uid, a.gid, b.uid, b.gid));
                }
                if a.xattrs != b.xattrs {
                    what.push("xattrs changed".into());
                }
                if (a.mtime, a.mtime_nsec) != (b.mtime, b.mtime_nsec)
                    && a.kind == b.kind
                    && a.kind != b'd'
                {
                    what.push("mtime changed".into());
                }
                if !what.is_empty() {
                    out.push(change(&a.path, what.join(", ")));
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "filelist_tests.rs"]
mod tests;
