//! What a layer unpacks to: entry types, metadata, names, xattrs, whiteouts, compression, and
//! the fix-up against lower layers. Run as root (devices, chown, trusted.* xattrs).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::support_tests::*;
use super::*;
use crate::layerfs::OPAQUE_XATTR;

fn meta(mode: u32, uid: u64, gid: u64) -> Meta {
    Meta {
        mode,
        uid,
        gid,
        ..Meta::default()
    }
}

fn with_pax(mut m: Meta, pax: &[(&str, &[u8])]) -> Meta {
    m.pax = pax
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    m
}

#[test]
fn every_entry_type_with_metadata() {
    let mut t = TarBuild::new();
    t.dir("d", &meta(0o750, 1000, 1001))
        .file("d/f", b"hello", &meta(0o4755, 1000, 1000))
        .file(
            "d/g",
            b"x",
            &with_pax(meta(0o2711, 0, 50), &[("mtime", b"1700000000.123456789")]),
        )
        .dir("sticky", &meta(0o1777, 0, 0))
        .symlink("d/ln", "../etc/os-release")
        .hardlink("d/hl", "d/f")
        .member(b'3', b"null", b"", b"", &meta(0o666, 0, 0), (1, 3))
        .member(b'4', b"loop0", b"", b"", &meta(0o660, 0, 6), (7, 0))
        .member(b'6', b"fifo", b"", b"", &meta(0o600, 7, 7), (0, 0))
        .dir("ro", &meta(0o555, 0, 0))
        .file("ro/inside", b"ro", &meta(0o000, 0, 0));
    let tar = t.finish();
    let (dir, r) = unpack_tar(&tar);
    let r = r.unwrap();
    let p = dir.path();
    assert_eq!(r.entries, 11);
    assert_eq!(r.files_size, 5 + 1 + 2);
    assert!(!r.needs_parents());
    assert_eq!(fs::read(p.join("d/f")).unwrap(), b"hello");
    let cases: &[(&str, u32, u32, u32)] = &[
        ("d", 0o750, 1000, 1001),
        ("d/f", 0o4755, 1000, 1000),
        ("d/g", 0o2711, 0, 50),
        ("sticky", 0o1777, 0, 0),
        ("null", 0o666, 0, 0),
        ("loop0", 0o660, 0, 6),
        ("fifo", 0o600, 7, 7),
        ("ro", 0o555, 0, 0),
        ("ro/inside", 0o000, 0, 0),
    ];
    for &(name, mode, uid, gid) in cases {
        let m = lmeta(&p.join(name));
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (mode, uid, gid),
            "{name}"
        );
    }
    assert_eq!(
        fs::read_link(p.join("d/ln")).unwrap(),
        Path::new("../etc/os-release")
    );
    let (f, hl) = (lmeta(&p.join("d/f")), lmeta(&p.join("d/hl")));
    assert_eq!((f.ino(), f.nlink()), (hl.ino(), 2));
    let null = lmeta(&p.join("null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert!(lmeta(&p.join("loop0")).file_type().is_block_device());
    assert_eq!(lmeta(&p.join("loop0")).rdev(), rustix::fs::makedev(7, 0));
    assert!(lmeta(&p.join("fifo")).file_type().is_fifo());
    let g = lmeta(&p.join("d/g"));
    assert_eq!((g.mtime(), g.mtime_nsec()), (1_700_000_000, 123_456_789));
    // Directory mtimes are applied after their children were written.
    assert_eq!(lmeta(&p.join("d")).mtime(), 1_600_000_000);
    assert_eq!(lmeta(&p.join("ro")).mtime(), 1_600_000_000);
    assert_eq!(lmeta(&p.join("d/ln")).mtime(), 1_600_000_000);
    assert_eq!(r.tar_size, tar.len() as u64);
    assert_eq!(r.diff_id, crate::digest::Digest::of_bytes(&tar));
}

#[test]
fn long_and_odd_names() {
    let long = format!("{}/{}", "a".repeat(150), "b".repeat(250));
    let deep: String = (0..9)
        .map(|i| format!("{i}{}/", "x".repeat(69)))
        .collect::<String>()
        + "leaf";
    let target_long = format!("{}/{}", "a".repeat(150), "t".repeat(200));
    let mut t = TarBuild::new();
    t.file(&long, b"pax", &Meta::default())
        .file(&deep, b"deep", &Meta::default())
        .symlink("longlink", &target_long)
        .gnu_long(b'0', "g".repeat(250).as_bytes(), b"", b"gnu")
        .gnu_long(
            b'1',
            "h".repeat(200).as_bytes(),
            "g".repeat(250).as_bytes(),
            b"",
        )
        .member(
            b'0',
            b"non-utf8-\xff\xfe-caf\xe9.txt",
            b"",
            b"bytes",
            &Meta::default(),
            (0, 0),
        )
        .member(
            b'0',
            b"new\nline name",
            b"",
            b"nl",
            &Meta::default(),
            (0, 0),
        )
        .member(
            b'0',
            b"./dot/./slash//x",
            b"",
            b"dot",
            &Meta::default(),
            (0, 0),
        )
        .file(
            &format!("{}/pax-\n-newline", "p".repeat(120)),
            b"paxnl",
            &Meta::default(),
        );
    let tar = t.finish();
    let (dir, r) = unpack_tar(&tar);
    let r = r.unwrap();
    let p = dir.path();
    assert_eq!(fs::read(p.join(&long)).unwrap(), b"pax");
    assert_eq!(fs::read(p.join(&deep)).unwrap(), b"deep");
    assert_eq!(
        fs::read_link(p.join("longlink")).unwrap(),
        PathBuf::from(&target_long)
    );
    assert_eq!(fs::read(p.join("g".repeat(250))).unwrap(), b"gnu");
    assert_eq!(
        lmeta(&p.join("h".repeat(200))).ino(),
        lmeta(&p.join("g".repeat(250))).ino()
    );
    let odd = p.join(std::ffi::OsStr::from_bytes(
        b"non-utf8-\xff\xfe-caf\xe9.txt",
    ));
    assert_eq!(fs::read(odd).unwrap(), b"bytes");
    assert_eq!(fs::read(p.join("new\nline name")).unwrap(), b"nl");
    assert_eq!(fs::read(p.join("dot/slash/x")).unwrap(), b"dot");
    assert_eq!(
        fs::read(p.join("p".repeat(120)).join("pax-\n-newline")).unwrap(),
        b"paxnl"
    );
    // Parents the archive did not list are implied, and reported.
    let implied: Vec<&str> = r.implied_dirs.iter().map(|p| p.to_str().unwrap()).collect();
    assert!(
        implied.contains(&"dot") && implied.contains(&"dot/slash"),
        "{implied:?}"
    );
    assert_eq!(mode_of(&p.join("dot")), 0o755);
}

#[test]
fn large_ids_pax_and_base256() {
    let mut t = TarBuild::new();
    t.file(
        "pax",
        b"",
        &with_pax(Meta::default(), &[("uid", b"3000000"), ("gid", b"3000001")]),
    )
    .file("b256", b"", &meta(0o644, 3_000_000, 4_000_000));
    let (dir, r) = unpack_tar(&t.finish());
    r.unwrap();
    let m = lmeta(&dir.path().join("pax"));
    assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
    let m = lmeta(&dir.path().join("b256"));
    assert_eq!((m.uid(), m.gid()), (3_000_000, 4_000_000));
}

#[test]
fn xattrs_kept_and_dropped() {
    // cap_dac_override+cap_fowner = 0x0a: the binary value holds a newline byte.
    let cap = b"\x01\x00\x00\x02\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let x = with_pax(
        meta(0o755, 1000, 1000),
        &[
            ("SCHILY.xattr.user.comment", b"hi"),
            ("SCHILY.xattr.user.binary", b"\x00\n\xff"),
            ("SCHILY.xattr.security.capability", cap),
            (
                "SCHILY.xattr.security.selinux",
                b"system_u:object_r:bin_t:s0",
            ),
            ("SCHILY.xattr.trusted.keep", b"t"),
            ("LIBARCHIVE.xattr.user.la%3Dx", b"aGVsbG8="),
        ],
    );
    let mut t = TarBuild::new();
    let sym_x = [
        ("SCHILY.xattr.trusted.sym", &b"1"[..]),
        ("SCHILY.xattr.user.refused-on-symlinks", b"2"),
    ];
    let fifo_x = [("SCHILY.xattr.trusted.fifo", &b"3"[..])];
    t.file("f", b"data", &x)
        .dir(
            "d",
            &with_pax(Meta::default(), &[("SCHILY.xattr.user.dir-note", b"n")]),
        )
        .member(
            b'2',
            b"sym",
            b"/nowhere",
            b"",
            &with_pax(Meta::default(), &sym_x),
            (0, 0),
        )
        .member(
            b'6',
            b"fifo",
            b"",
            b"",
            &with_pax(Meta::default(), &fifo_x),
            (0, 0),
        );
    let (dir, r) = unpack_tar(&t.finish());
    r.unwrap();
    let f = dir.path().join("f");
    assert_eq!(xattr(&f, "user.comment").unwrap(), b"hi");
    assert_eq!(xattr(&f, "user.binary").unwrap(), b"\x00\n\xff");
    // Set after chown, which would clear it.
    assert_eq!(xattr(&f, "security.capability").unwrap(), cap);
    assert_eq!(xattr(&f, "trusted.keep").unwrap(), b"t");
    assert_eq!(xattr(&f, "user.la=x").unwrap(), b"hello");
    assert_eq!(xattr(&f, "security.selinux"), None);
    assert_eq!(xattr(&dir.path().join("d"), "user.dir-note").unwrap(), b"n");
    // Symlinks and fifos get theirs without being followed or opened.
    assert_eq!(xattr(&dir.path().join("sym"), "trusted.sym").unwrap(), b"1");
    assert_eq!(
        xattr(&dir.path().join("sym"), "user.refused-on-symlinks"),
        None
    );
    assert_eq!(
        xattr(&dir.path().join("fifo"), "trusted.fifo").unwrap(),
        b"3"
    );
}

#[test]
fn whiteouts_and_opaque_dirs() {
    let (name, other) = (OPAQUE_XATTR, "user.overlay.opaque");
    let mut t = TarBuild::new();
    t.dir("etc", &Meta::default())
        .empty("etc/.wh.motd")
        .dir("opq-first", &Meta::default())
        .empty("opq-first/.wh..wh..opq")
        .empty("opq-first/new")
        .dir("opq-last", &Meta::default())
        .empty("opq-last/new")
        .empty("opq-unlisted/.wh..wh..opq")
        .empty(".wh..wh.plnk/123.456")
        .empty("etc/.wh..wh.aufs")
        .empty("same/file")
        .empty("same/.wh.file")
        .empty("opq-last/.wh..wh..opq");
    let tar = t.finish();
    let dir = tempfile::tempdir().unwrap();
    let r = unpack_opts(&tar, &tar, dir.path(), &UnpackOptions::default()).unwrap();
    let p = dir.path();
    let motd = lmeta(&p.join("etc/motd"));
    assert!(motd.file_type().is_char_device() && motd.rdev() == 0);
    assert!(!p.join("etc/.wh.motd").exists());
    for d in ["opq-first", "opq-last", "opq-unlisted"] {
        assert_eq!(xattr(&p.join(d), name).as_deref(), Some(&b"y"[..]), "{d}");
        assert_eq!(xattr(&p.join(d), other), None, "{d}");
    }
    assert!(p.join("opq-first/new").exists() && p.join("opq-last/new").exists());
    assert!(!p.join(".wh..wh.plnk").exists() && !p.join("etc/.wh..wh.aufs").exists());
    // A whiteout after a member of the same layer deletes it, as applying in order does.
    assert!(lmeta(&p.join("same/file")).file_type().is_char_device());
    assert_eq!(r.entries, 13);
    let implied: Vec<_> = r.implied_dirs.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(implied, ["opq-unlisted", "same"]);
}

#[test]
fn member_after_its_whiteout_is_new() {
    let mut t = TarBuild::new();
    t.empty(".wh.dir")
        .dir("dir", &Meta::default())
        .empty("dir/x")
        .empty(".wh.parent")
        .empty("parent/child")
        .empty(".wh.file")
        .file("file", b"new", &Meta::default());
    let (dir, r) = unpack_tar(&t.finish());
    let r = r.unwrap();
    let p = dir.path();
    // The lower `dir` was deleted, so the new one must not show its children.
    assert_eq!(xattr(&p.join("dir"), OPAQUE_XATTR).unwrap(), b"y");
    assert_eq!(xattr(&p.join("parent"), OPAQUE_XATTR).unwrap(), b"y");
    assert_eq!(fs::read(p.join("file")).unwrap(), b"new");
    assert!(r.implied_dirs.is_empty(), "{:?}", r.implied_dirs);
}

#[test]
fn later_members_replace_earlier_ones() {
    let mut t = TarBuild::new();
    t.dir("a", &meta(0o700, 1, 1))
        .empty("a/x")
        .file("a", b"file now", &Meta::default())
        .file("b", b"file", &Meta::default())
        .dir("b", &meta(0o711, 0, 0))
        .dir(
            "c",
            &with_pax(meta(0o700, 0, 0), &[("SCHILY.xattr.user.one", b"1")]),
        )
        .empty("c/kept")
        .dir(
            "c",
            &with_pax(meta(0o755, 5, 5), &[("SCHILY.xattr.user.two", b"2")]),
        )
        .symlink("s", "first")
        .symlink("s", "second")
        .file("h", b"old", &Meta::default())
        .hardlink("h2", "h")
        .file("h", b"new", &Meta::default());
    let (dir, r) = unpack_tar(&t.finish());
    r.unwrap();
    let p = dir.path();
    assert_eq!(fs::read(p.join("a")).unwrap(), b"file now");
    assert!(lmeta(&p.join("b")).is_dir() && mode_of(&p.join("b")) == 0o711);
    let c = lmeta(&p.join("c"));
    assert_eq!((c.mode() & 0o7777, c.uid()), (0o755, 5));
    assert!(p.join("c/kept").exists());
    assert_eq!(xattr(&p.join("c"), "user.one").unwrap(), b"1");
    assert_eq!(xattr(&p.join("c"), "user.two").unwrap(), b"2");
    assert_eq!(fs::read_link(p.join("s")).unwrap(), Path::new("second"));
    assert_eq!(fs::read(p.join("h2")).unwrap(), b"old");
    assert_eq!(fs::read(p.join("h")).unwrap(), b"new");
}

#[test]
fn compressions() {
    let mut t = TarBuild::new();
    t.file("big", &vec![7u8; 3 << 20], &Meta::default())
        .file("small", b"s", &Meta::default());
    let tar = t.finish();
    let (a, b) = tar.split_at(5000);
    let multi_gzip = [gzip(a), gzip(b)].concat();
    let skippable = [
        &[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0][..],
        b"skip",
        &zstd(&tar),
    ]
    .concat();
    let multi_zstd = [zstd(a), zstd(b)].concat();
    for (what, blob) in [
        ("plain", tar.clone()),
        ("gzip", gzip(&tar)),
        ("multi-member gzip", multi_gzip),
        ("zstd", zstd(&tar)),
        ("zstd with a skippable frame", skippable),
        ("multi-frame zstd", multi_zstd),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(&blob, &tar, dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            fs::read(dir.path().join("big")).unwrap().len(),
            3 << 20,
            "{what}"
        );
        assert_eq!(fs::read(dir.path().join("small")).unwrap(), b"s", "{what}");
        assert_eq!(r.compressed_size, blob.len() as u64, "{what}");
        assert_eq!(r.tar_size, tar.len() as u64, "{what}");
    }
}

#[test]
fn trailing_data_after_the_end_marker_is_hashed() {
    let mut tar = TarBuild::new().file("f", b"x", &Meta::default()).finish();
    tar.extend(vec![0u8; 8192]);
    let blob = gzip(&tar);
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&blob, &tar, dir.path()).unwrap();
    assert_eq!(r.tar_size, tar.len() as u64);
}

#[test]
fn gnu_sparse_files() {
    let src = tempfile::tempdir().unwrap();
    let f = fs::File::create(src.path().join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"tail", 10 << 20).unwrap();
    let out = std::process::Command::new("tar")
        .args(["--sparse", "--format=gnu", "-cf", "-", "-C"])
        .arg(src.path())
        .arg("sparse")
        .output()
        .unwrap();
    assert!(out.status.success());
    let (dir, r) = unpack_tar(&out.stdout);
    r.unwrap();
    let got = fs::read(dir.path().join("sparse")).unwrap();
    assert_eq!(got.len(), (10 << 20) + 4);
    assert_eq!((&got[..4], &got[10 << 20..]), (&b"head"[..], &b"tail"[..]));
    assert!(got[4..10 << 20].iter().all(|&b| b == 0));
    assert!(
        lmeta(&dir.path().join("sparse")).blocks() < 1024,
        "holes stay holes"
    );
}

#[test]
fn replaced_directories_leave_no_stale_parent_fd() {
    // `a` is cached as a parent, then replaced by a file and by a new directory: `a/y` must land
    // in the new directory, not in the unlinked old one.
    let mut t = TarBuild::new();
    t.dir("a", &Meta::default())
        .empty("a/x")
        .empty("a")
        .dir("a", &Meta::default())
        .empty("a/y")
        .dir("b", &Meta::default())
        .empty("b/x")
        .empty(".wh.b")
        .empty("b/y");
    let (dir, r) = unpack_tar(&t.finish());
    r.unwrap();
    let p = dir.path();
    assert!(p.join("a/y").exists() && !p.join("a/x").exists());
    assert!(p.join("b/y").exists() && !p.join("b/x").exists());
    assert_eq!(xattr(&p.join("b"), OPAQUE_XATTR).unwrap(), b"y");
}

#[test]
fn a_tar_is_a_tar_whatever_its_first_name() {
    let tar = TarBuild::new()
        .file("BZh91AY", b"x", &Meta::default())
        .finish();
    let (dir, r) = unpack_tar(&tar);
    r.unwrap();
    assert_eq!(fs::read(dir.path().join("BZh91AY")).unwrap(), b"x");
}
