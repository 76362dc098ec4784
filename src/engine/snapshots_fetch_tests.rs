use super::*;
use crate::engine::snapshots_cri::{
    LABEL_CRI_IMAGE_LAYERS, LABEL_CRI_IMAGE_REF, LABEL_CRI_LAYER_DIGEST,
};
use crate::engine::LABEL_SNAPSHOT_REF;

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// The labels of a CRI pull from a registry nothing listens on (port 9 of the loopback).
fn unreachable_pull() -> Labels {
    [
        (LABEL_CRI_IMAGE_REF, "127.0.0.1:9/busybox:1".to_string()),
        (LABEL_CRI_LAYER_DIGEST, digest(1)),
        (
            LABEL_CRI_IMAGE_LAYERS,
            format!("{},{}", digest(1), digest(2)),
        ),
        (LABEL_SNAPSHOT_REF, digest(7)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn a_layer_lamina_cannot_fetch_is_prepared_for_containerd_to_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(dir.path()).unwrap();
    engine.set_snapshot_fetch(true);
    let step = engine
        .snapshot_prepare_begin("extract-1", "", unreachable_pull())
        .unwrap();
    let PrepareStep::Fetching(wait) = step else {
        panic!("a labelled Prepare fetches its layer");
    };
    let fetched = wait.wait();
    assert!(fetched.outcome.is_err(), "nothing listens on 127.0.0.1:9");
    // the fallback: an ordinary active snapshot, and no committed one under the target's name
    let mounts = engine.snapshot_prepare_finish(fetched).unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let info = engine.snapshot_stat("extract-1").unwrap();
    assert_eq!(info.kind, SnapshotKind::Active);
    assert!(engine.snapshot_stat(&digest(7)).is_err());
    // the fetch of the layer above failed too, and is there for its own Prepare to find so
    let mut above = unreachable_pull();
    above.insert(LABEL_CRI_LAYER_DIGEST.into(), digest(2));
    above.insert(LABEL_SNAPSHOT_REF.into(), digest(8));
    let mounts = engine.snapshot_prepare("extract-2", "", above).unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(engine.fetches.waiting(), 0, "all claimed");
}

#[test]
fn without_fetching_a_labelled_prepare_is_an_ordinary_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(dir.path()).unwrap();
    let step = engine
        .snapshot_prepare_begin("extract-1", "", unreachable_pull())
        .unwrap();
    assert!(
        matches!(step, PrepareStep::Ready(_)),
        "off unless asked for"
    );
}

#[test]
fn a_layer_got_another_way_stops_waiting_for_its_prepare() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(dir.path()).unwrap();
    engine.set_snapshot_fetch(true);
    let PrepareStep::Fetching(wait) = engine
        .snapshot_prepare_begin("extract-1", "", unreachable_pull())
        .unwrap()
    else {
        panic!("a labelled Prepare fetches its layer");
    };
    engine.snapshot_prepare_finish(wait.wait()).unwrap();
    assert_eq!(
        engine.fetches.waiting(),
        1,
        "the layer above waits for its Prepare"
    );
    // containerd's Prepare of the layer above was answered from the store (snapshots_share)
    let mut above = unreachable_pull();
    above.insert(LABEL_CRI_LAYER_DIGEST.into(), digest(2));
    let cri = CriLayer::from_labels(&above).unwrap().unwrap();
    engine.fetches.abandon(&cri);
    assert_eq!(
        engine.fetches.waiting(),
        0,
        "dropped, not held until the expiry"
    );
}
