//! Frame-parallel zstd. A zstd stream may be several frames back to back (pzstd writes them, each
//! behind a skippable frame, and so does a tool that compresses a layer in chunks); each frame
//! decodes on its own, so frames are decoded on every core at once and given back in order. Frame
//! ends are found by walking the frame and block headers, without decoding anything.
//!
//! Memory stays bounded: a frame is held whole only if its compressed bytes are at most a little
//! over `content_max`, and its output only up to `content_max` (a frame that turns out larger is
//! decoded again, streaming, on the reader's thread); at most one frame per core is in flight.
//! From the first frame too large to hold (one large frame, as `zstd -T0` writes a whole layer)
//! the rest of the stream goes through libzstd's streaming decoder, with the bytes already read in
//! front.
//!
//! Errors come in stream order: a bad header, a truncated frame or bytes after the last frame that
//! are not a frame are reported after the frames before them have been given back, as the
//! streaming decoder would.

use std::collections::VecDeque;
use std::io::{self, BufRead, Chain, Cursor, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

const FRAME_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames have magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// The most output a frame decoded apart may give: pzstd's frames at its default level hold
/// 8 MiB, and the frames in flight, one per core, stay a few tens of MiB.
pub(crate) const CONTENT_MAX: u64 = 8 << 20;

type Streaming<R> = zstd::stream::read::Decoder<'static, Chain<Cursor<Vec<u8>>, R>>;
type Oversized = zstd::stream::read::Decoder<'static, io::BufReader<Cursor<Vec<u8>>>>;

/// What a worker makes of a frame.
enum Decoded {
    Bytes(Vec<u8>),
    /// The frame gives more than `content_max`: its bytes, to be streamed by the reader.
    Oversized(Vec<u8>),
}

/// A frame to decode, its declared size if any, and where the outcome goes.
type Job = (Vec<u8>, Option<usize>, SyncSender<io::Result<Decoded>>);

/// A zstd stream's frames, decoded in parallel while they are small and sized.
pub(crate) struct ZstdFrames<R: BufRead> {
    /// Still being split into frames.
    input: Option<R>,
    /// Frames being decoded, oldest first.
    in_flight: VecDeque<Receiver<io::Result<Decoded>>>,
    /// The frame decoders' queue, once started (`None` inside: none could start).
    workers: Option<Option<Sender<Job>>>,
    /// A frame too large for a worker, being streamed here.
    oversized: Option<Box<Oversized>>,
    /// The oldest frame's output, and how much of it was read.
    out: Vec<u8>,
    pos: usize,
    /// The first bytes of a frame that is not held whole: streamed, with the rest, once the
    /// frames before it are out.
    tail: Option<Vec<u8>>,
    stream: Option<Box<Streaming<R>>>,
    /// What ended the splitting, reported once the frames before it are out.
    error: Option<io::Error>,
    width: usize,
    content_max: u64,
}

impl<R: BufRead> ZstdFrames<R> {
    pub(crate) fn new(input: R) -> Self {
        Self::with_limit(input, CONTENT_MAX)
    }

    /// Frames held whole declare at most `content_max` bytes (tests use small ones).
    pub(crate) fn with_limit(input: R, content_max: u64) -> Self {
        ZstdFrames {
            input: Some(input),
            in_flight: VecDeque::new(),
            workers: None,
            oversized: None,
            out: Vec::new(),
            pos: 0,
            tail: None,
            stream: None,
            error: None,
            width: std::thread::available_parallelism().map_or(1, |n| n.get()),
            content_max,
        }
    }

    /// Starts decoding frames until every core has one or the splitting ends.
    fn fill(&mut self) {
        while self.in_flight.len() < self.width && self.tail.is_none() && self.error.is_none() {
            let Some(input) = self.input.as_mut() else {
                return;
            };
            match next_frame(input, self.content_max) {
                Ok(Frame::End) => self.input = None,
                Ok(Frame::Skipped) => {}
                Ok(Frame::Whole { bytes, size }) => {
                    let done = self.submit(bytes, size);
                    self.in_flight.push_back(done);
                }
                Ok(Frame::TooLarge(head)) => self.tail = Some(head),
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Hands a frame to the workers (started on the first frame), or decodes it here if there
    /// are none.
    fn submit(&mut self, frame: Vec<u8>, size: Option<usize>) -> Receiver<io::Result<Decoded>> {
        let (tx, rx) = sync_channel(1);
        let (width, max) = (self.width, self.content_max);
        let workers = self
            .workers
            .get_or_insert_with(|| start_workers(width, max));
        let job = (frame, size, tx);
        let unsent = match workers {
            Some(queue) => queue.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some((frame, size, tx)) = unsent {
            let _ = tx.send(decode_frame(frame, size, max));
        }
        rx
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.pos);
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(frame) = self.oversized.as_mut() {
                match frame.read(buf)? {
                    0 => self.oversized = None,
                    n => return Ok(n),
                }
            }
            if let Some(stream) = self.stream.as_mut() {
                return stream.read(buf);
            }
            self.fill();
            if let Some(frame) = self.in_flight.pop_front() {
                let decoded = frame
                    .recv()
                    .unwrap_or_else(|_| Err(io::Error::other("zstd frame decoder lost")))?;
                match decoded {
                    Decoded::Bytes(out) => self.out = out,
                    Decoded::Oversized(bytes) => {
                        self.out.clear();
                        let frame = zstd::stream::read::Decoder::new(Cursor::new(bytes))?;
                        self.oversized = Some(Box::new(frame.single_frame()));
                    }
                }
                self.pos = 0;
                continue;
            }
            if let Some(e) = self.error.take() {
                self.input = None;
                return Err(e);
            }
            match (self.tail.take(), self.input.take()) {
                (Some(head), Some(rest)) => {
                    let chained = Cursor::new(head).chain(rest);
                    self.stream =
                        Some(Box::new(zstd::stream::read::Decoder::with_buffer(chained)?));
                }
                _ => return Ok(0),
            }
        }
    }
}

/// `width` threads taking frames from one queue; they end when the queue's sender is dropped.
/// `None` if not one could start.
fn start_workers(width: usize, content_max: u64) -> Option<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let started = (0..width)
        .filter(|_| {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name("lamina-zstd".into())
                .spawn(move || loop {
                    let job = rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    let Ok((frame, size, done)) = job else { return };
                    let _ = done.send(decode_frame(frame, size, content_max));
                })
                .is_ok()
        })
        .count();
    (started > 0).then_some(tx)
}

enum Frame {
    /// The stream ended between frames.
    End,
    Skipped,
    /// A whole frame and its declared content size, if it has one.
    Whole {
        bytes: Vec<u8>,
        size: Option<usize>,
    },
    /// The beginning of a frame too large to hold whole.
    TooLarge(Vec<u8>),
}

/// Reads the next frame from `input`, walking its headers.
fn next_frame<R: BufRead>(input: &mut R, content_max: u64) -> io::Result<Frame> {
    let mut bytes = Vec::new();
    if take(input, 4, &mut bytes, true)? == 0 {
        return Ok(Frame::End);
    }
    let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic & 0xFFFF_FFF0 == SKIPPABLE_MAGIC {
        take(input, 4, &mut bytes, false)?;
        let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let skipped = io::copy(&mut input.take(u64::from(len)), &mut io::sink())?;
        if skipped != u64::from(len) {
            return Err(truncated());
        }
        return Ok(Frame::Skipped);
    }
    if magic != FRAME_MAGIC {
        return Err(invalid(format!("zstd: unknown frame magic {magic:#010x}")));
    }
    take(input, 1, &mut bytes, false)?;
    let descriptor = bytes[4];
    if descriptor & 0x08 != 0 {
        return Err(invalid(
            "zstd: reserved bit set in a frame header".to_string(),
        ));
    }
    let single_segment = descriptor & 0x20 != 0;
    let size_len = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let dict_len = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let header_rest = usize::from(!single_segment) + dict_len + size_len;
    take(input, header_rest as u64, &mut bytes, false)?;
    let size_field = &bytes[bytes.len() - size_len..];
    let mut le = [0u8; 8];
    le[..size_len].copy_from_slice(size_field);
    let size = match size_len {
        0 => None,
        2 => Some(u64::from_le_bytes(le) + 256),
        _ => Some(u64::from_le_bytes(le)),
    };
    if size.is_some_and(|s| s > content_max) {
        return Ok(Frame::TooLarge(bytes));
    }
    // A frame a little larger than its content (raw blocks and headers) is still held whole.
    let bytes_max = content_max + content_max / 8 + 64;
    loop {
        let at = bytes.len();
        take(input, 3, &mut bytes, false)?;
        let header = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], 0]);
        let payload = match (header >> 1) & 0x03 {
            1 => 1, // RLE: one byte, repeated
            3 => return Err(invalid("zstd: reserved block type".to_string())),
            _ => u64::from(header >> 3),
        };
        if bytes.len() as u64 + payload > bytes_max {
            return Ok(Frame::TooLarge(bytes));
        }
        take(input, payload, &mut bytes, false)?;
        if header & 1 == 1 {
            break;
        }
    }
    if descriptor & 0x04 != 0 {
        take(input, 4, &mut bytes, false)?; // content checksum, checked by the decoder
    }
    Ok(Frame::Whole {
        bytes,
        size: size.map(|s| s as usize),
    })
}

/// Appends `n` bytes of `input` to `bytes`; 0 only if `may_end` and the input ended first.
fn take<R: BufRead>(input: &mut R, n: u64, bytes: &mut Vec<u8>, may_end: bool) -> io::Result<u64> {
    let got = input.take(n).read_to_end(bytes)? as u64;
    match got {
        0 if may_end => Ok(0),
        _ if got == n => Ok(n),
        _ => Err(truncated()),
    }
}

/// Decodes one whole frame: at once into its declared size, or streaming up to `content_max`.
fn decode_frame(frame: Vec<u8>, size: Option<usize>, content_max: u64) -> io::Result<Decoded> {
    let Some(size) = size else {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::with_buffer(&frame[..])?
            .single_frame()
            .take(content_max + 1)
            .read_to_end(&mut out)?;
        return Ok(if out.len() as u64 > content_max {
            Decoded::Oversized(frame)
        } else {
            Decoded::Bytes(out)
        });
    };
    let out = zstd::bulk::decompress(&frame, size).map_err(|e| invalid(format!("zstd: {e}")))?;
    if out.len() != size {
        return Err(invalid(format!(
            "zstd: a frame declares {size} bytes but holds {}",
            out.len()
        )));
    }
    Ok(Decoded::Bytes(out))
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "zstd stream ends inside a frame",
    )
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
#[path = "zstd_frames_tests.rs"]
mod tests;
