//! The records `save` and `fsck --verify` need beside a layer's `diff/`: the tar-split (to give back
//! the exact tar; written by the unpacker's one pass, see `unpack::unpack_layer_recorded`) and the
//! file list (to check the tree), finished here in the staged layer before it is renamed into place.

use super::filelist::{self, KnownHashes};
use super::{IoContext, StoreError};
use crate::tar::content_sum::SumKind;
use crate::tar::split::{self, Segment, SegmentReader};
use std::path::Path;

pub const TAR_SPLIT: &str = "tar-split";
pub const FILE_LIST: &str = "files";

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
            split::rewrite_header(&record_path, &h).at(&record_path)?;
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
