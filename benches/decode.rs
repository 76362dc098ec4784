//! Decompression throughput of each decoder lamina has, on a generated layer-like tar of
//! ~48 MB (or the file in `$LAMINA_DECODE_INPUT`, e.g. a layer's uncompressed tar): gzip through
//! zlib-rs and through ISA-L (when built with the `isal` feature), zstd as one frame and as 4 MiB
//! frames (decoded frame-parallel). Throughput is in
//! bytes of plain output per second.
//!
//! `cargo bench --bench decode`
//!
//! With `LAMINA_DECODE_BLOB=<a gzip or zstd blob>` it instead decodes that blob with each gzip
//! backend in turn, alternating, `$N` rounds (default 5), and prints each round's wall and CPU
//! time and the median CPU times: the fair comparison on a busy machine (pin it to one core with
//! `taskset -c 1`).

use std::io::{self, Write};
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use lamina::unpack::{decompress_with, GzipBackend};

/// Compressible like a layer of text and binaries: words and noise from a xorshift stream.
fn generated(len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"/usr/lib/x86_64-linux-gnu/",
        b"ELF\x02\x01\x01",
        b"\0\0\0\0\0\0\0\0",
        b"libc.so.6 ",
        b"#!/bin/sh\n",
        b"0644 root ",
        b"\x48\x89\xe5",
        b"deb ",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(WORDS[(x % 8) as usize]);
        }
    }
    out.truncate(len);
    out
}

fn input() -> Vec<u8> {
    match std::env::var("LAMINA_DECODE_INPUT") {
        Ok(p) => std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}")),
        Err(_) => generated(48 << 20),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn drain(gzip: GzipBackend, blob: &[u8]) -> u64 {
    let input = io::BufReader::with_capacity(256 * 1024, blob);
    let mut plain = decompress_with(gzip, input).unwrap();
    io::copy(&mut plain, &mut io::sink()).unwrap()
}

fn decode(c: &mut Criterion) {
    let plain = input();
    let gz = gzip(&plain);
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    // As pzstd writes: independent frames, each saying its size, decoded on every core.
    let frames: Vec<u8> = plain
        .chunks(4 << 20)
        .flat_map(|c| zstd::bulk::compress(c, 3).unwrap())
        .collect();
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(plain.len() as u64));
    for &backend in GzipBackend::all() {
        group.bench_function(format!("gzip/{}", backend.name()), |b| {
            b.iter(|| assert_eq!(drain(backend, &gz), plain.len() as u64))
        });
    }
    group.bench_function("zstd/single-frame", |b| {
        b.iter(|| assert_eq!(drain(GzipBackend::best(), &zst), plain.len() as u64))
    });
    group.bench_function("zstd/4MiB-frames", |b| {
        b.iter(|| assert_eq!(drain(GzipBackend::best(), &frames), plain.len() as u64))
    });
    group.finish();
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`): on a shared
/// machine, the time that other processes' load does not inflate.
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ns as f64 / 1e9
}

/// Each backend over `path`, alternating, so that load from others hits them alike.
fn alternate(path: &str) {
    let blob = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rounds: usize = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let backends = GzipBackend::all();
    let mut times = vec![Vec::new(); backends.len()];
    for round in 0..rounds {
        for (i, &backend) in backends.iter().enumerate() {
            let (start, cpu) = (Instant::now(), thread_cpu_secs());
            let out = drain(backend, &blob);
            let secs = start.elapsed().as_secs_f64();
            let cpu = thread_cpu_secs() - cpu;
            println!(
                "round {round} {:8} {secs:.3} s wall, {cpu:.3} s cpu: {:.0} MB/s out per cpu-second",
                backend.name(),
                out as f64 / cpu / 1e6
            );
            times[i].push(cpu);
        }
    }
    for (i, &backend) in backends.iter().enumerate() {
        times[i].sort_by(f64::total_cmp);
        println!(
            "median {:8} {:.3} s cpu",
            backend.name(),
            times[i][rounds / 2]
        );
    }
}

criterion_group!(benches, decode);

fn main() {
    if let Ok(path) = std::env::var("LAMINA_DECODE_BLOB") {
        return alternate(&path);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
