//! A tar writer that writes exactly what it is told: raw ustar headers, PAX records and names
//! that real tar tools (and the `tar` crate's builder) refuse to write, such as `../x`,
//! absolute names, links that leave the tree and headers with a wrong checksum.
//! The driver tests build every layer, good or hostile, with it.

pub const REG: u8 = b'0';
pub const HARDLINK: u8 = b'1';
pub const SYMLINK: u8 = b'2';
pub const CHAR: u8 = b'3';
pub const BLOCK: u8 = b'4';
pub const DIR: u8 = b'5';
pub const FIFO: u8 = b'6';
pub const PAX: u8 = b'x';

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
        octal(&mut b[108..116], self.uid.min(0o7777777));
        octal(&mut b[116..124], self.gid.min(0o7777777));
        octal(&mut b[124..136], self.size);
        octal(&mut b[136..148], self.mtime);
        b[156] = self.kind;
        b[157..157 + self.link.len()].copy_from_slice(&self.link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
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
        self.buf.extend_from_slice(&h.to_block());
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
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

    /// A PAX extended header whose records apply to the next entry, e.g.
    /// `("SCHILY.xattr.user.x", b"v")`, `("path", b"a/very/long/name")`, `("uid", b"3000000")`.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            // the length prefix counts itself, so find the fixed point
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut h = Header::new("././@PaxHeader", PAX);
        h.size = body.len() as u64;
        self.buf.extend_from_slice(&h.to_block());
        self.buf.extend_from_slice(&body);
        pad(&mut self.buf);
        self
    }

    /// The stream with its two zero end blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

fn pad(buf: &mut Vec<u8>) {
    let rem = buf.len() % 512;
    if rem != 0 {
        buf.resize(buf.len() + 512 - rem, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    // the tar crate, as an independent reader, must see what we meant to write
    #[test]
    fn tar_crate_reads_what_we_write() {
        let long = "d/".repeat(80) + "file";
        let mut w = TarWriter::new();
        w.dir("etc/", 0o755)
            .file("etc/hosts", 0o600, b"127.0.0.1 localhost\n")
            .symlink("etc/link", "hosts")
            .hardlink("etc/hard", "etc/hosts")
            .pax(&[
                ("path", long.as_bytes()),
                ("SCHILY.xattr.user.note", b"hi"),
                ("uid", b"3000000"),
            ])
            .file("placeholder", 0o644, b"x");
        let bytes = w.finish();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in ar.entries().expect("entries") {
            let mut e = entry.expect("entry");
            let path = e.path().expect("path").to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let uid = e.header().uid().expect("uid");
            let mode = e.header().mode().expect("mode");
            let link = e
                .link_name()
                .expect("link")
                .map(|l| l.to_string_lossy().into_owned());
            let xattr = e
                .pax_extensions()
                .expect("pax")
                .map(|exts| {
                    exts.filter_map(|x| x.ok())
                        .any(|x| x.key() == Ok("SCHILY.xattr.user.note"))
                })
                .unwrap_or(false);
            let mut body = String::new();
            e.read_to_string(&mut body).expect("body");
            seen.push((path, kind, uid, mode, link, xattr, body));
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[1].0, "etc/hosts");
        assert_eq!(seen[1].3, 0o600);
        assert_eq!(seen[1].6, "127.0.0.1 localhost\n");
        assert!(seen[2].1.is_symlink() && seen[2].4.as_deref() == Some("hosts"));
        assert!(seen[3].1.is_hard_link() && seen[3].4.as_deref() == Some("etc/hosts"));
        assert_eq!(seen[4].0, long, "PAX path must override the header name");
        assert_eq!(seen[4].2, 3_000_000, "PAX uid");
        assert!(seen[4].5, "PAX xattr record");
    }

    #[test]
    fn hostile_names_and_bad_checksums_are_written_verbatim() {
        let mut w = TarWriter::new();
        w.file("../../escape", 0o644, b"x");
        let bytes = w.finish();
        assert_eq!(&bytes[..12], b"../../escape");
        // the tar crate refuses to unpack it, which is what makes it a useful case
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut e = ar
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        assert!(!e
            .unpack_in(dir.path())
            .expect("unpack_in reports refusal as Ok(false)"));

        let mut h = Header::new("file", REG);
        h.checksum_skew = 1;
        let mut w = TarWriter::new();
        w.entry(h, b"data");
        let bytes = w.finish();
        let mut ar = tar::Archive::new(&bytes[..]);
        let first = ar.entries().expect("entries").next().expect("one entry");
        assert!(first.is_err(), "a skewed checksum must not parse");
    }
}
