//! Mounted trees against umoci (the project's Debian image, busybox fixtures, many layers), the
//! read-only guarantees, and `mount` / `umount` / `mounts` / `info` as commands.

use crate::common::{self, loaded_images, Store};
use crate::oracle;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn debian_matches_umoci(source: &str) {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let Some(images) = common::test_images() else {
        return;
    };
    let _heavy = common::heavy();
    let expected = oracle::oracle(&images.join("debian"), "test");
    let s = Store::new(&format!("debian-{}", source.replace(['/', '.'], "-")));
    let r = s.load(&images.join(source), &[]);
    assert_eq!(loaded_images(&r), ["debian:test"], "{}", r.describe());
    for driver in ["overlay", "copy"] {
        oracle::check_mount(&s, "debian:test", driver, &expected);
    }
    assert!(
        s.staging_leftovers().is_empty(),
        "staging left: {:?}",
        s.staging_leftovers()
    );
}

#[test]
fn debian_layout_matches_umoci() {
    debian_matches_umoci("debian");
}

#[test]
fn debian_oci_archive_matches_umoci() {
    debian_matches_umoci("debian-oci.tar");
}

#[test]
fn debian_docker_archive_matches_umoci() {
    debian_matches_umoci("debian-docker.tar");
}

#[test]
fn busybox_layered_matches_umoci() {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let Some(images) = common::test_images() else {
        return;
    };
    let layout = images.join("busybox/oci");
    if !fs::read_to_string(layout.join("index.json"))
        .unwrap_or_default()
        .contains("\"layered\"")
    {
        common::skip("busybox:layered needs ../shared/recipes/make-busybox-image.sh");
        return;
    }
    let expected = oracle::oracle(&layout, "layered");
    let s = Store::new("busybox-layered");
    s.load(&layout, &[]);
    for driver in ["overlay", "copy"] {
        oracle::check_mount(&s, "oci:layered", driver, &expected);
        let m = s.mount("oci:layered", &["--read-only", "--driver", driver]);
        assert_eq!(
            common::list_dir(&m.join("opt")),
            ["keep"],
            "{driver}: opt/gone whited out"
        );
        assert_eq!(
            common::list_dir(&m.join("opt/keep")),
            ["c", "c-hardlink"],
            "{driver}: opaque opt/keep"
        );
        assert!(
            fs::symlink_metadata(m.join("bin/vi")).is_err(),
            "{driver}: bin/vi whited out"
        );
        assert_eq!(
            fs::metadata(m.join("opt/keep/c")).expect("c").nlink(),
            2,
            "{driver}: hardlink pair"
        );
        assert_eq!(
            fs::read(m.join("etc/lamina/layer2.txt")).expect("layer2.txt"),
            b"layer2 rewritten by layer3\n"
        );
        s.umount(&m);
    }
}

/// A one-layer read-only image is a read-only bind mount, not an overlay.
#[test]
fn one_layer_read_only_is_a_bind_mount() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("one-layer");
    let layout = s.scratch("single");
    let mut w = TarWriter::new();
    w.dir("etc/", 0o755)
        .file("etc/only", 0o644, b"only layer\n");
    OciBuilder::new()
        .image(
            Some("latest"),
            Image::new(vec![Layer::new(&w.finish(), Compression::Gzip)]),
        )
        .write_layout(&layout);
    s.load(&layout, &[]);
    let m = s.mount("single:latest", &["--read-only"]);
    let (fstype, opts) = common::mount_info(&m).expect("mounted");
    assert_ne!(fstype, "overlay", "a single layer needs no overlay");
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "read-only bind mount, options {opts}"
    );
    assert_eq!(
        fs::read(m.join("etc/only")).expect("etc/only"),
        b"only layer\n"
    );
    s.umount(&m);
}

#[test]
fn read_only_mounts_refuse_writes() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("ro");
    let layout = s.scratch("ro");
    OciBuilder::new()
        .image(Some("latest"), crate::load::marker_image("ro"))
        .write_layout(&layout);
    s.load(&layout, &[]);
    for driver in ["overlay", "copy"] {
        let m = s.mount("ro:latest", &["--read-only", "--driver", driver]);
        let e = fs::write(m.join("etc/new"), b"x").expect_err("write into a read-only mount");
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{driver}: {e}");
        let e = fs::remove_file(m.join("etc/ro")).expect_err("unlink in a read-only mount");
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{driver}: {e}");
        s.umount(&m);
    }
}

/// N layers: each adds files, rewrites a counter, every 7th deletes an earlier file, every 11th
/// makes a directory opaque.
pub fn many_layer_image(n: usize) -> Image {
    let mut layers = Vec::new();
    for i in 0..n {
        let mut w = TarWriter::new();
        w.dir("layers/", 0o755)
            .dir(format!("layers/l{i:04}/"), 0o755);
        w.file(
            format!("layers/l{i:04}/a"),
            0o644,
            format!("layer {i}\n").as_bytes(),
        );
        w.dir("etc/", 0o755)
            .file("etc/counter", 0o644, format!("{i}\n").as_bytes());
        if i % 7 == 6 {
            w.file(format!("layers/l{:04}/.wh.a", i - 3), 0o644, b"");
        }
        if i % 11 == 10 {
            w.dir("opq/", 0o755)
                .file("opq/.wh..wh..opq", 0o644, b"")
                .file(format!("opq/f{i}"), 0o644, b"o\n");
        }
        layers.push(Layer::new(&w.finish(), Compression::Gzip));
    }
    Image::new(layers)
}

/// An image whose chain repeats a layer: base, X, Y, X. Y rewrites X's file, whites out one of
/// X's files and the base's; X on top brings its own back. Two layer rows on one layer dir, which
/// overlayfs refuses twice in one stack (ELOOP) and lamina stacks once, at the top.
pub fn repeated_layer_image() -> Image {
    let mut base = TarWriter::new();
    base.dir("etc/", 0o755)
        .file("etc/base", 0o644, b"base\n")
        .dir("bin/", 0o755);
    let mut x = TarWriter::new();
    x.dir("etc/", 0o755)
        .file("etc/x", 0o644, b"from X\n")
        .dir("d/", 0o755)
        .file("d/fx", 0o644, b"fx\n");
    let mut y = TarWriter::new();
    y.dir("etc/", 0o755)
        .file("etc/x", 0o644, b"from Y\n")
        .file("etc/.wh.base", 0o644, b"")
        .dir("d/", 0o755)
        .file("d/.wh.fx", 0o644, b"")
        .file("d/fy", 0o644, b"fy\n");
    let x = Layer::new(&x.finish(), Compression::Gzip);
    Image::new(vec![
        Layer::new(&base.finish(), Compression::Gzip),
        x.clone(),
        Layer::new(&y.finish(), Compression::Gzip),
        x,
    ])
}

/// Regression: mounting such an image failed with "Too many levels of symbolic links".
#[test]
fn an_image_repeating_a_layer_mounts_as_umoci_unpacks_it() {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let s = Store::new("repeat");
    let layout = s.scratch("repeat");
    OciBuilder::new()
        .image(Some("latest"), repeated_layer_image())
        .write_layout(&layout);
    let expected = oracle::oracle(&layout, "latest");
    s.load(&layout, &[]);
    for driver in ["overlay", "copy"] {
        oracle::check_mount(&s, "repeat:latest", driver, &expected);
    }
    let m = s.mount("repeat:latest", &["--read-only"]);
    assert_eq!(fs::read(m.join("etc/x")).expect("etc/x"), b"from X\n");
    assert_eq!(common::list_dir(&m.join("d")), ["fx", "fy"]);
    assert_eq!(common::list_dir(&m.join("etc")), ["x"]);
    s.umount(&m);
}

fn many_layers(n: usize) {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let _long = common::long_mountinfo();
    let s = Store::new(&format!("layers{n}"));
    let layout = s.scratch("many");
    OciBuilder::new()
        .image(Some(&n.to_string()), many_layer_image(n))
        .write_layout(&layout);
    let expected = oracle::oracle(&layout, &n.to_string());
    s.load(&layout, &[]);
    let image = format!("many:{n}");
    if n > 500 {
        // the kernel stacks at most 500 lowers: lamina flattens, or says clearly why not
        let r = s.lamina(&["mount", &image, "--read-only"]);
        if !r.success() {
            assert_eq!(r.status, Some(1), "{}", r.describe());
            assert!(
                r.stderr.contains("500") || r.stderr.contains("layers"),
                "a clear reason: {}",
                r.describe()
            );
            return;
        }
        s.umount(Path::new(r.stdout.trim()));
    }
    for driver in ["overlay", "copy"] {
        oracle::check_mount(&s, &image, driver, &expected);
    }
}

#[test]
fn mounts_130_layers() {
    many_layers(130);
}

#[test]
fn mounts_500_layers() {
    many_layers(500);
}

#[test]
fn more_than_500_layers_work_or_fail_clearly() {
    many_layers(520);
}

#[test]
fn mount_commands() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("mount-cmds");
    let layout = s.scratch("cmds");
    OciBuilder::new()
        .image(Some("latest"), crate::load::marker_image("cmds"))
        .write_layout(&layout);
    s.load(&layout, &[]);

    // --name, then `mounts` lists it and `umount ID` ends it
    let id = common::unique("m");
    let m = s.mount("cmds:latest", &["--name", &id]);
    assert!(m.join("etc/cmds").is_file());
    let listed = s.ok(&["mounts"]);
    assert!(
        listed.stdout.contains(&id) && listed.stdout.contains(&*m.to_string_lossy()),
        "{}",
        listed.describe()
    );
    s.ok(&["umount", &id]);
    assert!(!common::is_mountpoint(&m), "umount ID unmounts");
    let listed = s.ok(&["mounts"]);
    assert!(!listed.stdout.contains(&id), "{}", listed.describe());

    // --target, then `umount DIR`
    let target = s.scratch("target");
    let m = s.mount(
        "cmds:latest",
        &["--target", &target.to_string_lossy(), "--read-only"],
    );
    assert_eq!(
        m.canonicalize().expect("canon"),
        target.canonicalize().expect("canon")
    );
    s.umount(&target);

    // --format json
    let r = s.ok(&["mount", "cmds:latest", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("json: {e}: {}", r.describe()));
    let mountpoint = v["mountpoint"].as_str().expect("mountpoint");
    assert!(
        v["id"].is_string() && v["driver"].as_str() == Some("overlay"),
        "{v}"
    );
    let mounts = v["mounts"].as_array().expect("mounts list");
    assert!(!mounts.is_empty(), "{v}");
    for m in mounts {
        assert!(
            m["type"].is_string() && m["source"].is_string() && m["options"].is_array(),
            "{{type, source, options}}: {m}"
        );
    }
    assert!(common::is_mountpoint(Path::new(mountpoint)));
    s.ok(&["umount", v["id"].as_str().expect("id")]);
    assert!(!common::is_mountpoint(Path::new(mountpoint)));
    assert!(
        common::mounts_below(&s.base).is_empty(),
        "nothing left mounted"
    );

    // unknown things are errors (1), bad usage is 2
    assert_eq!(s.lamina(&["umount", "no-such-mount"]).status, Some(1));
    assert_eq!(s.lamina(&["mount", "no-such-image:latest"]).status, Some(1));
    assert_eq!(s.lamina(&["mount"]).status, Some(2));
}

#[test]
fn info_reports_the_store_and_overlay() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("info");
    let r = s.ok(&["info"]);
    let text = format!("{}{}", r.stdout, r.stderr);
    assert!(
        text.contains(&*s.root.to_string_lossy()),
        "info names the root: {}",
        r.describe()
    );
    assert!(
        text.to_lowercase().contains("overlay"),
        "info says what overlay support was found: {}",
        r.describe()
    );
    assert!(
        text.contains("Gzip decoder: ") && text.contains("Zstd decoder: libzstd "),
        "info names the decoders: {}",
        r.describe()
    );
}

/// A relative `--root` records absolute paths: the printed mountpoint unmounts from anywhere.
#[test]
fn relative_root_prints_and_records_absolute_paths() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("relative-root");
    let layout = s.scratch("rel");
    OciBuilder::new()
        .image(Some("latest"), crate::load::marker_image("rel"))
        .write_layout(&layout);
    let in_base = |args: &[&std::ffi::OsStr]| {
        let mut cmd = std::process::Command::new(common::lamina_bin());
        cmd.current_dir(&s.base)
            .args(["--root", "root"])
            .args(args)
            .env_remove("LAMINA_ROOT");
        common::run(&mut cmd, common::LIMIT).expect_ok()
    };
    in_base(&["load".as_ref(), layout.as_os_str()]);
    let printed = in_base(&[
        "mount".as_ref(),
        "rel:latest".as_ref(),
        "--read-only".as_ref(),
    ]);
    let mountpoint = Path::new(printed.stdout.trim());
    assert!(
        mountpoint.is_absolute() && mountpoint.starts_with(&s.base),
        "{}",
        printed.describe()
    );
    assert!(mountpoint.join("etc/rel").is_file());
    // from another working directory, by the printed path
    s.ok(&["umount".as_ref(), mountpoint.as_os_str()]);
    assert!(common::mount_info(mountpoint).is_none(), "still mounted");
}
