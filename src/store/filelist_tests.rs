use super::*;
use crate::tar::content_sum::SumKind;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let p = t.path();
    fs::create_dir_all(p.join("etc/sub")).unwrap();
    fs::write(p.join("etc/passwd"), b"root:x:0:0\n").unwrap();
    fs::write(p.join("etc/sub/big"), vec![9u8; 300_000]).unwrap();
    fs::hard_link(p.join("etc/passwd"), p.join("etc/passwd-link")).unwrap();
    std::os::unix::fs::symlink("../etc/passwd", p.join("etc/link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    rustix::fs::setxattr(
        p.join("etc/passwd"),
        "user.note",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    t
}

#[test]
fn a_listing_survives_encoding_and_matches_itself() {
    let t = tree();
    let entries = walk(t.path(), &KnownHashes::new(), SumKind::Xxh3).unwrap();
    let names: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "",
            "etc",
            "etc/link",
            "etc/passwd",
            "etc/passwd-link",
            "etc/sub",
            "etc/sub/big",
            "fifo"
        ]
    );
    let passwd = &entries[3];
    assert_eq!(passwd.kind, b'f');
    assert_eq!(
        passwd.sum,
        Some(SumKind::Xxh3.sum_reader(&b"root:x:0:0\n"[..]).unwrap())
    );
    assert_eq!(passwd.xattrs, vec![(b"user.note".to_vec(), b"v".to_vec())]);
    assert_eq!(entries[4].sum, passwd.sum);
    assert_eq!(entries[2].target.as_deref(), Some(&b"../etc/passwd"[..]));

    let out = tempfile::tempdir().unwrap();
    let list = out.path().join("files");
    write_list(&list, &entries).unwrap();
    assert_eq!(read_list(&list).unwrap(), (SumKind::Xxh3, entries.clone()));
    assert!(compare(
        &entries,
        &walk(t.path(), &KnownHashes::new(), SumKind::Xxh3).unwrap()
    )
    .is_empty());
}

#[test]
fn known_hashes_are_used_only_when_the_size_agrees() {
    let t = tree();
    let fake = ContentSum::Xxh3([7u8; 16]);
    let known = KnownHashes::from([
        (b"etc/sub/big".to_vec(), (300_000, fake)),
        (b"etc/passwd".to_vec(), (1, fake)),
    ]);
    let entries = walk(t.path(), &known, SumKind::Xxh3).unwrap();
    let get = |n: &str| entries.iter().find(|e| e.path == n.as_bytes()).unwrap();
    assert_eq!(get("etc/sub/big").sum, Some(fake));
    assert_ne!(get("etc/passwd").sum, Some(fake));
    // A known sum of another algorithm is not taken either.
    let sha = SumKind::Sha256.sum_reader(&[9u8; 300_000][..]).unwrap();
    let known = KnownHashes::from([(b"etc/sub/big".to_vec(), (300_000, sha))]);
    let entries = walk(t.path(), &known, SumKind::Xxh3).unwrap();
    let big = entries.iter().find(|e| e.path == b"etc/sub/big").unwrap();
    assert_eq!(
        big.sum,
        Some(SumKind::Xxh3.sum_reader(&[9u8; 300_000][..]).unwrap())
    );
}

/// A list written by an older lamina (`LFL1`, SHA-256 sums) is still read, and verifies with SHA-256.
#[test]
fn a_version_1_list_is_read_and_checked_with_sha256() {
    let t = tree();
    let entries = walk(t.path(), &KnownHashes::new(), SumKind::Sha256).unwrap();
    let out = tempfile::tempdir().unwrap();
    let list = out.path().join("files");
    let mut raw = b"LFL1".to_vec();
    let mut z = zstd::stream::write::Encoder::new(&mut raw, 3).unwrap();
    z.write_all(&(entries.len() as u64).to_le_bytes()).unwrap();
    for e in &entries {
        let put = |z: &mut zstd::stream::write::Encoder<&mut Vec<u8>>, b: &[u8]| {
            z.write_all(&(b.len() as u32).to_le_bytes()).unwrap();
            z.write_all(b).unwrap();
        };
        put(&mut z, &e.path);
        z.write_all(&[e.kind]).unwrap();
        for v in [e.mode, e.uid, e.gid, e.mtime_nsec] {
            z.write_all(&v.to_le_bytes()).unwrap();
        }
        for v in [e.mtime as u64, e.size, e.rdev] {
            z.write_all(&v.to_le_bytes()).unwrap();
        }
        let sum = e.sum.map(|s| s.as_bytes().to_vec()).unwrap_or(vec![0; 32]);
        z.write_all(&sum).unwrap();
        put(&mut z, e.target.as_deref().unwrap_or(&[]));
        z.write_all(&(e.xattrs.len() as u32).to_le_bytes()).unwrap();
        for (n, v) in &e.xattrs {
            put(&mut z, n);
            put(&mut z, v);
        }
    }
    z.finish().unwrap();
    fs::write(&list, raw).unwrap();

    let (sums, want) = read_list(&list).unwrap();
    assert_eq!((sums, &want), (SumKind::Sha256, &entries));
    fs::write(t.path().join("etc/sub/big"), vec![8u8; 300_000]).unwrap();
    let changes = compare(&want, &walk(t.path(), &KnownHashes::new(), sums).unwrap());
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].what.starts_with("content changed"),
        "{changes:?}"
    );
    // and an XXH3 list is never written with SHA-256 sums in it
    assert!(write_list(&out.path().join("again"), &entries).is_err());
}

#[test]
fn every_kind_of_change_is_named() {
    let t = tree();
    let before = walk(t.path(), &KnownHashes::new(), SumKind::Xxh3).unwrap();
    let p = t.path();
    // same size, other content
    fs::write(p.join("etc/sub/big"), vec![8u8; 300_000]).unwrap();
    fs::set_permissions(p.join("etc/passwd"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(p.join("fifo")).unwrap();
    fs::write(p.join("new"), b"").unwrap();
    fs::remove_file(p.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", p.join("etc/link")).unwrap();
    let changes = compare(
        &before,
        &walk(p, &KnownHashes::new(), SumKind::Xxh3).unwrap(),
    );
    let shown: Vec<String> = changes
        .iter()
        .map(|c| format!("{}: {}", c.shown_path(), c.what))
        .collect();
    let has = |s: &str| shown.iter().any(|l| l.starts_with(s));
    assert!(has("/etc/sub/big: content changed"), "{shown:?}");
    assert!(has("/etc/passwd: mode 0644 -> 0600"), "{shown:?}");
    assert!(has("/fifo: fifo missing"), "{shown:?}");
    assert!(has("/new: file added"), "{shown:?}");
    assert!(has("/etc/link: symlink target changed"), "{shown:?}");
}
