use super::*;

#[test]
fn lists_long_values_and_many_names() {
    // Past both first buffers (1024 bytes of names, 256 of value), within ext4's one block.
    let t = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(t.path().join("f")).unwrap();
    let long = vec![b'v'; 600];
    let mut want = Vec::new();
    for i in 0..36 {
        let name = format!("user.a-rather-long-attribute-name-{i:03}");
        let value = if i == 7 { long.clone() } else { b"v".to_vec() };
        fs::fsetxattr(&f, name.as_str(), &value, XattrFlags::empty()).unwrap();
        want.push((name.into_bytes(), value));
    }
    let mut got = list_xattrs(&f).unwrap();
    got.sort();
    assert_eq!(got, want);
    let dir = super::super::open::open_root(t.path(), super::super::open::DirAccess::Path).unwrap();
    let mut at = list_xattrs_at(&dir, b"f").unwrap();
    at.sort();
    assert_eq!(at, want);
    assert_eq!(get_xattr(&f, "user.none").unwrap(), None);
    assert_eq!(
        get_xattr(&f, "user.a-rather-long-attribute-name-007").unwrap(),
        Some(long)
    );
}
