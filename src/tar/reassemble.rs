//! Giving back a layer's exact tar from its tar-split record (see `split`) and its `diff/`:
//! the record's raw bytes verbatim, and each file's content read from the layer dir, checked
//! against its size and sum as it passes. The caller checks the diffID of the whole.
//!
//! Files are opened beneath `diff/` with `RESOLVE_BENEATH` and no symlinks, so a changed layer
//! dir cannot make reassembly read outside it.

use super::content_sum::{ContentHasher, ContentSum};
use super::split::{bad_data, Segment, SegmentReader, TarSplitHeader};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Reassembles the layer's tar stream from its record and its `diff/` dir.
pub struct TarSplitReader {
    diff: File,
    diff_path: std::path::PathBuf,
    segments: SegmentReader,
    current: Current,
}

enum Current {
    Idle,
    Raw(Vec<u8>, usize),
    File {
        file: File,
        path: Vec<u8>,
        remaining: u64,
        hash: ContentHasher,
        want: ContentSum,
    },
    Done,
}

impl TarSplitReader {
    /// Opens the record; refuses a record marked unusable.
    pub fn open(record: &Path, diff: &Path) -> io::Result<(TarSplitHeader, TarSplitReader)> {
        let (header, segments) = SegmentReader::open(record)?;
        if let Some(why) = &header.unusable {
            return Err(io::Error::other(format!(
                "the layer's tar cannot be reproduced: {why}"
            )));
        }
        let dir = File::open(diff)?;
        Ok((
            header,
            TarSplitReader {
                diff: dir,
                diff_path: diff.to_path_buf(),
                segments,
                current: Current::Idle,
            },
        ))
    }

    fn open_file(&self, path: &[u8], size: u64) -> io::Result<File> {
        use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
        let rel = std::ffi::OsStr::from_bytes(path);
        let shown = || self.diff_path.join(rel).display().to_string();
        let fd = openat2(
            &self.diff,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", shown())))?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() != size {
            return Err(bad_data(format!(
                "{}: changed since it was loaded (expected a {size}-byte file, found {} bytes)",
                shown(),
                meta.len()
            )));
        }
        Ok(file)
    }
}

impl Read for TarSplitReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.current {
                Current::Done => return Ok(0),
                Current::Raw(bytes, pos) if *pos < bytes.len() => {
                    let n = (bytes.len() - *pos).min(buf.len());
                    buf[..n].copy_from_slice(&bytes[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                Current::File {
                    file,
                    path,
                    remaining,
                    hash,
                    want,
                } => {
                    if *remaining == 0 {
                        if hash.finish() != *want {
                            return Err(bad_data(format!(
                                "{}: content changed since it was loaded",
                                self.diff_path
                                    .join(std::ffi::OsStr::from_bytes(path))
                                    .display()
                            )));
                        }
                        self.current = Current::Idle;
                        continue;
                    }
                    let n = (*remaining).min(buf.len() as u64) as usize;
                    let got = file.read(&mut buf[..n])?;
                    if got == 0 {
                        return Err(bad_data(format!(
                            "{}: shorter than when it was loaded",
                            self.diff_path
                                .join(std::ffi::OsStr::from_bytes(path))
                                .display()
                        )));
                    }
                    hash.update(&buf[..got]);
                    *remaining -= got as u64;
                    return Ok(got);
                }
                _ => match self.segments.next_segment()? {
                    None => self.current = Current::Done,
                    Some(Segment::Raw(bytes)) => self.current = Current::Raw(bytes, 0),
                    Some(Segment::File { path, size, sum }) => {
                        let file = self.open_file(&path, size)?;
                        self.current = Current::File {
                            file,
                            path,
                            remaining: size,
                            hash: ContentHasher::new(sum.kind()),
                            want: sum,
                        };
                    }
                },
            }
        }
    }
}
