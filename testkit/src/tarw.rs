//! A tar writer that writes exactly what it is told: raw ustar (or GNU) headers, PAX records, GNU
//! long names, and what real tar tools (and the `tar` crate's builder) refuse to write, such as
//! `../x`, absolute names, links that leave the tree, sizes that lie and wrong checksums.
//! The tests build every layer, good or hostile, with it; nothing here checks a name.

pub const REG: u8 = b'0';
pub const HARDLINK: u8 = b'1';
pub const SYMLINK: u8 = b'2';
pub const CHAR: u8 = b'3';
pub const BLOCK: u8 = b'4';
pub const DIR: u8 = b'5';
pub const FIFO: u8 = b'6';
pub const PAX: u8 = b'x';
/// GNU long name / long link name: the next entry's name is this entry's data.
pub const GNU_LONGNAME: u8 = b'L';
pub const GNU_LONGLINK: u8 = b'K';

/// The magic and version of a POSIX ustar header ("ustar\0" "00").
pub const USTAR_MAGIC: [u8; 8] = *b"ustar\x0000";
/// The magic and version GNU tar writes in its own format ("ustar " " \0").
pub const GNU_MAGIC: [u8; 8] = *b"ustar  \0";

/// One header's fields; `Header::new` fills the dull ones.
#[derive(Clone, Debug)]
pub struct Header {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub dev: (u32, u32),
    /// Added to the computed checksum, to make a header whose checksum is wrong.
    pub checksum_skew: u32,
    /// [`USTAR_MAGIC`] or [`GNU_MAGIC`]
    pub magic: [u8; 8],
}

impl Header {
    pub fn new(name: impl AsRef<[u8]>, kind: u8) -> Header {
        let mode = match kind {
            DIR => 0o755,
            SYMLINK => 0o777,
            _ => 0o644,
        };
        Header {
            name: name.as_ref().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 1_600_000_000,
            link: Vec::new(),
            dev: (0, 0),
            checksum_skew: 0,
            magic: USTAR_MAGIC,
        }
    }

    /// The 512 bytes of a ustar header. Fields that do not fit must go in PAX records first;
    /// this panics on a name or link longer than 100 bytes since tests choose their names.
    pub fn to_block(&self) -> [u8; 512] {
        assert!(
            self.name.len() <= 100,
            "name too long for a plain header: use pax()"
        );
        assert!(
            self.link.len() <= 100,
            "link too long for a plain header: use pax()"
        );
        let mut b = [0u8; 512];
        b[..self.name.len()].copy_from_slice(&self.name);
        octal(&mut b[100..108], self.mode as u64);
        numeric(&mut b[108..116], self.uid);
        numeric(&mut b[116..124], self.gid);
        numeric(&mut b[124..136], self.size);
        numeric(&mut b[136..148], self.mtime);
        b[156] = self.kind;
        b[157..157 + self.link.len()].copy_from_slice(&self.link);
        b[257..265].copy_from_slice(&self.magic);
        b[265..269].copy_from_slice(b"root");
        b[297..301].copy_from_slice(b"root");
        octal(&mut b[329..337], self.dev.0 as u64);
        octal(&mut b[337..345], self.dev.1 as u64);
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| x as u32).sum::<u32>() + self.checksum_skew;
        let text = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(text.as_bytes());
        b
    }
}

/// Octal when the value fits, else GNU's base-256 (high bit set, big-endian), as GNU tar and the
/// `tar` crate write a uid above 2097151 or a size above 8 GiB.
fn numeric(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    if value < 8u64.pow(width as u32) {
        octal(field, value);
    } else {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&value.to_be_bytes());
        field[0] |= 0x80;
    }
}

/// NUL-terminated zero-padded octal, as GNU tar writes it.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    assert!(
        text.len() <= width,
        "{value} does not fit in {width} octal digits"
    );
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

/// Builds a tar stream entry by entry.
#[derive(Default)]
pub struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    pub fn new() -> TarWriter {
        TarWriter::default()
    }

    /// Any header, followed by `data` padded to the block size (`h.size` is set from it
    /// unless the header is a link or a special file).
    pub fn entry(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        if !data.is_empty() || h.kind == REG {
            h.size = data.len() as u64;
        }
        self.header(&h).data(data)
    }

    pub fn file(&mut self, name: impl AsRef<[u8]>, mode: u32, data: &[u8]) -> &mut Self {
        let mut h = Header::new(name, REG);
        h.mode = mode;
        self.entry(h, data)
    }

    pub fn dir(&mut self, name: impl AsRef<[u8]>, mode: u32) -> &mut Self {
        let mut h = Header::new(name, DIR);
        h.mode = mode;
        self.entry(h, b"")
    }

    pub fn symlink(&mut self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        let mut h = Header::new(name, SYMLINK);
        h.link = target.as_ref().to_vec();
        self.entry(h, b"")
    }

    pub fn hardlink(&mut self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        let mut h = Header::new(name, HARDLINK);
        h.link = target.as_ref().to_vec();
        self.entry(h, b"")
    }

    /// A character or block device (`CHAR`, `BLOCK`) or a FIFO, mode 0644.
    pub fn node(&mut self, name: impl AsRef<[u8]>, kind: u8, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new(name, kind);
        h.dev = (major, minor);
        self.entry(h, b"")
    }

    /// A PAX extended header whose records apply to the next entry, e.g.
    /// `("SCHILY.xattr.user.x", b"v")`, `("path", b"a/very/long/name")`, `("uid", b"3000000")`.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.pax_raw(&body)
    }

    /// A PAX extended header whose body is `body`, verbatim (to write malformed records).
    pub fn pax_raw(&mut self, body: &[u8]) -> &mut Self {
        let mut h = Header::new("././@PaxHeader", PAX);
        h.size = body.len() as u64;
        self.header(&h).data(body)
    }

    /// `h` with `records` before it; a name or link longer than a header holds goes into a PAX
    /// `path` / `linkpath` record too, and the header keeps its first 100 bytes (as GNU tar does).
    pub fn entry_with_pax(
        &mut self,
        mut h: Header,
        records: &[(&str, &[u8])],
        data: &[u8],
    ) -> &mut Self {
        let mut body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        if h.name.len() > 100 {
            body.extend(pax_record("path", &h.name));
            h.name.truncate(100);
        }
        if h.link.len() > 100 {
            body.extend(pax_record("linkpath", &h.link));
            h.link.truncate(100);
        }
        if !body.is_empty() {
            self.pax_raw(&body);
        }
        self.entry(h, data)
    }

    /// `h` with GNU long-name entries ('L', and 'K' for a link) before it carrying its whole name
    /// and link; the header itself keeps their first 99 bytes.
    pub fn gnu_long(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        for (kind, value) in [
            (GNU_LONGNAME, h.name.clone()),
            (GNU_LONGLINK, h.link.clone()),
        ] {
            if kind == GNU_LONGLINK && value.is_empty() {
                continue;
            }
            let mut long = Header::new("././@LongLink", kind);
            long.magic = GNU_MAGIC;
            let body = [&value[..], b"\0"].concat();
            long.size = body.len() as u64;
            self.header(&long).data(&body);
        }
        h.name.truncate(99);
        h.link.truncate(99);
        self.entry(h, data)
    }

    /// A header block alone, its size field as given (the data, if any, follows by [`data`]),
    /// to write sizes that lie.
    ///
    /// [`data`]: TarWriter::data
    pub fn header(&mut self, h: &Header) -> &mut Self {
        self.buf.extend_from_slice(&h.to_block());
        self
    }

    /// `data` padded to the block size.
    pub fn data(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    /// Bytes appended verbatim, no padding (a torn block, garbage between entries).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// The stream so far, without the end blocks.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The stream with its two zero end blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// One PAX record, `"<len> <key>=<value>\n"`, whose length prefix counts itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

fn pad(buf: &mut Vec<u8>) {
    let rem = buf.len() % 512;
    if rem != 0 {
        buf.resize(buf.len() + 512 - rem, 0);
    }
}
