//! What the mount and copier tests share beyond the testkit: a mount guard, the probe's answer, the
//! layer set they all mount (built with the testkit's `LayerDir`), and the testkit's tree
//! description in the shape their assertions read (path -> line).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(crate) use lamina_testkit::layerdir::LayerDir;
use lamina_testkit::tree;
use rustix::fs::FileType;

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

/// The testkit's description of the tree below `root` (mtimes to the nanosecond), one line per
/// path: type, mode, owner, size, content hash, symlink target, device, xattrs, mtime, and
/// hardlink group, written `inode-group=` (as treemanifest.py: for inodes that two or more paths
/// in the tree share, the first such path in walk order; a link count raised by names outside the
/// tree, or hidden by a whiteout, is not visible).
pub(crate) fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
    tree::describe_ns(root)
        .into_iter()
        .map(|(path, e)| {
            let line = tree::show(&e).replace(" hardlink=", " inode-group=");
            (PathBuf::from(path), line)
        })
        .collect()
}

/// What differs between two descriptions, for a readable assertion message.
pub(crate) fn diff(a: &BTreeMap<PathBuf, String>, b: &BTreeMap<PathBuf, String>) -> String {
    let manifest = |m: &BTreeMap<PathBuf, String>| {
        let lines: Vec<String> = m
            .iter()
            .map(|(path, line)| format!("{} {line}", path.display()))
            .collect();
        tree::parse(&lines.join("\n"))
    };
    tree::differences_exact(&manifest(a), &manifest(b)).join("\n")
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
    let l3 = LayerDir::new(base.join("l3"));
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

    let l2 = LayerDir::new(base.join("l2"));
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

    let l1 = LayerDir::new(base.join("l1"));
    l1.whiteout("usr/bin/y")
        .whiteout("etc/hosts")
        .whiteout("nothing_below")
        .symlink("var/lib/dpkg/status", "/dev/null")
        .file("new/dir/deep/file", b"deep", 0o640)
        .hardlink("new/hl", "new/dir/deep/file")
        .file("user_overlay", b"u", 0o644)
        .xattr("user_overlay", "user.overlay.foo", b"bar")
        .mtime("new/dir/deep", 1_234_567_890, 42);

    let l0 = LayerDir::new(base.join("l0"));
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
            let layer = LayerDir::new(base.join(format!("{i:04}")));
            layer.file(&format!("f{i}"), b"", 0o644).file(
                "common",
                i.to_string().as_bytes(),
                0o644,
            );
            layer.0
        })
        .collect()
}
