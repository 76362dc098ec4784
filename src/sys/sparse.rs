//! Files with holes: where their data lies (`SEEK_DATA` / `SEEK_HOLE`), reading only that, and
//! copying them hole for hole.
//!
//! A layer or a container can hold a file of a terabyte that takes a few blocks on disk; reading
//! it through costs minutes of CPU, and copying it byte for byte fills the disk. So readers walk
//! the data runs and stand zeros in for the holes without reading them, and copies leave the
//! holes as holes. Filesystems that do not report holes answer `SEEK_DATA` with the whole file
//! as one run (or `EINVAL` on old kernels, taken the same way).

use std::io;

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self, SeekFrom};
use rustix::io::Errno;

/// Zeros to stand in for holes.
pub static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The data runs `(offset, len)` in the first `len` bytes of a file, in order. Moves the file's
/// offset: read the runs with `pread`.
pub struct DataRuns<'a> {
    fd: BorrowedFd<'a>,
    pos: u64,
    len: u64,
}

/// The data runs of the first `len` bytes of `fd`.
pub fn data_runs(fd: BorrowedFd<'_>, len: u64) -> DataRuns<'_> {
    DataRuns { fd, pos: 0, len }
}

impl Iterator for DataRuns<'_> {
    type Item = io::Result<(u64, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.len {
            return None;
        }
        let start = match fs::seek(self.fd, SeekFrom::Data(self.pos)) {
            Ok(start) => start,
            // Only a hole is left.
            Err(Errno::NXIO) => {
                self.pos = self.len;
                return None;
            }
            // No hole reporting here: the rest is data.
            Err(Errno::INVAL | Errno::OPNOTSUPP) => {
                let run = (self.pos, self.len - self.pos);
                self.pos = self.len;
                return Some(Ok(run));
            }
            Err(e) => return Some(Err(e.into())),
        };
        if start >= self.len {
            self.pos = self.len;
            return None;
        }
        let end = match fs::seek(self.fd, SeekFrom::Hole(start)) {
            Ok(end) => end.min(self.len),
            Err(e) => return Some(Err(e.into())),
        };
        // A file that grew between the two calls: never loop in place.
        let end = end.max(start + 1);
        self.pos = end;
        Some(Ok((start, end - start)))
    }
}

/// Feeds the first `len` bytes of `fd` to `sink` in order, reading only its data runs: holes
/// are fed as zeros from [`ZEROS`]. Fails if the file is shorter than `len`.
pub fn read_sparse(
    fd: BorrowedFd<'_>,
    len: u64,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut pos = 0u64;
    let zeros = |from: u64, to: u64, sink: &mut dyn FnMut(&[u8]) -> io::Result<()>| {
        let mut left = to - from;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            sink(&ZEROS[..n])?;
            left -= n as u64;
        }
        io::Result::Ok(())
    };
    for run in data_runs(fd, len) {
        let (start, run_len) = run?;
        zeros(pos, start, &mut sink)?;
        let end = start + run_len;
        pos = start;
        while pos < end {
            let want = buf
                .len()
                .min(usize::try_from(end - pos).unwrap_or(usize::MAX));
            let n = match rustix::io::pread(fd, &mut buf[..want], pos) {
                Ok(0) => return Err(io::Error::other("file shrank while it was being read")),
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            sink(&buf[..n])?;
            pos += n as u64;
        }
    }
    zeros(pos, len, &mut sink)
}

/// Copies the first `len` bytes of `src` into the empty `dst`, data runs only, so holes stay
/// holes; `dst` ends `len` bytes long. In the kernel where it can (`copy_file_range`), else by
/// reading and writing.
pub fn copy_sparse<S: AsFd, D: AsFd>(src: S, dst: D, len: u64) -> io::Result<()> {
    let (src, dst) = (src.as_fd(), dst.as_fd());
    let mut in_kernel = true;
    let mut buf = Vec::new();
    for run in data_runs(src, len) {
        let (start, run_len) = run?;
        let end = start + run_len;
        let mut pos = start;
        while pos < end {
            let want = usize::try_from(end - pos)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            if in_kernel {
                let (mut off_in, mut off_out) = (pos, pos);
                match fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
                    Ok(0) => return Err(io::Error::other("file shrank while it was being copied")),
                    Ok(n) => {
                        pos += n as u64;
                        continue;
                    }
                    Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                        in_kernel = false;
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            buf.resize(256 * 1024, 0);
            let want = want.min(buf.len());
            let n = match rustix::io::pread(src, &mut buf[..want], pos) {
                Ok(0) => return Err(io::Error::other("file shrank while it was being copied")),
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut done = 0;
            while done < n {
                done += rustix::io::pwrite(dst, &buf[done..n], pos + done as u64)?;
            }
            pos += n as u64;
        }
    }
    // The tail hole, if any, and the length.
    fs::ftruncate(dst, len)?;
    Ok(())
}

#[cfg(test)]
#[path = "sparse_tests.rs"]
mod tests;
