//! Throughput of `push`'s layer compression (engine::compress) per format and level, on real
//! layer tars: the files named in `$LAMINA_COMPRESS_INPUTS` (colon-separated; e.g. the blobs of
//! the corpus's `debian:plain`, which are its uncompressed layers). Each (format, level) is run
//! `$N` times (default 3) over all the files read into memory, output discarded but counted;
//! prints the median wall time, MB/s of input, and the output size as a share of the input,
//! with every core and with one thread; `gzip-serial` is one flate2 stream on one thread (what
//! push did before), for the ratio.
//!
//! `CASES` chooses what runs (default `gzip:1 gzip:6 gzip-serial:6 zstd:1 zstd:3`); `ONE=1` runs
//! one thread only.
//!
//! `LAMINA_COMPRESS_INPUTS=$(ls -d ...|paste -sd:) cargo bench --bench compress`

use lamina::engine::compress;
use std::io::{self, Write};
use std::time::Instant;

/// Counts what it is given.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What push did before: one flate2 gzip stream on one thread (the ratio a blocked stream is
/// compared with).
fn serial_gzip(data: &[u8], out: &mut Counter, level: u32) -> io::Result<()> {
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
    enc.write_all(data)?;
    enc.finish().map(drop)
}

fn main() {
    let Ok(inputs) = std::env::var("LAMINA_COMPRESS_INPUTS") else {
        println!("SKIP compress bench: set LAMINA_COMPRESS_INPUTS to layer tars (colon-separated)");
        return;
    };
    let rounds: usize = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let files: Vec<Vec<u8>> = inputs
        .split(':')
        .filter(|p| !p.is_empty())
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect();
    let total: u64 = files.iter().map(|f| f.len() as u64).sum();
    let all = compress::threads();
    println!(
        "{} files, {:.1} MB; {all} cores; median of {rounds}",
        files.len(),
        total as f64 / 1e6
    );
    println!();
    println!("| format | level | threads | seconds | MB/s in | output / input |");
    println!("|---|---:|---:|---:|---:|---:|");
    let cases = std::env::var("CASES")
        .unwrap_or_else(|_| "gzip:1 gzip:6 gzip-serial:6 zstd:1 zstd:3".to_string());
    for case in cases.split_whitespace() {
        let (format, level) = case.split_once(':').expect("CASES: FORMAT:LEVEL ...");
        let level: i32 = level.parse().expect("CASES: a level is a number");
        let counts: &[usize] = if format == "gzip-serial" || std::env::var("ONE").is_ok() {
            &[1]
        } else {
            &[all, 1]
        };
        for &threads in counts {
            let mut times = vec![];
            let mut out = 0;
            for _ in 0..rounds {
                let mut sink = Counter(0);
                let t = Instant::now();
                for f in &files {
                    let r = match format {
                        "gzip" => compress::gzip(&mut &f[..], &mut sink, level as u32, threads),
                        "gzip-serial" => serial_gzip(f, &mut sink, level as u32),
                        _ => compress::zstd(&mut &f[..], &mut sink, level, threads),
                    };
                    r.unwrap_or_else(|e| panic!("{format} {level}: {e}"));
                }
                times.push(t.elapsed().as_secs_f64());
                out = sink.0;
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            println!(
                "| {format} | {level} | {threads} | {median:.2} | {:.0} | {:.1}% |",
                total as f64 / 1e6 / median,
                100.0 * out as f64 / total as f64
            );
        }
    }
}
