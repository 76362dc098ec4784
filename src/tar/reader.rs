//! Tar stream framing: which header blocks belong to one member (PAX `x`, GNU `L`/`K` long
//! names, GNU sparse maps), where its data is, and where the next header starts; and the tap
//! that lets an observer see the raw archive as it is read.
//!
//! The tar crate is not used here: its `PaxExtensions` splits records at newlines instead of by
//! their length prefix (a value holding a `\n`, such as a binary `security.capability` or a name
//! with a newline, is silently lost), and it reads PAX and long-name members into memory without
//! a cap. Here extension members are capped at 1 MiB, as Go's archive/tar does; header fields
//! are read by `header`, PAX records by `pax`.

use std::io::{self, BufRead};

use super::header::{self, Block, BLOCK};
use super::pax::{parse_pax, Pax};

/// Largest PAX / GNU long-name member we read into memory (Go's archive/tar uses the same).
pub(crate) const MAX_EXTENSION: u64 = 1 << 20;
/// Largest sum of the extension members (`x`, `L`, `K`, `g`) before one member. Each is capped
/// alone, but PAX xattr records accumulate across consecutive `x` headers: without this, thousands
/// of them before one member would grow memory without bound. Real archives have at most one of
/// each kind per member.
pub(crate) const MAX_EXTENSIONS_PER_MEMBER: u64 = 4 * MAX_EXTENSION;
/// Largest number of chunks in a GNU sparse map.
const MAX_SPARSE_CHUNKS: usize = 1 << 16;

/// An observer of the raw archive (as ripgrep's searcher pushes into a `Sink`): it is shown every
/// byte the reader consumes, once and in order, split into a regular file's content and all the
/// rest. It runs inside the one pass over the stream, so it must not block for long; it keeps
/// its own first error and reports it when its owner finishes it.
pub trait Tap {
    /// Bytes that are not a regular file's content: headers, extension members, the data of
    /// other members, padding, the end-of-archive blocks and whatever follows them.
    fn raw(&mut self, bytes: &[u8]);
    /// A regular file's content of `size` bytes follows, for the member at `path` (normalized:
    /// relative, without `.` or empty components).
    fn file(&mut self, path: &[u8], size: u64);
    /// The next piece of the current file's content.
    fn content(&mut self, bytes: &[u8]);
}

/// What a tar member is, after extension headers are folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// A point in time as tar gives it: seconds (may be negative) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Time {
    pub secs: i64,
    pub nanos: u32,
}

/// One member of the archive, with PAX and GNU extensions applied. Its data (if any) is read
/// next through [`TarReader::data`].
#[derive(Debug, Default)]
pub(crate) struct Member {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Option<Kind>,
    /// The raw type byte, for messages about unsupported types.
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Time,
    pub atime: Option<Time>,
    /// Bytes of data stored in the archive for this member.
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes in archive order (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// For GNU sparse files: the real size and the (offset, length) chunks the data fills.
    pub sparse: Option<(u64, Vec<(u64, u64)>)>,
}

/// Why the stream could not be framed.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The underlying stream failed (decompression, I/O).
    Read(io::Error),
    /// The bytes are not a valid tar stream; `entry` is the member's name when known.
    Format { entry: Vec<u8>, reason: String },
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Read(e)
    }
}

fn bad(entry: &[u8], reason: impl Into<String>) -> FrameError {
    FrameError::Format {
        entry: entry.to_vec(),
        reason: reason.into(),
    }
}

/// Reads members from a tar stream. Never buffers more than one extension member.
pub(crate) struct TarReader<'t, R> {
    inner: R,
    /// Data bytes of the current member not yet consumed.
    remaining: u64,
    /// Padding after the current member's data.
    padding: u64,
    /// Name of the current member, for error messages.
    current: Vec<u8>,
    /// Whether the current member's data is a regular file's content (for the tap).
    content: bool,
    tap: Option<&'t mut (dyn Tap + Send)>,
}

impl<'t, R: BufRead> TarReader<'t, R> {
    /// A reader that shows every byte it consumes to `tap`.
    pub fn tapped(inner: R, tap: Option<&'t mut (dyn Tap + Send)>) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            current: Vec::new(),
            content: false,
            tap,
        }
    }

    /// After the last member: shows the rest of the stream (the end-of-archive blocks and
    /// anything after them) to the tap, so it sees the whole archive. Without a tap, nothing is
    /// read.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        let Some(tap) = self.tap.as_deref_mut() else {
            return Ok(());
        };
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf.len();
            tap.raw(buf);
            self.inner.consume(n);
        }
    }

    /// The next member, or `None` at the end-of-archive marker (or a clean EOF between members).
    pub fn next_member(&mut self) -> Result<Option<Member>, FrameError> {
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax = Pax::default();
        let mut pending = false;
        let mut extension_bytes = 0u64;
        loop {
            let mut block: Block = [0u8; BLOCK as usize];
            if !self.read_block(&mut block)? {
                if pending {
                    return Err(bad(b"", "archive ends after an extension header"));
                }
                return Ok(None);
            }
            if header::is_zero(&block) {
                if pending {
                    return Err(bad(b"", "archive ends after an extension header"));
                }
                return Ok(None);
            }
            let name = header::name(&block);
            header::verify_checksum(&block).map_err(|r| bad(&name, r))?;
            let size = header::size(&block).map_err(|r| bad(&name, r))?;
            let typeflag = block[header::TYPEFLAG];
            if matches!(typeflag, b'x' | b'L' | b'K' | b'g') {
                extension_bytes = extension_bytes.saturating_add(size);
                if extension_bytes > MAX_EXTENSIONS_PER_MEMBER {
                    return Err(bad(
                        &name,
                        format!(
                            "extension headers (PAX, GNU long names) of more than \
                             {MAX_EXTENSIONS_PER_MEMBER} bytes in all before one member"
                        ),
                    ));
                }
            }
            match typeflag {
                b'x' | b'L' | b'K' => {
                    let data = self.read_extension(&name, size)?;
                    match typeflag {
                        b'x' => parse_pax(&data, &mut pax).map_err(|r| bad(&name, r))?,
                        b'L' => long_name = Some(header::cstr(&data).to_vec()),
                        _ => long_link = Some(header::cstr(&data).to_vec()),
                    }
                    pending = true;
                    continue;
                }
                b'g' => {
                    // Global PAX headers: docker and containerd ignore them too, so no record
                    // of one is carried over to later members. Go refuses them past 1 MiB.
                    if size > MAX_EXTENSION {
                        return Err(bad(
                            &name,
                            format!("global PAX header of {size} bytes (limit {MAX_EXTENSION})"),
                        ));
                    }
                    self.set_data(&name, size);
                    self.skip_rest()?;
                    continue;
                }
                _ => {}
            }
            let mut m = Member {
                path: pax.path.take().or(long_name.take()).unwrap_or(name),
                ..Member::default()
            };
            let link_field = header::link_name(&block);
            m.link = pax
                .link
                .take()
                .or(long_link.take())
                .or(link_field)
                .unwrap_or_default();
            m.kind = kind_of(typeflag, &m.path);
            m.typeflag = typeflag;
            let field = |r: std::ops::Range<usize>, what: &str| {
                header::numeric(&block[r]).map_err(|e| bad(&m.path, format!("{what}: {e}")))
            };
            m.mode = (field(header::MODE, "mode")? & 0o7777) as u32;
            m.uid = match pax.uid {
                Some(u) => u,
                None => field(header::UID, "uid")?,
            };
            m.gid = match pax.gid {
                Some(g) => g,
                None => field(header::GID, "gid")?,
            };
            m.mtime = match pax.mtime {
                Some(t) => t,
                None => Time {
                    secs: header::signed_numeric(&block[header::MTIME])
                        .map_err(|e| bad(&m.path, format!("mtime: {e}")))?,
                    nanos: 0,
                },
            };
            m.atime = pax.atime;
            m.size = pax.size.unwrap_or(size);
            if matches!(m.kind, Some(Kind::Char | Kind::Block)) {
                m.dev_major = u32::try_from(field(header::DEVMAJOR, "devmajor")?)
                    .map_err(|_| bad(&m.path, "device major out of range"))?;
                m.dev_minor = u32::try_from(field(header::DEVMINOR, "devminor")?)
                    .map_err(|_| bad(&m.path, "device minor out of range"))?;
            }
            m.xattrs = std::mem::take(&mut pax.xattrs);
            if typeflag == b'S' {
                m.sparse = Some(self.read_sparse_map(&block, &m)?);
            }
            // Links, devices, fifos and directories carry no data even if a size is set; GNU tar
            // and Go skip over whatever is stored, so do we.
            self.set_data(&m.path, m.size);
            if !matches!(m.kind, Some(Kind::File)) {
                self.skip_rest()?;
            } else if m.sparse.is_none() {
                // A sparse member's data is its map's chunks, not the file: the tap sees it raw.
                if let Some(tap) = self.tap.as_deref_mut() {
                    tap.file(&header::normalize(&m.path), m.size);
                    self.content = true;
                }
            }
            return Ok(Some(m));
        }
    }

    /// The next chunk of the current member's data (empty at its end). Pass the length used to
    /// [`TarReader::consume`].
    pub fn data(&mut self) -> Result<&[u8], FrameError> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(bad(&self.current, "archive ends inside this member's data"));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        Ok(&buf[..n])
    }

    pub fn consume(&mut self, n: usize) {
        if let Some(tap) = self.tap.as_deref_mut() {
            // The bytes `data` returned are still in the buffer: this refill reads nothing.
            if let Ok(buf) = self.inner.fill_buf() {
                let n = n.min(buf.len());
                if self.content {
                    tap.content(&buf[..n]);
                } else {
                    tap.raw(&buf[..n]);
                }
            }
        }
        self.inner.consume(n);
        self.remaining -= n as u64;
    }

    fn set_data(&mut self, name: &[u8], size: u64) {
        self.current = name.to_vec();
        self.remaining = size;
        self.padding = header::padding(size);
        self.content = false;
    }

    /// Skips the unread data and padding of the current member.
    fn skip_rest(&mut self) -> Result<(), FrameError> {
        while self.remaining > 0 {
            let n = self.data()?.len();
            self.consume(n);
        }
        self.content = false;
        let mut left = self.padding;
        self.padding = 0;
        while left > 0 {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Err(bad(&self.current, "archive ends inside this member's data"));
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if let Some(tap) = self.tap.as_deref_mut() {
                tap.raw(&buf[..n]);
            }
            self.inner.consume(n);
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads one 512-byte block; false on a clean EOF before its first byte.
    fn read_block(&mut self, block: &mut Block) -> Result<bool, FrameError> {
        let mut got = 0;
        while got < block.len() {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if got == 0 {
                    return Ok(false);
                }
                return Err(bad(&self.current, "archive ends inside a header"));
            }
            let n = buf.len().min(block.len() - got);
            block[got..got + n].copy_from_slice(&buf[..n]);
            if let Some(tap) = self.tap.as_deref_mut() {
                tap.raw(&buf[..n]);
            }
            self.inner.consume(n);
            got += n;
        }
        Ok(true)
    }

    fn read_extension(&mut self, name: &[u8], size: u64) -> Result<Vec<u8>, FrameError> {
        if size > MAX_EXTENSION {
            return Err(bad(
                name,
                format!("extension header of {size} bytes (limit {MAX_EXTENSION})"),
            ));
        }
        self.set_data(name, size);
        let mut data = Vec::with_capacity(size as usize);
        loop {
            let chunk = self.data()?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            data.extend_from_slice(chunk);
            self.consume(n);
        }
        self.skip_rest()?;
        Ok(data)
    }

    /// The sparse map of an old-GNU sparse member: four slots in the header, then extension
    /// blocks while `isextended` is set.
    fn read_sparse_map(
        &mut self,
        block: &Block,
        m: &Member,
    ) -> Result<(u64, Vec<(u64, u64)>), FrameError> {
        let real_size = header::numeric(&block[483..495])
            .map_err(|e| bad(&m.path, format!("realsize: {e}")))?;
        let mut chunks = Vec::new();
        let mut slots = block[386..482].to_vec();
        let mut extended = block[482] != 0;
        loop {
            for slot in slots.chunks_exact(24) {
                let offset = header::numeric(&slot[..12]).map_err(|e| bad(&m.path, e))?;
                let len = header::numeric(&slot[12..]).map_err(|e| bad(&m.path, e))?;
                if slot.iter().all(|&b| b == 0) {
                    continue;
                }
                chunks.push((offset, len));
            }
            if !extended {
                break;
            }
            if chunks.len() > MAX_SPARSE_CHUNKS {
                return Err(bad(&m.path, "sparse map too large"));
            }
            let mut ext: Block = [0u8; BLOCK as usize];
            if !self.read_block(&mut ext)? {
                return Err(bad(&m.path, "archive ends inside a sparse map"));
            }
            slots = ext[..504].to_vec();
            extended = ext[504] != 0;
        }
        let mut end = 0u64;
        let mut stored = 0u64;
        for &(offset, len) in &chunks {
            let stop = offset.checked_add(len);
            if offset < end || stop.is_none_or(|s| s > real_size) {
                return Err(bad(
                    &m.path,
                    "sparse map is out of order or past the file's end",
                ));
            }
            end = offset + len;
            stored += len;
        }
        if stored != m.size {
            return Err(bad(&m.path, "sparse map does not match the stored size"));
        }
        Ok((real_size, chunks))
    }
}

fn kind_of(typeflag: u8, path: &[u8]) -> Option<Kind> {
    Some(match typeflag {
        // A pre-POSIX archive marks directories only by a trailing slash.
        b'\0' if path.ends_with(b"/") => Kind::Dir,
        b'0' | b'\0' | b'7' | b'S' => Kind::File,
        b'1' => Kind::Hardlink,
        b'2' => Kind::Symlink,
        b'3' => Kind::Char,
        b'4' => Kind::Block,
        // GNU tar -G writes directories as `D` (a dumpdir: the names it held, as its data).
        b'5' | b'D' => Kind::Dir,
        b'6' => Kind::Fifo,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
