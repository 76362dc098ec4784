use super::*;
use crate::store::Store;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_new_store_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // (The umask is process-wide, so the driver-tests run this with umask 0 and 0277.)
    let store = Store::open(&root).unwrap();
    let layout = store.layout();
    for d in layout.dirs() {
        assert_eq!(mode(&d), DIR_MODE, "{}", d.display());
    }
    assert_eq!(mode(&layout.meta_db()), FILE_MODE);
    assert!(wrong_modes(layout).unwrap().is_empty());
}

#[test]
fn an_old_store_is_reported_then_tightened_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let layout = Store::open(&root).unwrap().layout().clone();
    let blob = layout.blobs_dir().join("0".repeat(64));
    fs::write(&blob, b"{}").unwrap();
    for p in [
        layout.root(),
        &layout.layers_dir(),
        &layout.meta_db(),
        &blob,
    ] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let wrong: Vec<PathBuf> = wrong_modes(&layout)
        .unwrap()
        .into_iter()
        .map(|w| w.path)
        .collect();
    for p in [
        layout.root(),
        &layout.layers_dir(),
        &layout.meta_db(),
        &blob,
    ] {
        assert!(
            wrong.iter().any(|w| w == p),
            "{} not reported: {wrong:?}",
            p.display()
        );
    }
    drop(Store::open(&root).unwrap());
    assert_eq!(mode(layout.root()), DIR_MODE);
    assert_eq!(mode(&layout.layers_dir()), DIR_MODE);
    assert_eq!(mode(&layout.meta_db()), FILE_MODE);
}
