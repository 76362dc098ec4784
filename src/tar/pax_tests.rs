use super::*;

#[test]
fn pax_values_may_hold_newlines() {
    let rec = |k: &str, v: &[u8]| pax_record(k.as_bytes(), v);
    let data = [
        rec("SCHILY.xattr.security.capability", b"\x01\n\x02"),
        rec("path", b"a\nb"),
        rec("mtime", b"-1.25"),
    ]
    .concat();
    let mut pax = Pax::default();
    parse_pax(&data, &mut pax).unwrap();
    assert_eq!(pax.path.as_deref(), Some(&b"a\nb"[..]));
    assert_eq!(pax.xattrs[0].1, b"\x01\n\x02");
    assert_eq!(
        pax.mtime,
        Some(Time {
            secs: -2,
            nanos: 750_000_000
        })
    );
    assert!(parse_pax(b"99 path=x\n", &mut pax).is_err());
}

#[test]
fn base64_and_percent() {
    assert_eq!(XATTR_BASE64.decode(b"aGVsbG8=").unwrap(), b"hello");
    assert_eq!(XATTR_BASE64.decode(b"aGVsbG8").unwrap(), b"hello");
    assert_eq!(XATTR_BASE64.decode(b"AAEC").unwrap(), b"\0\x01\x02");
    assert!(XATTR_BASE64.decode(b"a*b").is_err());
    assert_eq!(percent_decode(b"user.a%3Db").unwrap(), b"user.a=b");
}
