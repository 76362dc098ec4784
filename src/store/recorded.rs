//! Unpacking a layer while keeping the records `save` and `fsck --verify` need: the tar-split (to give
//! back the exact tar) and the file list (to check the tree), both written into the staged layer
//! before it is renamed into place.
//!
//! The blob is decompressed here rather than in the unpacker, so that the plain tar stream can pass
//! through the tar-split `Recorder` on its way in; the unpacker then checks the stream against the
//! diffID, and this module checks the compressed blob's digest and size, in one pass over the blob.

use super::content_sum::SumKind;
use super::filelist::{self, KnownHashes};
use super::tarsplit::{self, Recorder, Segment, SegmentReader};
use super::{IoContext, StoreError};
use crate::digest::{Digest, HashingReader};
use crate::unpack::{self, ExpectedBlob, LayerReport, UnpackError, UnpackOptions};
use std::io::{BufReader, Read};
use std::path::Path;

pub const TAR_SPLIT: &str = "tar-split";
pub const FILE_LIST: &str = "files";
const STREAM_BUF: usize = 256 * 1024;

/// What unpacking with records fails with: the unpacker's error, or the store's (writing records).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = RecordError> = std::result::Result<T, E>;

/// Unpacks `blob` into `staged/diff` and writes `staged/tar-split`.
pub(crate) fn unpack_recorded(
    blob: impl Read,
    expected: &ExpectedBlob,
    staged: &Path,
    opts: &UnpackOptions,
) -> Result<LayerReport> {
    let blob_id = expected.digest;
    let diff = staged.join("diff");
    let record_path = staged.join(TAR_SPLIT);
    let limit = expected.size.map_or(u64::MAX, |s| s.saturating_add(1));
    let mut raw = HashingReader::new(blob.take(limit));
    let outcome = (|| -> Result<LayerReport> {
        let compressed = BufReader::with_capacity(STREAM_BUF, &mut raw);
        let plain = unpack::decompress(compressed).map_err(|source| UnpackError::Decompress {
            blob: blob_id.clone(),
            source,
        })?;
        let mut recorder = Recorder::new(plain, &record_path).at(&record_path)?;
        // The unpacker sees the plain stream: its "blob" is the tar, whose digest is the diffID.
        let plain_expected = ExpectedBlob {
            digest: expected.diff_id,
            size: None,
            diff_id: expected.diff_id,
        };
        let report = unpack::unpack_layer(&mut recorder, &plain_expected, &diff, opts)
            .map_err(|e| renamed(e, blob_id))?;
        recorder.finish(expected.diff_id).at(&record_path)?;
        Ok(report)
    })();
    // Whatever happened, hash the rest of the blob: a corrupt blob is reported as a wrong digest,
    // not as the decompression or tar error it caused.
    let drained = raw.finish();
    match (outcome, drained) {
        (Ok(mut report), Ok((digest, size))) => {
            check_blob(expected, &digest, size)?;
            report.blob_digest = blob_id.clone();
            report.compressed_size = size;
            Ok(report)
        }
        (Err(e), Ok((digest, size))) => {
            check_blob(expected, &digest, size)?;
            Err(e)
        }
        (Err(e), Err(_)) => Err(e),
        (Ok(_), Err(source)) => Err(UnpackError::Decompress {
            blob: blob_id.clone(),
            source,
        }
        .into()),
    }
}

fn check_blob(expected: &ExpectedBlob, digest: &Digest, size: u64) -> Result<()> {
    if let Some(want) = expected.size {
        if want != size {
            return Err(UnpackError::SizeMismatch {
                blob: expected.digest.clone(),
                expected: want,
                got: size,
            }
            .into());
        }
    }
    if digest != expected.digest {
        return Err(UnpackError::DigestMismatch {
            blob: expected.digest.clone(),
            expected: expected.digest.clone(),
            got: digest.clone(),
        }
        .into());
    }
    Ok(())
}

/// The unpacker named the plain stream by its diffID; errors should name the blob, and a wrong
/// stream digest is a wrong diffID.
fn renamed(e: UnpackError, blob_id: &Digest) -> UnpackError {
    match e {
        UnpackError::DigestMismatch { expected, got, .. }
        | UnpackError::DiffIdMismatch { expected, got, .. } => UnpackError::DiffIdMismatch {
            blob: blob_id.clone(),
            expected,
            got,
        },
        UnpackError::SizeMismatch { expected, got, .. } => UnpackError::SizeMismatch {
            blob: blob_id.clone(),
            expected,
            got,
        },
        UnpackError::Decompress { source, .. } => UnpackError::Decompress {
            blob: blob_id.clone(),
            source,
        },
        UnpackError::Tar { entry, reason, .. } => UnpackError::Tar {
            blob: blob_id.clone(),
            entry,
            reason,
        },
        UnpackError::UnsafePath { path, reason, .. } => UnpackError::UnsafePath {
            blob: blob_id.clone(),
            path,
            reason,
        },
        UnpackError::Io { path, source, blob } => UnpackError::Io {
            blob: blob.map(|_| blob_id.clone()),
            path,
            source,
        },
        UnpackError::OverlayXattr { path, name, .. } => UnpackError::OverlayXattr {
            blob: blob_id.clone(),
            path,
            name,
        },
        #[allow(unreachable_patterns)]
        other => other,
    }
}

/// At commit (after any fix-up): writes `staged/files`, and checks the tar-split against the tree,
/// marking it unusable when a file it names is not there as it was streamed.
pub(crate) fn finish_records(staged: &Path) -> Result<(), StoreError> {
    let record_path = staged.join(TAR_SPLIT);
    let mut known = KnownHashes::new();
    let mut header = None;
    if record_path.exists() {
        let (h, mut segments) = SegmentReader::open(&record_path).at(&record_path)?;
        while let Some(seg) = segments.next_segment().at(&record_path)? {
            if let Segment::File { path, size, sum } = seg {
                known.insert(path, (size, sum));
            }
        }
        header = Some(h);
    }
    let diff = staged.join("diff");
    let entries = filelist::walk(&diff, &known, SumKind::Xxh3).at(&diff)?;
    if let Some(mut h) = header.filter(|h| h.unusable.is_none()) {
        let by_path: std::collections::HashMap<&[u8], &filelist::FileEntry> =
            entries.iter().map(|e| (e.path.as_slice(), e)).collect();
        let bad = known.iter().find(|(path, (size, sha))| {
            by_path
                .get(path.as_slice())
                .is_none_or(|e| e.kind != b'f' || e.size != *size || e.sum.as_ref() != Some(sha))
        });
        if let Some((path, _)) = bad {
            h.unusable = Some(format!(
                "{} is not in the layer dir as the tar stored it",
                String::from_utf8_lossy(path)
            ));
            tarsplit::rewrite_header(&record_path, &h).at(&record_path)?;
        }
    }
    let list = staged.join(FILE_LIST);
    filelist::write_list(&list, &entries).at(&list)?;
    Ok(())
}

/// The error a missing or unreadable record gives.
pub(crate) fn no_record(key: &str, what: &str) -> StoreError {
    StoreError::NoRecord {
        key: key.to_string(),
        what: what.to_string(),
    }
}
