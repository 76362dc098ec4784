//! One layer over two threads: the caller's thread reads the blob, hashes it, decompresses and
//! hashes the tar (the `stream` it is given); a scoped worker frames the tar and applies it to
//! the layer directory. The halves cost about the same, so a single large layer takes about
//! half the time on two cores; when several layers unpack at once it costs nothing extra.
//!
//! Chunks go through a bounded channel and their buffers come back for reuse, so memory stays
//! flat (a few MiB whatever the layer size). The reader never waits for the worker to finish the
//! archive: after the end-of-archive marker the worker stops and the caller reads on to EOF, so
//! both digests always cover the whole stream. Small blobs, or a failure to start a thread,
//! run the same work inline.
//!
//! An observer's [`Tap`] (the tar-split recorder) runs on the worker, inside the framing: it is
//! shown the bytes the reader already holds, and after the end of the archive the worker reads on
//! to EOF for it. Its hashing of file content (XXH3, far cheaper than the caller's two SHA-256
//! passes) keeps the halves balanced.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use super::apply::{Applied, Applier};
use super::{UnpackError, UnpackOptions, STREAM_BUF};
use crate::digest::Digest;
use crate::tar::reader::{FrameError, Tap, TarReader};
use std::sync::Mutex;

/// Chunks in flight between the threads.
const DEPTH: usize = 4;

/// Applies the tar read from `stream` to `dest` and reads `stream` to its end.
pub(crate) fn apply_stream<D: Read>(
    stream: &mut D,
    dest: &Path,
    id: &Digest,
    opts: &UnpackOptions,
    threaded: bool,
    tap: Option<&mut (dyn Tap + Send)>,
) -> Result<Applied, UnpackError> {
    if !threaded {
        let input = BufReader::with_capacity(STREAM_BUF, stream);
        return apply_all(input, dest, id, opts, tap);
    }
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(DEPTH);
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    // The worker takes the tap; if it cannot start, the inline fallback does.
    let tap = Mutex::new(tap);
    let take_tap = || tap.lock().map(|mut t| t.take()).unwrap_or(None);
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("lamina-unpack".into())
            .spawn_scoped(s, move || {
                let chunks = Chunks {
                    rx: full_rx,
                    free: free_tx,
                    cur: Vec::new(),
                    pos: 0,
                };
                apply_all(chunks, dest, id, opts, take_tap())
            });
        let Ok(worker) = worker else {
            tracing::debug!("no unpack worker thread; unpacking inline");
            let input = BufReader::with_capacity(STREAM_BUF, &mut *stream);
            return apply_all(input, dest, id, opts, take_tap());
        };
        let mut sending = true;
        let mut read_err = None;
        loop {
            let mut buf = free_rx.try_recv().unwrap_or_default();
            buf.resize(STREAM_BUF, 0);
            match read_full(stream, &mut buf) {
                Ok(0) => break,
                Ok(n) => buf.truncate(n),
                Err(e) => {
                    read_err = Some(e);
                    break;
                }
            }
            // Once the worker is done (end of archive, or an error) the rest is only hashed.
            sending = sending && full_tx.send(buf).is_ok();
        }
        drop(full_tx);
        let applied = worker.join().unwrap_or_else(|_| {
            Err(UnpackError::io(
                dest,
                io::Error::other("unpack worker panicked"),
            ))
        });
        match read_err {
            // The worker's error, if any, is only the consequence of the stream breaking off.
            Some(source) => Err(UnpackError::Decompress {
                blob: id.clone(),
                source,
            }),
            None => applied,
        }
    })
}

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
        FrameError::Read(source) => UnpackError::Decompress {
            blob: id.clone(),
            source,
        },
        FrameError::Format { entry, reason } => UnpackError::Tar {
            blob: id.clone(),
            entry: String::from_utf8_lossy(&entry).into_owned(),
            reason,
        },
    })?;
    Ok(applied)
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

/// The worker's end of the channel, as a `BufRead`; EOF when the sender is gone.
struct Chunks {
    rx: Receiver<Vec<u8>>,
    free: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.cur.len() {
            let Ok(next) = self.rx.recv() else {
                return Ok(&[]);
            };
            let used = std::mem::replace(&mut self.cur, next);
            if used.capacity() > 0 {
                let _ = self.free.send(used); // the reader may be gone; then it is just freed
            }
            self.pos = 0;
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur.len());
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
