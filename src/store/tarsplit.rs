//! Tar-split: what it takes to give back a layer's exact tar stream from its unpacked directory.
//!
//! A layer's diffID is the sha256 of its uncompressed tar, and the image ID (the config digest) covers
//! the diffIDs, so `save` must reproduce every layer tar byte for byte, or the saved image would be
//! another image. Writing a fresh tar from the tree cannot do that (member order, header fields, PAX
//! records and padding are the producer's choices), and keeping every compressed blob would cost as
//! much disk again as the compressed image. Like containers/storage, we keep instead every byte of the
//! stream that is not regular-file content (headers, PAX records, padding, the end-of-archive blocks
//! and whatever follows them) and, for each file's content, its path, size and checksum (see
//! `content_sum`). Reassembly reads the content back from `diff/`, checks each file's sum, and the
//! caller checks the diffID.
//!
//! The record is written while the layer is unpacked: the plain tar stream passes through a
//! `Recorder` (a read-through observer with its own, lenient tar framing) on its way to the unpacker,
//! so the stream is read once. Where the record cannot describe the layer (a path stored twice, a file
//! the unpacker turned into something else), its header says so and `save` refuses that layer by name.
//!
//! File format (`layers/<key>/tar-split`): a 128-byte header (magic, tar size, diffID, status and a
//! reason), then a zstd stream of segments `RAW len bytes | FILE path size sum | END`. The magic
//! gives the sum: `LTS2` XXH3-128 (16 bytes), `LTS1` (older records) SHA-256 (32 bytes).

use super::content_sum::{ContentHasher, ContentSum, SumKind};
use crate::digest::Digest;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
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
/// PAX and GNU long-name members are parsed (for the next member's path and size) up to this size.
const EXT_MAX: usize = 1 << 20;

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

fn bad_data(msg: String) -> io::Error {
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

/// A read-through observer of a plain tar stream that writes its tar-split record.
pub struct Recorder<R> {
    inner: R,
    framer: Framer,
    out: Option<zstd::stream::write::Encoder<'static, BufWriter<File>>>,
    error: Option<io::Error>,
}

impl<R: Read> Recorder<R> {
    /// Starts a record at `path` (created; the header is written by `finish`).
    pub fn new(inner: R, path: &Path) -> io::Result<Self> {
        let mut f = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        f.write_all(&[0u8; HEADER_LEN])?;
        // Level 1: the record is written on the load's critical path, and tar headers compress well anyway.
        let out = zstd::stream::write::Encoder::new(f, 1)?;
        Ok(Recorder {
            inner,
            framer: Framer::default(),
            out: Some(out),
            error: None,
        })
    }

    /// Completes the record for a stream whose diffID the unpacker verified.
    pub fn finish(mut self, diff_id: &Digest) -> io::Result<TarSplitHeader> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut out = self
            .out
            .take()
            .ok_or_else(|| bad_data("tar-split: finished twice".into()))?;
        self.framer.end(&mut out)?;
        let mut f = out.finish()?;
        let header = TarSplitHeader {
            tar_size: self.framer.total,
            diff_id: diff_id.clone(),
            unusable: self.framer.unusable.clone(),
            sums: SumKind::Xxh3,
        };
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&encode_header(&header)?)?;
        f.flush()?;
        Ok(header)
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.error.is_none() {
            if let Some(out) = self.out.as_mut() {
                if let Err(e) = self.framer.feed(&buf[..n], out) {
                    self.error = Some(e);
                }
            }
        }
        Ok(n)
    }
}

#[derive(Default)]
enum State {
    #[default]
    Header,
    Content {
        remaining: u64,
        kind: ContentKind,
        padding: u64,
    },
    Padding(u64),
    /// After the end-of-archive blocks: everything is kept verbatim.
    Trailer,
}

enum ContentKind {
    File {
        path: Vec<u8>,
        size: u64,
        hash: ContentHasher,
    },
    Raw,
    Pax,
    LongName,
}

/// Tar framing, lenient: the unpacker judges the archive; this only has to follow it.
#[derive(Default)]
struct Framer {
    state: State,
    block: Vec<u8>,
    raw: Vec<u8>,
    ext: Vec<u8>,
    zero_blocks: u32,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
    long_name: Option<Vec<u8>>,
    seen: HashSet<Vec<u8>>,
    unusable: Option<String>,
    total: u64,
}

impl Framer {
    fn feed(&mut self, mut input: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.total += input.len() as u64;
        while !input.is_empty() {
            match &mut self.state {
                State::Header => {
                    let n = (512 - self.block.len()).min(input.len());
                    self.block.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.block.len() == 512 {
                        self.header(out)?;
                    }
                }
                State::Content {
                    remaining,
                    kind,
                    padding,
                } => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    match kind {
                        ContentKind::File { hash, .. } => hash.update(&input[..n]),
                        ContentKind::Raw => self.raw.extend_from_slice(&input[..n]),
                        ContentKind::Pax | ContentKind::LongName => {
                            self.raw.extend_from_slice(&input[..n]);
                            if self.ext.len() + n <= EXT_MAX {
                                self.ext.extend_from_slice(&input[..n]);
                            }
                        }
                    }
                    input = &input[n..];
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        let padding = *padding;
                        let kind = std::mem::replace(kind, ContentKind::Raw);
                        self.state = if padding > 0 {
                            State::Padding(padding)
                        } else {
                            State::Header
                        };
                        self.content_done(kind, out)?;
                    }
                }
                State::Padding(remaining) => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    self.raw.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Header;
                    }
                }
                State::Trailer => {
                    self.raw.extend_from_slice(input);
                    input = &[];
                }
            }
            if self.raw.len() >= RAW_CHUNK {
                self.flush_raw(out)?;
            }
        }
        Ok(())
    }

    fn header(&mut self, out: &mut impl Write) -> io::Result<()> {
        let block = std::mem::take(&mut self.block);
        self.raw.extend_from_slice(&block);
        if block.iter().all(|&b| b == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::Trailer;
            }
            return Ok(());
        }
        self.zero_blocks = 0;
        let typeflag = block[156];
        let size = match typeflag {
            b'x' | b'g' | b'L' | b'K' => parse_size(&block[124..136]),
            _ => self
                .pax_size
                .take()
                .or_else(|| parse_size(&block[124..136])),
        };
        let Some(size) = size else {
            self.mark_unusable("a member header has an unreadable size".into());
            self.state = State::Trailer;
            return Ok(());
        };
        let kind = match typeflag {
            b'x' => ContentKind::Pax,
            b'L' => ContentKind::LongName,
            b'g' | b'K' => ContentKind::Raw,
            b'0' | 0 | b'7' if size > 0 => {
                let name = self
                    .pax_path
                    .take()
                    .or_else(|| self.long_name.take())
                    .unwrap_or_else(|| ustar_name(&block));
                let path = normalize(&name);
                if !self.seen.insert(path.clone()) {
                    self.mark_unusable(format!(
                        "{} is stored twice in the layer",
                        String::from_utf8_lossy(&path)
                    ));
                }
                ContentKind::File {
                    path,
                    size,
                    hash: ContentHasher::new(SumKind::Xxh3),
                }
            }
            _ => {
                self.pax_path = None;
                self.long_name = None;
                ContentKind::Raw
            }
        };
        if matches!(kind, ContentKind::File { .. }) {
            self.flush_raw(out)?;
        }
        let padding = (512 - size % 512) % 512;
        self.state = if size == 0 {
            self.content_done(kind, out)?;
            State::Header
        } else {
            State::Content {
                remaining: size,
                kind,
                padding,
            }
        };
        Ok(())
    }

    fn content_done(&mut self, kind: ContentKind, out: &mut impl Write) -> io::Result<()> {
        match kind {
            ContentKind::File { path, size, hash } => {
                out.write_all(&[SEG_FILE])?;
                out.write_all(&(path.len() as u32).to_le_bytes())?;
                out.write_all(&path)?;
                out.write_all(&size.to_le_bytes())?;
                out.write_all(hash.finish().as_bytes())?;
            }
            ContentKind::Pax => {
                let ext = std::mem::take(&mut self.ext);
                for (key, value) in pax_records(&ext) {
                    match key {
                        b"path" => self.pax_path = Some(value.to_vec()),
                        b"size" => {
                            self.pax_size =
                                std::str::from_utf8(value).ok().and_then(|s| s.parse().ok())
                        }
                        _ => {}
                    }
                }
            }
            ContentKind::LongName => {
                let mut name = std::mem::take(&mut self.ext);
                if let Some(end) = name.iter().position(|&b| b == 0) {
                    name.truncate(end);
                }
                self.long_name = Some(name);
            }
            ContentKind::Raw => {}
        }
        Ok(())
    }

    fn flush_raw(&mut self, out: &mut impl Write) -> io::Result<()> {
        if !self.raw.is_empty() {
            out.write_all(&[SEG_RAW])?;
            out.write_all(&(self.raw.len() as u32).to_le_bytes())?;
            out.write_all(&self.raw)?;
            self.raw.clear();
        }
        Ok(())
    }

    fn end(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self.state {
            State::Header | State::Trailer if self.block.is_empty() => {}
            _ => {
                // The stream stopped inside a member; keep what there is and say so.
                let partial = std::mem::take(&mut self.block);
                self.raw.extend_from_slice(&partial);
                self.mark_unusable("the tar stream ends inside a member".into());
            }
        }
        self.flush_raw(out)?;
        out.write_all(&[SEG_END])
    }

    fn mark_unusable(&mut self, reason: String) {
        self.unusable.get_or_insert(reason);
    }
}

/// A member's size field: octal, or base-256 when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ' || b == 0)
        .take_while(|&b| b != b' ' && b != 0)
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// The name in a ustar header (prefix/name), or the v7 name.
fn ustar_name(block: &[u8]) -> Vec<u8> {
    let name = cstr(&block[0..100]);
    if &block[257..262] == b"ustar" {
        let prefix = cstr(&block[345..500]);
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(name);
            return full;
        }
    }
    name.to_vec()
}

/// `LEN key=value\n` records; malformed ones end the list.
fn pax_records(mut data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = vec![];
    while !data.is_empty() {
        let Some(sp) = data.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > data.len() {
            break;
        }
        let record = &data[sp + 1..len - 1];
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((&record[..eq], &record[eq + 1..]));
        }
        data = &data[len..];
    }
    out
}

/// A member name as a path relative to the layer dir: no leading `/`, no `.` or empty components.
pub fn normalize(name: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = name
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    parts.join(&b'/')
}

/// Reassembles the layer's tar stream from its record and its `diff/` dir.
pub struct TarSplitReader {
    diff: File,
    diff_path: std::path::PathBuf,
    segments: SegmentReader,
    current: Current,
}

enum Current {
    Idle,
    Raw(Vec<u8>, usize),
    File {
        file: File,
        path: Vec<u8>,
        remaining: u64,
        hash: ContentHasher,
        want: ContentSum,
    },
    Done,
}

impl TarSplitReader {
    /// Opens the record; refuses a record marked unusable.
    pub fn open(record: &Path, diff: &Path) -> io::Result<(TarSplitHeader, TarSplitReader)> {
        let (header, segments) = SegmentReader::open(record)?;
        if let Some(why) = &header.unusable {
            return Err(io::Error::other(format!(
                "the layer's tar cannot be reproduced: {why}"
            )));
        }
        let dir = File::open(diff)?;
        Ok((
            header,
            TarSplitReader {
                diff: dir,
                diff_path: diff.to_path_buf(),
                segments,
                current: Current::Idle,
            },
        ))
    }

    fn open_file(&self, path: &[u8], size: u64) -> io::Result<File> {
        use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
        let rel = std::ffi::OsStr::from_bytes(path);
        let shown = || self.diff_path.join(rel).display().to_string();
        let fd = openat2(
            &self.diff,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", shown())))?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() != size {
            return Err(bad_data(format!(
                "{}: changed since it was loaded (expected a {size}-byte file, found {} bytes)",
                shown(),
                meta.len()
            )));
        }
        Ok(file)
    }
}

impl Read for TarSplitReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.current {
                Current::Done => return Ok(0),
                Current::Raw(bytes, pos) if *pos < bytes.len() => {
                    let n = (bytes.len() - *pos).min(buf.len());
                    buf[..n].copy_from_slice(&bytes[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                Current::File {
                    file,
                    path,
                    remaining,
                    hash,
                    want,
                } => {
                    if *remaining == 0 {
                        if hash.finish() != *want {
                            return Err(bad_data(format!(
                                "{}: content changed since it was loaded",
                                self.diff_path
                                    .join(std::ffi::OsStr::from_bytes(path))
                                    .display()
                            )));
                        }
                        self.current = Current::Idle;
                        continue;
                    }
                    let n = (*remaining).min(buf.len() as u64) as usize;
                    let got = file.read(&mut buf[..n])?;
                    if got == 0 {
                        return Err(bad_data(format!(
                            "{}: shorter than when it was loaded",
                            self.diff_path
                                .join(std::ffi::OsStr::from_bytes(path))
                                .display()
                        )));
                    }
                    hash.update(&buf[..got]);
                    *remaining -= got as u64;
                    return Ok(got);
                }
                _ => match self.segments.next_segment()? {
                    None => self.current = Current::Done,
                    Some(Segment::Raw(bytes)) => self.current = Current::Raw(bytes, 0),
                    Some(Segment::File { path, size, sum }) => {
                        let file = self.open_file(&path, size)?;
                        self.current = Current::File {
                            file,
                            path,
                            remaining: size,
                            hash: ContentHasher::new(sum.kind()),
                            want: sum,
                        };
                    }
                },
            }
        }
    }
}

#[cfg(test)]
#[path = "tarsplit_tests.rs"]
mod tests;
