//! The checksum the store keeps of each regular file's content, in tar-split records and file lists.
//!
//! It guards against corruption, not forgery: a record lives beside the files it describes, so
//! whoever can rewrite a file can rewrite its sum too, and what `save` proves about a layer is its
//! diffID (sha256 over the whole tar, checked on every reassembly). So the sum is XXH3-128, which
//! costs next to nothing where a third SHA-256 pass over every layer was a fifth of a load's CPU
//! (containers/storage keeps a CRC64 for the same job). Records written before it hold SHA-256
//! sums; they are still read, and checked with SHA-256.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

use rustix::fd::BorrowedFd;

use crate::sys::sparse::read_sparse;
use xxhash_rust::xxh3::Xxh3;

/// The algorithm of a record's sums (fixed per record by its format version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SumKind {
    /// What this lamina writes.
    #[default]
    Xxh3,
    /// Records of format version 1.
    Sha256,
}

impl SumKind {
    /// Reads a sum of this kind (16 or 32 bytes) from `r`.
    pub fn read_sum(self, r: &mut impl Read) -> io::Result<ContentSum> {
        Ok(match self {
            SumKind::Xxh3 => {
                let mut b = [0u8; 16];
                r.read_exact(&mut b)?;
                ContentSum::Xxh3(b)
            }
            SumKind::Sha256 => {
                let mut b = [0u8; 32];
                r.read_exact(&mut b)?;
                ContentSum::Sha256(b)
            }
        })
    }

    /// The sum of the first `len` bytes of an open file, reading only its data: holes are
    /// summed as zeros without being read (`sys::sparse`).
    pub fn sum_file(self, fd: BorrowedFd<'_>, len: u64) -> io::Result<ContentSum> {
        let mut h = ContentHasher::new(self);
        let mut buf = vec![0u8; 256 * 1024];
        read_sparse(fd, len, &mut buf, |b| {
            h.update(b);
            Ok(())
        })?;
        Ok(h.finish())
    }

    /// The sum of everything `r` yields.
    pub fn sum_reader(self, mut r: impl Read) -> io::Result<ContentSum> {
        let mut h = ContentHasher::new(self);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return Ok(h.finish()),
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSum {
    Xxh3([u8; 16]),
    Sha256([u8; 32]),
}

impl ContentSum {
    pub fn kind(&self) -> SumKind {
        match self {
            ContentSum::Xxh3(_) => SumKind::Xxh3,
            ContentSum::Sha256(_) => SumKind::Sha256,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ContentSum::Xxh3(b) => b,
            ContentSum::Sha256(b) => b,
        }
    }
}

pub enum ContentHasher {
    Xxh3(Box<Xxh3>),
    Sha256(Box<Sha256>),
}

impl ContentHasher {
    pub fn new(kind: SumKind) -> Self {
        match kind {
            SumKind::Xxh3 => ContentHasher::Xxh3(Box::new(Xxh3::new())),
            SumKind::Sha256 => ContentHasher::Sha256(Box::new(Sha256::new())),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ContentHasher::Xxh3(h) => h.update(data),
            ContentHasher::Sha256(h) => h.update(data),
        }
    }

    pub fn finish(&self) -> ContentSum {
        match self {
            ContentHasher::Xxh3(h) => ContentSum::Xxh3(h.digest128().to_be_bytes()),
            ContentHasher::Sha256(h) => ContentSum::Sha256((**h).clone().finalize().into()),
        }
    }
}

#[cfg(test)]
#[path = "content_sum_tests.rs"]
mod tests;
