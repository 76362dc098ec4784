//! Layer compression on every core, in one pass over a stream of unknown length.
//!
//! gzip is compressed as pigz does it: the input is cut into [`BLOCK`]-sized blocks, each block
//! is deflated on its own by one of a pool of threads (primed with the last 32 KiB of the block
//! before it as the dictionary, so the ratio stays within a fraction of a percent of one serial
//! deflate), every block but the last ends with a sync flush (which byte-aligns the stream and
//! ends no deflate block as final), the last one with a finish; the blocks are written in order
//! between one gzip header and one trailer whose CRC-32 is the blocks' CRCs combined. The result
//! is one ordinary gzip member: any gzip reader (Go's, GNU gzip, pigz, ours) reads it.
//!
//! Invariants: at most [`in_flight`] blocks (input and output) exist at any time, so memory is
//! bounded whatever the stream's length; the output depends only on the input, the level and
//! `BLOCK` (never on the number of threads or their timing), so compressing a layer again gives
//! the same blob digest.
//!
//! zstd is the zstd library's own multithreaded encoder.

use flate2::{Compress, Crc, FlushCompress, Status};
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Input bytes per gzip block (pigz's default is 128 KiB; larger blocks cost less in sync
/// markers and dictionary priming, and 1 MiB is still far below a layer's size).
pub const BLOCK: usize = 1 << 20;

/// deflate's window: a block is primed with this much of the input before it.
const DICT: usize = 32 << 10;

/// docker's and Go's default gzip level (`gzip.DefaultCompression` is zlib's 6).
pub const GZIP_DEFAULT_LEVEL: u32 = 6;

/// zstd's default level, which docker (buildx) also uses.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Threads to compress with: every core this process may run on.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Blocks that may be in flight (read, compressing, or compressed and waiting for their turn to
/// be written) with `threads` compressing threads: enough to keep every thread busy while the
/// writer waits for the oldest one.
pub fn in_flight(threads: usize) -> usize {
    2 * threads + 2
}

/// One block for a compressing thread.
struct Job {
    input: Vec<u8>,
    /// The end of the input before this block (empty for the first).
    dict: Vec<u8>,
    last: bool,
    done: SyncSender<io::Result<Done>>,
}

/// One compressed block.
struct Done {
    output: Vec<u8>,
    crc: Crc,
    last: bool,
}

/// Compresses all of `input` into `output` as one gzip member at `level` (0-9), with `threads`
/// compressing threads. Reading happens on the calling thread, writing on a thread of its own.
pub fn gzip(
    input: &mut (dyn Read + Send),
    output: &mut (dyn Write + Send),
    level: u32,
    threads: usize,
) -> io::Result<()> {
    if level > 9 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("gzip level {level} is not in 0..=9"),
        ));
    }
    let threads = threads.max(1);
    let (jobs_tx, jobs_rx) = sync_channel::<Job>(threads);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    // The writer takes each block's result in input order; the bound on this queue is the bound
    // on blocks in flight.
    let (order_tx, order_rx) = sync_channel::<Receiver<io::Result<Done>>>(in_flight(threads));
    std::thread::scope(|s| {
        for _ in 0..threads {
            let jobs = Arc::clone(&jobs_rx);
            s.spawn(move || compress_blocks(&jobs, level));
        }
        let writer = s.spawn(move || write_member(output, level, order_rx));
        let read = read_blocks(input, &jobs_tx, &order_tx);
        // Closing both queues ends the compressing threads and, once it has drained, the writer.
        drop(jobs_tx);
        drop(order_tx);
        let written = writer
            .join()
            .map_err(|_| io::Error::other("the gzip writer panicked"))?;
        // A read error is the cause of the writer's (it saw no last block); a failed write stops
        // the reader without an error of its own.
        read.and(written)
    })
}

/// Cuts `input` into blocks and queues each for compression and, in the same order, for
/// writing. One block is read ahead, so the last block is known to be the last. A queue that
/// closed means the writer failed (and has the error to report): reading stops quietly.
fn read_blocks(
    input: &mut (dyn Read + Send),
    jobs: &SyncSender<Job>,
    order: &SyncSender<Receiver<io::Result<Done>>>,
) -> io::Result<()> {
    let mut dict = Vec::new();
    let mut pending = read_block(input)?;
    loop {
        let next = if pending.len() == BLOCK {
            read_block(input)?
        } else {
            Vec::new()
        };
        let last = next.is_empty();
        let (done_tx, done_rx) = sync_channel(1);
        if order.send(done_rx).is_err() {
            return Ok(());
        }
        let next_dict = pending[pending.len().saturating_sub(DICT)..].to_vec();
        let job = Job {
            input: pending,
            dict: std::mem::replace(&mut dict, next_dict),
            last,
            done: done_tx,
        };
        if jobs.send(job).is_err() || last {
            return Ok(());
        }
        pending = next;
    }
}

/// Reads up to [`BLOCK`] bytes; fewer only at the end of the input.
fn read_block(input: &mut (dyn Read + Send)) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

/// A compressing thread: takes jobs until the queue closes.
fn compress_blocks(jobs: &Mutex<Receiver<Job>>, level: u32) {
    let mut deflate = Compress::new(flate2::Compression::new(level), false);
    loop {
        // The lock is held only while waiting for the next job, not while compressing.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let done = deflate_block(&mut deflate, &job);
        // The writer may have stopped; then nobody wants the result.
        let _ = job.done.send(done);
    }
}

/// Deflates one block as raw deflate (no zlib header), primed with its dictionary.
fn deflate_block(deflate: &mut Compress, job: &Job) -> io::Result<Done> {
    deflate.reset();
    if !job.dict.is_empty() {
        deflate
            .set_dictionary(&job.dict)
            .map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &job.input;
    let mut output = Vec::with_capacity(input.len() + input.len() / 16 + 64);
    let start = deflate.total_in();
    loop {
        let consumed = (deflate.total_in() - start) as usize;
        if output.capacity() - output.len() < 64 {
            output.reserve(output.capacity() / 2 + 64);
        }
        let status = deflate
            .compress_vec(&input[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let consumed = (deflate.total_in() - start) as usize;
        let finished = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A sync flush is complete when all input is taken and the output had room to spare.
            _ => consumed == input.len() && output.len() < output.capacity(),
        };
        if finished {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Done {
        output,
        crc,
        last: job.last,
    })
}

/// Writes the gzip header, each block as it comes in order, and the trailer.
fn write_member(
    output: &mut (dyn Write + Send),
    level: u32,
    order: Receiver<Receiver<io::Result<Done>>>,
) -> io::Result<()> {
    output.write_all(&header(level))?;
    let mut crc = Crc::new();
    let mut ended = false;
    // The queue is in input order: each wait is for the oldest block still out.
    for done in order.iter() {
        let done = done
            .recv()
            .map_err(|_| io::Error::other("a gzip thread stopped"))??;
        output.write_all(&done.output)?;
        crc.combine(&done.crc);
        ended = done.last;
    }
    if !ended {
        // Only a failed read ends the queue early; its error is the one reported.
        return Err(io::Error::other("the gzip input stopped before its end"));
    }
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the input's length modulo 2^32 (RFC 1952).
    trailer[4..].copy_from_slice(&crc.amount().to_le_bytes());
    output.write_all(&trailer)?;
    output.flush()
}

/// RFC 1952's header as Go's `gzip.Writer` writes it: no name, no mtime, XFL saying best or
/// fastest, OS "unknown" (so the blob does not depend on the host).
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Compresses all of `input` into `output` as one zstd frame at `level`, with `threads` workers.
pub fn zstd(
    input: &mut (dyn Read + Send),
    output: &mut (dyn Write + Send),
    level: i32,
    threads: usize,
) -> io::Result<()> {
    let mut enc = zstd::stream::write::Encoder::new(output, level)?;
    if threads > 1 {
        enc.multithread(threads as u32)?;
    }
    io::copy(input, &mut enc)?;
    enc.finish()?.flush()
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;
