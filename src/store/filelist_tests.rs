use super::*;
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
    let entries = walk(t.path(), &KnownHashes::new()).unwrap();
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
        passwd.sha256,
        Some(hash_reader(&b"root:x:0:0\n"[..]).unwrap())
    );
    assert_eq!(passwd.xattrs, vec![(b"user.note".to_vec(), b"v".to_vec())]);
    assert_eq!(entries[4].sha256, passwd.sha256);
    assert_eq!(entries[2].target.as_deref(), Some(&b"../etc/passwd"[..]));

    let out = tempfile::tempdir().unwrap();
    let list = out.path().join("files");
    write_list(&list, &entries).unwrap();
    assert_eq!(read_list(&list).unwrap(), entries);
    assert!(compare(&entries, &walk(t.path(), &KnownHashes::new()).unwrap()).is_empty());
}

#[test]
fn known_hashes_are_used_only_when_the_size_agrees() {
    let t = tree();
    let fake = [7u8; 32];
    let known = KnownHashes::from([
        (b"etc/sub/big".to_vec(), (300_000, fake)),
        (b"etc/passwd".to_vec(), (1, fake)),
    ]);
    let entries = walk(t.path(), &known).unwrap();
    let get = |n: &str| entries.iter().find(|e| e.path == n.as_bytes()).unwrap();
    assert_eq!(get("etc/sub/big").sha256, Some(fake));
    assert_ne!(get("etc/passwd").sha256, Some(fake));
}

#[test]
fn every_kind_of_change_is_named() {
    let t = tree();
    let before = walk(t.path(), &KnownHashes::new()).unwrap();
    let p = t.path();
    // same size, other content
    fs::write(p.join("etc/sub/big"), vec![8u8; 300_000]).unwrap();
    fs::set_permissions(p.join("etc/passwd"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(p.join("fifo")).unwrap();
    fs::write(p.join("new"), b"").unwrap();
    fs::remove_file(p.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", p.join("etc/link")).unwrap();
    let changes = compare(&before, &walk(p, &KnownHashes::new()).unwrap());
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
