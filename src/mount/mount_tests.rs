//! Mount tests: real overlay and bind mounts in temp dirs (root needed), always undone by a guard.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::support_tests::{
    build_layers, describe, diff, features, mkdirs, write_refused, LayerDir, MountGuard,
};
use super::*;

#[test]
fn probe_finds_new_api_and_cleans_up() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let found = probe(scratch.path());
    println!("probe: {}", serde_json::to_string(&found).expect("json"));
    assert!(
        found.overlay && found.new_mount_api && found.lowerdir_plus && found.legacy_mount,
        "{found:?}"
    );
    assert!(found.max_lowers >= DEFAULT_MAX_LOWERS, "{found:?}");
    assert_eq!(
        fs::read_dir(scratch.path()).expect("readdir").count(),
        0,
        "probe left files behind"
    );
    let back: Features =
        serde_json::from_str(&serde_json::to_string(&found).expect("json")).expect("parse");
    assert_eq!(back, found);
    let old_cache: Features =
        serde_json::from_str(r#"{"kernel":"6.1","overlay":true}"#).expect("parse");
    assert_eq!(old_cache.max_lowers, DEFAULT_MAX_LOWERS);
    assert!(!old_cache.lowerdir_plus && old_cache.legacy_mount);
}

#[test]
fn readonly_overlay_shows_merged_tree_and_refuses_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = build_layers(tmp.path());
    let target = &mkdirs(tmp.path(), &["m"])[0];
    let mut guard = MountGuard::default();
    let spec = OverlaySpec {
        lowers,
        upper: None,
    };
    mount_overlay(&spec, target, features()).expect("mount");
    guard.push(target);
    assert!(is_mountpoint(target));
    let view = describe(target);
    // Spot checks of the overlay rules the copier must reproduce.
    let has = |p: &str| view.contains_key(Path::new(p));
    assert!(
        !has("/usr/bin/y")
            && !has("/nothing_below")
            && !has("/opt/old/file1")
            && !has("/opt/old/sub")
    );
    assert!(has("/opt/old/newfile") && has("/opt/old/newfile2") && has("/file_then_dir/inside"));
    assert!(!has("/dir_then_file/child"));
    assert_eq!(
        fs::read(target.join("etc/hosts")).expect("read"),
        b"10.0.0.1 top\n"
    );
    assert!(view[Path::new("/usr/bin/su")].contains("mode=4755"));
    assert!(view[Path::new("/tmp")].contains("mode=1777"));
    assert!(view[Path::new("/bin/bash")].contains("inode-group=/bin/bash"));
    assert!(
        view[Path::new("/escaped")].contains("xattr=trusted.overlay.origin="),
        "{}",
        view[Path::new("/escaped")]
    );
    assert!(write_refused(&target.join("newfile")));
    assert!(write_refused(&target.join("etc/passwd")));
}

#[test]
fn writable_overlay_writes_go_to_upper_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = build_layers(tmp.path());
    let before: Vec<_> = lowers.iter().map(|l| describe(l)).collect();
    let dirs = mkdirs(tmp.path(), &["upper", "work", "m"]);
    let mut guard = MountGuard::default();
    let spec = OverlaySpec {
        lowers: lowers.clone(),
        upper: Some((dirs[0].clone(), dirs[1].clone())),
    };
    mount_overlay(&spec, &dirs[2], features()).expect("mount");
    guard.push(&dirs[2]);
    fs::write(dirs[2].join("created"), b"new").expect("create");
    fs::write(dirs[2].join("etc/passwd"), b"changed").expect("modify");
    fs::remove_file(dirs[2].join("usr/bin/su")).expect("delete");
    drop(guard);
    assert!(!is_mountpoint(&dirs[2]));
    assert_eq!(
        fs::read(dirs[0].join("created")).expect("upper file"),
        b"new"
    );
    assert_eq!(
        fs::read(dirs[0].join("etc/passwd")).expect("copied up"),
        b"changed"
    );
    let whiteout = fs::symlink_metadata(dirs[0].join("usr/bin/su")).expect("whiteout in upper");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    for (lower, was) in lowers.iter().zip(&before) {
        assert_eq!(&describe(lower), was, "lower {lower:?} changed");
    }
}

#[test]
fn legacy_route_mounts_the_same_view() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = build_layers(tmp.path());
    let targets = mkdirs(tmp.path(), &["new", "legacy"]);
    let mut guard = MountGuard::default();
    let spec = OverlaySpec {
        lowers,
        upper: None,
    };
    mount_overlay(&spec, &targets[0], features()).expect("new api mount");
    guard.push(&targets[0]);
    // Force the fallback as on a kernel without lowerdir+.
    let old = Features {
        new_mount_api: false,
        lowerdir_plus: false,
        lowerdir_fd: false,
        ..features().clone()
    };
    mount_overlay(&spec, &targets[1], &old).expect("legacy mount");
    guard.push(&targets[1]);
    let (a, b) = (describe(&targets[0]), describe(&targets[1]));
    assert!(a == b, "views differ:\n{}", diff(&a, &b));
    assert!(write_refused(&targets[1].join("x")));
}

#[test]
fn single_lower_is_a_readonly_bind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = LayerDir::new(tmp.path().join("only"));
    layer.file("a", b"a", 0o644);
    let targets = mkdirs(tmp.path(), &["via_overlay", "via_bind"]);
    let mut guard = MountGuard::default();
    let spec = OverlaySpec {
        lowers: vec![layer.0.clone()],
        upper: None,
    };
    mount_overlay(&spec, &targets[0], features()).expect("one-layer mount");
    guard.push(&targets[0]);
    bind_readonly(&layer.0, &targets[1]).expect("bind");
    guard.push(&targets[1]);
    for target in &targets {
        assert_eq!(fs::read(target.join("a")).expect("read"), b"a");
        assert!(write_refused(&target.join("a")), "{target:?} writable");
        assert!(write_refused(&target.join("b")), "{target:?} writable");
    }
    assert!(
        fs::write(layer.0.join("b"), b"b").is_ok(),
        "the source itself must stay writable"
    );
}

#[test]
fn unmount_errors_are_typed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = mkdirs(tmp.path(), &["a", "b", "m"]);
    fs::write(dirs[0].join("f"), b"f").expect("write");
    let err = unmount(&tmp.path().join("missing")).expect_err("missing target");
    assert!(err.is_not_mounted(), "{err}");
    let err = unmount(&dirs[2]).expect_err("plain dir");
    assert!(err.is_not_mounted(), "{err}");
    let mut guard = MountGuard::default();
    let spec = OverlaySpec {
        lowers: dirs[..2].to_vec(),
        upper: None,
    };
    mount_overlay(&spec, &dirs[2], features()).expect("mount");
    guard.push(&dirs[2]);
    let open = fs::File::open(dirs[2].join("f")).expect("open inside");
    let err = unmount(&dirs[2]).expect_err("busy");
    assert!(matches!(err, MountError::Busy { .. }), "{err}");
    assert!(is_mountpoint(&dirs[2]));
    drop(open);
    unmount(&dirs[2]).expect("unmount after close");
    assert!(!is_mountpoint(&dirs[2]));
    assert!(!is_mountpoint(&tmp.path().join("missing")));
}

#[test]
fn errors_before_any_syscall() {
    let spec = OverlaySpec {
        lowers: vec![],
        upper: None,
    };
    assert!(matches!(
        mount_overlay(&spec, Path::new("/nonexistent"), features()),
        Err(MountError::NoLowers)
    ));
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = OverlaySpec {
        lowers: vec!["/nonexistent-a".into(), "/nonexistent-b".into()],
        upper: None,
    };
    let err = mount_overlay(&spec, tmp.path(), features()).expect_err("missing lowers");
    assert!(err.to_string().contains("nonexistent-a"), "{err}");
    assert_eq!(
        fs::read_dir("/nonexistent-a").map_err(|e| e.kind()).err(),
        Some(ErrorKind::NotFound),
        "test precondition"
    );
}

#[test]
fn writable_mounts_by_every_route() {
    type Route = (&'static str, fn(&Features) -> Features);
    let routes: [Route; 3] = [
        ("fds", |f| f.clone()),
        ("strings", |f| Features {
            lowerdir_fd: false,
            ..f.clone()
        }),
        ("legacy", |f| Features {
            new_mount_api: false,
            lowerdir_plus: false,
            lowerdir_fd: false,
            ..f.clone()
        }),
    ];
    for (route, features_for) in routes {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lowers = build_layers(tmp.path());
        let dirs = mkdirs(tmp.path(), &["upper", "work", "m"]);
        let mut guard = MountGuard::default();
        let spec = OverlaySpec {
            lowers,
            upper: Some((dirs[0].clone(), dirs[1].clone())),
        };
        mount_overlay(&spec, &dirs[2], &features_for(features()))
            .unwrap_or_else(|e| panic!("{route}: {e}"));
        guard.push(&dirs[2]);
        // The opaque dir still hides its lower contents, whichever xattr namespace marks it.
        assert!(!dirs[2].join("opt/old/file1").exists(), "{route}");
        fs::write(dirs[2].join("opt/old/added"), b"x")
            .unwrap_or_else(|e| panic!("{route}: write: {e}"));
        assert_eq!(
            fs::read(dirs[0].join("opt/old/added")).expect("in upper"),
            b"x"
        );
    }
}

#[test]
fn targets_behind_symlinks_are_refused_by_every_route() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = build_layers(tmp.path());
    let dirs = mkdirs(tmp.path(), &["canary", "real", "upper", "work"]);
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dirs[0], &link).expect("symlink");
    std::os::unix::fs::symlink(&dirs[1], tmp.path().join("dirlink")).expect("symlink");
    let through_dir = tmp.path().join("dirlink");
    let rw = OverlaySpec {
        lowers: lowers.clone(),
        upper: Some((dirs[2].clone(), dirs[3].clone())),
    };
    let ro_one = OverlaySpec {
        lowers: lowers[..1].to_vec(),
        upper: None,
    };
    for target in [&link, &through_dir] {
        for (what, result) in [
            ("overlay", mount_overlay(&rw, target, features())),
            ("legacy", mount_overlay_legacy(&rw, target, features())),
            ("bind ro", mount_overlay(&ro_one, target, features())),
            ("bind", bind(&lowers[0], target)),
        ] {
            let err = result.expect_err(what);
            assert!(
                matches!(err, MountError::UnsafeTarget { .. })
                    && err.to_string().contains("symlink"),
                "{what}: {err}"
            );
        }
    }
    assert!(!is_mountpoint(&dirs[0]) && !is_mountpoint(&dirs[1]));
}
