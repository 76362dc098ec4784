//! Helpers for the unpacker's tests: building archives (hostile ones included), compressing them,
//! unpacking them with the right digests, and looking at the result.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{unpack_layer, ExpectedBlob, LayerReport, UnpackError, UnpackOptions};
use crate::digest::Digest;

/// Builds tar archives member by member; names are written raw into the header (or as PAX / GNU
/// long names), bypassing the tar crate's path checks so that hostile names can be made.
pub(crate) struct TarBuild {
    out: Vec<u8>,
}

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

pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    crate::tar::pax::pax_record(key.as_bytes(), value)
}

impl TarBuild {
    pub fn new() -> Self {
        TarBuild { out: Vec::new() }
    }

    /// Appends one raw member: header fields as given, name bytes put straight into the header
    /// when they fit, else into a PAX `path` record.
    #[allow(clippy::too_many_arguments)]
    pub fn member(
        &mut self,
        typeflag: u8,
        name: &[u8],
        link: &[u8],
        data: &[u8],
        meta: &Meta,
        dev: (u32, u32),
    ) -> &mut Self {
        let mut pax: Vec<u8> = Vec::new();
        for (k, v) in &meta.pax {
            pax.extend(pax_record(k, v));
        }
        if name.len() > 100 {
            pax.extend(pax_record("path", name));
        }
        if link.len() > 100 {
            pax.extend(pax_record("linkpath", link));
        }
        if !pax.is_empty() {
            self.raw_header(
                b'x',
                b"././@PaxHeader",
                b"",
                pax.len() as u64,
                &Meta::default(),
                (0, 0),
            );
            self.data(&pax);
        }
        let short = |b: &[u8]| {
            if b.len() > 100 {
                b[..100].to_vec()
            } else {
                b.to_vec()
            }
        };
        self.raw_header(
            typeflag,
            &short(name),
            &short(link),
            data.len() as u64,
            meta,
            dev,
        );
        self.data(data);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8], meta: &Meta) -> &mut Self {
        self.member(b'0', name.as_bytes(), b"", data, meta, (0, 0))
    }
    pub fn dir(&mut self, name: &str, meta: &Meta) -> &mut Self {
        self.member(b'5', name.as_bytes(), b"", b"", meta, (0, 0))
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.member(
            b'2',
            name.as_bytes(),
            target.as_bytes(),
            b"",
            &Meta::default(),
            (0, 0),
        )
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.member(
            b'1',
            name.as_bytes(),
            target.as_bytes(),
            b"",
            &Meta::default(),
            (0, 0),
        )
    }
    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.file(name, b"", &Meta::default())
    }

    /// A GNU long-name member ('L') before the real one.
    pub fn gnu_long(&mut self, typeflag: u8, name: &[u8], link: &[u8], data: &[u8]) -> &mut Self {
        let nul = |b: &[u8]| [b, b"\0"].concat();
        self.raw_header(
            b'L',
            b"././@LongLink",
            b"",
            name.len() as u64 + 1,
            &Meta::default(),
            (0, 0),
        );
        self.data(&nul(name));
        if !link.is_empty() {
            self.raw_header(
                b'K',
                b"././@LongLink",
                b"",
                link.len() as u64 + 1,
                &Meta::default(),
                (0, 0),
            );
            self.data(&nul(link));
        }
        self.raw_header(
            typeflag,
            &name[..name.len().min(99)],
            &link[..link.len().min(99)],
            data.len() as u64,
            &Meta::default(),
            (0, 0),
        );
        self.data(data);
        self
    }

    pub fn raw_header(
        &mut self,
        typeflag: u8,
        name: &[u8],
        link: &[u8],
        size: u64,
        meta: &Meta,
        dev: (u32, u32),
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_mtime(meta.mtime);
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(typeflag));
        h.set_device_major(dev.0).unwrap();
        h.set_device_minor(dev.1).unwrap();
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self
    }

    pub fn data(&mut self, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// The archive with its end-of-archive marker.
    pub fn finish(&self) -> Vec<u8> {
        let mut v = self.out.clone();
        v.extend(std::iter::repeat_n(0u8, 1024));
        v
    }
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
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

/// Sorted relative paths of everything below `root`.
pub(crate) fn listing(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if lmeta(&p).is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// One line per path below `root`: type, mode, owner, size, mtime (not for directories, whose
/// mtime changes as children are made), device, link target, xattrs, content digest, and the
/// first name of its inode when it has several. Equal descriptions mean equal trees.
pub(crate) fn describe(root: &Path) -> Vec<String> {
    let mut first_name = std::collections::HashMap::new();
    listing(root)
        .into_iter()
        .map(|rel| {
            let p = root.join(&rel);
            let m = lmeta(&p);
            let ft = m.file_type();
            let mut xattrs = Vec::new();
            let mut names = vec![0u8; 65536];
            let n = rustix::fs::llistxattr(p.as_os_str().as_bytes(), &mut names[..]).unwrap_or(0);
            for x in names[..n].split(|&b| b == 0).filter(|x| !x.is_empty()) {
                let x = String::from_utf8_lossy(x).into_owned();
                xattrs.push(format!("{x}={:?}", xattr(&p, &x)));
            }
            xattrs.sort();
            let content = if ft.is_file() {
                Digest::of_bytes(&std::fs::read(&p).unwrap()).to_string()
            } else if ft.is_symlink() {
                format!("-> {:?}", std::fs::read_link(&p).unwrap())
            } else {
                String::new()
            };
            let link = if !ft.is_dir() && m.nlink() > 1 {
                first_name
                    .entry(m.ino())
                    .or_insert_with(|| rel.clone())
                    .display()
                    .to_string()
            } else {
                String::new()
            };
            format!(
                "{:?} {:o} {}:{} size={} mtime={} rdev={} {:?} {} link={}",
                rel,
                m.mode(),
                m.uid(),
                m.gid(),
                if ft.is_dir() { 0 } else { m.size() },
                if ft.is_dir() { 0 } else { m.mtime() },
                m.rdev(),
                xattrs,
                content,
                link
            )
        })
        .collect()
}
