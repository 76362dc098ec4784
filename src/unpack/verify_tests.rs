//! verify_blob against good, corrupt, short and mismatching blobs.

use super::*;
use crate::digest::Digest;
use lamina_testkit::compress;

fn check(blob: &[u8], digest: &Digest, size: u64, diff_id: &Digest) -> Result<(), UnpackError> {
    let expected = ExpectedBlob {
        digest,
        size: Some(size),
        diff_id,
    };
    verify_blob(blob, &expected)
}

#[test]
fn a_blob_passes_only_with_its_digest_size_and_diff_id() {
    let tar = b"not really a tar, but a stream to hash".repeat(100);
    let diff_id = Digest::of_bytes(&tar);
    for blob in [compress::gzip(&tar), compress::zstd(&tar), tar.clone()] {
        let digest = Digest::of_bytes(&blob);
        let size = blob.len() as u64;
        check(&blob, &digest, size, &diff_id).unwrap();
        let other = Digest::of_bytes(b"another layer");
        assert!(matches!(
            check(&blob, &digest, size, &other),
            Err(UnpackError::DiffIdMismatch { .. })
        ));
        assert!(matches!(
            check(&blob, &digest, size + 1, &diff_id),
            Err(UnpackError::SizeMismatch { .. })
        ));
        let mut corrupt = blob.clone();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0xff;
        assert!(matches!(
            check(&corrupt, &digest, size, &diff_id),
            Err(UnpackError::DigestMismatch { .. })
        ));
    }
}
