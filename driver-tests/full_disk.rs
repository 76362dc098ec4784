//! A store on a small loop-mounted ext4: running out of blocks or inodes during `load` and `commit`
//! says "no space left on /dev/loopN (mounted at …) while …" and leaves nothing `df` does not show;
//! reading and removing commands work on a filesystem full to the last byte and out of inodes; a
//! read-only remount serves reads and refuses writes in plain words; another user is told the
//! store is not theirs.

use crate::common::{self, Run, Store};
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use rand::Rng;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An ext4 image file beside the store, loop-mounted at `dir` (private: no propagation to other
/// mount namespaces); the store's Drop unmounts it (the loop device goes with the last umount).
pub(crate) struct LoopFs {
    pub dir: PathBuf,
    pub image: PathBuf,
}

impl LoopFs {
    /// `mb` MiB with `inodes` inodes (0: mkfs's default), journaled.
    pub(crate) fn new(s: &Store, mb: u64, inodes: u64) -> LoopFs {
        Self::with_options(s, mb, inodes, "loop")
    }

    /// The same, mounted with `options` (`-o`, which must include `loop`).
    pub(crate) fn with_options(s: &Store, mb: u64, inodes: u64, options: &str) -> LoopFs {
        let image = s.base.join("fs.img");
        let f = std::fs::File::create(&image).expect("create fs image");
        f.set_len(mb << 20).expect("size fs image");
        drop(f);
        let mut mkfs = Command::new("mkfs.ext4");
        mkfs.args(["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]);
        if inodes > 0 {
            mkfs.arg("-N").arg(inodes.to_string());
        }
        sh(mkfs.arg(&image));
        let dir = s.scratch("fs");
        sh(Command::new("mount")
            .args(["-o", options])
            .arg(&image)
            .arg(&dir));
        sh(Command::new("mount").arg("--make-private").arg(&dir));
        LoopFs { dir, image }
    }

    /// The loop device it is mounted from, as /proc/self/mountinfo names it (the SOURCE field).
    pub(crate) fn device(&self) -> String {
        let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let want = self.dir.to_string_lossy();
        info.lines()
            .rev()
            .filter_map(|l| l.split_once(" - "))
            .filter(|(a, _)| a.split(' ').nth(4) == Some(&*want))
            .find_map(|(_, b)| b.split(' ').nth(1))
            .expect("the loop fs is mounted")
            .to_string()
    }
}

pub(crate) fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tools() -> bool {
    common::require_root() && common::have_tool("mkfs.ext4") && common::have_tool("losetup")
}

/// A layer of `files` files of `size` random bytes each under `dir/`.
fn files_layer(dir: &str, files: usize, size: usize) -> Layer {
    let mut rng = rand::thread_rng();
    let mut w = TarWriter::new();
    w.dir(format!("{dir}/"), 0o755);
    for i in 0..files {
        let body: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
        w.file(format!("{dir}/f{i:05}"), 0o644, &body);
    }
    Layer::new(&w.finish(), Compression::Gzip)
}

fn layout(s: &Store, name: &str, layers: Vec<Layer>) -> PathBuf {
    let dir = s.scratch(&format!("src-{name}"));
    OciBuilder::new()
        .image(Some("latest"), Image::new(layers))
        .write_layout(&dir);
    dir
}

/// The store on the loop fs: `s.root` moved onto it.
fn store_on_loop(tag: &str, mb: u64, inodes: u64) -> (Store, LoopFs) {
    let mut s = Store::new(tag);
    let fs = LoopFs::new(&s, mb, inodes);
    s.root = fs.dir.join("store");
    (s, fs)
}

/// The message a full filesystem must give: the device and where it is mounted, what lamina was
/// doing, and none of SQLite's words.
fn assert_no_space(r: &Run, fs: &LoopFs, doing: &str) {
    let want = format!(
        "no space left on {} (mounted at {}) while {doing}",
        fs.device(),
        fs.dir.display()
    );
    assert!(
        r.stderr.contains(&want),
        "wanted {want:?}: {}",
        r.describe()
    );
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "one line: {}",
        r.describe()
    );
    assert!(!r.stderr.contains("disk I/O error"), "{}", r.describe());
}

/// Bytes of the regular files below `dir` (apparent sizes, each inode once), and their count.
fn file_bytes(dir: &Path) -> (u64, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let m = e.metadata().expect("lstat");
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && seen.insert(m.ino()) {
                bytes += m.len();
            }
        }
    }
    (bytes, seen.len())
}

/// `docker system df`'s human size ("1.98MB", "49B") back to bytes, and how far off the rounding to
/// three significant digits can be.
fn parse_human(s: &str) -> (f64, f64) {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).expect("unit");
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().expect("number");
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => panic!("unit {u}"),
    };
    let bytes = n * scale;
    (
        bytes,
        if scale == 1.0 {
            0.0
        } else {
            bytes * 0.006 + scale * 0.01
        },
    )
}

/// `lamina df` accounts for every byte in the store dir. The comparison, honestly: df counts the
/// bytes of the files in layers and in mounts' writable dirs; `du` (here: the apparent size of every
/// regular file, each inode once) counts those and lamina's bookkeeping: meta.db and its -wal,
/// -shm and -reserve, the small blobs (configs, manifests), the layer records (layer.json,
/// tar-split, file list), the lock files. So: the layer and mount trees hold what df says (to the
/// rounding of its three-digit sizes), layers/ and mounts/ hold the dirs df counts and no other,
/// tmp/ is empty, and what is left over is bookkeeping: under `slack` bytes besides the database.
fn assert_df_accounts_for_the_store(s: &Store, slack: u64) {
    let df = s.ok(&["df"]).stdout;
    let row = |kind: &str| -> Vec<String> {
        df.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row in df: {df}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let layers = row("Layers");
    let mounts = row("Mounts");
    let root = s.root();
    let layer_dirs = common::list_dir(&root.join("layers"));
    let mount_dirs = common::list_dir(&root.join("mounts"));
    assert_eq!(
        layer_dirs.len().to_string(),
        layers[1],
        "layer dirs on disk {layer_dirs:?} vs df: {df}"
    );
    assert_eq!(
        mount_dirs.len().to_string(),
        mounts[1],
        "mount dirs on disk {mount_dirs:?} vs df: {df}"
    );
    assert_eq!(
        s.staging_leftovers(),
        Vec::<String>::new(),
        "tmp/ after the command"
    );
    let trees: u64 = layer_dirs
        .iter()
        .map(|k| file_bytes(&root.join("layers").join(k).join("diff")).0)
        .chain(
            mount_dirs
                .iter()
                .map(|m| file_bytes(&root.join("mounts").join(m).join("upper")).0),
        )
        .sum();
    let (l, l_err) = parse_human(&layers[3]);
    let (m, m_err) = parse_human(&mounts[3]);
    assert!(
        (trees as f64 - (l + m)).abs() <= l_err + m_err + 1.0,
        "layer and mount trees hold {trees} bytes, df says {} + {}: {df}",
        layers[3],
        mounts[3]
    );
    let (all, _) = file_bytes(root);
    let db: u64 = ["meta.db", "meta.db-wal", "meta.db-shm", "meta.db-reserve"]
        .iter()
        .filter_map(|f| std::fs::metadata(root.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let bookkeeping = all - trees - db;
    assert!(
        bookkeeping <= slack,
        "{bookkeeping} bytes in the store dir are neither in df's trees nor the database (du \
         {all}, trees {trees}, db {db}): {df}"
    );
}

#[test]
fn full_disk_during_load_and_commit_says_so_and_leaves_nothing_df_misses() {
    if !tools() {
        return;
    }
    let (s, fs) = store_on_loop("full-load", 32, 0);
    let small = layout(&s, "small", vec![files_layer("small", 100, 20_000)]);
    s.load(&small, &["--tag", "small:1"]);
    // commit: the container wrote 16 MB; its layer tar does not fit beside it
    let merged = s.mount("small:1", &["--name", "box"]);
    let mut f = std::fs::File::create(merged.join("big")).expect("create in the mount");
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..16 {
        f.write_all(&chunk).expect("write into the mount");
    }
    f.sync_all().expect("fsync");
    drop(f);
    let r = s.fails(&["commit", "box", "boxed:1"]);
    assert_no_space(&r, &fs, "writing the new layer of mount box");
    assert_df_accounts_for_the_store(&s, 256 << 10);
    s.umount(&merged);

    // then an image whose second layer (3 MB) fits and whose third (30 MB)
    // cannot: the load fails, and neither layer may stay behind.
    let big = layout(
        &s,
        "big",
        vec![
            files_layer("a", 100, 20_000),
            files_layer("b", 10, 300_000),
            files_layer("c", 1, 30 << 20),
        ],
    );
    let r = s.fails(&[Path::new("load"), &big]);
    assert_no_space(&r, &fs, "");
    assert_df_accounts_for_the_store(&s, 256 << 10);
    s.ok(&["images"]);

    let r = s.ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(r.stdout.trim(), "small", "{}", r.describe());
}

#[test]
fn inode_exhaustion_during_load_says_so_and_leaves_nothing_df_misses() {
    if !tools() {
        return;
    }
    let (s, fs) = store_on_loop("full-inodes", 32, 256);
    let small = layout(&s, "small", vec![files_layer("small", 20, 1000)]);
    s.load(&small, &["--tag", "small:1"]);
    let many = layout(
        &s,
        "many",
        vec![files_layer("a", 60, 100), files_layer("b", 400, 100)],
    );
    let r = s.fails(&[Path::new("load"), &many]);
    assert_no_space(&r, &fs, "");
    assert!(r.stderr.contains("(no free inodes)"), "{}", r.describe());
    assert_df_accounts_for_the_store(&s, 256 << 10);
}

/// Writes to `dir` until the filesystem refuses a single byte more, then makes empty files until
/// it refuses an inode (or a directory block) more.
fn fill_to_the_last_byte(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("fill")).expect("create fill");
    for chunk in [1 << 20, 4096, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.sync_all();
    for i in 0.. {
        if std::fs::File::create(dir.join(format!("inode{i}"))).is_err() {
            break;
        }
    }
}

#[test]
fn reading_and_removing_work_on_a_disk_full_to_the_last_byte() {
    if !tools() {
        return;
    }
    let (s, fs) = store_on_loop("full-rmi", 24, 2048);
    for name in ["one", "two", "three"] {
        let src = layout(&s, name, vec![files_layer(name, 50, 20_000)]);
        s.load(&src, &["--tag", &format!("{name}:1")]);
    }
    let merged = s.mount("three:1", &["--name", "held"]);
    fill_to_the_last_byte(&fs.dir);
    let probe = std::fs::write(fs.dir.join("probe"), b"x");
    assert!(probe.is_err(), "the filesystem still takes a file");

    let images = s.ok(&["images", "--format", "{{.Repository}}"]).stdout;
    assert_eq!(images.lines().count(), 3, "{images}");
    s.ok(&["df"]);
    s.ok(&["inspect", "one:1"]);
    s.ok(&["mounts"]);
    let r = s.ok(&["fsck"]);
    assert!(r.stderr.contains(" 0 problems found"), "{}", r.describe());
    s.ok(&["rmi", "one:1"]);
    s.umount(&merged);
    s.ok(&["prune", "-a", "-f"]);
    let images = s.ok(&["images", "-q"]).stdout;
    assert_eq!(images.trim(), "", "prune -a left images");
    assert_eq!(
        common::list_dir(&s.root().join("layers")),
        Vec::<String>::new()
    );
}

#[test]
fn a_read_only_store_lists_and_refuses_to_load_in_plain_words() {
    if !tools() {
        return;
    }
    let (s, fs) = store_on_loop("full-ro", 24, 0);
    let src = layout(&s, "one", vec![files_layer("one", 20, 1000)]);
    s.load(&src, &["--tag", "one:1"]);
    // what a killed command left in tmp/: cleared by commands on a writable store, left alone here
    std::fs::create_dir(s.root().join("tmp").join("layer-999999-0123456789abcdef")).expect("mkdir");
    sh(Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.dir));
    let images = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.stdout.trim(), "one:1", "{}", images.describe());
    s.ok(&["inspect", "one:1"]);
    s.ok(&["df"]);
    let other = layout(&s, "two", vec![files_layer("two", 20, 1000)]);
    for r in [
        s.fails(&[Path::new("load"), &other]),
        s.fails(&["rmi", "one:1"]),
    ] {
        let want = format!(
            "{} (mounted at {}) is mounted read-only",
            fs.device(),
            fs.dir.display()
        );
        assert!(
            r.stderr.contains(&want),
            "wanted {want:?}: {}",
            r.describe()
        );
        assert!(!r.stderr.contains("readonly database"), "{}", r.describe());
    }
    sh(Command::new("mount")
        .args(["-o", "remount,rw"])
        .arg(&fs.dir));
}

#[test]
fn another_user_is_told_the_store_is_not_theirs() {
    if !common::require_root() || !common::have_tool("setpriv") {
        return;
    }
    let s = Store::new("full-user");
    // the user can reach the store's root (as it could /var/lib/lamina), not into it (0700)
    std::fs::set_permissions(&s.base, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let src = layout(&s, "one", vec![files_layer("one", 5, 100)]);
    s.load(&src, &["--tag", "one:1"]);
    for args in [&["images"][..], &["rmi", "one:1"], &["df"]] {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(common::lamina_bin())
            .arg("--root")
            .arg(s.root())
            .args(args);
        let r = common::run(&mut cmd, common::LIMIT);
        assert_eq!(r.status, Some(1), "{}", r.describe());
        assert!(
            r.stderr.contains("permission denied")
                && r.stderr
                    .contains("belongs to uid 0 and lamina runs as uid 65534"),
            "{}",
            r.describe()
        );
        assert!(
            !r.stderr.contains("unable to open database"),
            "{}",
            r.describe()
        );
    }
}
