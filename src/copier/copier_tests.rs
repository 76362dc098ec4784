//! Copier tests: the copy of hand-built layers must equal what a real overlay mount of them shows.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::mount::support_tests::{build_layers, describe, diff, LayerDir, MountGuard};
use crate::mount::{self, OverlaySpec};

fn mount_view(lowers: &[PathBuf], target: &Path, guard: &mut MountGuard) {
    fs::create_dir_all(target).expect("mkdir target");
    let spec = OverlaySpec {
        lowers: lowers.to_vec(),
        upper: None,
    };
    let scratch = target.parent().expect("parent");
    mount::mount_overlay(&spec, target, &mount::probe(scratch)).expect("overlay mount");
    guard.push(target);
}

#[test]
fn copy_equals_overlay_view() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = build_layers(tmp.path());
    let mut guard = MountGuard::default();
    mount_view(&lowers, &tmp.path().join("m"), &mut guard);
    let copy = tmp.path().join("c");
    fs::create_dir(&copy).expect("mkdir");
    let report = materialize(
        &lowers,
        &copy,
        &CopyOptions {
            keep_whiteouts: false,
        },
    )
    .expect("materialize");
    let (view, copied) = (describe(&tmp.path().join("m")), describe(&copy));
    assert!(
        view == copied,
        "copy differs from overlay view:\n{}",
        diff(&view, &copied)
    );
    assert_eq!(
        treemanifest(&tmp.path().join("m")),
        treemanifest(&copy),
        "treemanifest.py sees a difference"
    );
    // usr/bin/y and nothing_below; the etc/hosts whiteout is itself covered by the top layer.
    assert_eq!(report.whiteouts, 2, "{report:?}");
    assert_eq!(report.hardlinks, 2, "{report:?}");
    assert_eq!(report.specials, 3, "{report:?}");
    assert!(report.bytes >= 300_000, "{report:?}");
}

/// The shared tool's manifest of `dir` (an independent walker), or "" where the tool is absent.
fn treemanifest(dir: &Path) -> String {
    let Some(tool) = lamina_testkit::env::shared_dir().map(|d| d.join("tools/treemanifest.py"))
    else {
        return String::new();
    };
    let out = std::process::Command::new("python3")
        .arg(tool)
        .arg(dir)
        .output()
        .expect("run treemanifest.py");
    assert!(
        out.status.success(),
        "treemanifest.py {dir:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("manifest is ASCII")
}

#[test]
fn flattened_bottom_layers_stack_to_the_same_view() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = build_layers(tmp.path());
    let flat = tmp.path().join("flat");
    fs::create_dir(&flat).expect("mkdir");
    materialize(
        &lowers[1..],
        &flat,
        &CopyOptions {
            keep_whiteouts: true,
        },
    )
    .expect("flatten");
    let mut guard = MountGuard::default();
    mount_view(&lowers, &tmp.path().join("all"), &mut guard);
    mount_view(
        &[lowers[0].clone(), flat.clone()],
        &tmp.path().join("two"),
        &mut guard,
    );
    let (all, two) = (
        describe(&tmp.path().join("all")),
        describe(&tmp.path().join("two")),
    );
    assert!(all == two, "flattened stack differs:\n{}", diff(&all, &two));
    // A bottom layer needs no whiteouts: overlay would list them as phantom entries.
    assert!(!describe(&flat)
        .values()
        .any(|line| line.contains("dev=0:0")));
}

#[test]
fn readonly_copy_refuses_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = LayerDir::new(tmp.path().join("l"));
    layer.file("etc/conf", b"v", 0o644);
    let copy = tmp.path().join("c");
    fs::create_dir(&copy).expect("mkdir");
    materialize(
        std::slice::from_ref(&layer.0),
        &copy,
        &CopyOptions::default(),
    )
    .expect("copy");
    let mut guard = MountGuard::default();
    mount::bind_readonly(&copy, &copy).expect("bind over itself");
    guard.push(&copy);
    let err = fs::write(copy.join("etc/conf"), b"w").expect_err("writable");
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
    assert_eq!(fs::read(copy.join("etc/conf")).expect("read"), b"v");
}

#[test]
fn refuses_bad_targets_and_inputs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = LayerDir::new(tmp.path().join("l"));
    layer.file("a", b"a", 0o644);
    let opts = CopyOptions::default();
    assert!(matches!(
        materialize(&[], tmp.path(), &opts),
        Err(CopyError::NoLowers)
    ));
    assert!(matches!(
        materialize(std::slice::from_ref(&layer.0), tmp.path(), &opts),
        Err(CopyError::TargetNotEmpty(_))
    ));
    let missing = tmp.path().join("missing");
    let err =
        materialize(std::slice::from_ref(&missing), &layer.0, &opts).expect_err("missing layer");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn symlinks_in_layers_are_never_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    // Top: `evil` is a symlink to a dir outside; below: a dir `evil` with a file. The copy must hold
    // the symlink only, and nothing may be written through it.
    let top = LayerDir::new(tmp.path().join("top"));
    top.symlink("evil", outside.to_str().expect("utf8"));
    let low = LayerDir::new(tmp.path().join("low"));
    low.file("evil/payload", b"p", 0o644);
    let copy = tmp.path().join("c");
    fs::create_dir(&copy).expect("mkdir");
    materialize(
        &[top.0.clone(), low.0.clone()],
        &copy,
        &CopyOptions::default(),
    )
    .expect("copy");
    assert_eq!(
        fs::read_link(copy.join("evil")).expect("symlink kept"),
        outside
    );
    assert_eq!(fs::read_dir(&outside).expect("readdir").count(), 0);
}

/// On a filesystem with reflinks (a loop-mounted xfs image) data is shared with `FICLONE`, not copied.
/// Needs `mkfs.xfs` (xfsprogs); says so and passes where it is missing.
#[test]
fn reflinks_where_the_filesystem_can() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let image = tmp.path().join("xfs.img");
    fs::File::create(&image)
        .and_then(|f| f.set_len(512 << 20))
        .expect("sparse image");
    let mkfs = std::process::Command::new("mkfs.xfs")
        .args(["-q", "-m", "reflink=1"])
        .arg(&image)
        .status();
    if !matches!(mkfs, Ok(s) if s.success()) {
        println!("skipped: mkfs.xfs (xfsprogs) is not installed");
        return;
    }
    let xfs = tmp.path().join("xfs");
    fs::create_dir(&xfs).expect("mkdir");
    let mut guard = MountGuard::default();
    let mounted = std::process::Command::new("mount")
        .args(["-o", "loop"])
        .arg(&image)
        .arg(&xfs)
        .status();
    assert!(
        matches!(mounted, Ok(s) if s.success()),
        "loop mount of xfs image"
    );
    guard.push(&xfs);
    assert!(crate::sys::reflink::supports_reflink(&xfs));
    let lowers = build_layers(&xfs.join("layers"));
    mount_view(&lowers, &xfs.join("m"), &mut guard);
    let copy = xfs.join("c");
    fs::create_dir(&copy).expect("mkdir");
    let report = materialize(&lowers, &copy, &CopyOptions::default()).expect("materialize");
    let (view, copied) = (describe(&xfs.join("m")), describe(&copy));
    assert!(
        view == copied,
        "copy differs from overlay view:\n{}",
        diff(&view, &copied)
    );
    let non_empty = copied
        .values()
        .filter(|l| l.starts_with("RegularFile") && !l.contains(" size=0 "))
        .count();
    // Hardlinked names share one copy.
    assert_eq!(report.reflinked_files as usize, non_empty - 2, "{report:?}");
}

/// Speed on the corpus Debian rootfs as one layer: `cargo test --release --lib copier::tests::bench
/// -- --ignored --nocapture`. `LAMINA_BENCH_ROOTFS` and `LAMINA_BENCH_TMP` (where the copy goes, by
/// default /var/tmp) pick other trees and filesystems, e.g. an xfs mount to measure reflinks.
#[test]
#[ignore]
fn bench_debian_rootfs() {
    let rootfs = std::env::var_os("LAMINA_BENCH_ROOTFS").map_or_else(
        || PathBuf::from("/var/cache/lamina/corpus/work/debian-bundle/rootfs"),
        PathBuf::from,
    );
    let rootfs = rootfs.as_path();
    if !rootfs.is_dir() {
        println!("no corpus at {rootfs:?}");
        return;
    }
    let tmp_root = std::env::var_os("LAMINA_BENCH_TMP").unwrap_or_else(|| "/var/tmp".into());
    let tmp = tempfile::tempdir_in(tmp_root).expect("tempdir");
    let copy = tmp.path().join("c");
    fs::create_dir(&copy).expect("mkdir");
    let (start, cpu_start) = (std::time::Instant::now(), cpu_seconds());
    let report =
        materialize(&[rootfs.to_path_buf()], &copy, &CopyOptions::default()).expect("copy");
    let (took, cpu) = (start.elapsed(), cpu_seconds() - cpu_start);
    let mbs = report.bytes as f64 / took.as_secs_f64() / 1e6;
    println!("debian rootfs: {report:?} in {took:?} ({mbs:.0} MB/s), {cpu:.2} s CPU (user+sys, all threads)");
    let (src, dst) = (describe(rootfs), describe(&copy));
    assert!(src == dst, "copy differs:\n{}", diff(&src, &dst));
}

/// User plus system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid rusage either way.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The store's plan for images deeper than the kernel stacks: flatten the bottom layers into one layer
/// dir, mount it under the rest. The result must equal a copy of the whole stack.
#[test]
fn flattening_makes_600_layers_mountable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = crate::mount::support_tests::many_layers(&tmp.path().join("l"), 600);
    let max = crate::mount::max_lowers(crate::mount::support_tests::features());
    let (kept, bottom) = lowers.split_at(max - 1);
    let flat = tmp.path().join("flat");
    fs::create_dir(&flat).expect("mkdir");
    let opts = CopyOptions {
        keep_whiteouts: true,
    };
    materialize(bottom, &flat, &opts).expect("flatten bottom layers");
    let mut stack = kept.to_vec();
    stack.push(flat);
    let mut guard = MountGuard::default();
    mount_view(&stack, &tmp.path().join("m"), &mut guard);
    let whole = tmp.path().join("whole");
    fs::create_dir(&whole).expect("mkdir");
    let report = materialize(&lowers, &whole, &CopyOptions::default()).expect("copy all 600");
    assert_eq!(report.files, 601, "{report:?}");
    let (view, copied) = (describe(&tmp.path().join("m")), describe(&whole));
    assert!(
        view == copied,
        "flattened stack differs from the whole copy:\n{}",
        diff(&view, &copied)
    );
    assert_eq!(
        fs::read_to_string(whole.join("common")).expect("common"),
        "0"
    );
}
