//! Which filesystem a path lives on, and what state it is in: enough to tell a person "no space left on
//! /dev/loop3 (mounted at /var/lib/lamina)" instead of "disk I/O error".

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The filesystem holding a path, as /proc/self/mountinfo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    /// What was mounted (`/dev/loop3`, `tmpfs`, `server:/export`).
    pub source: String,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
}

/// Free blocks and inodes, and whether it is mounted read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Blocks the caller may still use (root may also use the reserved ones: `free_blocks`).
    pub avail_blocks: u64,
    pub free_blocks: u64,
    pub free_inodes: u64,
    pub read_only: bool,
}

/// `statvfs(2)` of `path`.
pub fn space(path: &Path) -> io::Result<Space> {
    let s = rustix::fs::statvfs(path)?;
    Ok(Space {
        avail_blocks: s.f_bavail,
        free_blocks: s.f_bfree,
        free_inodes: s.f_ffree,
        read_only: s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

/// Whether an ENOSPC at `path` (existing or not) was for want of inodes: its filesystem has none
/// free. Asked when the error happens: the cleanup after it frees some.
pub fn inodes_used_up(path: &Path) -> bool {
    existing_ancestor(path)
        .and_then(|p| space(p).ok())
        .is_some_and(|s| s.free_inodes == 0)
}

/// The nearest ancestor of `path` (itself included) that exists: an error about a file that could not
/// be created names a path that is not there.
pub fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok())
}

/// The mount that holds `path` (an existing path): the mountinfo entry with the path's device number
/// whose mountpoint is the longest prefix of the path (a device mounted twice, or bind-mounted,
/// has several entries).
pub fn mount_source(path: &Path) -> io::Result<MountSource> {
    let meta = std::fs::metadata(path)?;
    let dev = meta.dev();
    let want = format!(
        "{}:{}",
        rustix::fs::major(dev as _),
        rustix::fs::minor(dev as _)
    );
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut best: Option<MountSource> = None;
    for line in text.lines() {
        let Some(m) = parse_line(line) else { continue };
        if m.0 != want {
            continue;
        }
        let candidate = MountSource {
            source: m.2,
            mountpoint: m.1,
        };
        let better = match &best {
            None => true,
            Some(b) => {
                path.starts_with(&candidate.mountpoint)
                    && (!path.starts_with(&b.mountpoint)
                        || candidate.mountpoint.as_os_str().len() > b.mountpoint.as_os_str().len())
            }
        };
        if better {
            best = Some(candidate);
        }
    }
    best.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no mountinfo entry"))
}

/// (major:minor, mountpoint, source) of one mountinfo line:
/// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`.
pub(crate) fn parse_line(line: &str) -> Option<(String, PathBuf, String)> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let dev = l.nth(2)?.to_string();
    let mountpoint = PathBuf::from(unescape(l.nth(1)?));
    let mut r = right.split(' ');
    let source = unescape(r.nth(1)?);
    Some((dev, mountpoint, source))
}

/// mountinfo writes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "fsinfo_tests.rs"]
mod tests;
