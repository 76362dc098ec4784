//! The recorded unpack: the tar-split recorder taps the one pass and gives the exact tar back.

use super::*;
use crate::digest::Digest;
use crate::tar::reassemble::TarSplitReader;
use lamina_testkit::compress::gzip;

/// A layer tar with long names, PAX xattrs, a hardlink, an empty file, a file big enough
/// (and random enough) that its gzip blob takes the threaded path, and data after the end.
fn layer_tar() -> Vec<u8> {
    let add = |b: &mut ::tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut b = ::tar::Builder::new(Vec::new());
    add(&mut b, "a.txt", b"hello\n");
    add(&mut b, "empty", b"");
    add(&mut b, &format!("d/{}/long", "n".repeat(150)), &[7; 700]);
    add(&mut b, "big.bin", &noise);
    b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v\n1"[..])])
        .unwrap();
    add(&mut b, "xattr", b"with an xattr");
    let mut link = ::tar::Header::new_gnu();
    link.set_entry_type(::tar::EntryType::Link);
    link.set_size(0);
    b.append_link(&mut link, "hard", "a.txt").unwrap();
    let mut tar = b.into_inner().unwrap();
    tar.extend_from_slice(b"bytes after the end-of-archive blocks");
    tar
}

fn staged() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("diff")).unwrap();
    t
}

#[test]
fn a_recorded_unpack_reassembles_byte_identically() {
    let tar = layer_tar();
    let diff_id = Digest::of_bytes(&tar);
    for blob in [gzip(&tar), tar.clone()] {
        let digest = Digest::of_bytes(&blob);
        let expected = ExpectedBlob {
            digest: &digest,
            size: Some(blob.len() as u64),
            diff_id: &diff_id,
        };
        let t = staged();
        let opts = UnpackOptions::default();
        let report = unpack_layer_recorded(
            &blob[..],
            &expected,
            &t.path().join("diff"),
            &t.path().join("tar-split"),
            &opts,
        )
        .unwrap();
        assert_eq!(report.tar_size, tar.len() as u64);
        let (h, mut r) =
            TarSplitReader::open(&t.path().join("tar-split"), &t.path().join("diff")).unwrap();
        assert_eq!((h.tar_size, h.unusable), (tar.len() as u64, None));
        let mut again = Vec::new();
        r.read_to_end(&mut again).unwrap();
        assert!(again == tar, "the reassembled tar differs");
    }
}

#[test]
fn errors_name_the_blob() {
    let tar = layer_tar();
    let blob = gzip(&tar);
    let (digest, diff_id) = (Digest::of_bytes(&blob), Digest::of_bytes(&tar));
    let other = Digest::of_bytes(b"other");
    let run = |digest: &Digest, size: u64, diff_id: &Digest, blob: &[u8]| {
        let expected = ExpectedBlob {
            digest,
            size: Some(size),
            diff_id,
        };
        let t = staged();
        unpack_layer_recorded(
            blob,
            &expected,
            &t.path().join("diff"),
            &t.path().join("tar-split"),
            &UnpackOptions::default(),
        )
        .unwrap_err()
        .to_string()
    };
    let n = blob.len() as u64;
    let cases = [
        (run(&other, n, &diff_id, &blob), "digest mismatch"),
        (run(&digest, n + 1, &diff_id, &blob), "size mismatch"),
        (run(&digest, n, &other, &blob), "diffID mismatch"),
    ];
    for (err, what) in cases {
        assert!(err.contains(what), "{err}");
    }
    let plain = b"\x1f\x8b not really gzip".repeat(100);
    let bad = Digest::of_bytes(&plain);
    let err = run(&bad, plain.len() as u64, &diff_id, &plain);
    assert!(
        err.starts_with(&format!("layer {bad}: cannot read or decompress")),
        "{err}"
    );
    let err = run(&digest, n, &other, &blob);
    assert!(err.starts_with(&format!("layer {digest}: diffID")), "{err}");
}
