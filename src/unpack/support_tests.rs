//! What the unpacker's tests share: archives built (hostile ones included) and compressed with the
//! testkit, unpacked here with the right digests, and the result looked at.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) use lamina_testkit::compress::{gzip, zstd};
use lamina_testkit::tarw::{Header, TarWriter, DIR, HARDLINK, REG, SYMLINK};
use lamina_testkit::tree;

use super::{unpack_layer, ExpectedBlob, LayerReport, UnpackError, UnpackOptions};
use crate::digest::Digest;

/// The unpacker tests' archive builder: the call shapes they were written against (a [`Meta`] per
/// member, raw type flags), each a thin layer over the testkit's independent [`TarWriter`], which
/// writes names raw (or as PAX / GNU long names) so that hostile archives can be made.
pub(crate) struct TarBuild(TarWriter);

#[derive(Clone)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub pax: Vec<(String, Vec<u8>)>,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            pax: Vec::new(),
        }
    }
}

/// A header with `meta`'s fields; the writer sets the size from the data.
fn header(typeflag: u8, name: &[u8], link: &[u8], meta: &Meta, dev: (u32, u32)) -> Header {
    let mut h = Header::new(name, typeflag);
    h.link = link.to_vec();
    h.mode = meta.mode;
    h.uid = meta.uid;
    h.gid = meta.gid;
    h.mtime = meta.mtime;
    h.dev = dev;
    h
}

impl TarBuild {
    pub fn new() -> Self {
        TarBuild(TarWriter::new())
    }

    /// Appends one member: `meta.pax` and any name or link too long for the header go into a PAX
    /// header before it.
    pub fn member(
        &mut self,
        typeflag: u8,
        name: &[u8],
        link: &[u8],
        data: &[u8],
        meta: &Meta,
        dev: (u32, u32),
    ) -> &mut Self {
        let records: Vec<(&str, &[u8])> = meta
            .pax
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let h = header(typeflag, name, link, meta, dev);
        self.0.entry_with_pax(h, &records, data);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8], meta: &Meta) -> &mut Self {
        self.member(REG, name.as_bytes(), b"", data, meta, (0, 0))
    }
    pub fn dir(&mut self, name: &str, meta: &Meta) -> &mut Self {
        self.member(DIR, name.as_bytes(), b"", b"", meta, (0, 0))
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let meta = Meta::default();
        self.member(
            SYMLINK,
            name.as_bytes(),
            target.as_bytes(),
            b"",
            &meta,
            (0, 0),
        )
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let meta = Meta::default();
        self.member(
            HARDLINK,
            name.as_bytes(),
            target.as_bytes(),
            b"",
            &meta,
            (0, 0),
        )
    }
    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.file(name, b"", &Meta::default())
    }

    /// GNU long-name members ('L', and 'K' for a link) before the real one.
    pub fn gnu_long(&mut self, typeflag: u8, name: &[u8], link: &[u8], data: &[u8]) -> &mut Self {
        let h = header(typeflag, name, link, &Meta::default(), (0, 0));
        self.0.gnu_long(h, data);
        self
    }

    /// A header alone, its size field as given (to write sizes that lie).
    pub fn raw_header(
        &mut self,
        typeflag: u8,
        name: &[u8],
        link: &[u8],
        size: u64,
        meta: &Meta,
        dev: (u32, u32),
    ) -> &mut Self {
        let mut h = header(typeflag, name, link, meta, dev);
        h.size = size;
        self.0.header(&h);
        self
    }

    /// The archive with its end-of-archive marker.
    pub fn finish(&self) -> Vec<u8> {
        self.0.finish()
    }
}

/// Unpacks `blob` whose uncompressed form is `tar`, with the correct digests.
pub(crate) fn unpack(blob: &[u8], tar: &[u8], dest: &Path) -> Result<LayerReport, UnpackError> {
    unpack_opts(blob, tar, dest, &UnpackOptions::default())
}

pub(crate) fn unpack_opts(
    blob: &[u8],
    tar: &[u8],
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<LayerReport, UnpackError> {
    let digest = Digest::of_bytes(blob);
    let diff_id = Digest::of_bytes(tar);
    let expected = ExpectedBlob {
        digest: &digest,
        size: Some(blob.len() as u64),
        diff_id: &diff_id,
    };
    unpack_layer(blob, &expected, dest, opts)
}

/// Unpacks an uncompressed tar into a fresh temp dir.
pub(crate) fn unpack_tar(tar: &[u8]) -> (tempfile::TempDir, Result<LayerReport, UnpackError>) {
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(tar, tar, dir.path());
    (dir, r)
}

pub(crate) fn lmeta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

pub(crate) fn mode_of(p: &Path) -> u32 {
    lmeta(p).mode() & 0o7777
}

pub(crate) fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let path = p.as_os_str().as_bytes();
    rustix::fs::lgetxattr(path, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

pub(crate) fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

/// The testkit's description of the tree below `root` (type, mode, owner, size, content digest,
/// link target, device, xattrs, hardlink group), without the root itself and without directories'
/// mtimes, which change as children are made. Equal descriptions mean equal trees.
pub(crate) fn describe(root: &Path) -> tree::Manifest {
    let mut m = tree::describe(root);
    m.remove("/");
    for e in m.values_mut().filter(|e| e.kind == "dir") {
        e.fields.remove("mtime");
    }
    m
}
