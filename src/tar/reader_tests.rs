use super::*;
use lamina_testkit::tarw::{pax_record, Header, TarWriter, GNU_MAGIC, REG};
use std::io::BufReader;

/// A member as these tests check it: path, kind, number of xattrs.
type Seen = (Vec<u8>, Option<Kind>, usize);

/// Every member of `tar`, or the first framing error.
fn members(tar: &[u8]) -> Result<Vec<Seen>, FrameError> {
    let mut r = TarReader::tapped(BufReader::with_capacity(1000, tar), None);
    let mut out = Vec::new();
    while let Some(m) = r.next_member()? {
        out.push((m.path, m.kind, m.xattrs.len()));
    }
    Ok(out)
}

fn reason(e: FrameError) -> String {
    match e {
        FrameError::Format { entry, reason } => {
            format!("{}: {reason}", String::from_utf8_lossy(&entry))
        }
        FrameError::Read(e) => panic!("not a format error: {e}"),
    }
}

#[test]
fn xattr_records_piled_up_over_many_pax_headers_are_refused() {
    // 1000 PAX headers of 60 KiB of xattrs each before one file: 60 MB held if accumulated.
    let mut t = TarWriter::new();
    let value = vec![b'v'; 60 << 10];
    for i in 0..1000 {
        t.pax(&[(&format!("SCHILY.xattr.user.k{i}"), &value)]);
    }
    let tar = t.file("victim", 0o644, b"x").finish();
    let e = reason(members(&tar).unwrap_err());
    assert!(e.contains("extension headers"), "{e}");
    assert!(e.contains(&MAX_EXTENSIONS_PER_MEMBER.to_string()), "{e}");
}

#[test]
fn a_few_pax_headers_before_one_member_are_still_read() {
    let mut t = TarWriter::new();
    t.pax(&[("SCHILY.xattr.user.a", b"1")]);
    t.pax(&[("SCHILY.xattr.user.b", b"2")]);
    let tar = t.file("f", 0o644, b"x").finish();
    assert_eq!(
        members(&tar).unwrap(),
        vec![(b"f".to_vec(), Some(Kind::File), 2)]
    );
}

#[test]
fn the_extension_budget_is_per_member() {
    // Many members, each with its own modest PAX header: far more than the cap in all.
    let mut t = TarWriter::new();
    let value = vec![b'v'; 512 << 10];
    for i in 0..20 {
        let h = Header::new(format!("f{i}"), REG);
        t.entry_with_pax(h, &[("SCHILY.xattr.user.big", &value)], b"");
    }
    assert_eq!(members(&t.finish()).unwrap().len(), 20);
}

#[test]
fn a_global_header_over_the_limit_is_refused() {
    let body = pax_record("comment", &vec![b'c'; (MAX_EXTENSION + 1) as usize]);
    let mut h = Header::new("pax_global_header", b'g');
    h.size = body.len() as u64;
    let tar = TarWriter::new()
        .header(&h)
        .data(&body)
        .file("f", 0o644, b"x")
        .finish();
    let e = reason(members(&tar).unwrap_err());
    assert!(e.contains("global PAX header"), "{e}");
}

#[test]
fn a_gnu_dumpdir_is_a_directory() {
    // GNU tar -G: a directory's data lists the names it held ("Y" kept, "N" not), NUL-separated.
    let listing = b"Yf\0Ng\0\0";
    let mut h = Header::new("d/", b'D');
    h.magic = GNU_MAGIC;
    h.size = listing.len() as u64;
    let tar = TarWriter::new()
        .header(&h)
        .data(listing)
        .file("d/f", 0o644, b"x")
        .finish();
    assert_eq!(
        members(&tar).unwrap(),
        vec![
            (b"d/".to_vec(), Some(Kind::Dir), 0),
            (b"d/f".to_vec(), Some(Kind::File), 0)
        ]
    );
}
