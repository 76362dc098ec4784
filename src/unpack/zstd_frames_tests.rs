//! The frame-parallel reader must give exactly what libzstd's streaming decoder gives, on every
//! stream: the same bytes out of good ones, an error out of truncated, corrupt or padded ones.

use std::io::{BufReader, Read, Write};

use super::ZstdFrames;
use lamina_testkit::compress::compressible;

/// One frame of `data`: with a checksum, and with or without its content size.
fn frame(data: &[u8], sized: bool) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.include_contentsize(sized).unwrap();
    if sized {
        enc.set_pledged_src_size(Some(data.len() as u64)).unwrap();
    }
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn skippable(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x53, 0x2a, 0x4d, 0x18];
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn read_all(mut r: impl Read, read_size: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match r.read(&mut buf).map_err(|e| e.to_string())? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The frame-parallel reader (frames up to `limit` held whole) and the streaming decoder agree
/// on `blob` under several buffer shapes; returns the one outcome.
fn agreed(blob: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let want = zstd::stream::read::Decoder::new(blob)
        .map_err(|e| e.to_string())
        .and_then(|d| read_all(d, 64 * 1024));
    for (input_buf, read_size) in [(256 * 1024, 256 * 1024), (7, 1000), (1, 65536), (4096, 13)] {
        let input = BufReader::with_capacity(input_buf, blob);
        let got = read_all(ZstdFrames::with_limit(input, limit), read_size);
        assert_eq!(
            want.as_ref().map_err(|_| ()),
            got.as_ref().map_err(|_| ()),
            "input buffer {input_buf}, reads of {read_size}: streaming {:?} vs frames {:?}",
            want.as_ref().map(|v| v.len()),
            got.as_ref().map(|v| v.len()),
        );
    }
    want
}

/// Six sized frames of 100 KB and the data they hold.
fn six_frames() -> (Vec<u8>, Vec<u8>) {
    let data = compressible(600_000, 7);
    let blob = data.chunks(100_000).flat_map(|c| frame(c, true)).collect();
    (blob, data)
}

#[test]
fn several_frames_come_back_in_order() {
    let (blob, data) = six_frames();
    assert_eq!(agreed(&blob, 1 << 20).unwrap(), data);
}

#[test]
fn skippable_frames_are_skipped_anywhere() {
    let data = compressible(300_000, 9);
    let mut blob = skippable(b"pzstd index");
    for chunk in data.chunks(100_000) {
        blob.extend(frame(chunk, true));
        blob.extend(skippable(&[0u8; 17]));
    }
    assert_eq!(agreed(&blob, 1 << 20).unwrap(), data);
}

#[test]
fn large_or_unsized_frames_are_streamed_with_the_rest() {
    let data = compressible(400_000, 11);
    let (a, b) = data.split_at(100_000);
    // Small sized frames, then one over the limit, then small ones again.
    let mut blob = frame(a, true);
    blob.extend(frame(&b[..250_000], true));
    blob.extend(frame(&b[250_000..], true));
    assert_eq!(agreed(&blob, 200_000).unwrap(), data);
    // A frame that does not say its size.
    let mut blob = frame(a, true);
    blob.extend(frame(b, false));
    assert_eq!(agreed(&blob, 1 << 20).unwrap(), data);
    // One large frame, as `zstd -T0` writes a layer.
    assert_eq!(agreed(&frame(&data, true), 100_000).unwrap(), data);
}

#[test]
fn truncation_anywhere_is_an_error() {
    let (blob, _) = six_frames();
    let step = blob.len() / 37;
    for cut in (1..blob.len()).step_by(step).chain([blob.len() - 1, 5, 3]) {
        assert!(agreed(&blob[..cut], 1 << 20).is_err(), "cut at {cut}");
    }
}

#[test]
fn corrupt_frames_and_trailing_bytes_are_errors() {
    let (blob, _) = six_frames();
    // A byte flipped in the last frame's data or checksum.
    for at in [blob.len() - 2, blob.len() - 200] {
        let mut bad = blob.clone();
        bad[at] ^= 0x5a;
        assert!(agreed(&bad, 1 << 20).is_err(), "flipped at {at}");
    }
    for junk in [
        &b"\0\0\0\0\0\0"[..],
        b"garbage after the frames",
        b"\x28\xb5\x2f",
    ] {
        let mut bad = blob.clone();
        bad.extend_from_slice(junk);
        assert!(agreed(&bad, 1 << 20).is_err(), "junk {junk:?}");
    }
    // A frame header with its reserved bit set.
    let mut bad = blob.clone();
    bad[4] |= 0x08;
    assert!(agreed(&bad, 1 << 20).is_err());
}

#[test]
fn frames_that_do_not_say_their_size_decode_apart_as_pzstd_writes_them() {
    let data = compressible(500_000, 13);
    let mut blob = Vec::new();
    for chunk in data.chunks(100_000) {
        let f = frame(chunk, false);
        blob.extend(skippable(&(f.len() as u32).to_le_bytes()));
        blob.extend(f);
    }
    assert_eq!(agreed(&blob, 1 << 20).unwrap(), data);
    // Small enough to hold, but giving more than the limit: streamed on the reader's thread.
    assert_eq!(agreed(&blob, 60_000).unwrap(), data);
}
