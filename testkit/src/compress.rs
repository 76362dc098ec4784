//! Compression and digests of in-memory bytes, as layer blobs need them.

use sha2::{Digest as _, Sha256};
use std::io::Write;

/// gzip at the fastest level (the tests want small, valid streams, not small files).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_level(bytes, 1)
}

/// gzip at `level` (0-9); the benches use 6, what `gzip` and registries default to.
pub fn gzip_level(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// zstd at level 3, the zstd tool's default.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd to memory")
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>`, an OCI digest.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// `sha256:<hex>` -> `<hex>`
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Compressible but not trivial: words from a small xorshift stream.
pub fn compressible(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"layer ",
        b"overlay ",
        b"gzip ",
        b"member\n",
        b"0123 ",
        b"\0\0\0\0",
        b"usr/lib/",
        b"x",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 8) as usize]);
        if x.is_multiple_of(5) {
            out.push((x >> 32) as u8);
        }
    }
    out.truncate(len);
    out
}
