//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default): the
//! crate-private tar parsers driven whole, so a target is one call. Nothing here is API.

use super::pax::{parse_pax, Pax};
use super::reader::TarReader;
use super::split::{Recorder, SegmentReader};
use crate::digest::Digest;
use std::io::BufReader;
use std::path::Path;

/// Frames every member of `data` and reads all of its data, as the unpacker does.
pub fn read_tar(data: &[u8]) {
    let mut r = TarReader::tapped(BufReader::with_capacity(4096, data), None);
    drain(&mut r);
}

/// Parses `data` as the records of one PAX header.
pub fn parse_pax_records(data: &[u8]) {
    let mut pax = Pax::default();
    let _ = parse_pax(data, &mut pax);
}

/// Records `data` with the tar-split recorder (tapping the reader, as a load does) into `dir`,
/// then reads the record back. When the tar framed whole, the record must account for every
/// byte of it.
pub fn record_tar(data: &[u8], dir: &Path) {
    let record = dir.join("tar-split");
    let Ok(mut recorder) = Recorder::new(&record) else {
        return;
    };
    let framed = {
        let mut r = TarReader::tapped(BufReader::with_capacity(700, data), Some(&mut recorder));
        drain(&mut r) && r.finish().is_ok()
    };
    let Ok(header) = recorder.finish(&Digest::of_bytes(data)) else {
        return;
    };
    if !framed {
        return;
    }
    assert_eq!(header.tar_size, data.len() as u64, "the record lost bytes");
    let (_, mut segments) = SegmentReader::open(&record).expect("a record just written opens");
    let mut total = 0u64;
    while let Some(seg) = segments
        .next_segment()
        .expect("a record just written reads")
    {
        total += match seg {
            super::split::Segment::Raw(b) => b.len() as u64,
            super::split::Segment::File { size, .. } => size,
        };
    }
    assert_eq!(
        total,
        data.len() as u64,
        "segments do not add up to the tar"
    );
}

/// Reads `data` as a tar-split record file (header and zstd segments), every segment.
pub fn read_record(data: &[u8], dir: &Path) {
    let record = dir.join("record");
    if std::fs::write(&record, data).is_err() {
        return;
    }
    let Ok((_, mut segments)) = SegmentReader::open(&record) else {
        return;
    };
    // A hostile record may claim endless segments; a few thousand tell enough.
    for _ in 0..10_000 {
        match segments.next_segment() {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
}

/// Reads members and their data to the end; false on the first framing error.
fn drain<R: std::io::BufRead>(r: &mut TarReader<'_, R>) -> bool {
    loop {
        match r.next_member() {
            Ok(Some(_)) => loop {
                match r.data() {
                    Ok([]) => break,
                    Ok(chunk) => {
                        let n = chunk.len();
                        r.consume(n);
                    }
                    Err(_) => return false,
                }
            },
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}
