//! Hostile trees (issue 15, points 4, 6 and 8): a layer thousands of levels deep, a container that
//! makes a tree deeper than `PATH_MAX`, layers and containers with huge sparse files, and a
//! container that sets overlay's own xattrs in the `user.` namespace. Each test builds its input,
//! runs the real binary within the runner's time limit, and checks the store and a canary dir
//! outside it stayed as they were.

use crate::common::{self, Run, Store};
use crate::load::marker_layer;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self as rfs, Mode, OFlags};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A dir beside the store that no command may touch: its listing before and after.
struct Canary(PathBuf, Vec<String>);

impl Canary {
    fn new(s: &Store) -> Canary {
        let dir = s.scratch("canary");
        fs::write(dir.join("keep"), b"canary\n").expect("canary");
        Canary(dir.clone(), common::list_dir(&dir))
    }

    fn check(&self) {
        assert_eq!(common::list_dir(&self.0), self.1, "canary dir changed");
        assert_eq!(fs::read(self.0.join("keep")).expect("canary"), b"canary\n");
    }
}

/// Loads an image made of a base marker layer and `top`, tagged `tag`.
fn load_image(s: &Store, tag: &str, top: Layer) -> Run {
    let dir = s.scratch(&format!("layout-{}", tag.replace(':', "-")));
    OciBuilder::new()
        .image(
            Some(tag.split(':').nth(1).unwrap_or("latest")),
            Image::new(vec![marker_layer("tree-base"), top]),
        )
        .write_layout(&dir);
    s.lamina(&[
        "load".as_ref(),
        dir.as_os_str(),
        "--tag".as_ref(),
        std::ffi::OsStr::new(tag),
    ])
}

fn open_dir(path: &Path) -> OwnedFd {
    rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Makes `depth` nested dirs `d` under `top`, one fd at a time (as a container's `mkdir d; cd d`
/// loop would), with a file `leaf` at the bottom.
fn make_deep(top: &Path, depth: usize) {
    let mut cur = open_dir(top);
    for _ in 0..depth {
        rfs::mkdirat(&cur, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
        cur = rfs::openat(
            &cur,
            "d",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("openat");
    }
    let f = rfs::openat(
        &cur,
        "leaf",
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("leaf");
    rustix::io::write(&f, b"bottom\n").expect("write leaf");
}

/// How deep `d/d/...` goes under `top`, and what its bottom `leaf` holds (read by fds).
fn measure_deep(top: &Path) -> (usize, Vec<u8>) {
    let mut cur = open_dir(top);
    let mut depth = 0;
    while let Ok(next) = rfs::openat(
        &cur,
        "d",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        cur = next;
        depth += 1;
    }
    let leaf = rfs::openat(
        &cur,
        "leaf",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open leaf");
    let mut buf = vec![0u8; 64];
    let n = rustix::io::read(leaf.as_fd(), &mut buf).expect("read leaf");
    buf.truncate(n);
    (depth, buf)
}

/// `lamina ARGS` under `/usr/bin/time`, within the runner's time limit: the run and its peak
/// resident memory in KiB (None when `time` is missing).
fn measured(s: &Store, args: &[&str]) -> (Run, Option<u64>) {
    let lamina = s.command();
    if !Path::new("/usr/bin/time").exists() {
        let mut cmd = lamina;
        cmd.args(args);
        return (common::run(&mut cmd, common::LIMIT), None);
    }
    // `timeout` ends lamina itself before the runner's limit ends `time`, which would leave
    // lamina running.
    let limit = common::LIMIT.as_secs().saturating_sub(20).to_string();
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.args(["-f", "lamina-maxrss-kib=%M", "timeout", "-k", "5", &limit])
        .arg(lamina.get_program())
        .args(lamina.get_args())
        .args(args);
    for (k, v) in lamina.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut r = common::run(&mut cmd, common::LIMIT);
    let mut rss = None;
    let mut rest = Vec::new();
    for line in r.stderr.lines() {
        match line.strip_prefix("lamina-maxrss-kib=") {
            Some(v) => rss = v.trim().parse().ok(),
            None => rest.push(line),
        }
    }
    let mut stderr = rest.join("\n");
    if !stderr.is_empty() {
        stderr.push('\n');
    }
    r.stderr = stderr;
    (r, rss)
}

/// Memory a command on these small inputs may use: far below what one buffer per level, or the
/// whole of a sparse file, would take.
const FLAT_KIB: u64 = 256 * 1024;

fn assert_flat(what: &str, rss: Option<u64>) {
    if let Some(kib) = rss {
        eprintln!("{what}: peak RSS {kib} KiB");
        assert!(kib < FLAT_KIB, "{what}: peak RSS {kib} KiB");
    }
}

/// Layer depth: 1900 one-letter levels (a 3.8 KB path, under `PATH_MAX`), deep enough that a
/// recursive walk overflowed a worker thread's stack during load.
const LAYER_DEPTH: usize = 1900;

#[test]
fn a_layer_thousands_of_levels_deep_loads_mounts_and_checks() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("sec-deep-layer");
    let canary = Canary::new(&s);
    let mut w = TarWriter::new();
    let mut path = String::new();
    for _ in 0..LAYER_DEPTH {
        path.push_str("d/");
        w.entry_with_pax(
            {
                let mut h = lamina_testkit::tarw::Header::new(&path, lamina_testkit::tarw::DIR);
                h.mode = 0o755;
                h
            },
            &[],
            b"",
        );
    }
    let mut h = lamina_testkit::tarw::Header::new(format!("{path}leaf"), lamina_testkit::tarw::REG);
    h.mode = 0o644;
    w.entry_with_pax(h, &[], b"bottom\n");
    load_image(&s, "deep:layer", Layer::new(&w.finish(), Compression::Gzip)).expect_ok();

    for driver in ["overlay", "copy"] {
        let m = s.mount("deep:layer", &["--read-only", "--driver", driver]);
        assert_eq!(
            measure_deep(&m),
            (LAYER_DEPTH, b"bottom\n".to_vec()),
            "{driver}: the deep tree as mounted"
        );
        s.umount(&m);
    }
    s.ok(&["df"]);
    s.ok(&["fsck", "--verify"]);
    s.ok(&["rmi", "deep:layer"]);
    assert!(s.staging_leftovers().is_empty(), "staging left behind");
    canary.check();
}

/// Container depth: 5000 levels, ten thousand bytes of path (past `PATH_MAX`), more levels than
/// the usual limit of 1024 open files.
const CONTAINER_DEPTH: usize = 5000;

#[test]
fn a_container_tree_deeper_than_path_max_breaks_no_command() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("sec-deep-container");
    let canary = Canary::new(&s);
    load_image(&s, "base:1", marker_layer("tree-top")).expect_ok();
    let id = common::unique("deep");
    let merged = s.mount("base:1", &["--name", &id]);
    make_deep(&merged, CONTAINER_DEPTH);
    let upper_listing_before = common::list_dir(&merged);

    // diff and commit either handle the tree or refuse it with one clear line; no crash.
    let started = Instant::now();
    for args in [
        vec!["diff", id.as_str()],
        vec!["commit", id.as_str(), "deep:committed"],
    ] {
        let (r, rss) = measured(&s, &args);
        assert_flat(args[0], rss);
        eprintln!("{args:?}: exit {:?} {}", r.status, r.stderr.trim());
        assert!(
            r.status == Some(0) || (r.status == Some(1) && r.stderr.starts_with("lamina: ")),
            "{args:?} must succeed or fail cleanly: {}",
            r.describe()
        );
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("terminated by signal"),
            "{}",
            r.describe()
        );
        if r.status == Some(1) {
            assert!(
                r.stderr.contains("PATH_MAX") || r.stderr.contains("too long"),
                "the refusal says why: {}",
                r.describe()
            );
        }
        {
            assert!(
                r.status == Some(0) || r.stderr.len() < 400,
                "one short line: {}",
                r.describe()
            );
        }
    }
    assert_eq!(
        common::list_dir(&merged),
        upper_listing_before,
        "the container's tree"
    );
    s.ok(&["df"]);
    let df = s.ok(&["df", "-v"]);
    assert!(
        df.stdout.contains(&id),
        "df -v lists the mount: {}",
        df.describe()
    );
    // umount removes the upper dir, 5000 levels of it, with a bounded number of fds.
    s.umount(&merged);
    let mounts = s.ok(&["mounts"]);
    assert!(
        !mounts.stdout.contains(&id),
        "mount still listed: {}",
        mounts.describe()
    );
    assert!(
        !s.root.join("mounts").join(&id).exists(),
        "the mount's dirs are gone"
    );
    assert!(s.staging_leftovers().is_empty(), "staging left behind");
    s.ok(&["fsck"]);
    eprintln!("deep container: all commands in {:?}", started.elapsed());
    canary.check();
}

/// A container's `user.overlay.opaque` is its own data: the committed image still shows the
/// directory's contents from the layers below, as the container saw them.
#[test]
fn container_set_user_overlay_xattrs_have_no_overlay_meaning_in_commit() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("sec-user-overlay");
    let canary = Canary::new(&s);
    let mut w = TarWriter::new();
    w.dir("data/", 0o755)
        .file("data/from-image", 0o644, b"image\n")
        .dir("data/sub/", 0o755)
        .file("data/sub/deep", 0o644, b"deep\n");
    load_image(&s, "xattr:1", Layer::new(&w.finish(), Compression::Gzip)).expect_ok();
    let id = common::unique("uovl");
    let merged = s.mount("xattr:1", &["--name", &id]);
    fs::write(merged.join("data/new"), b"new\n").expect("write in container");
    for (path, name, value) in [
        ("data", "user.overlay.opaque", &b"y"[..]),
        ("data/sub", "user.overlay.opaque", b"y"),
        ("data/sub", "user.overlay.redirect", b"/elsewhere"),
        ("data/new", "user.overlay.metacopy", b""),
    ] {
        if let Err(e) = rustix::fs::setxattr(
            merged.join(path),
            name,
            value,
            rustix::fs::XattrFlags::empty(),
        ) {
            common::skip(&format!("cannot set {name} through the mount: {e}"));
            s.umount(&merged);
            return;
        }
    }
    let seen = common::list_dir(&merged.join("data"));
    assert_eq!(
        seen,
        ["from-image", "new", "sub"],
        "what the container sees"
    );

    let diff = s.ok(&["diff", &id]);
    assert!(
        !diff.stdout.lines().any(|l| l.starts_with("D ")),
        "diff lists deletions the container never made: {}",
        diff.describe()
    );
    s.ok(&["commit", &id, "xattr:committed"]);
    s.umount(&merged);
    let m = s.mount("xattr:committed", &["--read-only"]);
    assert_eq!(
        common::list_dir(&m.join("data")),
        seen,
        "the committed image"
    );
    assert_eq!(common::list_dir(&m.join("data/sub")), ["deep"]);
    for path in ["data", "data/sub", "data/new"] {
        let mut buf = vec![0u8; 4096];
        let n = rustix::fs::listxattr(m.join(path), &mut buf).expect("listxattr");
        let list = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            !list.contains("overlay."),
            "{path}: overlay xattrs carried into the image: {list:?}"
        );
    }
    s.umount(&m);
    canary.check();
}

/// An old-GNU sparse member (type `S`): `size` bytes of data at offset 0, claiming `real` bytes.
fn gnu_sparse_layer(name: &str, real: u64) -> Vec<u8> {
    use lamina_testkit::tarw::{Header, GNU_MAGIC};
    let data = b"sparse!\n";
    let mut h = Header::new(name, b'S');
    h.mode = 0o644;
    h.magic = GNU_MAGIC;
    h.size = data.len() as u64;
    let mut block = h.to_block();
    // Old GNU header: sparse map at 386 (offset, numbytes; 12 octal bytes each), isextended at
    // 482, realsize at 483.
    let octal = |v: u64, w: usize| -> Vec<u8> {
        if v < 1 << (3 * (w - 1)) {
            return format!("{v:0w$o}\0", w = w - 1).into_bytes();
        }
        // base-256, as GNU tar writes numbers too large for octal
        let mut f = vec![0u8; w];
        f[0] = 0x80;
        f[w - 8..].copy_from_slice(&v.to_be_bytes());
        f
    };
    block[386..398].copy_from_slice(&octal(0, 12));
    block[398..410].copy_from_slice(&octal(data.len() as u64, 12));
    block[483..495].copy_from_slice(&octal(real, 12));
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut w = TarWriter::new();
    w.raw(&block).data(data);
    w.finish()
}

/// A tiny layer claiming a terabyte is refused at once, naming the layer and the file; a sparse
/// file the cap allows loads, stays sparse in the store and through the copy driver.
#[test]
fn a_tiny_layer_claiming_a_terabyte_is_refused_and_sparse_files_stay_sparse() {
    use std::os::unix::fs::MetadataExt;
    if !common::require_root() {
        return;
    }
    let s = Store::new("sec-sparse");
    let canary = Canary::new(&s);
    let layer = Layer::new(&gnu_sparse_layer("huge", 1 << 40), Compression::Gzip);
    let dir = s.scratch("layout-huge");
    OciBuilder::new()
        .image(Some("latest"), Image::new(vec![layer]))
        .write_layout(&dir);
    let started = Instant::now();
    let (r, rss) = measured(
        &s,
        &["load", dir.to_str().expect("utf-8"), "--tag", "huge:1"],
    );
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains("\"huge\"")
            && r.stderr.contains("layer sha256:")
            && r.stderr.contains("--max-layer-expansion"),
        "names the layer, the file and the flag: {}",
        r.describe()
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "refused in {:?}",
        started.elapsed()
    );
    assert_flat("load huge", rss);
    assert!(s.staging_leftovers().is_empty());
    assert!(s.ok(&["images", "-q"]).stdout.trim().is_empty());

    // 4 GiB claimed by a few hundred bytes: over the default cap, loaded when raised.
    let layer = Layer::new(&gnu_sparse_layer("big", 4 << 30), Compression::Gzip);
    let dir = s.scratch("layout-big");
    OciBuilder::new()
        .image(Some("latest"), Image::new(vec![layer]))
        .write_layout(&dir);
    let path = dir.to_str().expect("utf-8");
    s.fails(&["load", path, "--tag", "big:1"]);
    let started = Instant::now();
    let (r, rss) = measured(
        &s,
        &["load", path, "--tag", "big:1", "--max-layer-expansion", "0"],
    );
    assert_eq!(r.status, Some(0), "{}", r.describe());
    assert_flat("load big", rss);
    eprintln!("4 GiB sparse layer loaded in {:?}", started.elapsed());
    s.ok(&["fsck", "--verify"]);
    for driver in ["overlay", "copy"] {
        let m = s.mount("big:1", &["--driver", driver]);
        let md = fs::symlink_metadata(m.join("big")).expect("big");
        assert_eq!(md.len(), 4 << 30, "{driver}");
        assert!(
            md.blocks() < 1024,
            "{driver}: {} blocks: holes kept",
            md.blocks()
        );
        let mut head = vec![0u8; 8];
        std::io::Read::read_exact(&mut fs::File::open(m.join("big")).expect("open"), &mut head)
            .expect("read");
        assert_eq!(head, b"sparse!\n");
        s.umount(&m);
    }

    // A container's terabyte file made with one seek: commit refuses it at once, naming it,
    // rather than writing a terabyte of zeros into a tar.
    let id = common::unique("sparse");
    let merged = s.mount("big:1", &["--name", &id]);
    fs::File::create(merged.join("seeked"))
        .and_then(|f| f.set_len(1 << 40))
        .expect("a sparse file in the container");
    let started = Instant::now();
    let (r, rss) = measured(&s, &["commit", &id, "seeked:1"]);
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains("seeked") && r.stderr.contains("--max-layer-expansion"),
        "names the file and the flag: {}",
        r.describe()
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "refused in {:?}",
        started.elapsed()
    );
    assert_flat("commit seeked", rss);
    assert!(s.staging_leftovers().is_empty());
    s.umount(&merged);
    canary.check();
}
