//! Checking a layer blob without unpacking it: its digest and size, and that it decompresses to its
//! diffID. `load --keep-blobs` of an image whose layers the store holds already keeps their blobs
//! this way: the blob is not unpacked, and nothing else would tie its bytes to the layer.

use super::{check_blob, decompress, ExpectedBlob, UnpackError, STREAM_BUF};
use crate::digest::HashingReader;
use std::io::{BufReader, Read};

/// Reads all of `blob` and checks it against `expected` as unpacking would.
pub fn verify_blob<R: Read>(blob: R, expected: &ExpectedBlob) -> Result<(), UnpackError> {
    let decompress_err = |source| UnpackError::Decompress {
        blob: expected.digest.clone(),
        source,
    };
    // As in unpacking: one byte past the declared size proves a mismatch.
    let limit = expected.size.map_or(u64::MAX, |s| s.saturating_add(1));
    let mut raw = HashingReader::new(blob.take(limit));
    let tar = {
        let compressed = BufReader::with_capacity(STREAM_BUF, &mut raw);
        decompress(compressed).and_then(|plain| HashingReader::new(plain).finish())
    };
    // The rest of the blob is hashed whatever happened, so that a corrupt blob is reported as
    // what it is (a wrong digest) rather than as the decompression error it caused.
    let got = raw.finish().map_err(decompress_err)?;
    check_blob(expected, &got)?;
    let (diff_id, _) = tar.map_err(decompress_err)?;
    if &diff_id != expected.diff_id {
        return Err(UnpackError::DiffIdMismatch {
            blob: expected.digest.clone(),
            expected: expected.diff_id.clone(),
            got: diff_id,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
