//! The independent oracle: what `umoci unpack` makes of an image, described by treemanifest.
//! Oracle manifests are computed once per (layout, tag) per test process.

use crate::common::{self, run, LIMIT};
use lamina_testkit::tree::{self, Manifest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// `umoci unpack --image LAYOUT:TAG DEST`; returns DEST/rootfs.
pub fn umoci_unpack(layout: &Path, tag: &str, dest: &Path) -> PathBuf {
    let image = format!("{}:{tag}", layout.display());
    run(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(dest),
        LIMIT,
    )
    .expect_ok();
    dest.join("rootfs")
}

/// The tree umoci unpacks LAYOUT:TAG to.
pub fn oracle(layout: &Path, tag: &str) -> Arc<Manifest> {
    static CACHE: Mutex<Option<HashMap<String, Arc<Manifest>>>> = Mutex::new(None);
    let key = format!("{}:{tag}", layout.display());
    if let Some(m) = CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return m.clone();
    }
    let dir = tempfile::Builder::new()
        .prefix("lamina-oracle-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let rootfs = umoci_unpack(layout, tag, &dir.path().join("bundle"));
    let m = Arc::new(tree::treemanifest(&rootfs));
    drop(dir);
    CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, m.clone());
    m
}

/// Mounts IMAGE read-only with DRIVER, compares with the oracle tree and unmounts.
pub fn check_mount(store: &common::Store, image: &str, driver: &str, expected: &Manifest) {
    let target = store.scratch(&common::unique(&format!("view-{driver}-")));
    let t = target.to_string_lossy().into_owned();
    let mnt = store.mount(image, &["--read-only", "--driver", driver, "--target", &t]);
    let actual = tree::treemanifest(&mnt);
    store.umount(&mnt);
    tree::assert_same(
        &format!("{image} mounted with --driver {driver} vs umoci unpack"),
        expected,
        &actual,
        tree::ORACLE,
    );
}
