//! Tar-split: what it takes to give back a layer's exact tar stream from its unpacked directory.
//!
//! A layer's diffID is the sha256 of its uncompressed tar, and the image ID (the config digest) covers
//! the diffIDs, so `save` must reproduce every layer tar byte for byte, or the saved image would be
//! another image. Writing a fresh tar from the tree cannot do that (member order, header fields, PAX
//! records and padding are the producer's choices), and keeping every compressed blob would cost as
//! much disk again as the compressed image. Like containers/storage, we keep instead every byte of the
//! stream that is not regular-file content (headers, PAX records, padding, the end-of-archive blocks
//! and whatever follows them) and, for each file's content, its path, size and checksum (see
//! `content_sum`). Reassembly (`reassemble`) reads the content back from `diff/`, checks each
//! file's sum, and the caller checks the diffID.
//!
//! The record is written while the layer is unpacked: the `Recorder` is a [`Tap`] on the unpacker's
//! tar reader, so the stream is decoded and framed once, and file content is hashed, never copied.
//! Where the record cannot describe the layer (a path stored twice, a file the unpacker turned into
//! something else), its header says so and `save` refuses that layer by name.
//!
//! File format (`layers/<key>/tar-split`): a 128-byte header (magic, tar size, diffID, status and a
//! reason), then a zstd stream of segments `RAW len bytes | FILE path size sum | END`. The magic
//! gives the sum: `LTS2` XXH3-128 (16 bytes), `LTS1` (older records) SHA-256 (32 bytes).

use super::content_sum::{ContentHasher, ContentSum, SumKind};
use super::reader::Tap;
use crate::digest::Digest;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

const MAGIC: &[u8; 4] = b"LTS2";
const MAGIC_V1: &[u8; 4] = b"LTS1";
const HEADER_LEN: usize = 128;
const REASON_MAX: usize = HEADER_LEN - 4 - 8 - 32 - 1 - 1;
const SEG_END: u8 = 0;
const SEG_RAW: u8 = 1;
const SEG_FILE: u8 = 2;
/// Raw bytes are flushed as one segment once this many are pending.
const RAW_CHUNK: usize = 64 * 1024;

/// The header of a tar-split record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarSplitHeader {
    pub tar_size: u64,
    pub diff_id: Digest,
    /// Why the layer cannot be reproduced from its record, if it cannot.
    pub unusable: Option<String>,
    /// The algorithm of the record's file sums.
    pub sums: SumKind,
}

/// One segment of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Raw(Vec<u8>),
    File {
        path: Vec<u8>,
        size: u64,
        sum: ContentSum,
    },
}

pub fn read_header(path: &Path) -> io::Result<TarSplitHeader> {
    let mut f = File::open(path)?;
    let mut h = [0u8; HEADER_LEN];
    f.read_exact(&mut h)?;
    decode_header(&h).ok_or_else(|| bad_data(format!("{}: not a tar-split record", path.display())))
}

fn decode_header(h: &[u8; HEADER_LEN]) -> Option<TarSplitHeader> {
    let sums = match &h[..4] {
        m if m == MAGIC => SumKind::Xxh3,
        m if m == MAGIC_V1 => SumKind::Sha256,
        _ => return None,
    };
    let tar_size = u64::from_le_bytes(h[4..12].try_into().ok()?);
    let diff_id = Digest::from_hex(&hex::encode(&h[12..44])).ok()?;
    let unusable = (h[44] != 0).then(|| {
        let len = (h[45] as usize).min(REASON_MAX);
        String::from_utf8_lossy(&h[46..46 + len]).into_owned()
    });
    Some(TarSplitHeader {
        tar_size,
        diff_id,
        unusable,
        sums,
    })
}

fn encode_header(h: &TarSplitHeader) -> io::Result<[u8; HEADER_LEN]> {
    let mut out = [0u8; HEADER_LEN];
    out[..4].copy_from_slice(match h.sums {
        SumKind::Xxh3 => MAGIC,
        SumKind::Sha256 => MAGIC_V1,
    });
    out[4..12].copy_from_slice(&h.tar_size.to_le_bytes());
    let raw = hex::decode(h.diff_id.hex()).map_err(|e| bad_data(e.to_string()))?;
    out[12..44].copy_from_slice(&raw);
    if let Some(reason) = &h.unusable {
        let mut end = reason.len().min(REASON_MAX);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        out[44] = 1;
        out[45] = end as u8;
        out[46..46 + end].copy_from_slice(&reason.as_bytes()[..end]);
    }
    Ok(out)
}

/// Rewrites the header of an existing record (to mark it unusable after a later check).
pub fn rewrite_header(path: &Path, h: &TarSplitHeader) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&encode_header(h)?)?;
    f.sync_all()
}

pub(crate) fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads the segments of a record, one at a time.
pub struct SegmentReader {
    z: zstd::stream::read::Decoder<'static, BufReader<File>>,
    sums: SumKind,
    done: bool,
}

impl SegmentReader {
    pub fn open(path: &Path) -> io::Result<(TarSplitHeader, SegmentReader)> {
        let mut f = File::open(path)?;
        let mut h = [0u8; HEADER_LEN];
        f.read_exact(&mut h)?;
        let header = decode_header(&h)
            .ok_or_else(|| bad_data(format!("{}: not a tar-split record", path.display())))?;
        f.seek(SeekFrom::Start(HEADER_LEN as u64))?;
        let z = zstd::stream::read::Decoder::new(f)?;
        let sums = header.sums;
        Ok((
            header,
            SegmentReader {
                z,
                sums,
                done: false,
            },
        ))
    }

    pub fn next_segment(&mut self) -> io::Result<Option<Segment>> {
        if self.done {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.z.read_exact(&mut tag)?;
        match tag[0] {
            SEG_END => {
                self.done = true;
                Ok(None)
            }
            SEG_RAW => {
                let len = self.u32()? as usize;
                if len > 16 * RAW_CHUNK {
                    return Err(bad_data(format!("tar-split: raw segment of {len} bytes")));
                }
                let mut bytes = vec![0u8; len];
                self.z.read_exact(&mut bytes)?;
                Ok(Some(Segment::Raw(bytes)))
            }
            SEG_FILE => {
                let len = self.u32()? as usize;
                if len > 1 << 20 {
                    return Err(bad_data(format!("tar-split: path of {len} bytes")));
                }
                let mut path = vec![0u8; len];
                self.z.read_exact(&mut path)?;
                let mut size = [0u8; 8];
                self.z.read_exact(&mut size)?;
                let sum = self.sums.read_sum(&mut self.z)?;
                Ok(Some(Segment::File {
                    path,
                    size: u64::from_le_bytes(size),
                    sum,
                }))
            }
            t => Err(bad_data(format!("tar-split: unknown segment tag {t}"))),
        }
    }

    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.z.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// The tar-split writer: a [`Tap`] on the unpacker's one pass over the plain tar stream.
pub struct Recorder {
    out: Option<zstd::stream::write::Encoder<'static, BufWriter<File>>>,
    /// Raw bytes not yet written as a segment.
    raw: Vec<u8>,
    /// The file whose content is passing: path, size, bytes still to come, running sum.
    file: Option<(Vec<u8>, u64, u64, ContentHasher)>,
    seen: HashSet<Vec<u8>>,
    unusable: Option<String>,
    total: u64,
    error: Option<io::Error>,
}

impl Recorder {
    /// Starts a record at `path` (created; the header is written by `finish`).
    pub fn new(path: &Path) -> io::Result<Self> {
        let mut f = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        f.write_all(&[0u8; HEADER_LEN])?;
        // Level 1: the record is written on the load's critical path, and tar headers compress well anyway.
        let out = zstd::stream::write::Encoder::new(f, 1)?;
        Ok(Recorder {
            out: Some(out),
            raw: Vec::with_capacity(RAW_CHUNK),
            file: None,
            seen: HashSet::new(),
            unusable: None,
            total: 0,
            error: None,
        })
    }

    /// Completes the record for a stream whose diffID the unpacker verified.
    pub fn finish(mut self, diff_id: &Digest) -> io::Result<TarSplitHeader> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((path, ..)) = &self.file {
            let path = String::from_utf8_lossy(path);
            return Err(bad_data(format!(
                "tar-split: the stream ends inside {path}"
            )));
        }
        self.flush_raw()?;
        let mut out = self
            .out
            .take()
            .ok_or_else(|| bad_data("tar-split: finished twice".into()))?;
        out.write_all(&[SEG_END])?;
        let mut f = out.finish()?;
        let header = TarSplitHeader {
            tar_size: self.total,
            diff_id: diff_id.clone(),
            unusable: self.unusable.take(),
            sums: SumKind::Xxh3,
        };
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&encode_header(&header)?)?;
        f.flush()?;
        Ok(header)
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| bad_data("tar-split: finished".into()))?;
        out.write_all(&[SEG_RAW])?;
        out.write_all(&(self.raw.len() as u32).to_le_bytes())?;
        out.write_all(&self.raw)?;
        self.raw.clear();
        Ok(())
    }

    fn write_file(&mut self, path: &[u8], size: u64, sum: ContentSum) -> io::Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| bad_data("tar-split: finished".into()))?;
        out.write_all(&[SEG_FILE])?;
        out.write_all(&(path.len() as u32).to_le_bytes())?;
        out.write_all(path)?;
        out.write_all(&size.to_le_bytes())?;
        out.write_all(sum.as_bytes())
    }

    /// Keeps the first error; the tap has no way to report it until `finish`.
    fn keep(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }
}

impl Tap for Recorder {
    fn raw(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.raw.extend_from_slice(bytes);
        if self.raw.len() >= RAW_CHUNK {
            let r = self.flush_raw();
            self.keep(r);
        }
    }

    fn file(&mut self, path: &[u8], size: u64) {
        // An empty file has no content to fetch back: its header alone gives it back.
        if size == 0 {
            return;
        }
        if !self.seen.insert(path.to_vec()) {
            self.unusable.get_or_insert_with(|| {
                format!(
                    "{} is stored twice in the layer",
                    String::from_utf8_lossy(path)
                )
            });
        }
        let r = self.flush_raw();
        self.keep(r);
        self.file = Some((path.to_vec(), size, size, ContentHasher::new(SumKind::Xxh3)));
    }

    fn content(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let Some((_, _, left, hash)) = self.file.as_mut() else {
            return self.keep(Err(bad_data("tar-split: content outside a file".into())));
        };
        hash.update(bytes);
        *left = left.saturating_sub(bytes.len() as u64);
        if *left == 0 {
            if let Some((path, size, _, hash)) = self.file.take() {
                let r = self.write_file(&path, size, hash.finish());
                self.keep(r);
            }
        }
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
