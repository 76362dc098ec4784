//! The fields of one 512-byte tar header block, read once for the whole crate: numeric fields
//! (octal, NUL/space padded, empty meaning 0, or base-256 as Go and GNU tar write large values),
//! the header checksum, and the member name and link target.
//!
//! Both the unsigned header checksum (POSIX) and the historic signed one (old Sun tar) are
//! accepted, as Go's archive/tar does. The ustar `prefix` field is joined to the name only in a
//! POSIX ustar header (`ustar\0` `00`): an old GNU header keeps atime and ctime in those bytes.

use std::ops::Range;

pub(crate) const BLOCK: u64 = 512;
/// One header block.
pub(crate) type Block = [u8; BLOCK as usize];

pub(crate) const NAME: Range<usize> = 0..100;
pub(crate) const MODE: Range<usize> = 100..108;
pub(crate) const UID: Range<usize> = 108..116;
pub(crate) const GID: Range<usize> = 116..124;
pub(crate) const SIZE: Range<usize> = 124..136;
pub(crate) const MTIME: Range<usize> = 136..148;
const CHKSUM: Range<usize> = 148..156;
pub(crate) const TYPEFLAG: usize = 156;
const LINKNAME: Range<usize> = 157..257;
const MAGIC: Range<usize> = 257..265;
pub(crate) const DEVMAJOR: Range<usize> = 329..337;
pub(crate) const DEVMINOR: Range<usize> = 337..345;
const PREFIX: Range<usize> = 345..500;

/// Padding after `size` bytes of member data, up to the next block.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// Whether the block is all zeros (an end-of-archive block).
pub(crate) fn is_zero(block: &[u8]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Checks the header checksum.
pub(crate) fn verify_checksum(block: &Block) -> Result<(), String> {
    let stored = numeric(&block[CHKSUM]).map_err(|e| format!("checksum field: {e}"))?;
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if CHKSUM.contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    if stored as i64 == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err(format!(
            "header checksum mismatch (stored {stored}, computed {unsigned})"
        ))
    }
}

/// The size field: bytes of data stored after the header.
pub(crate) fn size(block: &Block) -> Result<u64, String> {
    numeric(&block[SIZE]).map_err(|e| format!("size: {e}"))
}

/// The member name: `prefix/name` in a POSIX ustar header, else the name field.
pub(crate) fn name(block: &Block) -> Vec<u8> {
    let name = cstr(&block[NAME]);
    let prefix = cstr(&block[PREFIX]);
    if &block[MAGIC] == b"ustar\x0000" && !prefix.is_empty() {
        return [prefix, b"/", name].concat();
    }
    name.to_vec()
}

/// The link target field, if set.
pub(crate) fn link_name(block: &Block) -> Option<Vec<u8>> {
    let link = cstr(&block[LINKNAME]);
    (!link.is_empty()).then(|| link.to_vec())
}

/// A field up to its first NUL.
pub(crate) fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// An unsigned numeric field: octal text, or base-256 when the high bit of the first byte is set.
pub(crate) fn numeric(field: &[u8]) -> Result<u64, String> {
    let v = signed_numeric(field)?;
    u64::try_from(v).map_err(|_| "negative value".to_string())
}

/// A numeric field that may be negative (mtime): base-256 is two's complement.
pub(crate) fn signed_numeric(field: &[u8]) -> Result<i64, String> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            // Base-256, two's complement; 0xff as first byte means negative.
            let negative = first == 0xff;
            let mut v: i128 = if negative { -1 } else { 0 };
            for (i, &b) in field.iter().enumerate() {
                let b = if i == 0 && !negative { b & 0x7f } else { b };
                v = (v << 8) | i128::from(b);
                if v > i128::from(i64::MAX) || v < i128::from(i64::MIN) {
                    return Err("base-256 number out of range".into());
                }
            }
            return Ok(v as i64);
        }
    }
    let text = cstr(field).trim_ascii();
    if text.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(text).map_err(|_| "not an octal number".to_string())?;
    i64::from_str_radix(s, 8).map_err(|_| format!("not an octal number: {s:?}"))
}

/// A member name as a path relative to the layer dir: no leading `/`, no `.` or empty components.
pub fn normalize(name: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = name
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    parts.join(&b'/')
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
