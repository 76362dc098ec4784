//! Tar header emission, as docker writes layer tars: ustar headers, preceded by a PAX `x` member
//! for what ustar cannot hold (names and link targets over 100 bytes, ids above 2097151, sizes
//! above 8 GiB, negative or huge mtimes, xattrs as `SCHILY.xattr.NAME`). Mtimes are whole seconds.
//! The tar crate's `Header` gives the field layout; this module decides what goes where.

use std::io::{self, Write};

use super::header::{self, BLOCK};
use super::pax::pax_record;

const USTAR_MAX_ID: u64 = 0o7777777;
const USTAR_MAX_SIZE: u64 = 0o77777777777;

/// The two zero blocks that end an archive.
pub(crate) const END_OF_ARCHIVE: [u8; 2 * BLOCK as usize] = [0u8; 2 * BLOCK as usize];

/// One member's header fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub link: &'a [u8],
    /// Device numbers, written for char and block devices.
    pub dev: (u32, u32),
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// Writes a member's header, preceded by a PAX header when ustar cannot hold it all. The
/// member's data and its padding (see [`write_padding`]) follow.
pub(crate) fn write_header(out: &mut impl Write, h: &Head) -> io::Result<()> {
    let pax = pax_extension(h);
    if !pax.is_empty() {
        let mut x = ::tar::Header::new_ustar();
        x.as_old_mut().name[..14].copy_from_slice(b"././@PaxHeader");
        x.set_mode(0o644);
        x.set_size(pax.len() as u64);
        x.set_entry_type(::tar::EntryType::XHeader);
        x.set_mtime(0);
        x.set_cksum();
        out.write_all(x.as_bytes())?;
        out.write_all(&pax)?;
        write_padding(out, pax.len() as u64)?;
    }
    let mut header = ::tar::Header::new_ustar();
    let fit = |b: &[u8]| b.len().min(100);
    header.as_old_mut().name[..fit(h.name)].copy_from_slice(&h.name[..fit(h.name)]);
    header.as_old_mut().linkname[..fit(h.link)].copy_from_slice(&h.link[..fit(h.link)]);
    header.set_mode(h.mode);
    header.set_uid(if h.uid > USTAR_MAX_ID { 0 } else { h.uid });
    header.set_gid(if h.gid > USTAR_MAX_ID { 0 } else { h.gid });
    header.set_size(if h.size > USTAR_MAX_SIZE { 0 } else { h.size });
    header.set_mtime(u64::try_from(h.mtime).unwrap_or(0).min(USTAR_MAX_SIZE));
    header.set_entry_type(::tar::EntryType::new(h.typeflag));
    if matches!(h.typeflag, b'3' | b'4') {
        let _ = header.set_device_major(h.dev.0);
        let _ = header.set_device_minor(h.dev.1);
    }
    header.set_cksum();
    out.write_all(header.as_bytes())
}

/// The PAX records a header needs (empty when ustar holds it all).
fn pax_extension(h: &Head) -> Vec<u8> {
    let mut pax = Vec::new();
    if h.name.len() > 100 {
        pax.extend(pax_record(b"path", h.name));
    }
    if h.link.len() > 100 {
        pax.extend(pax_record(b"linkpath", h.link));
    }
    // PAX strings are UTF-8 unless the header says otherwise (as GNU tar and Go write it).
    let binary = |b: &[u8]| b.len() > 100 && std::str::from_utf8(b).is_err();
    if binary(h.name) || binary(h.link) {
        pax.extend(pax_record(b"hdrcharset", b"BINARY"));
    }
    if h.uid > USTAR_MAX_ID {
        pax.extend(pax_record(b"uid", h.uid.to_string().as_bytes()));
    }
    if h.gid > USTAR_MAX_ID {
        pax.extend(pax_record(b"gid", h.gid.to_string().as_bytes()));
    }
    if h.size > USTAR_MAX_SIZE {
        pax.extend(pax_record(b"size", h.size.to_string().as_bytes()));
    }
    if !(0..=USTAR_MAX_SIZE as i64).contains(&h.mtime) {
        pax.extend(pax_record(b"mtime", h.mtime.to_string().as_bytes()));
    }
    for (k, v) in h.xattrs {
        let key = [b"SCHILY.xattr.", k.as_slice()].concat();
        pax.extend(pax_record(&key, v));
    }
    pax
}

/// Zeros from the end of `size` bytes of data up to the next block.
pub(crate) fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let pad = header::padding(size) as usize;
    out.write_all(&[0u8; BLOCK as usize][..pad])
}
