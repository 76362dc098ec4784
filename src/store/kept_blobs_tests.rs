//! Kept layer blobs on a temporary store (no root needed).

use super::*;
use std::io::Write;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn stored_layer(store: &Store, seed: &[u8]) -> LayerKey {
    let key = LayerKey::of(&Digest::of_bytes(seed));
    fs::create_dir_all(store.layout().layer(&key).diff()).unwrap();
    key
}

#[test]
fn a_kept_blob_is_listed_with_its_size_and_a_failed_write_leaves_nothing() {
    let (_dir, store) = temp_store();
    let key = stored_layer(&store, b"layer");
    assert!(store.kept_blobs(&key).unwrap().is_empty());
    let digest = Digest::of_bytes(b"blob bytes");
    store
        .keep_blob_with::<StoreError>(&key, &digest, |f| {
            f.write_all(b"blob bytes").map_err(|e| StoreError::Io {
                path: "blob".into(),
                source: e,
            })
        })
        .unwrap();
    let failed = Digest::of_bytes(b"other");
    let err = store.keep_blob_with::<StoreError>(&key, &failed, |f| {
        f.write_all(b"half").unwrap();
        Err(StoreError::Io {
            path: "blob".into(),
            source: std::io::Error::other("digest mismatch"),
        })
    });
    assert!(err.is_err());
    let kept = store.kept_blobs(&key).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].digest, digest);
    assert_eq!(kept[0].size, 10);
    let dir = read_kept(&store.layout().layer(&key)).unwrap();
    assert!(dir.strays.is_empty(), "temporary left: {:?}", dir.strays);
    let mode = fs::metadata(&kept[0].path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn names_that_are_not_blobs_are_strays_and_a_symlink_is_never_a_blob() {
    let (_dir, store) = temp_store();
    let key = stored_layer(&store, b"layer");
    let paths = store.layout().layer(&key);
    fs::create_dir_all(paths.kept_blobs()).unwrap();
    let d = Digest::of_bytes(b"x");
    std::os::unix::fs::symlink("/etc/passwd", paths.kept_blob(&d)).unwrap();
    fs::write(
        paths.kept_blobs().join(format!(".{}.1234", d.hex())),
        b"half",
    )
    .unwrap();
    let dir = read_kept(&paths).unwrap();
    assert!(dir.blobs.is_empty());
    assert_eq!(dir.strays.len(), 2);
}

#[test]
fn a_staged_blob_moves_with_its_layer() {
    let (_dir, store) = temp_store();
    let staging = store.stage("layer").unwrap();
    let staged = LayerPaths::staged(staging.path());
    let d = Digest::of_bytes(b"blob");
    store
        .stage_kept_blob(&staged, &d)
        .unwrap()
        .write_all(b"blob")
        .unwrap();
    let key = LayerKey::of(&Digest::of_bytes(b"layer"));
    assert!(staging.commit_to(store.layout().layer(&key).dir()).unwrap());
    let kept = store.kept_blobs(&key).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(fs::read(&kept[0].path).unwrap(), b"blob");
}
