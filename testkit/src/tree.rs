//! Tree descriptions, the one format every test compares trees in: that of
//! ../shared/tools/treemanifest.py (`PATH TYPE key=value...`, one line per entry).
//! `treemanifest(dir)` runs the python tool when ../shared is there, else [`walk_lines`], an
//! equivalent walker (driver-tests/testkit.rs checks that they agree), and parses the lines.
//! [`describe`] is the walker alone, for unit tests that must not depend on python.

use crate::compress::sha256_hex;
use crate::env;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

/// One entry: its type and fields (mode, uid, gid, size, sha256, target, dev, mtime, hardlink)
/// and xattrs (name -> hex value), all as the text the manifest holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub kind: String,
    pub fields: BTreeMap<String, String>,
    pub xattrs: BTreeMap<String, String>,
}

/// escaped path ("/" for the root) -> entry
pub type Manifest = BTreeMap<String, Entry>;

pub fn treemanifest(dir: &Path) -> Manifest {
    let text = match env::shared_file(TREEMANIFEST_PY) {
        Some(shared) => run_treemanifest_py(&shared, dir),
        None => walk_lines(dir).join("\n"),
    };
    parse(&text)
}

/// Where the python tool is, below ../shared.
pub const TREEMANIFEST_PY: &str = "tools/treemanifest.py";

/// `python3 SHARED/tools/treemanifest.py DIR`'s output; panics when it fails.
pub fn run_treemanifest_py(shared: &Path, dir: &Path) -> String {
    let out = Command::new("python3")
        .arg(shared.join(TREEMANIFEST_PY))
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start python3: {e}"));
    assert!(
        out.status.success(),
        "treemanifest.py {} exited with {:?}\n--- stderr ---\n{}",
        dir.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The walker's manifest of `dir`, without python.
pub fn describe(dir: &Path) -> Manifest {
    parse(&walk_lines(dir).join("\n"))
}

/// The same with mtimes to the nanosecond (`mtime=SECONDS.NNNNNNNNN`), for comparing two trees
/// lamina made (a copy against an overlay view), where a lost nanosecond is a bug.
pub fn describe_ns(dir: &Path) -> Manifest {
    parse(&walk_lines_with(dir, Mtime::Nanos).join("\n"))
}

/// How the walker writes mtimes.
#[derive(Clone, Copy, PartialEq)]
pub enum Mtime {
    /// whole seconds, rounded down, as treemanifest.py writes them
    Seconds,
    /// seconds and nanoseconds
    Nanos,
}

pub fn parse(text: &str) -> Manifest {
    let mut m = Manifest::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut parts = line.split(' ');
        let path = parts.next().unwrap_or_default().to_string();
        let kind = parts.next().unwrap_or_default().to_string();
        let mut e = Entry {
            kind,
            fields: BTreeMap::new(),
            xattrs: BTreeMap::new(),
        };
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            if k == "xattr" {
                let (name, value) = v.split_once('=').unwrap_or((v, ""));
                e.xattrs.insert(name.to_string(), value.to_string());
            } else {
                e.fields.insert(k.to_string(), v.to_string());
            }
        }
        m.insert(path, e);
    }
    m
}

/// What a comparison leaves out.
#[derive(Clone, Copy)]
pub struct Compare {
    /// directories' mtimes (a mount or unpack touches them)
    pub dir_mtimes: bool,
    /// the root directory's mtime
    pub root_mtime: bool,
    /// the mtimes of everything else
    pub other_mtimes: bool,
}

pub const ORACLE: Compare = Compare {
    dir_mtimes: false,
    root_mtime: false,
    other_mtimes: true,
};
pub const ALL: Compare = Compare {
    dir_mtimes: true,
    root_mtime: true,
    other_mtimes: true,
};
pub const NO_MTIMES: Compare = Compare {
    dir_mtimes: false,
    root_mtime: false,
    other_mtimes: false,
};

fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

fn normalize(m: &Manifest, how: Compare) -> Manifest {
    m.iter()
        .map(|(path, e)| {
            let mut e = e.clone();
            e.xattrs.retain(|k, _| !is_overlay_xattr(k));
            let drop_mtime = if path == "/" {
                !how.root_mtime
            } else if e.kind == "dir" {
                !how.dir_mtimes
            } else {
                !how.other_mtimes
            };
            if drop_mtime {
                e.fields.remove("mtime");
            }
            (path.clone(), e)
        })
        .collect()
}

/// Differences between `expected` and `actual`, one readable line each (empty when equal).
pub fn differences(expected: &Manifest, actual: &Manifest, how: Compare) -> Vec<String> {
    differences_exact(&normalize(expected, how), &normalize(actual, how))
}

/// [`differences`] leaving nothing out: every mtime and every xattr, overlay's own included.
pub fn differences_exact(a: &Manifest, b: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for (path, e) in a {
        match b.get(path) {
            None => out.push(format!("missing: {path} ({})", e.kind)),
            Some(f) if f != e => out.push(format!(
                "differs: {path}\n   expected {}\n   actual   {}",
                show(e),
                show(f)
            )),
            Some(_) => {}
        }
    }
    for (path, f) in b {
        if !a.contains_key(path) {
            out.push(format!("unexpected: {path} ({})", f.kind));
        }
    }
    out
}

/// The entry as its manifest line without the path: `TYPE key=value...`.
pub fn show(e: &Entry) -> String {
    let mut s = e.kind.clone();
    for (k, v) in &e.fields {
        s += &format!(" {k}={v}");
    }
    for (k, v) in &e.xattrs {
        s += &format!(" xattr={k}={v}");
    }
    s
}

/// Panics with the first differences when the trees are not the same.
pub fn assert_same(what: &str, expected: &Manifest, actual: &Manifest, how: Compare) {
    let d = differences(expected, actual, how);
    assert!(
        d.is_empty(),
        "{what}: {} differences ({} vs {} entries), first ones:\n{}",
        d.len(),
        expected.len(),
        actual.len(),
        d.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}

// ---- the walker used when ../shared is missing; same format as treemanifest.py ----

fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            0..=0x20 | 0x7f..=0xff => s.push_str(&format!("\\x{b:02x}")),
            _ => s.push(b as char),
        }
    }
    s
}

/// The lines treemanifest.py would print for `root` (mtimes in whole seconds).
pub fn walk_lines(root: &Path) -> Vec<String> {
    walk_lines_with(root, Mtime::Seconds)
}

/// [`walk_lines`] with the mtime precision chosen.
pub fn walk_lines_with(root: &Path, mtime: Mtime) -> Vec<String> {
    let mut lines = Vec::new();
    let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(root, "/", mtime, &mut lines, &mut links);
    // a hardlink field only for inodes that really occur twice inside the tree
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        if let Some(first) = l.1.as_ref() {
            *counts.entry(first.clone()).or_default() += 1;
        }
    }
    lines
        .into_iter()
        .map(|(line, first)| match first {
            Some(f) if counts[&f] > 1 => format!("{line} hardlink={f}"),
            _ => line,
        })
        .collect()
}

fn walk(
    path: &Path,
    name: &str,
    mtime: Mtime,
    out: &mut Vec<(String, Option<String>)>,
    links: &mut BTreeMap<(u64, u64), String>,
) {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) => panic!("stat {}: {e}", path.display()),
    };
    let ft = md.file_type();
    let kind = if ft.is_file() {
        "file"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    };
    let mut line = format!(
        "{name} {kind} mode={:04o} uid={} gid={}",
        md.mode() & 0o7777,
        md.uid(),
        md.gid()
    );
    if ft.is_file() {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        line += &format!(" size={} sha256={}", md.size(), sha256_hex(&bytes));
    }
    if ft.is_symlink() {
        let t =
            std::fs::read_link(path).unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()));
        line += &format!(" target={}", escape(t.as_os_str().as_bytes()));
    }
    if ft.is_char_device() || ft.is_block_device() {
        let dev = md.rdev();
        line += &format!(" dev={}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
    }
    for (k, v) in xattrs(path) {
        line += &format!(
            " xattr={}={}",
            escape(&k).replace('=', "\\x3d"),
            hex::encode(v)
        );
    }
    line += &match mtime {
        Mtime::Seconds => format!(" mtime={}", md.mtime()),
        Mtime::Nanos => format!(" mtime={}.{:09}", md.mtime(), md.mtime_nsec()),
    };
    let first = (!ft.is_dir() && md.nlink() > 1).then(|| {
        links
            .entry((md.dev(), md.ino()))
            .or_insert(name.to_string())
            .clone()
    });
    out.push((line, first));
    if ft.is_dir() {
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("readdir {}: {e}", path.display()))
            .map(|e| e.expect("dir entry").file_name().as_bytes().to_vec())
            .collect();
        names.sort();
        for n in names {
            let child = path.join(std::ffi::OsStr::from_bytes(&n));
            let child_name = if name == "/" {
                format!("/{}", escape(&n))
            } else {
                format!("{name}/{}", escape(&n))
            };
            walk(&child, &child_name, mtime, out, links);
        }
    }
}

/// Every xattr of `path` (not following a symlink) as (name, value), sorted by name.
pub fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = std::ffi::CString::new(name).expect("xattr names have no NUL");
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, cname.as_c_str(), &mut value[..]) {
            out.push((name.to_vec(), value[..len].to_vec()));
        }
    }
    out.sort();
    out
}
