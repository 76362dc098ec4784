//! Micro-benchmarks of the unpack pipeline's stages on synthetic layers built in memory, each
//! alone (`stages/*`: reading and hashing the blob, gzip and zstd decoding, hashing the tar;
//! `unpack_layer/frame_apply`: framing and applying the tar), and a whole `unpack_layer`, whose
//! stages run on threads of their own (so it takes about as long as the slowest), also with the
//! tar-split recorder tapping the same pass (what `load` runs). On real images,
//! `LAMINA_LOG=lamina::unpack=debug lamina load` logs how long each stage waited for its input
//! and for its consumers: the stage that never waits for input bounds the layer.
//! Whole-process comparisons against umoci and GNU tar live in scripts/bench.sh.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lamina::digest::{Digest, HashingReader};
use lamina::tar::split::Recorder;
use lamina::unpack::{self, decompress_with, ExpectedBlob, GzipBackend, UnpackOptions};
use lamina_testkit::compress::{gzip_level, zstd};
use lamina_testkit::tarw::{Header, TarWriter, REG};

/// A tar of `files` small text-like files in 50 dirs, deterministic.
fn synthetic_tar(files: usize) -> Vec<u8> {
    let mut w = TarWriter::new();
    let mut seed = 0x9e3779b97f4a7c15u64;
    for i in 0..files {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 200 + (seed % 8000) as usize;
        let data: Vec<u8> = (0..len)
            .map(|j| b"lamina layer words "[(j + i) % 19])
            .collect();
        let mut h = Header::new(format!("d{:02}/f{i:05}.txt", i % 50), REG);
        h.mtime = 1_700_000_000;
        w.entry(h, &data);
    }
    w.finish()
}

fn benches(c: &mut Criterion) {
    let tar = synthetic_tar(4000);
    let gz = gzip_level(&tar, 6);
    let zst = zstd(&tar);
    let diff_id = Digest::of_bytes(&tar);

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(tar.len() as u64));
    g.bench_function("sha256", |b| {
        b.iter(|| HashingReader::new(&tar[..]).finish().unwrap())
    });
    // The caller's stage: the same hash, over the (smaller) compressed blob.
    g.bench_function("read_sha256_gzip_blob", |b| {
        b.iter(|| HashingReader::new(&gz[..]).finish().unwrap())
    });
    // The decode stage: lamina's own decoder (ISA-L for gzip when built with it), as unpack uses.
    for (name, blob) in [("gzip_decode", &gz), ("zstd_decode", &zst)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut plain = decompress_with(GzipBackend::best(), &blob[..]).unwrap();
                std::io::copy(&mut plain, &mut std::io::sink()).unwrap()
            })
        });
    }
    g.finish();

    // Where the layers are unpacked: scripts/bench.sh points this at a fresh journaled ext4, since
    // creating many files right after deleting many is far slower on some filesystems (this VM's
    // unjournaled root) and would swamp what is measured.
    let out_dir = std::env::var_os("LAMINA_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into());
    let mut g = c.benchmark_group("unpack_layer");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(tar.len() as u64));
    for (name, blob) in [("gzip", &gz), ("zstd", &zst), ("plain", &tar)] {
        let digest = Digest::of_bytes(blob);
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir_in(&out_dir).unwrap(),
                |dir| {
                    let expected = ExpectedBlob {
                        digest: &digest,
                        size: Some(blob.len() as u64),
                        diff_id: &diff_id,
                    };
                    unpack::unpack_layer(
                        &blob[..],
                        &expected,
                        dir.path(),
                        &UnpackOptions::default(),
                    )
                    .unwrap();
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("frame_apply", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(&out_dir).unwrap(),
            |dir| {
                unpack::apply_tar(&tar[..], dir.path()).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    let digest = Digest::of_bytes(&gz);
    g.bench_function("gzip_recorded", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(&out_dir).unwrap(),
            |dir| {
                let expected = ExpectedBlob {
                    digest: &digest,
                    size: Some(gz.len() as u64),
                    diff_id: &diff_id,
                };
                let diff = dir.path().join("diff");
                std::fs::create_dir(&diff).unwrap();
                let record = dir.path().join("tar-split");
                let mut recorder = Recorder::new(&record).unwrap();
                let opts = UnpackOptions::default();
                unpack::unpack_layer_observed(
                    &gz[..],
                    &expected,
                    &diff,
                    &opts,
                    Some(&mut recorder),
                )
                .unwrap();
                recorder.finish(&diff_id).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(unpack_benches, benches);
criterion_main!(unpack_benches);
