use super::*;

#[test]
fn sums_are_the_published_ones() {
    // XXH3-128 of "" and SHA-256 of "abc", as the reference implementations give them.
    let empty = SumKind::Xxh3.sum_reader(&b""[..]).unwrap();
    assert_eq!(
        hex::encode(empty.as_bytes()),
        "99aa06d3014798d86001c324468d497f"
    );
    let abc = SumKind::Sha256.sum_reader(&b"abc"[..]).unwrap();
    assert_eq!(
        hex::encode(abc.as_bytes()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let mut r = abc.as_bytes();
    assert_eq!(SumKind::Sha256.read_sum(&mut r).unwrap(), abc);
}

#[test]
fn streaming_equals_one_shot() {
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let whole = SumKind::Xxh3.sum_reader(&data[..]).unwrap();
    let mut h = ContentHasher::new(SumKind::Xxh3);
    for c in data.chunks(4093) {
        h.update(c);
    }
    assert_eq!(h.finish(), whole);
    assert_ne!(SumKind::Xxh3.sum_reader(&data[1..]).unwrap(), whole);
}
