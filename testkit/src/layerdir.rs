//! A layer dir built entry by entry, in the overlay format lamina stores layers in: whiteouts
//! are 0:0 character devices, opaque dirs carry `trusted.overlay.opaque=y`. For the mount,
//! copier, diff and fixup tests, which need layer dirs without going through a tar.
//!
//! Every call panics on failure (these are fixtures); parents are made as needed (mode 0755).

use rustix::fs::{chownat, mknodat, utimensat, AtFlags, FileType, Gid, Mode, Timestamps, Uid, CWD};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// The opaque-dir xattr lamina's layer dirs use (overlayfs' `trusted.` form).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Writes entries into one layer dir.
pub struct LayerDir(pub PathBuf);

impl LayerDir {
    pub fn new(path: impl Into<PathBuf>) -> LayerDir {
        let path = path.into();
        fs::create_dir_all(&path).expect("create layer dir");
        LayerDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
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

    /// An overlay whiteout: a 0:0 character device, mode 0000.
    pub fn whiteout(&self, rel: &str) -> &Self {
        self.node(rel, FileType::CharacterDevice, 0, 0, 0o000)
    }

    /// Marks an existing dir opaque.
    pub fn opaque(&self, rel: &str) -> &Self {
        self.xattr(rel, OPAQUE_XATTR, b"y")
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

    /// Sets atime and mtime (do it after the entry's children exist, for dirs).
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
