use super::*;

#[test]
fn numeric_fields() {
    let cases: &[(&[u8], Result<u64, ()>)] = &[
        (b"0000755\0", Ok(0o755)),
        (b"  755 \0", Ok(0o755)),
        (b"\0\0\0\0\0\0\0\0", Ok(0)),
        (b"\x80\0\0\0\0\x2d\xc6\xc0", Ok(3_000_000)),
        (b"12a\0", Err(())),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff", Err(())),
    ];
    for (field, want) in cases {
        assert_eq!(numeric(field).map_err(|_| ()), *want, "{field:?}");
    }
    assert_eq!(signed_numeric(b"\xff\xff\xff\xff\xff\xff\xff\xfe"), Ok(-2));
}

#[test]
fn names_and_checksums() {
    let mut h = ::tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().prefix[..3].copy_from_slice(b"dir");
    h.as_old_mut().name[..4].copy_from_slice(b"file");
    h.set_cksum();
    let block: &Block = h.as_bytes();
    assert_eq!(name(block), b"dir/file");
    assert!(verify_checksum(block).is_ok());
    let mut bad = *block;
    bad[0] ^= 1;
    assert!(verify_checksum(&bad).is_err());
    // An old GNU header keeps times where ustar has the prefix.
    let mut g = ::tar::Header::new_gnu();
    g.as_old_mut().name[..4].copy_from_slice(b"file");
    g.as_gnu_mut().unwrap().atime[..3].copy_from_slice(b"123");
    assert_eq!(name(g.as_bytes()), b"file");
    assert_eq!(normalize(b"/./a//b/"), b"a/b");
}
