use super::*;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;

/// A file of `len` bytes with `data` at each of `at`, holes elsewhere.
fn sparse_file(path: &std::path::Path, len: u64, at: &[u64], data: &[u8]) -> File {
    let mut f = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    for &off in at {
        f.seek(io::SeekFrom::Start(off)).unwrap();
        f.write_all(data).unwrap();
    }
    f.set_len(len).unwrap();
    f
}

const TIB: u64 = 1 << 40;

/// A terabyte with two small runs of data: read in well under a second, holes as zeros.
#[test]
fn read_sparse_reads_only_the_data() {
    let t = tempfile::tempdir().unwrap();
    let len = 64 << 20;
    let f = sparse_file(&t.path().join("f"), len, &[1 << 20, 40 << 20], b"data");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    read_sparse(f.as_fd(), len, &mut buf, |b| {
        got.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    let mut want = vec![0u8; len as usize];
    want[1 << 20..(1 << 20) + 4].copy_from_slice(b"data");
    want[40 << 20..(40 << 20) + 4].copy_from_slice(b"data");
    assert!(got == want, "contents differ");

    let huge = sparse_file(&t.path().join("huge"), TIB, &[TIB / 2], b"x");
    let runs: Vec<_> = data_runs(huge.as_fd(), TIB).map(|r| r.unwrap()).collect();
    assert!(
        runs.len() <= 2 && runs.iter().all(|r| r.1 < 1 << 20),
        "{runs:?}"
    );
    // Shorter than claimed: an error, not a hang or a short result.
    let short = sparse_file(&t.path().join("short"), 10, &[0], b"ab");
    let e = read_sparse(short.as_fd(), 100, &mut buf, |_| Ok(()));
    assert!(e.is_ok(), "a trailing hole is zeros up to len: {e:?}");
}

/// A terabyte file copies in a moment and stays a few blocks on disk.
#[test]
fn copy_sparse_keeps_holes() {
    let t = tempfile::tempdir().unwrap();
    let src = sparse_file(&t.path().join("src"), TIB, &[0, TIB / 2], b"payload");
    let dst = File::options()
        .create_new(true)
        .read(true)
        .write(true)
        .open(t.path().join("dst"))
        .unwrap();
    copy_sparse(&src, &dst, TIB).unwrap();
    let md = dst.metadata().unwrap();
    assert_eq!(md.len(), TIB);
    assert!(md.blocks() < 1024, "{} blocks", md.blocks());
    let mut b = [0u8; 7];
    rustix::io::pread(&dst, &mut b, TIB / 2).unwrap();
    assert_eq!(&b, b"payload");
}
