//! The layer unpacker: one streaming pass from a layer blob to a layer directory in overlay
//! whiteout format, and the inverse (a directory tree or an overlay upper dir to a layer tar).
//!
//! ```text
//! blob ─► HashingReader (blob digest, size) ═► gzip | zstd | plain (by magic bytes)
//!      ═┬═► sha256 (diffID)
//!       └═► tar::reader framing (+ an observer's tap) ─► apply
//! ```
//! (═► a bounded channel to a stage on its own thread: see `pipeline`)
//!
//! Files: `crate::tar` frames the archive (the tar crate is never asked to unpack); `apply`
//! turns members into files, `layerdir` keeps the layer
//! directory's state, `beneath` holds the no-follow primitives; `fixup` completes layers that
//! depend on their parents; `pack` writes trees back out as layer tars.
//!
//! Invariants this module keeps:
//! - Nothing is created outside `dest` and nothing follows a symlink, whatever the archive says
//!   (`..` and absolute names are refused, symlinked parents refused; see `beneath`).
//! - Both digests cover the whole stream: after the end-of-archive marker the decompressed and the
//!   raw streams are read to EOF. A digest, size or diffID mismatch is an error; the caller
//!   deletes the staging directory, so nothing of a bad blob is kept.
//! - Memory stays flat: file data is streamed through fixed buffers; only PAX / long-name members
//!   (capped at 1 MiB) and per-directory bookkeeping are held.
//! - Overlay's private xattrs never come from a layer: a member carrying `trusted.overlay.*` or
//!   `user.overlay.*` is refused; `security.selinux` is dropped.

mod apply;
mod beneath;
#[cfg(test)]
mod corpus_tests;
mod decode;
#[cfg(test)]
mod decode_tests;
mod fixup;
#[cfg(test)]
mod fixup_tests;
#[cfg(test)]
mod hostile_tests;
mod layerdir;
mod pack;
#[cfg(test)]
mod pack_tests;
mod pipeline;
#[cfg(test)]
mod recorded_tests;
#[cfg(test)]
mod support_tests;
#[cfg(test)]
mod unpack_tests;
mod verify;
mod zstd_frames;

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::tar::split::Recorder;
use crate::tar::Tap;

use decode::decoder;
pub use decode::{decompress_with, zstd_decoder_name, GzipBackend, GZIP_BACKEND_ENV};
pub use fixup::{fix_up_layer, fix_up_layer_over};
pub use pack::{write_layer_tar, write_layer_tar_with, PackReport, TreeKind};
#[doc(hidden)]
pub use pipeline::apply_tar;
pub use verify::verify_blob;

/// Buffer between the decompressor and the tar framing, and in front of the raw blob.
pub(crate) const STREAM_BUF: usize = 256 * 1024;
/// Blobs below this size are unpacked on the caller's thread alone.
const SMALL_BLOB: u64 = 1 << 20;

/// How many bytes of files a layer may claim per byte of its blob, by default (see
/// [`UnpackOptions::max_expansion`]). gzip cannot expand more than ~1032 times, so only sparse
/// members, zstd or deliberately crafted layers go past it.
pub const DEFAULT_MAX_EXPANSION: u64 = 1024;

/// What any layer may claim, whatever its blob's size.
pub const EXPANSION_FLOOR: u64 = 1 << 30;

/// How to unpack. Opaque dirs are always marked with
/// [`OPAQUE_XATTR`](crate::layerfs::OPAQUE_XATTR), as the store mounts without `userxattr`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// The regular files of a layer may add up (in apparent size, holes of sparse files
    /// included) to at most this many times its blob's size, or [`EXPANSION_FLOOR`] if that is
    /// more. A tiny layer claiming a terabyte sparse file would otherwise cost minutes of CPU
    /// wherever its content is summed or copied. 0 lifts the cap.
    pub max_expansion: u64,
    /// The size of the blob being unpacked (its descriptor's), set per blob.
    pub(crate) blob_size: Option<u64>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            max_expansion: DEFAULT_MAX_EXPANSION,
            blob_size: None,
        }
    }
}

impl UnpackOptions {
    /// The bytes of files the blob being unpacked may claim, and its size (None: no cap).
    pub(crate) fn claim_limit(&self) -> Option<(u64, u64)> {
        if self.max_expansion == 0 {
            return None;
        }
        let size = self.blob_size?;
        Some((
            size.saturating_mul(self.max_expansion).max(EXPANSION_FLOOR),
            size,
        ))
    }
}

/// What the blob must be: its digest and size (from the manifest descriptor) and the digest of
/// its uncompressed tar (from the image config's `rootfs.diff_ids`).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedBlob<'a> {
    pub digest: &'a Digest,
    pub size: Option<u64>,
    pub diff_id: &'a Digest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    pub blob_digest: Digest,
    pub compressed_size: u64,
    pub diff_id: Digest,
    pub tar_size: u64,
    /// Tar members applied (whiteouts and opaque markers included; PAX/long-name headers not).
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub files_size: u64,
    /// Parent directories the layer did not list, created by us (0755, root), relative.
    pub implied_dirs: Vec<PathBuf>,
    /// (link name, target) for hardlinks whose target is not in this layer.
    pub lower_hardlinks: Vec<(PathBuf, PathBuf)>,
}

impl LayerReport {
    /// Whether the layer's tree depends on the layers below it (see `fix_up_layer`).
    pub fn needs_parents(&self) -> bool {
        !self.implied_dirs.is_empty() || !self.lower_hardlinks.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {blob}: digest mismatch (expected {expected}, got {got})")]
    DigestMismatch {
        blob: Digest,
        expected: Digest,
        got: Digest,
    },
    #[error("layer {blob}: size mismatch (expected {expected} bytes, got {got})")]
    SizeMismatch {
        blob: Digest,
        expected: u64,
        got: u64,
    },
    #[error("layer {blob}: diffID mismatch (expected {expected}, got {got})")]
    DiffIdMismatch {
        blob: Digest,
        expected: Digest,
        got: Digest,
    },
    #[error("layer {blob}: cannot read or decompress: {source}")]
    Decompress { blob: Digest, source: io::Error },
    #[error("layer {blob}: bad tar entry {entry:?}: {reason}")]
    Tar {
        blob: Digest,
        entry: String,
        reason: String,
    },
    #[error("layer {blob}: unsafe path {path:?}: {reason}")]
    UnsafePath {
        blob: Digest,
        path: String,
        reason: String,
    },
    #[error("{}{path:?}: {source}", blob.as_ref().map(|b| format!("layer {b}: ")).unwrap_or_default())]
    Io {
        /// The layer being unpacked, when there is one.
        blob: Option<Digest>,
        path: PathBuf,
        source: io::Error,
        /// An ENOSPC that came when the filesystem had no free inode: decided then, since the
        /// failed layer's cleanup frees some before anyone words the error.
        inodes_out: bool,
    },
    #[error(
        "layer {blob}: file {path:?} brings the apparent size of the layer's files to {claimed} \
         bytes, more than the {limit} its {blob_size}-byte blob may claim (raise it with \
         --max-layer-expansion)"
    )]
    TooLarge {
        blob: Digest,
        path: String,
        claimed: u64,
        limit: u64,
        blob_size: u64,
    },
    #[error(
        "layer {blob}: entry {path:?} carries overlay xattr {name:?}, which a layer must not set"
    )]
    OverlayXattr {
        blob: Digest,
        path: String,
        name: String,
    },
}

impl UnpackError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        UnpackError::io_of(None, path.into(), source)
    }

    /// `source`, met writing `path` for layer `blob`.
    pub(crate) fn io_of(blob: Option<Digest>, path: PathBuf, source: io::Error) -> Self {
        let inodes_out = source.raw_os_error() == Some(libc::ENOSPC)
            && crate::sys::fsinfo::inodes_used_up(&path);
        UnpackError::Io {
            blob,
            path,
            source,
            inodes_out,
        }
    }
}

/// Unpacks one layer blob into `dest` (an existing, empty directory) in a single pass, and
/// verifies the blob's digest and size and the tar's diffID. On error `dest` holds a partial
/// tree that the caller must delete.
pub fn unpack_layer<R: Read>(
    blob: R,
    expected: &ExpectedBlob,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<LayerReport, UnpackError> {
    unpack_layer_observed(blob, expected, dest, opts, None)
}

/// [`unpack_layer`] that also writes the layer's tar-split record to `record` (see
/// [`crate::tar::split`]), so that the exact tar can be given back later. The recorder taps the one
/// pass; the record is complete only when this returns `Ok`.
pub fn unpack_layer_recorded<R: Read>(
    blob: R,
    expected: &ExpectedBlob,
    dest: &Path,
    record: &Path,
    opts: &UnpackOptions,
) -> Result<LayerReport, UnpackError> {
    let mut recorder = Recorder::new(record).map_err(|e| UnpackError::io(record, e))?;
    let report = unpack_layer_observed(blob, expected, dest, opts, Some(&mut recorder))?;
    recorder
        .finish(expected.diff_id)
        .map_err(|e| UnpackError::io(record, e))?;
    Ok(report)
}

/// [`unpack_layer`], showing the plain tar stream to `tap` as it is framed (see
/// [`crate::tar::Tap`]): the same single pass, one decompression, one parse. The tap sees
/// the whole stream only when this returns `Ok`.
pub fn unpack_layer_observed<R: Read>(
    blob: R,
    expected: &ExpectedBlob,
    dest: &Path,
    opts: &UnpackOptions,
    tap: Option<&mut (dyn Tap + Send)>,
) -> Result<LayerReport, UnpackError> {
    let id = expected.digest;
    let opts = &UnpackOptions {
        blob_size: expected.size,
        ..opts.clone()
    };
    // Reading one byte past the declared size is enough to prove a mismatch, and bounds what a
    // lying source can make us read.
    let limit = expected.size.map_or(u64::MAX, |s| s.saturating_add(1));
    let mut raw = HashingReader::new(blob.take(limit));
    let outcome = {
        let mut compressed = BufReader::with_capacity(STREAM_BUF, &mut raw);
        // A thread is not worth starting for a small blob.
        let threaded = expected.size.is_none_or(|s| s >= SMALL_BLOB);
        decode_and_apply(&mut compressed, id, dest, opts, threaded, tap)
    };
    // Whatever happened, hash the rest of the blob: a corrupt blob should be reported as what it
    // is (wrong digest) rather than as the tar or gzip error it caused.
    let drained = raw.finish();
    let (applied, diff_id, tar_size, compressed_size) = match (outcome, drained) {
        (Ok((applied, tar)), Ok(got)) => {
            check_blob(expected, &got)?;
            let (diff_id, tar_size) = tar.unwrap_or_else(|| got.clone());
            (applied, diff_id, tar_size, got.1)
        }
        (Err(e @ UnpackError::Io { .. }), _) | (Err(e), Err(_)) => return Err(e),
        (Err(e), Ok(got)) => {
            check_blob(expected, &got)?;
            return Err(e);
        }
        (Ok(_), Err(source)) => {
            return Err(UnpackError::Decompress {
                blob: id.clone(),
                source,
            })
        }
    };
    if &diff_id != expected.diff_id {
        return Err(UnpackError::DiffIdMismatch {
            blob: id.clone(),
            expected: expected.diff_id.clone(),
            got: diff_id,
        });
    }
    Ok(LayerReport {
        blob_digest: id.clone(),
        compressed_size,
        diff_id,
        tar_size,
        entries: applied.entries,
        files_size: applied.files_size,
        implied_dirs: applied.implied_dirs,
        lower_hardlinks: applied.lower_hardlinks,
    })
}

fn check_blob(expected: &ExpectedBlob, (digest, size): &(Digest, u64)) -> Result<(), UnpackError> {
    if let Some(want) = expected.size {
        if want != *size {
            return Err(UnpackError::SizeMismatch {
                blob: expected.digest.clone(),
                expected: want,
                got: *size,
            });
        }
    }
    if digest != expected.digest {
        return Err(UnpackError::DigestMismatch {
            blob: expected.digest.clone(),
            expected: expected.digest.clone(),
            got: digest.clone(),
        });
    }
    Ok(())
}

/// How a layer blob is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCompression {
    Gzip,
    Zstd,
    Plain,
}

/// Picks the decompressor from the first bytes, as containerd and docker do (the media type is
/// advice; the bytes are the truth).
pub fn detect(magic: &[u8]) -> Result<BlobCompression, &'static str> {
    const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    Ok(match magic {
        [0x1f, 0x8b, ..] => BlobCompression::Gzip,
        [a, b, c, d, ..] if [*a, *b, *c, *d] == ZSTD => BlobCompression::Zstd,
        // A zstd stream may open with a skippable frame (magic 0x184D2A50..=0x184D2A5F, LE).
        [a, 0x2a, 0x4d, 0x18, ..] if a & 0xf0 == 0x50 => BlobCompression::Zstd,
        // "BZh", a block size digit, then the block magic (so a tar whose first name starts
        // with "BZh" is still a tar).
        [b'B', b'Z', b'h', b'1'..=b'9', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, ..] => {
            return Err("bzip2 layers are not supported")
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => return Err("xz layers are not supported"),
        _ => BlobCompression::Plain,
    })
}

/// What was applied, and the tar's digest and size when the blob was compressed (a plain blob is
/// its own tar: the caller's hash of the blob is the diffID, and hashing it twice would cost a
/// full sha256 pass over the layer).
type Decoded = (apply::Applied, Option<(Digest, u64)>);

/// The plain tar stream of a possibly compressed one (gzip, zstd or plain, told by magic bytes), for
/// callers that need the tar itself (`import` of a rootfs tar).
pub fn decompress<'a, R: io::BufRead + 'a>(mut input: R) -> io::Result<Box<dyn Read + 'a>> {
    let kind =
        detect(input.fill_buf()?).map_err(|m| io::Error::new(io::ErrorKind::Unsupported, m))?;
    Ok(Box::new(decoder(kind, input)?))
}

fn decode_and_apply<B: io::BufRead>(
    compressed: &mut B,
    id: &Digest,
    dest: &Path,
    opts: &UnpackOptions,
    threaded: bool,
    tap: Option<&mut (dyn Tap + Send)>,
) -> Result<Decoded, UnpackError> {
    let decompress_err = |source| UnpackError::Decompress {
        blob: id.clone(),
        source,
    };
    let mut magic = [0u8; 10];
    let mut got = 0;
    while got < magic.len() {
        match compressed.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(decompress_err(e)),
        }
    }
    let kind = detect(&magic[..got])
        .map_err(|m| decompress_err(io::Error::new(io::ErrorKind::Unsupported, m)))?;
    let input = Read::chain(&magic[..got], compressed);
    pipeline::decode_and_apply(kind, input, id, dest, opts, threaded, tap)
}
