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

/// Holes are summed as the zeros they read as, without being read.
#[test]
fn sum_file_of_a_sparse_file_equals_the_sum_of_its_bytes() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;
    let t = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(t.path().join("f")).unwrap();
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"middle", 3 << 20).unwrap();
    f.set_len(8 << 20).unwrap();
    let f = std::fs::File::open(t.path().join("f")).unwrap();
    for kind in [SumKind::Xxh3, SumKind::Sha256] {
        let bytes = std::fs::read(t.path().join("f")).unwrap();
        assert_eq!(
            kind.sum_file(f.as_fd(), 8 << 20).unwrap(),
            kind.sum_reader(&bytes[..]).unwrap()
        );
    }
}
