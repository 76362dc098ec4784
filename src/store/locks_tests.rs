use super::*;

#[test]
fn exclusive_excludes_everyone_and_shared_only_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer-x");
    let shared = FileLock::acquire(&path, LockMode::Shared).unwrap();
    let second = FileLock::try_acquire(&path, LockMode::Shared).unwrap();
    assert!(second.is_some(), "two users share a layer");
    assert!(FileLock::try_acquire(&path, LockMode::Exclusive)
        .unwrap()
        .is_none());
    drop(shared);
    drop(second);
    let excl = FileLock::try_acquire(&path, LockMode::Exclusive).unwrap();
    assert!(excl.is_some());
    assert!(FileLock::try_acquire(&path, LockMode::Shared)
        .unwrap()
        .is_none());
}

#[test]
fn the_last_holder_unlinks_the_file_and_a_later_lock_takes_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unpack-x");
    let a = FileLock::acquire(&path, LockMode::Shared).unwrap();
    let b = FileLock::acquire(&path, LockMode::Shared).unwrap();
    drop(a);
    assert!(path.exists(), "kept while another holder has it");
    drop(b);
    assert!(!path.exists(), "the last holder removes it");
    let c = FileLock::acquire(&path, LockMode::Exclusive).unwrap();
    assert!(path.exists());
    // A lock taken on the path excludes a holder of the new file, not of an unlinked one.
    assert!(FileLock::try_acquire(&path, LockMode::Exclusive)
        .unwrap()
        .is_none());
    drop(c);
}
