//! PAX extended header records (POSIX.1-2001 `pax` format): `<len> <key>=<value>\n`.
//!
//! Records are split by their length prefix, never at newlines, so values may hold any byte
//! (binary xattrs such as `security.capability`, names with newlines). Understood keys: `path`,
//! `linkpath`, `size`, `uid`, `gid`, `mtime`, `atime` (with fractions and signs), xattrs as
//! `SCHILY.xattr.NAME` (star, GNU tar, Go) and `LIBARCHIVE.xattr.NAME` (percent-encoded name,
//! base64 value). GNU's PAX sparse keys are refused rather than unpacked wrongly.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::reader::Time;

/// libarchive writes its xattr values in standard base64 without the `=` padding; accept both.
const XATTR_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// PAX values that override the next member's header.
#[derive(Default)]
pub(crate) struct Pax {
    pub path: Option<Vec<u8>>,
    pub link: Option<Vec<u8>>,
    pub size: Option<u64>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    pub mtime: Option<Time>,
    pub atime: Option<Time>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One PAX record, `<len> <key>=<value>\n`, where `len` counts the whole record itself.
pub(crate) fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + 1 + value.len() + 1;
    let mut len = body_len + 2;
    while len.to_string().len() + 1 + body_len != len {
        len = len.to_string().len() + 1 + body_len;
    }
    [format!("{len} ").as_bytes(), key, b"=", value, b"\n"].concat()
}

/// Parses PAX records (`<len> <key>=<value>\n`) by their length prefix, so values may hold any
/// byte, newlines included.
pub(crate) fn parse_pax(mut data: &[u8], pax: &mut Pax) -> Result<(), String> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break; // some writers pad the member with NULs
        }
        let space = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record (no length)")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PAX record length")?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("malformed PAX record (bad length)".into());
        }
        let record = &data[space + 1..len - 1];
        data = &data[len..];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("malformed PAX record (no '=')")?;
        apply_pax_record(&record[..eq], &record[eq + 1..], pax)?;
    }
    Ok(())
}

fn apply_pax_record(key: &[u8], value: &[u8], pax: &mut Pax) -> Result<(), String> {
    let text = || std::str::from_utf8(value).map_err(|_| "PAX value is not UTF-8".to_string());
    let number = || -> Result<u64, String> {
        text()?
            .parse()
            .map_err(|_| format!("bad PAX number for {}", String::from_utf8_lossy(key)))
    };
    // An empty value removes the key (POSIX): the header field applies again.
    let set = |v: &[u8]| (!v.is_empty()).then(|| v.to_vec());
    match key {
        b"path" => pax.path = set(value),
        b"linkpath" => pax.link = set(value),
        b"size" => {
            pax.size = if value.is_empty() {
                None
            } else {
                Some(number()?)
            }
        }
        b"uid" => {
            pax.uid = if value.is_empty() {
                None
            } else {
                Some(number()?)
            }
        }
        b"gid" => {
            pax.gid = if value.is_empty() {
                None
            } else {
                Some(number()?)
            }
        }
        b"mtime" => pax.mtime = parse_pax_time(value)?,
        b"atime" => pax.atime = parse_pax_time(value)?,
        _ => {
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                pax.xattrs.push((name.to_vec(), value.to_vec()));
            } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
                let name = percent_decode(name)?;
                let value = XATTR_BASE64
                    .decode(value)
                    .map_err(|_| "bad base64 in LIBARCHIVE.xattr")?;
                pax.xattrs.push((name, value));
            } else if key.starts_with(b"GNU.sparse.") {
                return Err("PAX sparse files are not supported".into());
            }
        }
    }
    Ok(())
}

/// `secs[.fraction]`, possibly negative.
fn parse_pax_time(value: &[u8]) -> Result<Option<Time>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let s = std::str::from_utf8(value).map_err(|_| "bad PAX time")?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let bad_time = || format!("bad PAX time {s:?}");
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_time());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_time());
    }
    let secs: i64 = whole.parse().map_err(|_| bad_time())?;
    let mut nanos: u32 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(Some(if !neg {
        Time { secs, nanos }
    } else if nanos == 0 {
        Time { secs: -secs, nanos }
    } else {
        Time {
            secs: -secs - 1,
            nanos: 1_000_000_000 - nanos,
        }
    }))
}

fn percent_decode(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("bad %-escape in xattr name")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape in xattr name")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in xattr name")?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "pax_tests.rs"]
mod tests;
