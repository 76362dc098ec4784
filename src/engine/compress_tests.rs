use super::*;
use rand::{Rng, SeedableRng};
use std::io::Read;
use std::process::{Command, Stdio};

/// Text-like bytes (compressible) with runs of random bytes (not), from a fixed seed.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let words = [
        &b"layer "[..],
        b"overlay ",
        b"diff ",
        b"whiteout ",
        b"digest\n",
        b"tar ",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if rng.gen_ratio(1, 8) {
            let n = rng.gen_range(1..4096);
            out.extend((0..n).map(|_| rng.gen::<u8>()));
        } else {
            out.extend_from_slice(words[rng.gen_range(0..words.len())]);
        }
    }
    out.truncate(len);
    out
}

fn gz(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
    let mut out = Vec::new();
    gzip(&mut &data[..], &mut out, level, threads).expect("gzip");
    out
}

/// flate2's single-member decoder: it reads exactly one member, so a second member would be
/// left over (and is checked for).
fn gunzip_one_member(blob: &[u8]) -> Vec<u8> {
    let mut dec = flate2::read::GzDecoder::new(blob);
    let mut out = Vec::new();
    dec.read_to_end(&mut out).expect("gunzip");
    let mut rest = Vec::new();
    dec.into_inner().read_to_end(&mut rest).expect("rest");
    assert!(
        rest.is_empty(),
        "{} bytes after the first member",
        rest.len()
    );
    out
}

const SIZES: &[usize] = &[0, 1, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17];

#[test]
fn round_trips_through_flate2_and_our_decoder() {
    for (i, &len) in SIZES.iter().enumerate() {
        let data = sample(len, i as u64);
        for level in [0, 1, 6, 9] {
            let blob = gz(&data, level, 3);
            assert_eq!(gunzip_one_member(&blob), data, "len {len} level {level}");
            let mut ours = Vec::new();
            crate::unpack::decompress(&blob[..])
                .and_then(|mut r| r.read_to_end(&mut ours))
                .expect("lamina's decoder");
            assert_eq!(ours, data, "lamina's decoder, len {len} level {level}");
        }
    }
}

#[test]
fn trailer_holds_crc32_and_length_of_the_input() {
    let data = sample(2 * BLOCK + 5, 7);
    let blob = gz(&data, 6, 2);
    let mut crc = Crc::new();
    crc.update(&data);
    let n = blob.len();
    assert_eq!(blob[n - 8..n - 4], crc.sum().to_le_bytes());
    assert_eq!(blob[n - 4..], (data.len() as u32).to_le_bytes());
    assert_eq!(blob[..10], header(6));
}

#[test]
fn output_does_not_depend_on_the_number_of_threads() {
    let data = sample(5 * BLOCK + 333, 11);
    let one = gz(&data, 6, 1);
    for threads in [2, 4, 9] {
        assert!(gz(&data, 6, threads) == one, "{threads} threads differ");
    }
}

#[test]
fn blocks_are_primed_with_the_input_before_them() {
    // The second block repeats the end of the first: with the first block's tail as its
    // dictionary it is a few back-references; without, 16 KiB of incompressible bytes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut data: Vec<u8> = (0..BLOCK).map(|_| rng.gen()).collect();
    data.extend_from_within(BLOCK - (16 << 10)..BLOCK);
    let blob = gz(&data, 6, 2);
    assert_eq!(gunzip_one_member(&blob), data);
    assert!(
        blob.len() < BLOCK + 4096,
        "{} bytes: the dictionary was not used",
        blob.len()
    );
}

#[test]
fn level_above_nine_is_refused() {
    let err = gzip(&mut &b"x"[..], &mut Vec::new(), 10, 1).expect_err("level 10");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// A reader that fails after `left` bytes.
struct FailingReader {
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.left);
        buf[..n].fill(b'a');
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_failed_read_is_the_error_reported() {
    for left in [0, 10, BLOCK, 4 * BLOCK + 1] {
        let mut out = Vec::new();
        let err = gzip(&mut FailingReader { left }, &mut out, 6, 2).expect_err("read fails");
        assert_eq!(err.to_string(), "disk on fire", "after {left} bytes");
    }
}

#[test]
fn a_failed_write_stops_the_whole_pipeline() {
    for left in [0, 100, BLOCK] {
        let input = sample(20 * BLOCK, 5);
        let err = gzip(&mut &input[..], &mut Refusing { left }, 1, 2).expect_err("write fails");
        assert_eq!(err.to_string(), "registry gone", "after {left} bytes");
    }
}

/// A writer that accepts `left` bytes, then fails.
struct Refusing {
    left: usize,
}

impl Write for Refusing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("registry gone"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// GNU gzip (and pigz, where installed) accept the member and give back the input.
#[test]
fn gnu_gzip_and_pigz_accept_it() {
    let data = sample(3 * BLOCK + 99, 13);
    let blob = gz(&data, 6, 2);
    let mut ran = 0;
    for tool in ["gzip", "pigz"] {
        let Some(out) = run_with_stdin(tool, &["-dc"], &blob) else {
            println!("SKIP {tool} not installed");
            continue;
        };
        assert!(out == data, "{tool} -dc gave other bytes");
        assert!(run_with_stdin(tool, &["-t"], &blob).is_some());
        ran += 1;
    }
    if ran == 0 {
        println!("SKIP neither gzip nor pigz is installed");
    }
}

/// Runs `tool args` with `input` on stdin; None when the tool is not installed. Panics when it
/// fails.
fn run_with_stdin(tool: &str, args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let mut child = match Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => panic!("{tool}: {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let output = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(input).expect("write stdin"));
        child.wait_with_output().expect("wait")
    });
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output.stdout)
}

#[test]
fn zstd_round_trips_with_threads() {
    let data = sample(3 * BLOCK, 17);
    for threads in [1, 2] {
        let mut blob = Vec::new();
        zstd(&mut &data[..], &mut blob, ZSTD_DEFAULT_LEVEL, threads).expect("zstd");
        let back = ::zstd::stream::decode_all(&blob[..]).expect("unzstd");
        assert!(back == data, "{threads} threads");
    }
}
