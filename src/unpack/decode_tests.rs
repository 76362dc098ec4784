//! Both gzip backends must agree on every stream: the same bytes out of a good one, an error out
//! of a truncated, corrupt or padded one.

use std::io::{BufReader, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::decode::{decoder_with, GzipBackend};
use super::BlobCompression;
use lamina_testkit::compress::compressible as sample;

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Decodes `blob` with `backend`, reading through an input buffer of `input_buf` bytes and in
/// reads of at most `read_size`.
fn decode(
    backend: GzipBackend,
    blob: &[u8],
    input_buf: usize,
    read_size: usize,
) -> std::io::Result<Vec<u8>> {
    let input = BufReader::with_capacity(input_buf, blob);
    let mut dec = decoder_with(backend, BlobCompression::Gzip, input)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match dec.read(&mut buf)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Every backend built in decodes `blob` the same way, under several buffer shapes; returns
/// that one outcome (the data, or that it failed).
fn agreed(blob: &[u8]) -> Result<Vec<u8>, String> {
    let mut seen: Option<(GzipBackend, Result<Vec<u8>, String>)> = None;
    for &backend in GzipBackend::all() {
        for (input_buf, read_size) in [(256 * 1024, 256 * 1024), (7, 1000), (4096, 1), (1, 65536)] {
            if read_size == 1 && blob.len() > 100_000 {
                continue;
            }
            let got = decode(backend, blob, input_buf, read_size).map_err(|e| e.to_string());
            match &seen {
                None => seen = Some((backend, got)),
                Some((first, want)) => assert_eq!(
                    want.as_ref().map_err(|_| ()),
                    got.as_ref().map_err(|_| ()),
                    "{first:?} and {backend:?} disagree (input buffer {input_buf}, reads of \
                     {read_size}): {want:?} vs {got:?}",
                    want = want.as_ref().map(|v| v.len()),
                    got = got.as_ref().map(|v| v.len()),
                ),
            }
        }
    }
    seen.expect("a backend is built in").1
}

#[test]
fn one_member_decodes_alike_at_every_level() {
    let data = sample(3 << 20, 1);
    for level in [0, 1, 6, 9] {
        assert_eq!(agreed(&gzip(&data, level)).unwrap(), data, "level {level}");
    }
}

#[test]
fn concatenated_members_decode_as_one_stream() {
    let parts = [
        sample(100_000, 2),
        Vec::new(),
        sample(1, 3),
        sample(70_000, 4),
    ];
    let blob: Vec<u8> = parts.iter().flat_map(|p| gzip(p, 6)).collect();
    assert_eq!(agreed(&blob).unwrap(), parts.concat());
}

#[test]
fn truncation_anywhere_is_an_error() {
    let data = sample(200_000, 5);
    let two = [gzip(&data, 6), gzip(&data, 1)].concat();
    let first_len = gzip(&data, 6).len();
    // Cut inside the header, the deflate data, the trailer, and the second member.
    let cuts = (1..12)
        .chain((12..first_len).step_by(997))
        .chain(first_len - 8..first_len)
        .chain([first_len + 1, first_len + 9, first_len + 500, two.len() - 1]);
    for cut in cuts {
        assert!(
            agreed(&two[..cut]).is_err(),
            "cut at {cut} of {}",
            two.len()
        );
    }
}

#[test]
fn a_bad_crc_or_length_is_an_error() {
    let blob = gzip(&sample(50_000, 6), 6);
    for from_end in 1..=8 {
        let mut bad = blob.clone();
        let i = bad.len() - from_end;
        bad[i] ^= 0x40;
        assert!(agreed(&bad).is_err(), "trailer byte -{from_end} flipped");
    }
}

#[test]
fn corrupt_deflate_data_is_an_error() {
    let blob = gzip(&sample(300_000, 7), 6);
    for i in (20..blob.len() - 8).step_by(4099) {
        let mut bad = blob.clone();
        bad[i] ^= 0xff;
        assert!(agreed(&bad).is_err(), "byte {i} flipped");
    }
}

#[test]
fn data_after_the_last_member_is_an_error() {
    let blob = gzip(&sample(10_000, 8), 6);
    for tail in [
        &b"\0"[..],
        b"\0\0\0\0\0\0\0\0\0\0\0\0",
        b"junk after the gzip",
        b"\x1f\x8b",
    ] {
        assert!(
            agreed(&[&blob[..], tail].concat()).is_err(),
            "tail {tail:?}"
        );
    }
}

#[test]
fn a_bad_header_is_an_error() {
    let mut blob = gzip(&sample(1000, 9), 6);
    blob[2] = 7; // compression method: not deflate
    assert!(agreed(&blob).is_err());
}

#[test]
fn backend_names_parse_back() {
    for &b in GzipBackend::all() {
        assert_eq!(GzipBackend::parse(b.name()), Some(b));
    }
    assert_eq!(GzipBackend::parse("zlib"), Some(GzipBackend::ZlibRs));
    assert_eq!(GzipBackend::parse("pigz"), None);
}

#[cfg(feature = "isal")]
#[test]
fn isal_describes_the_library_it_loaded() {
    // Decoding once makes sure the library is mapped, whatever the linker did.
    agreed(&gzip(b"x", 6)).unwrap();
    let d = GzipBackend::Isal.describe();
    assert!(d.starts_with("isa-l (libisal.so"), "{d}");
}
