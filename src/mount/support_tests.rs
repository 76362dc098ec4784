//! Test helpers shared by the mount and copier tests: hand-built layer dirs, a mount guard, and a
//! tree describer to compare an overlay view with a copy.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{chownat, mknodat, utimensat, AtFlags, FileType, Gid, Mode, Timestamps, Uid, CWD};
use sha2::{Digest as _, Sha256};

use super::{probe, Features};

/// Unmounts (lazily, so a failing test cannot leave a busy mount) every target it holds on drop.
#[derive(Default)]
pub(crate) struct MountGuard(pub Vec<PathBuf>);

impl MountGuard {
    pub fn push(&mut self, target: &Path) {
        self.0.push(target.to_path_buf());
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            while super::is_mountpoint(target) {
                if rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH).is_err() {
                    break;
                }
            }
        }
    }
}

/// Writes entries into one layer dir.
pub(crate) struct Layer(pub PathBuf);

impl Layer {
    pub fn new(path: PathBuf) -> Layer {
        fs::create_dir_all(&path).expect("create layer dir");
        Layer(path)
    }

    fn at(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dirs");
        }
        path
    }

    pub fn dir(&self, rel: &str, mode: u32) -> &Self {
        let path = self.at(rel);
        fs::create_dir_all(&path).expect("mkdir");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod dir");
        self
    }

    pub fn file(&self, rel: &str, data: &[u8], mode: u32) -> &Self {
        let path = self.at(rel);
        fs::write(&path, data).expect("write file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod file");
        self
    }

    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        symlink(target, self.at(rel)).expect("symlink");
        self
    }

    pub fn hardlink(&self, rel: &str, existing: &str) -> &Self {
        fs::hard_link(self.0.join(existing), self.at(rel)).expect("hardlink");
        self
    }

    pub fn node(&self, rel: &str, kind: FileType, major: u32, minor: u32, mode: u32) -> &Self {
        let dev = rustix::fs::makedev(major, minor);
        mknodat(CWD, self.at(rel), kind, Mode::from_raw_mode(mode), dev).expect("mknod");
        rustix::fs::chmod(self.0.join(rel), Mode::from_raw_mode(mode)).expect("chmod node");
        self
    }

    pub fn whiteout(&self, rel: &str) -> &Self {
        self.node(rel, FileType::CharacterDevice, 0, 0, 0o000)
    }

    pub fn opaque(&self, rel: &str) -> &Self {
        self.xattr(rel, crate::layerfs::OPAQUE_XATTR, b"y")
    }

    pub fn xattr(&self, rel: &str, name: &str, value: &[u8]) -> &Self {
        rustix::fs::lsetxattr(
            self.0.join(rel),
            name,
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .expect("setxattr");
        self
    }

    pub fn owner(&self, rel: &str, uid: u32, gid: u32) -> &Self {
        let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        chownat(CWD, self.0.join(rel), uid, gid, AtFlags::SYMLINK_NOFOLLOW).expect("chown");
        self
    }

    /// Set atime and mtime (do it after the entry's children exist, for dirs).
    pub fn mtime(&self, rel: &str, secs: i64, nanos: i64) -> &Self {
        let ts = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        };
        let times = Timestamps {
            last_access: ts,
            last_modification: ts,
        };
        utimensat(CWD, self.0.join(rel), &times, AtFlags::SYMLINK_NOFOLLOW).expect("utimensat");
        self
    }
}

/// One line per entry: type, mode, owner, size, content hash, symlink target, device, xattrs, mtime
/// in nanoseconds, and hardlink group (as treemanifest.py: for inodes that two or more paths in the
/// tree share, the first such path in walk order; a link count raised by names outside the tree, or
/// hidden by a whiteout, is not visible).
pub(crate) fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<PathBuf>> = HashMap::new();
    describe_into(root, Path::new("/"), &mut out, &mut inodes);
    for paths in inodes.values().filter(|p| p.len() > 1) {
        for path in paths {
            if let Some(line) = out.get_mut(path) {
                *line += &format!(" inode-group={}", paths[0].display());
            }
        }
    }
    out
}

fn describe_into(
    path: &Path,
    rel: &Path,
    out: &mut BTreeMap<PathBuf, String>,
    inodes: &mut HashMap<(u64, u64), Vec<PathBuf>>,
) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {path:?}: {e}"));
    let ft = meta.file_type();
    let kind = FileType::from_raw_mode(meta.mode());
    let mut line = format!(
        "{kind:?} mode={:o} uid={} gid={}",
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid()
    );
    if ft.is_file() {
        let data = fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        line += &format!(
            " size={} sha256={}",
            data.len(),
            hex::encode(Sha256::digest(&data))
        );
    }
    if ft.is_symlink() {
        let target = fs::read_link(path).expect("readlink");
        line += &format!(" target={}", target.display());
    }
    if matches!(kind, FileType::CharacterDevice | FileType::BlockDevice) {
        line += &format!(
            " dev={}:{}",
            rustix::fs::major(meta.rdev()),
            rustix::fs::minor(meta.rdev())
        );
    }
    for (name, value) in xattrs(path) {
        line += &format!(" xattr={}={}", name, hex::encode(value));
    }
    line += &format!(" mtime={}.{:09}", meta.mtime(), meta.mtime_nsec());
    if !ft.is_dir() && meta.nlink() > 1 {
        inodes
            .entry((meta.dev(), meta.ino()))
            .or_default()
            .push(rel.to_path_buf());
    }
    out.insert(rel.to_path_buf(), line);
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .expect("readdir")
            .map(|e| e.expect("dirent").file_name())
            .collect();
        names.sort();
        for name in names {
            describe_into(&path.join(&name), &rel.join(&name), out, inodes);
        }
    }
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut list = vec![0u8; 64 * 1024];
    let len = rustix::fs::llistxattr(path, &mut list[..]).unwrap_or(0);
    let mut out: Vec<(String, Vec<u8>)> = list[..len]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let mut value = vec![0u8; 64 * 1024];
            let n = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..])
                .expect("getxattr");
            value.truncate(n);
            (String::from_utf8_lossy(name).into_owned(), value)
        })
        .collect();
    out.sort();
    out
}

/// Group lines that differ, for a readable assertion message.
pub(crate) fn diff(a: &BTreeMap<PathBuf, String>, b: &BTreeMap<PathBuf, String>) -> String {
    let mut out = String::new();
    for (path, line) in a {
        match b.get(path) {
            Some(other) if other == line => {}
            Some(other) => out += &format!("~ {}\n  - {line}\n  + {other}\n", path.display()),
            None => out += &format!("- {} {line}\n", path.display()),
        }
    }
    for (path, line) in b {
        if !a.contains_key(path) {
            out += &format!("+ {} {line}\n", path.display());
        }
    }
    out
}

/// A `security.capability` v2 value granting `cap_net_raw` (bit 13), effective.
pub(crate) fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

/// The layer set the mount and copier tests share, top first; see the comments for what each shows.
pub(crate) fn build_layers(base: &Path) -> Vec<PathBuf> {
    let l3 = Layer::new(base.join("l3"));
    l3.dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0\n", 0o644)
        .file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)
        .xattr("etc/hosts", "user.mime", b"text/plain")
        .file("bin/sh", b"#!sh", 0o755)
        .hardlink("bin/bash", "bin/sh")
        .file("usr/bin/su", b"su", 0o4755)
        .file("usr/bin/wall", b"wall", 0o2755)
        .owner("usr/bin/wall", 0, 5)
        .file("usr/bin/x", b"xy", 0o755)
        .hardlink("usr/bin/y", "usr/bin/x")
        .file("usr/lib/libc.so", &vec![7u8; 300_000], 0o644)
        .symlink("lib", "usr/lib")
        .dir("tmp", 0o1777)
        .file("var/lib/dpkg/status", b"Package: base\n", 0o644)
        .node("dev/null", FileType::CharacterDevice, 1, 3, 0o666)
        .node("dev/sda", FileType::BlockDevice, 8, 0, 0o660)
        .node("run/initctl", FileType::Fifo, 0, 0, 0o600)
        .file("opt/old/file1", b"1", 0o644)
        .file("opt/old/sub/file2", b"2", 0o644)
        .file("file_then_dir", b"was a file", 0o644)
        .file("dir_then_file/child", b"child", 0o644)
        .file("usr/bin/ping", b"ping", 0o755)
        .xattr("usr/bin/ping", "security.capability", &cap_net_raw())
        .dir("home/u", 0o700)
        .owner("home/u", 1000, 1000)
        .file("home/u/.profile", b"PS1=$", 0o600)
        .owner("home/u/.profile", 1000, 1000)
        .mtime("usr/lib/libc.so", 1_600_000_000, 123_456_789)
        .mtime("home/u", 1_500_000_000, 5);

    let l2 = Layer::new(base.join("l2"));
    l2.dir("etc", 0o750)
        .file("etc/passwd", b"root:x:0:0\nu:x:1000:1000\n", 0o644)
        .dir("opt/old", 0o755)
        .opaque("opt/old")
        .file("opt/old/newfile", b"new", 0o644)
        .file("file_then_dir/inside", b"dir now", 0o644)
        .file("dir_then_file", b"file now", 0o600)
        .dir("tmp", 0o1777)
        .file("tmp/x", b"tmpfile", 0o666)
        .mtime("etc", 1_400_000_000, 999)
        .mtime("tmp", 1_300_000_000, 1);

    let l1 = Layer::new(base.join("l1"));
    l1.whiteout("usr/bin/y")
        .whiteout("etc/hosts")
        .whiteout("nothing_below")
        .symlink("var/lib/dpkg/status", "/dev/null")
        .file("new/dir/deep/file", b"deep", 0o640)
        .hardlink("new/hl", "new/dir/deep/file")
        .file("user_overlay", b"u", 0o644)
        .xattr("user_overlay", "user.overlay.foo", b"bar")
        .mtime("new/dir/deep", 1_234_567_890, 42);

    let l0 = Layer::new(base.join("l0"));
    l0.file("etc/hosts", b"10.0.0.1 top\n", 0o600)
        .file("opt/old/newfile2", b"top", 0o644)
        .dir("usr", 0o755)
        .xattr("usr", "user.top", b"1")
        .symlink("bin/dangling", "../nowhere")
        .file("escaped", b"e", 0o644)
        .xattr("escaped", "trusted.overlay.overlay.origin", b"keep")
        .mtime("usr", 1_111_111_111, 111)
        .mtime("etc", 1_222_222_222, 222);
    vec![l0.0, l1.0, l2.0, l3.0]
}

/// The probe's answer for this machine, found once per test run.
pub(crate) fn features() -> &'static Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    FEATURES.get_or_init(|| {
        let scratch = tempfile::tempdir().expect("tempdir");
        probe(scratch.path())
    })
}

pub(crate) fn mkdirs(base: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let p = base.join(n);
            fs::create_dir_all(&p).expect("mkdir");
            p
        })
        .collect()
}

pub(crate) fn write_refused(path: &Path) -> bool {
    matches!(fs::write(path, b"x"), Err(e) if e.raw_os_error() == Some(rustix::io::Errno::ROFS.raw_os_error()))
}

/// `n` tiny layers in one parent dir with short names; layer i has `f<i>` and `common` = i.
pub(crate) fn many_layers(base: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let layer = Layer::new(base.join(format!("{i:04}")));
            layer.file(&format!("f{i}"), b"", 0o644).file(
                "common",
                i.to_string().as_bytes(),
                0o644,
            );
            layer.0
        })
        .collect()
}
