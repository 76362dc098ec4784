use super::*;

const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn parses_and_rejects() {
    let cases: &[(&str, bool)] = &[
        (&format!("sha256:{EMPTY}"), true),
        (&format!("sha256:{}", EMPTY.to_uppercase()), false),
        (&format!("sha256:{}", &EMPTY[..63]), false),
        (&format!("sha256:{EMPTY}0"), false),
        ("sha256:../../etc/passwd", false),
        (EMPTY, false),
        ("", false),
        (&format!("sha256:{}/x", &EMPTY[..62]), false),
    ];
    for (s, ok) in cases {
        assert_eq!(s.parse::<Digest>().is_ok(), *ok, "{s}");
    }
    assert!(matches!(
        format!("sha512:{EMPTY}").parse::<Digest>(),
        Err(DigestError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn hashing_reader_reads_to_end() {
    let r = HashingReader::new(&b"abc"[..]);
    let (d, n) = r.finish().unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        d.hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(Digest::of_bytes(b"").hex(), EMPTY);
}

#[test]
fn chain_id_follows_the_spec() {
    let a = Digest::of_bytes(b"a");
    let b = Digest::of_bytes(b"b");
    assert_eq!(Digest::chain_id(std::slice::from_ref(&a)), Some(a.clone()));
    let want = Digest::of_bytes(format!("{a} {b}").as_bytes());
    assert_eq!(Digest::chain_id(&[a, b]), Some(want));
    assert_eq!(Digest::chain_id(&[]), None);
}
