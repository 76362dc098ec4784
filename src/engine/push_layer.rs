//! One layer on its way to a registry, in one pass and without a temporary file: its tar is
//! reassembled from the tar-split record (as `save` does) and compressed on every core
//! (`compress`), checked against the diffID as it goes; the compressed bytes are hashed and
//! uploaded in chunks by the caller's thread as they come (the blob's digest is only known at the
//! end, so chunks go up with `PATCH` and the digest with the final `PUT`).

use super::compress;
use super::{EngineError, Result};
use crate::digest::{Digest, HashingReader};
use crate::store::{recorded, KeptBlob, LayerPaths};
use crate::tar::reassemble::TarSplitReader;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{sync_channel, SyncSender};

/// Chunks of this size are uploaded with one `PATCH` each.
pub const CHUNK: usize = 8 << 20;
/// A kept blob goes up in larger chunks: its bytes are at hand, and the registry does work per
/// chunk (distribution stores its hash state after every PATCH). Four are in memory at most.
const KEPT_CHUNK: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Compression {
    Gzip,
    Zstd,
}

/// A format and its level, as buildx's `compression` and `compression-level` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerCompression {
    pub format: Compression,
    level: i32,
    /// Whether the format and the level were asked for, or are the defaults: a kept blob (see
    /// `keep_blobs`) is sent as it is unless it differs from what was asked.
    format_asked: bool,
    level_asked: bool,
}

impl LayerCompression {
    /// `format` (default gzip) at `level` (gzip 0-9, zstd 0-22 where 0 is zstd's default, as
    /// buildx takes them), or at lamina's default level for the format.
    pub fn new(format: Option<Compression>, level: Option<i32>) -> Result<LayerCompression> {
        let (format_asked, level_asked) = (format.is_some(), level.is_some());
        let format = format.unwrap_or(Compression::Gzip);
        let (range, default) = match format {
            Compression::Gzip => (0..=9, compress::GZIP_DEFAULT_LEVEL as i32),
            Compression::Zstd => (0..=22, compress::ZSTD_DEFAULT_LEVEL),
        };
        let level = level.unwrap_or(default);
        if !range.contains(&level) {
            return Err(EngineError::Invalid(format!(
                "compression level {level} is out of range for {format:?} ({}-{})",
                range.start(),
                range.end()
            )));
        }
        Ok(LayerCompression {
            format,
            level,
            format_asked,
            level_asked,
        })
    }

    pub fn level(&self) -> i32 {
        self.level
    }

    /// Whether a kept blob compressed as `kept` (None: a plain tar) may be sent instead of the
    /// layer compressed again: when no level was asked for (a kept blob's level is unknown) and
    /// the format, if one was asked for, is its format.
    pub fn takes_kept(&self, kept: Option<Compression>) -> bool {
        !self.level_asked && self.takes_format(kept)
    }

    /// Whether a blob in `format` (None: a plain tar) is what was asked for: any, unless a
    /// format was asked for.
    pub fn takes_format(&self, format: Option<Compression>) -> bool {
        !self.format_asked || format == Some(self.format)
    }
}

impl Default for LayerCompression {
    fn default() -> Self {
        LayerCompression {
            format: Compression::Gzip,
            level: compress::GZIP_DEFAULT_LEVEL as i32,
            format_asked: false,
            level_asked: false,
        }
    }
}

/// The compressed blob that was produced.
pub struct Compressed {
    pub digest: Digest,
    pub size: u64,
}

fn push_err(what: &str, reason: impl std::fmt::Display) -> EngineError {
    EngineError::Archive {
        image: what.to_string(),
        reason: reason.to_string(),
    }
}

/// A writer that hands out full chunks through a channel.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: SyncSender<Vec<u8>>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(full)
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

/// Compresses the layer at `paths` (whose tar must hash to `diff_id`) and gives each chunk of the
/// compressed stream to `upload` in order; the last chunk (possibly short or empty) is returned
/// with the result for the caller to send with the final request.
pub fn compress_layer(
    paths: &LayerPaths,
    diff_id: &Digest,
    compression: LayerCompression,
    what: &str,
    mut upload: impl FnMut(&[u8]) -> Result<()>,
) -> Result<(Compressed, Vec<u8>)> {
    let record = paths.tar_split();
    if !record.exists() {
        return Err(recorded::no_record(
            &paths.dir().display().to_string(),
            "tar-split record, so its tar cannot be reproduced",
        )
        .into());
    }
    let (header, reader) =
        TarSplitReader::open(&record, &paths.diff()).map_err(|e| push_err(what, e))?;
    if &header.diff_id != diff_id {
        return Err(push_err(
            what,
            format!("its tar-split record is for {}", header.diff_id),
        ));
    }
    let (tx, rx) = sync_channel::<Vec<u8>>(2);
    std::thread::scope(|s| {
        let producer = s.spawn(move || -> io::Result<(Digest, u64, Vec<u8>)> {
            let mut hashing = HashingReader::new(reader);
            let mut sink = ChunkWriter {
                buf: Vec::with_capacity(CHUNK),
                tx,
            };
            let threads = compress::threads();
            match compression.format {
                Compression::Gzip => {
                    // LayerCompression::new checked the range (0-9).
                    let level = compression.level.unsigned_abs();
                    compress::gzip(&mut hashing, &mut sink, level, threads)?
                }
                Compression::Zstd => {
                    compress::zstd(&mut hashing, &mut sink, compression.level, threads)?
                }
            }
            let (got, size) = hashing.finish()?;
            Ok((got, size, sink.buf))
        });
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut failed = None;
        for chunk in rx.iter() {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if let Err(e) = upload(&chunk) {
                failed = Some(e);
                break;
            }
        }
        // Dropping the receiver ends the producer at its next chunk.
        drop(rx);
        let produced = producer
            .join()
            .map_err(|_| push_err(what, "the compressing thread panicked"))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let (got, tar_size, last) = produced.map_err(|e| push_err(what, e))?;
        if &got != diff_id || tar_size != header.tar_size {
            return Err(push_err(
                what,
                format!("the reassembled tar has digest {got} ({tar_size} bytes); the layer was changed"),
            ));
        }
        hasher.update(&last);
        size += last.len() as u64;
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()))
            .parse::<Digest>()
            .map_err(|e| push_err(what, e))?;
        Ok((Compressed { digest, size }, last))
    })
}

/// Sends a kept blob (see `keep_blobs`) as it is, in upload-sized chunks, checking its digest as it
/// goes: every chunk but the last goes to `upload`, and the last is returned for the final request,
/// as [`compress_layer`] does. A blob changed on disk fails before that final request. The file is
/// read and hashed on a thread of its own, so that hashing overlaps the upload.
pub fn send_kept_blob(
    blob: &KeptBlob,
    what: &str,
    mut upload: impl FnMut(&[u8]) -> Result<()>,
) -> Result<(Compressed, Vec<u8>)> {
    let path = &blob.path;
    let read_err = |e: io::Error| push_err(what, format!("reading {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(read_err)?;
    let (tx, rx) = sync_channel::<Vec<u8>>(1);
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> io::Result<(Digest, u64)> {
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            loop {
                let mut chunk = Vec::with_capacity(KEPT_CHUNK);
                (&mut file)
                    .take(KEPT_CHUNK as u64)
                    .read_to_end(&mut chunk)?;
                if chunk.is_empty() {
                    break;
                }
                hasher.update(&chunk);
                size += chunk.len() as u64;
                let short = chunk.len() < KEPT_CHUNK;
                if tx.send(chunk).is_err() || short {
                    break;
                }
            }
            let digest = Digest::from_hex(&hex::encode(hasher.finalize()))
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok((digest, size))
        });
        // Each chunk goes up once the next one is read: the last one is kept for the final request.
        let mut pending: Option<Vec<u8>> = None;
        let mut failed = None;
        for chunk in rx.iter() {
            if let Some(full) = pending.replace(chunk) {
                if let Err(e) = upload(&full) {
                    failed = Some(e);
                    break;
                }
            }
        }
        // Dropping the receiver ends the reader at its next chunk.
        drop(rx);
        let read = reader
            .join()
            .map_err(|_| push_err(what, "the reading thread panicked"))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let (digest, size) = read.map_err(read_err)?;
        if digest != blob.digest {
            return Err(push_err(
                what,
                format!(
                    "the kept blob {} has changed on disk (its digest is now {digest}); \
                     `lamina fsck --repair` removes it",
                    path.display()
                ),
            ));
        }
        Ok((Compressed { digest, size }, pending.unwrap_or_default()))
    })
}
