//! Random access to the members of an uncompressed tar file, without extracting it.
//!
//! The tar is walked once with `tar::header` (seeking over member data, so a 3 GB archive
//! indexes in a few milliseconds), recording each regular member's data offset and size. Hard links and symbolic
//! links between members (docker-archives link `<id>/layer.tar` to `../<diffID>.tar`) are
//! resolved to the member they name, within the archive only. Each `open` uses its own file
//! handle, so several threads can read different members at once.

use super::SourceError;
use crate::tar::header::{self, Block, BLOCK};
use crate::tar::pax::{parse_pax, Pax};
use crate::tar::reader::MAX_EXTENSION;
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
    /// The archive, held open: `reopen` (its /proc/self/fd path) gives each reader its own
    /// offset on the same file.
    #[allow(dead_code)]
    file: File,
    reopen: String,
    nodes: HashMap<String, Node>,
}

impl TarIndex {
    pub fn build(path: &Path) -> Result<TarIndex, SourceError> {
        let tar_err = |reason: String| SourceError::Tar {
            path: path.to_path_buf(),
            reason: one_line(&reason),
        };
        let io_err = |e: io::Error| SourceError::io(path, e);
        let file = crate::sys::regular::open_regular_following(path).map_err(io_err)?;
        // Members are read through this very file (reopened by fd), so swapping the path for a
        // FIFO after it was checked changes nothing.
        let reopen = crate::sys::open::proc_fd_path(&file);
        let mut r = BufReader::new(file);
        let mut nodes = HashMap::new();
        // Where the next header starts; member data is seeked over, never read.
        let mut pos = 0u64;
        let mut ext = Extensions::default();
        loop {
            let mut block: Block = [0u8; BLOCK as usize];
            let n = super::read_up_to(&mut r, &mut block).map_err(io_err)?;
            let checked = if n < block.len() {
                Err("archive ends inside a header".to_string())
            } else {
                header::verify_checksum(&block)
            };
            if pos == 0 && (n < block.len() || (checked.is_err() && !header::is_zero(&block))) {
                return Err(tar_err("the first 512 bytes are not a tar header".into()));
            }
            if n == 0 || header::is_zero(&block) {
                break;
            }
            checked.map_err(tar_err)?;
            let mut size = header::size(&block).map_err(tar_err)?;
            pos += BLOCK;
            let typeflag = block[header::TYPEFLAG];
            if typeflag == b'S' {
                // An old GNU sparse member: its map may continue in extension blocks.
                let mut extended = block[482] != 0;
                while extended {
                    let mut more: Block = [0u8; BLOCK as usize];
                    r.read_exact(&mut more).map_err(io_err)?;
                    pos += BLOCK;
                    extended = more[504] != 0;
                }
            }
            // Where the reader stands, relative to `pos`.
            let mut read = 0;
            if matches!(typeflag, b'x' | b'L' | b'K') {
                if size > MAX_EXTENSION {
                    return Err(tar_err(format!("extension header of {size} bytes")));
                }
                let mut data = vec![0u8; size as usize];
                r.read_exact(&mut data).map_err(io_err)?;
                read = size;
                ext.add(typeflag, &data);
            } else if typeflag != b'g' {
                let name = ext.path.take().unwrap_or_else(|| header::name(&block));
                let link = ext.link.take().or_else(|| header::link_name(&block));
                size = ext.size.take().unwrap_or(size);
                if !std::mem::take(&mut ext.unreadable) {
                    index(&mut nodes, &name, typeflag, link, pos, size);
                }
            }
            let skip = size + header::padding(size) - read;
            // Within the buffer this moves no file offset; a long skip is one lseek.
            let skip =
                i64::try_from(skip).map_err(|_| tar_err(format!("member of {size} bytes")))?;
            r.seek_relative(skip).map_err(io_err)?;
            pos += size + header::padding(size);
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            file: r.into_inner(),
            reopen,
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
        let mut file = File::open(&self.reopen).map_err(|e| SourceError::io(&self.path, e))?;
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

/// What extension members (PAX `x`, GNU `L`/`K`) say about the next member.
#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    /// The PAX records could not be read: the member is left out of the index.
    unreadable: bool,
}

impl Extensions {
    fn add(&mut self, typeflag: u8, data: &[u8]) {
        match typeflag {
            b'L' => self.path = Some(header::cstr(data).to_vec()),
            b'K' => self.link = Some(header::cstr(data).to_vec()),
            _ => {
                let mut pax = Pax::default();
                if parse_pax(data, &mut pax).is_err() {
                    self.unreadable = true;
                }
                self.path = pax.path.or(self.path.take());
                self.link = pax.link.or(self.link.take());
                self.size = pax.size.or(self.size);
            }
        }
    }
}

/// Records one member whose data starts at `offset`.
fn index(
    nodes: &mut HashMap<String, Node>,
    name: &[u8],
    typeflag: u8,
    link: Option<Vec<u8>>,
    offset: u64,
    size: u64,
) {
    // Names that are not UTF-8 cannot be any of the files an image archive names.
    let Some(name) = std::str::from_utf8(name)
        .ok()
        .and_then(|n| normalize(n, ""))
    else {
        return;
    };
    let node = match typeflag {
        b'0' | b'\0' | b'7' => Node::File(Member { offset, size }),
        b'1' | b'2' => {
            let Some(target) = link.as_deref().and_then(|t| std::str::from_utf8(t).ok()) else {
                return;
            };
            // A hard link names an archive path; a symlink is relative to its directory.
            let base = if typeflag == b'2' {
                name.rsplit_once('/').map_or("", |(dir, _)| dir)
            } else {
                ""
            };
            match normalize(target, base) {
                Some(t) => Node::Link(t),
                None => return,
            }
        }
        // Directories, devices and GNU sparse files (whose data is not one contiguous run) are
        // never blobs; a later lookup reports them missing.
        _ => {
            nodes.remove(&name);
            return;
        }
    };
    // A later member of the same name replaces an earlier one, as extraction would.
    nodes.insert(name, node);
}

/// Reasons may quote header bytes; keep them to one short line.
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
