//! Unpacking a layer while keeping the records `save` and `fsck --verify` need: the tar-split (to give
//! back the exact tar) and the file list (to check the tree), both written into the staged layer
//! before it is renamed into place.
//!
//! The tar-split `Recorder` is a tap on the unpacker's one pass (one decompression, one tar parse,
//! one blob hash, one diffID hash); the unpacker checks the blob and names it in its errors.

use super::filelist::{self, KnownHashes};
use super::{IoContext, Result, StoreError};
use crate::tar::content_sum::SumKind;
use crate::tar::split::{self, Recorder, Segment, SegmentReader};
use crate::unpack::{self, ExpectedBlob, LayerReport, UnpackOptions};
use std::io::Read;
use std::path::Path;

pub const TAR_SPLIT: &str = "tar-split";
pub const FILE_LIST: &str = "files";

/// Unpacks `blob` into `staged/diff` and writes `staged/tar-split`.
pub(crate) fn unpack_recorded(
    blob: impl Read,
    expected: &ExpectedBlob,
    staged: &Path,
    opts: &UnpackOptions,
) -> Result<LayerReport> {
    let record_path = staged.join(TAR_SPLIT);
    let mut recorder = Recorder::new(&record_path).at(&record_path)?;
    let diff = staged.join("diff");
    let report = unpack::unpack_layer_observed(blob, expected, &diff, opts, Some(&mut recorder))?;
    recorder.finish(expected.diff_id).at(&record_path)?;
    Ok(report)
}

/// At commit (after any fix-up): writes `staged/files`, and checks the tar-split against the tree,
/// marking it unusable when a file it names is not there as it was streamed.
pub(crate) fn finish_records(staged: &Path) -> Result<()> {
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
            split::rewrite_header(&record_path, &h).at(&record_path)?;
        }
    }
    let list = staged.join(FILE_LIST);
    filelist::write_list(&list, &entries).at(&list)?;
    Ok(())
}

/// The error a missing or unreadable record gives.
pub(crate) fn no_record(key: &str, what: &str) -> StoreError {
    StoreError::Image {
        image: format!("layer {key}"),
        reason: format!("has no {what} (it was stored by an older lamina)"),
    }
}
