//! Unpacking a layer while keeping the records `save` and `fsck --verify` need: the tar-split (to give
//! back the exact tar) and the file list (to check the tree), both written into the staged layer
//! before it is renamed into place.
//!
//! The tar-split `Recorder` is a tap on the unpacker's one pass (one decompression, one tar parse,
//! one blob hash, one diffID hash); the unpacker checks the blob and names it in its errors.

use super::filelist::{self, KnownHashes};
use super::{IoContext, StoreError};
use crate::tar::content_sum::SumKind;
use crate::tar::split::{self, Recorder, Segment, SegmentReader};
use crate::unpack::{self, ExpectedBlob, LayerReport, UnpackError, UnpackOptions};
use std::io::Read;
use std::path::Path;

pub const TAR_SPLIT: &str = "tar-split";
pub const FILE_LIST: &str = "files";

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
    let record_path = staged.join(TAR_SPLIT);
    let mut recorder = Recorder::new(&record_path).at(&record_path)?;
    let diff = staged.join("diff");
    let report = unpack::unpack_layer_observed(blob, expected, &diff, opts, Some(&mut recorder))?;
    recorder.finish(expected.diff_id).at(&record_path)?;
    Ok(report)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::tar::reassemble::TarSplitReader;
    use std::io::Write;

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

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
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
            let report = unpack_recorded(&blob[..], &expected, t.path(), &opts).unwrap();
            assert_eq!(report.tar_size, tar.len() as u64);
            finish_records(t.path()).unwrap();
            let (h, mut r) =
                TarSplitReader::open(&t.path().join(TAR_SPLIT), &t.path().join("diff")).unwrap();
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
            unpack_recorded(blob, &expected, t.path(), &UnpackOptions::default())
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
}
