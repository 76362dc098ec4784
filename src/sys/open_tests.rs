use super::*;

/// The `openat2` fallback refuses what `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` refuses.
#[test]
fn fallback_walk_never_follows() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("a/b")).unwrap();
    std::os::unix::fs::symlink("/", t.path().join("a/up")).unwrap();
    std::os::unix::fs::symlink("b", t.path().join("a/rel")).unwrap();
    let root = open_root(t.path(), DirAccess::Path).unwrap();
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW;
    let errno = |p: &[u8]| {
        walk_dirs(root.as_fd(), p, flags)
            .map(|_| ())
            .map_err(|e| Errno::from_io_error(&e))
    };
    assert_eq!(errno(b"a/b"), Ok(()));
    assert_eq!(errno(b"."), Ok(()));
    assert_eq!(errno(b"a/up/etc"), Err(Some(Errno::LOOP)));
    assert_eq!(errno(b"a/rel"), Err(Some(Errno::LOOP)));
    assert_eq!(errno(b"a/../a"), Err(Some(Errno::XDEV)));
    assert_eq!(errno(b"a/missing"), Err(Some(Errno::NOENT)));
    let child = |n: &[u8]| open_child_dir(&root, n, DirAccess::Path).map(|_| ());
    assert_eq!(child(b"a"), Ok(()));
    let a = open_beneath(&root, b"a".as_slice(), DirAccess::Path).unwrap();
    assert_eq!(
        open_child_dir(&a, b"up".as_slice(), DirAccess::Path).map(|_| ()),
        Err(Errno::LOOP)
    );
    assert!(has_symlink(&root, b"a/up"));
    assert!(!has_symlink(&root, b"a/b"));
}
