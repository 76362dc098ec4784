//! Random access to the members of an uncompressed tar file, without extracting it.
//!
//! The tar is walked once (seeking over member data, so a 3 GB archive indexes in a few
//! milliseconds), recording each regular member's data offset and size. Hard links and symbolic
//! links between members (docker-archives link `<id>/layer.tar` to `../<diffID>.tar`) are
//! resolved to the member they name, within the archive only. Each `open` uses its own file
//! handle, so several threads can read different members at once.

use super::SourceError;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// How many links a lookup follows before giving up (loops and long chains).
const MAX_LINK_HOPS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Debug)]
enum Node {
    File(Member),
    /// A link to another member, by its normalised archive path.
    Link(String),
}

#[derive(Debug)]
pub(crate) struct TarIndex {
    path: PathBuf,
    nodes: HashMap<String, Node>,
}

impl TarIndex {
    pub fn build(path: &Path) -> Result<TarIndex, SourceError> {
        let tar_err = |e: io::Error| SourceError::Tar {
            path: path.to_path_buf(),
            reason: one_line(&e.to_string()),
        };
        let mut file = File::open(path).map_err(|e| SourceError::io(path, e))?;
        let mut first = [0u8; 512];
        let n = super::read_up_to(&mut file, &mut first).map_err(|e| SourceError::io(path, e))?;
        if n < first.len() || !header_checksum_ok(&first) {
            return Err(SourceError::Tar {
                path: path.to_path_buf(),
                reason: "the first 512 bytes are not a tar header".into(),
            });
        }
        file.rewind().map_err(|e| SourceError::io(path, e))?;
        let mut archive = tar::Archive::new(BufReader::new(file));
        let mut nodes = HashMap::new();
        for entry in archive.entries_with_seek().map_err(tar_err)? {
            let entry = entry.map_err(tar_err)?;
            // Names that are not UTF-8 cannot be any of the files an image archive names.
            let Ok(name) = std::str::from_utf8(&entry.path_bytes()).map(str::to_string) else {
                continue;
            };
            let Some(name) = normalize(&name, "") else {
                continue;
            };
            let kind = entry.header().entry_type();
            let node = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => Node::File(Member {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }),
                tar::EntryType::Link | tar::EntryType::Symlink => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    let Ok(target) = std::str::from_utf8(&target) else {
                        continue;
                    };
                    // A hard link names an archive path; a symlink is relative to its directory.
                    let base = if kind == tar::EntryType::Symlink {
                        name.rsplit_once('/').map_or("", |(dir, _)| dir)
                    } else {
                        ""
                    };
                    match normalize(target, base) {
                        Some(t) => Node::Link(t),
                        None => continue,
                    }
                }
                // Directories, devices and GNU sparse files (whose data is not one contiguous
                // run) are never blobs; a later lookup reports them missing.
                _ => {
                    nodes.remove(&name);
                    continue;
                }
            };
            // A later member of the same name replaces an earlier one, as extraction would.
            nodes.insert(name, node);
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            nodes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The regular member `name` stands for, following links.
    pub fn member(&self, name: &str) -> Option<Member> {
        let mut name = normalize(name, "")?;
        for _ in 0..=MAX_LINK_HOPS {
            match self.nodes.get(&name)? {
                Node::File(m) => return Some(*m),
                Node::Link(target) => name = target.clone(),
            }
        }
        None
    }

    pub fn contains(&self, name: &str) -> bool {
        self.member(name).is_some()
    }

    /// A reader of the member's bytes, on a file handle of its own.
    pub fn open(&self, name: &str) -> Result<Option<MemberReader>, SourceError> {
        let Some(m) = self.member(name) else {
            return Ok(None);
        };
        let mut file = File::open(&self.path).map_err(|e| SourceError::io(&self.path, e))?;
        file.seek(SeekFrom::Start(m.offset))
            .map_err(|e| SourceError::io(&self.path, e))?;
        Ok(Some(MemberReader {
            inner: BufReader::with_capacity(256 * 1024, file).take(m.size),
        }))
    }
}

pub(crate) struct MemberReader {
    inner: io::Take<BufReader<File>>,
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// A tar header's checksum: the byte sum of the block with the checksum field read as spaces,
/// stored as octal. An all-zero block (an empty archive) passes.
fn header_checksum_ok(block: &[u8; 512]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == sum
}

/// The tar crate quotes header bytes in its messages; keep them to one short line.
fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    line
}

/// Normalises an archive path (`./a//b/../c` -> `a/c`) relative to `base`; `None` when it is
/// empty or climbs out of the archive.
fn normalize(path: &str, base: &str) -> Option<String> {
    let mut parts: Vec<&str> = if path.starts_with('/') {
        Vec::new()
    } else {
        base.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect()
    };
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
#[path = "tar_index_tests.rs"]
mod tests;
