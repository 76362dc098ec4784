//! Stacking tests: hundreds of lowers through each route, the kernel's limit, long layer paths.

use std::fs;
use std::path::{Path, PathBuf};

use super::support_tests::{features, many_layers, mkdirs, LayerDir, MountGuard};
use super::*;

fn check_many(target: &Path, n: usize) {
    assert_eq!(
        fs::read_to_string(target.join("common")).expect("common"),
        "0"
    );
    assert_eq!(fs::read_dir(target).expect("readdir").count(), n + 1);
}

#[test]
fn many_lowers_new_api_and_kernel_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = many_layers(&tmp.path().join("l"), 600);
    let targets = mkdirs(tmp.path(), &["m130", "mmax", "m600", "mover"]);
    let max = max_lowers(features());
    println!(
        "kernel {}: overlay stacks at most {max} lowers via lowerdir+",
        features().kernel
    );
    let mut guard = MountGuard::default();

    let spec = |n: usize| OverlaySpec {
        lowers: lowers[..n].to_vec(),
        upper: None,
    };
    mount_overlay(&spec(130), &targets[0], features()).expect("130 lowers");
    guard.push(&targets[0]);
    check_many(&targets[0], 130);

    mount_overlay(&spec(max.min(600)), &targets[1], features()).expect("max lowers");
    guard.push(&targets[1]);
    check_many(&targets[1], max.min(600));

    match mount_overlay(&spec(600), &targets[2], features()) {
        Ok(()) => {
            guard.push(&targets[2]);
            assert!(max >= 600);
            check_many(&targets[2], 600);
        }
        Err(MountError::TooManyLowers { count: 600, max: m }) => assert_eq!(m, max),
        Err(e) => panic!("600 lowers: {e}"),
    }
    // The probe's number is the kernel's: one more than it fails in the kernel, not only in our check.
    if max < 600 {
        let lax = Features {
            max_lowers: 10_000,
            ..features().clone()
        };
        let err = mount_overlay(&spec(max + 1), &targets[3], &lax)
            .expect_err("kernel accepted more than max");
        println!("{} lowers: {err}", max + 1);
    }
}

#[test]
fn many_lowers_legacy_uses_proc_fds_then_relative_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lowers = many_layers(&tmp.path().join("l"), 500);
    let targets = mkdirs(tmp.path(), &["m130", "m500"]);
    let old = Features {
        new_mount_api: false,
        lowerdir_plus: false,
        lowerdir_fd: false,
        ..features().clone()
    };
    let mut guard = MountGuard::default();
    // 130 × "/proc/self/fd/NNN" fits in a page.
    let spec = OverlaySpec {
        lowers: lowers[..130].to_vec(),
        upper: None,
    };
    mount_overlay_legacy(&spec, &targets[0], &old).expect("130 legacy");
    guard.push(&targets[0]);
    check_many(&targets[0], 130);
    // 500 do not; 500 × "NNNN" relative to their parent do.
    let spec = OverlaySpec {
        lowers: lowers.clone(),
        upper: None,
    };
    mount_overlay_legacy(&spec, &targets[1], &old).expect("500 legacy");
    guard.push(&targets[1]);
    check_many(&targets[1], 500);
    let cwd = std::env::current_dir().expect("cwd");
    assert_ne!(
        cwd,
        tmp.path().join("l"),
        "the legacy route changed the process cwd"
    );
    // Long names that fit neither way give a clear error.
    let deep = tmp
        .path()
        .join("a-rather-long-directory-name-to-overflow-the-page");
    let long: Vec<PathBuf> = lowers
        .iter()
        .map(|l| {
            deep.join(l.file_name().expect("name"))
                .join("diff-with-long-suffix")
        })
        .collect();
    for l in &long {
        fs::create_dir_all(l).expect("mkdir");
    }
    let mut far = long.clone();
    far[0] = lowers[0].clone();
    let spec = OverlaySpec {
        lowers: far,
        upper: None,
    };
    let err = mount_overlay_legacy(&spec, &targets[1], &old).expect_err("must not fit");
    assert!(matches!(err, MountError::OptionsTooLong { .. }), "{err}");
}

#[test]
fn string_route_passes_long_paths_as_proc_fds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Over the 255-byte fsconfig string limit.
    let deep = tmp
        .path()
        .join("d".repeat(120))
        .join("e".repeat(120))
        .join("f".repeat(40));
    assert!(deep.as_os_str().len() > MAX_LOWERDIR_PLUS_LEN);
    let a = LayerDir::new(deep.join("a"));
    a.file("from_a", b"a", 0o644);
    let b = LayerDir::new(deep.join("b"));
    b.file("from_b", b"b", 0o644);
    let target = &mkdirs(tmp.path(), &["m"])[0];
    let strings_only = Features {
        lowerdir_fd: false,
        ..features().clone()
    };
    let mut guard = MountGuard::default();
    let spec = OverlaySpec {
        lowers: vec![a.0.clone(), b.0.clone()],
        upper: None,
    };
    mount_overlay(&spec, target, &strings_only).expect("mount with long paths");
    guard.push(target);
    assert!(target.join("from_a").exists() && target.join("from_b").exists());
}

#[test]
fn layer_paths_with_option_separators_mount_by_every_route() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = LayerDir::new(tmp.path().join("a:with,separators\\"));
    a.file("from_a", b"a", 0o644);
    let b = LayerDir::new(tmp.path().join("b=x,lowerdir=/etc"));
    b.file("from_b", b"b", 0o644);
    let spec = OverlaySpec {
        lowers: vec![a.0.clone(), b.0.clone()],
        upper: None,
    };
    let routes = [
        features().clone(),
        Features {
            lowerdir_fd: false,
            ..features().clone()
        },
        Features {
            new_mount_api: false,
            lowerdir_plus: false,
            lowerdir_fd: false,
            ..features().clone()
        },
    ];
    for (i, route) in routes.iter().enumerate() {
        let target = &mkdirs(tmp.path(), &[&format!("m{i}")])[0];
        let mut guard = MountGuard::default();
        mount_overlay(&spec, target, route).unwrap_or_else(|e| panic!("route {i}: {e}"));
        guard.push(target);
        let names: Vec<_> = fs::read_dir(target)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "route {i}: {names:?}");
        assert!(target.join("from_a").exists() && target.join("from_b").exists());
    }
}
