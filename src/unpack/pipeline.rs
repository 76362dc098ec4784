//! One layer as a pipeline of stages on their own threads, so that a large layer takes as long
//! as its slowest stage rather than the sum of them:
//!
//! ```text
//! caller: read + sha256 blob ─► decode (gzip | zstd) ─┬─► sha256 (diffID)
//!                                                     └─► frame (+ tap) + apply
//! ```
//!
//! The blob reader stays on the caller's thread (it need not be `Send`); a plain blob skips the
//! decode and diffID stages (its blob digest is its diffID). Each stage hands its output on in
//! chunks through bounded channels: a chunk of tar is shared (`Arc`) by the two stages that read
//! it, and comes back for reuse once both are done with it, so memory stays flat (a few MiB
//! whatever the layer size).
//!
//! Every stage reads its input to the end: after the end-of-archive marker, the apply stage
//! stops but the tar is still hashed and the blob still read, so both digests cover the whole
//! stream; a stage that has stopped is simply no longer sent anything. An observer's [`Tap`]
//! (the tar-split recorder) runs in the apply stage, inside the framing, which reads on to EOF
//! for it. Small blobs, or a failure to start a thread, run the same work inline.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::apply::{Applied, Applier};
use super::{decoder, BlobCompression, Decoded, UnpackError, UnpackOptions, STREAM_BUF};
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::tar::reader::{FrameError, Tap, TarReader};

/// Chunks in flight into each stage.
const DEPTH: usize = 4;

type SharedTap<'t> = Mutex<Option<&'t mut (dyn Tap + Send)>>;

/// Decodes `stream` (compressed as `kind` says), applies the tar to `dest` and hashes it, reading
/// `stream` to its end.
pub(crate) fn decode_and_apply<S: Read>(
    kind: BlobCompression,
    mut stream: S,
    id: &Digest,
    dest: &Path,
    opts: &UnpackOptions,
    threaded: bool,
    tap: Option<&mut (dyn Tap + Send)>,
) -> Result<Decoded, UnpackError> {
    // Whichever runs the apply stage takes the tap; if its thread cannot start, inline does.
    let tap = Mutex::new(tap);
    if threaded {
        match staged(kind, &mut stream, id, dest, opts, &tap) {
            Some(done) => return done,
            None => tracing::debug!("no unpack threads; unpacking inline"),
        }
    }
    let tap = tap.into_inner().unwrap_or_else(|e| e.into_inner());
    inline(kind, stream, id, dest, opts, tap)
}

fn inline<S: Read>(
    kind: BlobCompression,
    stream: S,
    id: &Digest,
    dest: &Path,
    opts: &UnpackOptions,
    tap: Option<&mut (dyn Tap + Send)>,
) -> Result<Decoded, UnpackError> {
    let decoded = decoder(kind, BufReader::with_capacity(STREAM_BUF, stream))
        .map_err(|source| decompress_err(id, source))?;
    if kind == BlobCompression::Plain {
        let input = BufReader::with_capacity(STREAM_BUF, decoded);
        return Ok((apply_all(input, dest, id, opts, tap)?, None));
    }
    let mut tar = HashingReader::new(decoded);
    let applied = apply_all(
        BufReader::with_capacity(STREAM_BUF, &mut tar),
        dest,
        id,
        opts,
        tap,
    )?;
    let tar = tar.finish().map_err(|source| decompress_err(id, source))?;
    Ok((applied, Some(tar)))
}

/// The stages on their own threads; None if one could not start (nothing of `stream` read yet).
fn staged<S: Read>(
    kind: BlobCompression,
    stream: &mut S,
    id: &Digest,
    dest: &Path,
    opts: &UnpackOptions,
    tap: &SharedTap,
) -> Option<Result<Decoded, UnpackError>> {
    std::thread::scope(|s| {
        let started = Instant::now();
        let mut blob = Fanout::new("read");
        // Started downstream first, and the apply stage (which takes the tap) last, so that a
        // failure to start one leaves nothing half done.
        let (hash, decode, apply_in) = if kind == BlobCompression::Plain {
            (None, None, blob.consumer("apply"))
        } else {
            let mut tar = Fanout::new("decode");
            let apply_in = tar.consumer("apply");
            let hash_in = tar.consumer("diffid");
            let hash = spawn(s, "lamina-diffid", move || {
                timed("diffid", || hash_all(hash_in))
            })?;
            let decode_in = blob.consumer("decode");
            let decode = spawn(s, "lamina-decode", move || {
                timed("decode", || tar.pump(&mut decoder(kind, decode_in)?))
            })?;
            (Some(hash), Some(decode), apply_in)
        };
        let apply = spawn(s, "lamina-apply", move || {
            let tap = tap.lock().map(|mut t| t.take()).unwrap_or(None);
            timed("apply", || apply_all(apply_in, dest, id, opts, tap))
        })?;
        let read = timed("read", || blob.pump(stream));
        let panicked = || UnpackError::io(dest, io::Error::other("unpack thread panicked"));
        let applied = apply.join().unwrap_or_else(|_| Err(panicked()));
        let decoded = decode.map(|d| d.join().unwrap_or_else(|_| Err(io::Error::other("panic"))));
        let diff_id = hash.map(|h| h.join().map_err(|_| panicked()));
        tracing::debug!(layer = %id, elapsed = ?started.elapsed(), "unpack pipeline done");
        // A broken stream is the cause of whatever the later stages made of it.
        if let Err(source) = read.and(decoded.unwrap_or(Ok(()))) {
            return Some(Err(decompress_err(id, source)));
        }
        Some(applied.and_then(|applied| Ok((applied, diff_id.transpose()?))))
    })
}

fn spawn<'scope, T: Send + 'scope>(
    s: &'scope Scope<'scope, '_>,
    name: &str,
    stage: impl FnOnce() -> T + Send + 'scope,
) -> Option<ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(s, stage)
        .inspect_err(|e| tracing::debug!("cannot start unpack thread {name}: {e}"))
        .ok()
}

/// Runs a stage and logs the CPU time its thread spent in it: on a machine that is busy with
/// other work, this (not the waits) tells which stage bounds a layer.
fn timed<T>(stage: &'static str, run: impl FnOnce() -> T) -> T {
    let cpu = || rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let (before, out) = (cpu(), run());
    let after = cpu();
    let spent = Duration::new(after.tv_sec as u64, after.tv_nsec as u32)
        .saturating_sub(Duration::new(before.tv_sec as u64, before.tv_nsec as u32));
    tracing::debug!(stage, cpu = ?spent, "unpack stage");
    out
}

fn decompress_err(id: &Digest, source: io::Error) -> UnpackError {
    UnpackError::Decompress {
        blob: id.clone(),
        source,
    }
}

/// The diffID stage: the digest and size of the whole tar.
fn hash_all(mut input: Chunks) -> (Digest, u64) {
    let mut hasher = HashingWriter::new(io::sink());
    loop {
        let chunk = input.fill_buf().expect("chunks never fail");
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        io::Write::write_all(&mut hasher, chunk).expect("the sink never fails");
        input.consume(n);
    }
    let (_, digest, size) = hasher.finish();
    (digest, size)
}

/// The apply stage: frames the tar (showing it to the tap) and applies it to `dest`.
fn apply_all<R: BufRead>(
    input: R,
    dest: &Path,
    id: &Digest,
    opts: &UnpackOptions,
    tap: Option<&mut (dyn Tap + Send)>,
) -> Result<Applied, UnpackError> {
    let mut tar = TarReader::tapped(input, tap);
    let applied = Applier::new(dest, id)
        .map_err(|e| UnpackError::io(dest, e))?
        .with_claim_limit(opts.claim_limit())
        .apply_all(&mut tar)?;
    // The tap is shown the end-of-archive blocks and whatever follows them.
    tar.finish().map_err(|e| match e {
        FrameError::Read(source) => decompress_err(id, source),
        FrameError::Format { entry, reason } => UnpackError::Tar {
            blob: id.clone(),
            entry: String::from_utf8_lossy(&entry).into_owned(),
            reason,
        },
    })?;
    Ok(applied)
}

/// A stage's output: each chunk goes, shared, to every consumer still listening, and comes back
/// for reuse once they are all done with it.
struct Fanout {
    outs: Vec<SyncSender<Arc<Vec<u8>>>>,
    back: Sender<Arc<Vec<u8>>>,
    returned: Receiver<Arc<Vec<u8>>>,
    spare: Vec<Vec<u8>>,
    /// The producing stage, and how long it waited for its consumers (logged: this is how to
    /// tell which stage bounds a layer).
    stage: &'static str,
    blocked: Duration,
}

impl Drop for Fanout {
    fn drop(&mut self) {
        tracing::debug!(stage = self.stage, blocked_on_output = ?self.blocked, "unpack stage");
    }
}

impl Fanout {
    fn new(stage: &'static str) -> Self {
        let (back, returned) = channel();
        Fanout {
            outs: Vec::new(),
            back,
            returned,
            spare: Vec::new(),
            stage,
            blocked: Duration::ZERO,
        }
    }

    fn consumer(&mut self, stage: &'static str) -> Chunks {
        let (tx, rx) = sync_channel(DEPTH);
        self.outs.push(tx);
        Chunks {
            rx,
            back: self.back.clone(),
            cur: None,
            pos: 0,
            stage,
            starved: Duration::ZERO,
        }
    }

    /// Reads `src` to its end (whether or not anyone still listens) and hands it on in chunks.
    fn pump(mut self, src: &mut impl Read) -> io::Result<()> {
        loop {
            let mut buf = self.buffer();
            let n = read_full(src, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            let chunk = Arc::new(buf);
            // A consumer that is gone (done, or failed) is not sent anything more.
            let waiting = Instant::now();
            self.outs.retain(|out| out.send(chunk.clone()).is_ok());
            self.blocked += waiting.elapsed();
        }
    }

    /// A free buffer of `STREAM_BUF` bytes: one the consumers gave back, or a new one.
    fn buffer(&mut self) -> Vec<u8> {
        while let Ok(chunk) = self.returned.try_recv() {
            // The last consumer to give a chunk back frees it.
            if let Ok(buf) = Arc::try_unwrap(chunk) {
                self.spare.push(buf);
            }
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(STREAM_BUF, 0);
        buf
    }
}

/// Reads until `buf` is full or the stream ends.
fn read_full<D: Read>(stream: &mut D, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A consumer's end of a [`Fanout`], as a `BufRead`; EOF when the stage before is done.
struct Chunks {
    rx: Receiver<Arc<Vec<u8>>>,
    back: Sender<Arc<Vec<u8>>>,
    cur: Option<Arc<Vec<u8>>>,
    pos: usize,
    /// The consuming stage, and how long it waited for input.
    stage: &'static str,
    starved: Duration,
}

impl Drop for Chunks {
    fn drop(&mut self) {
        tracing::debug!(stage = self.stage, starved_of_input = ?self.starved, "unpack stage");
    }
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.cur.as_ref().is_none_or(|c| self.pos >= c.len()) {
            let waiting = Instant::now();
            let next = self.rx.recv();
            self.starved += waiting.elapsed();
            let Ok(next) = next else {
                return Ok(&[]);
            };
            if let Some(used) = self.cur.replace(next) {
                let _ = self.back.send(used); // the producer may be gone; then it is just freed
            }
            self.pos = 0;
        }
        Ok(self.cur.as_deref().map_or(&[], |c| &c[self.pos..]))
    }

    fn consume(&mut self, n: usize) {
        let len = self.cur.as_ref().map_or(0, |c| c.len());
        self.pos = (self.pos + n).min(len);
    }
}

impl Read for Chunks {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The frame+apply stage alone, over a plain tar: for the benches, which time each stage apart.
#[doc(hidden)]
pub fn apply_tar<R: BufRead>(input: R, dest: &Path) -> Result<(), UnpackError> {
    let id = Digest::of_bytes(b"apply_tar");
    apply_all(input, dest, &id, &UnpackOptions::default(), None).map(drop)
}
