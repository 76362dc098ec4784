use super::*;
use crate::tar::header::normalize;
use crate::tar::reader::TarReader;
use crate::tar::reassemble::TarSplitReader;
use lamina_testkit::tarw::{Header, TarWriter, GNU_MAGIC, HARDLINK, REG};
use std::fs;
use std::io::BufReader;
use std::os::unix::ffi::OsStrExt;

/// A tar of `files` (path, content) in GNU format, with GNU long names where needed, a hardlink, a
/// directory and an empty file; then `trailer` after the end blocks. Names are written as given,
/// absolute ones included (some producers write them).
fn build_tar(files: &[(&str, Vec<u8>)], trailer: &[u8]) -> Vec<u8> {
    let mut t = TarWriter::new();
    t.dir("d/", 0o755);
    let gnu = |name: &str, kind: u8| {
        let mut h = Header::new(name, kind);
        h.magic = GNU_MAGIC;
        h
    };
    for (path, content) in files {
        let mut h = gnu(path, REG);
        h.mtime = 1234;
        if path.len() > 100 {
            t.gnu_long(h, content);
        } else {
            t.entry(h, content);
        }
    }
    let mut link = gnu("d/hardlink", HARDLINK);
    link.link = files[0].0.as_bytes().to_vec();
    t.entry(link, b"");
    let mut out = t.finish();
    out.extend_from_slice(trailer);
    out
}

fn record(tar: &[u8], dir: &Path) -> TarSplitHeader {
    let rec = dir.join("tar-split");
    let mut recorder = Recorder::new(&rec).unwrap();
    // Read in odd-sized chunks, so headers and contents straddle reads.
    let mut r = TarReader::tapped(BufReader::with_capacity(777, tar), Some(&mut recorder));
    while r.next_member().unwrap().is_some() {
        loop {
            let n = r.data().unwrap().len().min(300);
            if n == 0 {
                break;
            }
            r.consume(n);
        }
    }
    r.finish().unwrap();
    recorder.finish(&Digest::of_bytes(tar)).unwrap()
}

fn materialize(files: &[(&str, Vec<u8>)], diff: &Path) {
    for (path, content) in files {
        let p = diff.join(String::from_utf8(normalize(path.as_bytes())).unwrap());
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
}

fn sample() -> Vec<(&'static str, Vec<u8>)> {
    let long: &'static str = Box::leak(format!("d/{}/file", "x".repeat(180)).into_boxed_str());
    vec![
        ("d/a.txt", b"hello".to_vec()),
        ("./d/b.bin", (0..5000u32).map(|i| (i * 7) as u8).collect()),
        ("d/empty", vec![]),
        (long, vec![42; 1024]),
        ("/abs/c", vec![1; 513]),
    ]
}

#[test]
fn the_tar_is_reassembled_byte_for_byte() {
    for trailer in [&b""[..], &[0u8; 10240][..], b"garbage after the end"] {
        let tmp = tempfile::tempdir().unwrap();
        let files = sample();
        let tar = build_tar(&files, trailer);
        let header = record(&tar, tmp.path());
        assert_eq!(header.tar_size, tar.len() as u64);
        assert_eq!(header.unusable, None);
        let diff = tmp.path().join("diff");
        fs::create_dir(&diff).unwrap();
        materialize(&files, &diff);
        let (h, mut r) = TarSplitReader::open(&tmp.path().join("tar-split"), &diff).unwrap();
        assert_eq!(h, header);
        let mut again = vec![];
        r.read_to_end(&mut again).unwrap();
        assert!(
            again == tar,
            "reassembled tar differs (trailer {} bytes)",
            trailer.len()
        );
    }
}

#[test]
fn the_record_holds_no_file_content() {
    let tmp = tempfile::tempdir().unwrap();
    let files = vec![("big", vec![7u8; 4 << 20])];
    let tar = build_tar(&files, b"");
    record(&tar, tmp.path());
    let size = fs::metadata(tmp.path().join("tar-split")).unwrap().len();
    assert!(size < 4096, "record is {size} bytes");
}

#[test]
fn a_changed_file_is_named_when_reassembling() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sample();
    let tar = build_tar(&files, b"");
    record(&tar, tmp.path());
    let diff = tmp.path().join("diff");
    materialize(&files, &diff);
    fs::write(diff.join("d/a.txt"), b"HELLO").unwrap();
    let (_, mut r) = TarSplitReader::open(&tmp.path().join("tar-split"), &diff).unwrap();
    let err = r.read_to_end(&mut vec![]).unwrap_err().to_string();
    assert!(err.contains("d/a.txt") && err.contains("changed"), "{err}");

    fs::write(diff.join("d/a.txt"), b"hello, longer").unwrap();
    let (_, mut r) = TarSplitReader::open(&tmp.path().join("tar-split"), &diff).unwrap();
    let err = r.read_to_end(&mut vec![]).unwrap_err().to_string();
    assert!(err.contains("d/a.txt"), "{err}");
}

#[test]
fn reassembly_never_follows_a_symlink_out_of_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let files = vec![("d/secret", b"x".to_vec())];
    let tar = build_tar(&files, b"");
    record(&tar, tmp.path());
    let diff = tmp.path().join("diff");
    fs::create_dir(&diff).unwrap();
    std::os::unix::fs::symlink("/etc", diff.join("d")).unwrap();
    let (_, mut r) = TarSplitReader::open(&tmp.path().join("tar-split"), &diff).unwrap();
    assert!(r.read_to_end(&mut vec![]).is_err());
}

#[test]
fn a_path_stored_twice_makes_the_record_unusable() {
    let tmp = tempfile::tempdir().unwrap();
    let files = vec![("f", b"one".to_vec()), ("f", b"two".to_vec())];
    let tar = build_tar(&files, b"");
    let header = record(&tar, tmp.path());
    assert!(
        header.unusable.as_deref().unwrap_or("").contains("twice"),
        "{header:?}"
    );
    assert!(TarSplitReader::open(&tmp.path().join("tar-split"), tmp.path()).is_err());
}

#[test]
fn headers_round_trip_and_reasons_are_cut_at_a_char_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = build_tar(&sample(), b"");
    let mut h = record(&tar, tmp.path());
    h.unusable = Some("é".repeat(100));
    let p = tmp.path().join("tar-split");
    rewrite_header(&p, &h).unwrap();
    let back = read_header(&p).unwrap();
    assert_eq!(back.tar_size, h.tar_size);
    assert_eq!(back.diff_id, h.diff_id);
    assert!(back.unusable.unwrap().chars().all(|c| c == 'é'));
}

/// Rewrites a record in format 1 (magic `LTS1`, SHA-256 file sums), as an older lamina wrote it.
fn as_version_1(rec: &Path, diff: &Path) {
    let (mut header, mut segments) = SegmentReader::open(rec).unwrap();
    header.sums = SumKind::Sha256;
    let mut body = vec![];
    let mut z = zstd::stream::write::Encoder::new(&mut body, 3).unwrap();
    while let Some(seg) = segments.next_segment().unwrap() {
        match seg {
            Segment::Raw(bytes) => {
                z.write_all(&[SEG_RAW]).unwrap();
                z.write_all(&(bytes.len() as u32).to_le_bytes()).unwrap();
                z.write_all(&bytes).unwrap();
            }
            Segment::File { path, size, .. } => {
                let content = fs::read(diff.join(std::ffi::OsStr::from_bytes(&path))).unwrap();
                let sha = SumKind::Sha256.sum_reader(&content[..]).unwrap();
                z.write_all(&[SEG_FILE]).unwrap();
                z.write_all(&(path.len() as u32).to_le_bytes()).unwrap();
                z.write_all(&path).unwrap();
                z.write_all(&size.to_le_bytes()).unwrap();
                z.write_all(sha.as_bytes()).unwrap();
            }
        }
    }
    z.write_all(&[SEG_END]).unwrap();
    z.finish().unwrap();
    let mut out = encode_header(&header).unwrap().to_vec();
    assert_eq!(&out[..4], b"LTS1");
    out.extend_from_slice(&body);
    fs::write(rec, out).unwrap();
}

#[test]
fn a_version_1_record_is_reassembled_and_checked_with_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sample();
    let tar = build_tar(&files, b"");
    record(&tar, tmp.path());
    let diff = tmp.path().join("diff");
    fs::create_dir(&diff).unwrap();
    materialize(&files, &diff);
    let rec = tmp.path().join("tar-split");
    as_version_1(&rec, &diff);

    let (h, mut r) = TarSplitReader::open(&rec, &diff).unwrap();
    assert_eq!(h.sums, SumKind::Sha256);
    let mut again = vec![];
    r.read_to_end(&mut again).unwrap();
    assert!(again == tar, "a format-1 record gives back another tar");

    fs::write(diff.join("d/a.txt"), b"HELLO").unwrap();
    let (_, mut r) = TarSplitReader::open(&rec, &diff).unwrap();
    let err = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("d/a.txt: content changed"),
        "{err}"
    );
}

/// `block` with its checksum field recomputed after a test edited other bytes.
fn fix_checksum(block: &mut [u8; 512]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// One tar holding a member of each header format: GNU with atime and ctime where ustar keeps its
/// prefix (as GNU tar -G and Go's FormatGNU write them), ustar with a prefix, PAX, and v7 (no
/// magic, a directory by its trailing slash). Returns the tar and the (path, content) it holds.
fn four_formats() -> (Vec<u8>, Vec<(&'static str, Vec<u8>)>) {
    let mut t = TarWriter::new();
    let mut gnu = Header::new("gnu/file", REG);
    gnu.magic = GNU_MAGIC;
    gnu.size = 600;
    let mut block = gnu.to_block();
    block[345..357].copy_from_slice(b"15304731631\0"); // atime
    block[357..369].copy_from_slice(b"15304731632\0"); // ctime
    fix_checksum(&mut block);
    t.raw(&block).data(&[b'g'; 600]);

    let mut ustar = Header::new("file", REG);
    ustar.size = 5;
    let mut block = ustar.to_block();
    block[345..361].copy_from_slice(b"ustar/prefix/dir");
    fix_checksum(&mut block);
    t.raw(&block).data(b"ustar");

    let pax = Header::new("pax/file", REG);
    let records: [(&str, &[u8]); 2] = [("mtime", b"1600000000.5"), ("SCHILY.xattr.user.k", b"v")];
    let mut pax = pax;
    pax.size = 3;
    t.entry_with_pax(pax, &records, b"pax");

    for (name, kind, data) in [("v7dir/", b'\0', &b""[..]), ("v7dir/file", b'\0', b"v7")] {
        let mut h = Header::new(name, kind);
        h.size = data.len() as u64;
        let mut block = h.to_block();
        block[257..500].fill(0); // no magic, no user or group names, no prefix
        fix_checksum(&mut block);
        t.raw(&block).data(data);
    }
    let files = vec![
        ("gnu/file", vec![b'g'; 600]),
        ("ustar/prefix/dir/file", b"ustar".to_vec()),
        ("pax/file", b"pax".to_vec()),
        ("v7dir/file", b"v7".to_vec()),
    ];
    (t.finish(), files)
}

#[test]
fn gnu_ustar_pax_and_v7_headers_are_named_right_and_reassembled_byte_for_byte() {
    let (tar, files) = four_formats();
    let mut r = TarReader::tapped(BufReader::new(&tar[..]), None);
    let mut names = Vec::new();
    while let Some(m) = r.next_member().unwrap() {
        names.push(String::from_utf8(m.path).unwrap());
    }
    assert_eq!(
        names,
        [
            "gnu/file",
            "ustar/prefix/dir/file",
            "pax/file",
            "v7dir/",
            "v7dir/file"
        ]
    );

    let tmp = tempfile::tempdir().unwrap();
    let header = record(&tar, tmp.path());
    assert_eq!(header.unusable, None);
    let diff = tmp.path().join("diff");
    fs::create_dir(&diff).unwrap();
    materialize(&files, &diff);
    let (_, mut r) = TarSplitReader::open(&tmp.path().join("tar-split"), &diff).unwrap();
    let mut again = vec![];
    r.read_to_end(&mut again).unwrap();
    assert!(again == tar, "the reassembled tar differs");
    assert_eq!(Digest::of_bytes(&again), Digest::of_bytes(&tar));
}
