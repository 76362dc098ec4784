//! The store's named operations on a temporary store (no root needed).

use super::*;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn layer(seed: &[u8], size: u64) -> LayerRow {
    let d = Digest::of_bytes(seed);
    LayerRow {
        key: LayerKey::of(&d),
        diff_id: d.clone(),
        chain_id: d,
        parent_dependent: false,
        size,
        entries: 1,
    }
}

fn image(seed: &[u8]) -> ImageRow {
    ImageRow {
        id: Digest::of_bytes(seed),
        created: None,
        loaded: now(),
        size: 0,
    }
}

#[test]
fn a_recorded_image_is_found_by_tag_digest_and_id_prefix() {
    let (_dir, mut store) = temp_store();
    let img = image(b"config");
    let manifest = Digest::of_bytes(b"manifest");
    let tag = normalize_tag("debian:gzip").unwrap();
    let untagged = store
        .record_image(
            &img,
            &[layer(b"a", 3), layer(b"b", 4)],
            std::slice::from_ref(&tag),
            Some(("docker.io/library/debian", &manifest)),
        )
        .unwrap();
    assert!(untagged.is_empty());
    assert_eq!(store.resolve_image("debian:gzip").unwrap(), img.id);
    assert_eq!(store.resolve_image(&img.id.hex()[..8]).unwrap(), img.id);
    let by_digest = format!("debian@{manifest}");
    assert_eq!(store.resolve_image(&by_digest).unwrap(), img.id);
    assert_eq!(store.familiar_tags(&img.id).unwrap(), ["debian:gzip"]);
    let sizes: Vec<u64> = store
        .image_layers(&img.id)
        .unwrap()
        .iter()
        .map(|l| l.size)
        .collect();
    assert_eq!(sizes, [3, 4], "bottom first");
    assert!(store
        .is_current(&img.id, "docker.io/library/debian", &manifest, Some(&tag))
        .unwrap());
    let err = store.resolve_image("nothere").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn a_tag_moving_to_another_image_is_reported() {
    let (_dir, mut store) = temp_store();
    let tag = vec![normalize_tag("x:1").unwrap()];
    let (a, b) = (image(b"a"), image(b"b"));
    store
        .record_image(&a, &[layer(b"l", 1)], &tag, None)
        .unwrap();
    let moved = store
        .record_image(&b, &[layer(b"l", 1)], &tag, None)
        .unwrap();
    assert_eq!(moved, std::slice::from_ref(&a.id));
    assert!(store.tags_of(&a.id).unwrap().is_empty());
}

#[test]
fn deleting_an_image_keeps_the_layers_another_image_uses() {
    let (_dir, mut store) = temp_store();
    let (a, b) = (image(b"a"), image(b"b"));
    let (shared, own) = (layer(b"shared", 10), layer(b"own", 5));
    store
        .record_image(&a, &[shared.clone(), own.clone()], &[], None)
        .unwrap();
    store
        .record_image(&b, std::slice::from_ref(&shared), &[], None)
        .unwrap();
    let mut report = RemoveReport::default();
    store.delete_image(&a.id, &mut report).unwrap();
    assert_eq!(report.deleted_images, std::slice::from_ref(&a.id));
    let gone: Vec<&LayerKey> = report.deleted_layers.iter().map(|(_, k, _)| k).collect();
    assert_eq!(gone, [&own.key]);
    assert_eq!(report.reclaimed(), 5);
    assert!(store.image(&a.id).unwrap().is_none());
    assert_eq!(store.layers().unwrap().len(), 1);
}

#[test]
fn a_mounted_image_cannot_be_deleted_and_forgetting_the_mount_frees_it() {
    let (_dir, mut store) = temp_store();
    let img = image(b"a");
    store
        .record_image(&img, &[layer(b"l", 1)], &[], None)
        .unwrap();
    let id = MountId::parse("m1").unwrap();
    let row = MountRow {
        id: id.clone(),
        image_id: img.id.clone(),
        target: "/t".into(),
        driver: "overlay".into(),
        readonly: false,
        created: now(),
        prepared: true,
    };
    store.add_mount(&row).unwrap();
    assert!(store.mount_exists(&id).unwrap());
    assert_eq!(
        store.find_mount("m").unwrap().id,
        id,
        "a unique prefix finds it"
    );
    let err = store
        .delete_image(&img.id, &mut RemoveReport::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    store.forget_mount(&id).unwrap();
    assert_eq!(
        store.find_mount("m1").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    store
        .delete_image(&img.id, &mut RemoveReport::default())
        .unwrap();
}

#[test]
fn names_are_stored_full_and_shown_familiar() {
    assert_eq!(
        normalize_tag("debian").unwrap(),
        "docker.io/library/debian:latest"
    );
    assert_eq!(
        normalize_tag("debian@sha256:0000").unwrap_err().kind(),
        ErrorKind::Invalid
    );
    assert_eq!(familiar("docker.io/library/debian:gzip"), "debian:gzip");
    assert_eq!(familiar_repository("docker.io/library/debian"), "debian");
    assert_eq!(familiar_repository("example.com/x/y"), "example.com/x/y");
    assert_eq!(repository_of("localhost:5000/a/b:1"), "localhost:5000/a/b");
}

#[test]
fn the_database_has_no_integrity_problems_when_fresh() {
    let (_dir, store) = temp_store();
    let report = {
        let mut store = store;
        store.fsck(FsckOptions::default()).unwrap()
    };
    assert_eq!(report.problems.len(), 0, "{:?}", report.problems);
}
