//! containerd 2.x's snapshotter conformance case `Rename` (core/snapshots/testsuite, after
//! docker issue 25409; the 1.6 suite skips it), ported by hand and run against `lamina snapshotter`
//! through its Snapshots v1 API, as the suite does: each layer is prepared, mounted here, changed,
//! unmounted and committed, and a view of every commit must equal one plain directory that took the
//! same changes.
//!
//! Layer 1 makes `/dir1`, `/somefiles/f1`, `/somefiles/f2`. Layer 2 renames `/dir1` to `/dir2`,
//! writes `/somefiles/f1-overwrite` and renames it over `f1`, renames `f2` to `f3`. containerd's
//! suite leaves the directory rename out for its overlayfs snapshotters: without overlay's
//! `redirect_dir` (off here, and what containerd's differ expects), rename(2) of a directory from a
//! lower layer fails with EXDEV. lamina mounts the same way, so the port checks that answer (and
//! that the directory is untouched by it), then renames as `mv` does on EXDEV: a new directory
//! with the old one's mode, then the old one removed.

use super::fixture::Snapshotter;
use super::grpc::Snapshots;
use super::mounts;
use crate::common::{self, Store};
use lamina_testkit::tree::{self, Manifest};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

fn mkdir(root: &Path, rel: &str, mode: u32) {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(root.join(rel))
        .unwrap_or_else(|e| panic!("mkdir {rel}: {e}"));
    // the umask must not decide the mode
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn write(root: &Path, rel: &str, content: &str, mode: u32) {
    let p = root.join(rel);
    std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn rename(root: &Path, from: &str, to: &str) -> std::io::Result<()> {
    std::fs::rename(root.join(from), root.join(to))
}

fn layer1(root: &Path) {
    mkdir(root, "dir1", 0o700);
    mkdir(root, "somefiles", 0o700);
    write(root, "somefiles/f1", "was here first!", 0o644);
    write(root, "somefiles/f2", "nothing interesting", 0o644);
}

/// Layer 2; `overlay`: whether `root` is an overlay over layer 1 (else the plain directory).
fn layer2(root: &Path, overlay: bool) {
    match rename(root, "dir1", "dir2") {
        Ok(()) => assert!(!overlay, "a lower directory was renamed inside the overlay"),
        Err(e) => {
            assert!(overlay, "rename on a plain directory: {e}");
            assert_eq!(
                e.raw_os_error(),
                Some(libc::EXDEV),
                "renaming a lower directory: {e}"
            );
            assert!(
                root.join("dir1").is_dir(),
                "dir1 survives the refused rename"
            );
            // what mv does on EXDEV
            let mode = std::fs::metadata(root.join("dir1"))
                .expect("dir1")
                .permissions();
            mkdir(root, "dir2", mode.mode() & 0o7777);
            std::fs::remove_dir(root.join("dir1")).expect("rmdir dir1");
        }
    }
    write(root, "somefiles/f1-overwrite", "new content 1", 0o644);
    rename(root, "somefiles/f1-overwrite", "somefiles/f1").expect("rename over f1");
    rename(root, "somefiles/f2", "somefiles/f3").expect("rename f2");
}

/// The tree below `dir` without the root entry (a view's root and a temp dir differ in mode by
/// construction, and the suite's comparison leaves the root out too).
fn contents(dir: &Path) -> Manifest {
    let mut m = tree::treemanifest(dir);
    m.remove("/");
    m
}

#[test]
fn rename_case_of_containerd_2_suite() {
    if !common::require_root() {
        return;
    }
    let store = Store::new("ctr-rename");
    let sn = Snapshotter::start(&store);
    let mut api = Snapshots::connect(&sn.socket);
    let flat = store.scratch("flat");
    let mut parent = String::new();
    for (i, name) in ["l1", "l2"].into_iter().enumerate() {
        let key = format!("{name}-prepare");
        let mounts = api.prepare(&key, &parent);
        let work = store.scratch(&format!("prepare-{name}"));
        mounts::mount_all(&mounts, &work);
        if i == 0 {
            layer1(&work);
            layer1(&flat);
        } else {
            layer2(&work, true);
            layer2(&flat, false);
        }
        mounts::unmount_all(&work);
        api.commit(name, &key);

        let view = format!("{name}-view");
        let mounts = api.view(&view, name);
        let check = store.scratch(&format!("check-{name}"));
        mounts::mount_all(&mounts, &check);
        let got = contents(&check);
        mounts::unmount_all(&check);
        api.remove(&view);
        tree::assert_same(
            &format!("view of {name} vs the directory that took the same changes"),
            &contents(&flat),
            &got,
            tree::NO_MTIMES,
        );
        parent = name.to_string();
    }
    drop(api);
    drop(sn);
}
