//! A layer renamed into place by a load that was killed before it recorded the image (the batch
//! records its layers with the image): found and recorded by the next load, or removed by
//! `fsck --repair` when nobody holds it.

use super::*;
use crate::store::group_sync::SyncGroup;
use crate::store::{FsckOptions, ProblemKind};

fn renamed_not_recorded(store: &Store, seed: char) -> LayerRecord {
    let digest = Digest::from_hex(&seed.to_string().repeat(64)).unwrap();
    let staging = store.stage("layer").unwrap();
    let paths = LayerPaths::staged(staging.path());
    fs::create_dir(paths.diff()).unwrap();
    fs::write(paths.diff().join("f"), b"x").unwrap();
    let record = LayerRecord {
        diff_id: digest.clone(),
        chain_id: digest.clone(),
        parent_dependent: false,
        blob_digest: digest,
        compressed_size: 10,
        size: 1,
        entries: 1,
    };
    prepare_staged_layer(&staging, &record).unwrap();
    SyncGroup::new().sync(staging.path()).unwrap();
    store.rename_layer(staging, &record).unwrap();
    // killed here: the dir is in layers/ with its layer.json, no row names it
    assert!(store.db.layer(&record.key()).unwrap().is_none());
    record
}

#[test]
fn a_layer_renamed_but_not_recorded_is_found_and_recorded_by_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rec = renamed_not_recorded(&store, 'a');
    let found = store
        .find_layer(&rec.diff_id, &rec.chain_id, (&rec.blob_digest, 10))
        .unwrap()
        .expect("adopted");
    assert_eq!(found.key(), rec.key());
    assert!(store.db.layer(&rec.key()).unwrap().is_some(), "recorded");
}

#[test]
fn a_layer_renamed_but_not_recorded_is_removed_by_fsck_repair_unless_a_load_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let held = renamed_not_recorded(&store, 'b');
    let orphan = renamed_not_recorded(&store, 'c');
    let lock = store.lock_layer_use(&held.diff_id).unwrap();
    let repair = FsckOptions {
        repair: true,
        verify: false,
    };
    let report = store.fsck(repair).unwrap();
    let orphans: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::OrphanLayer)
        .collect();
    assert_eq!(orphans.len(), 1, "{:?}", report.problems);
    assert!(!store.layout.layer(&orphan.key()).dir().exists());
    assert!(
        store.layout.layer(&held.key()).dir().exists(),
        "its load still runs"
    );
    drop(lock);
}
