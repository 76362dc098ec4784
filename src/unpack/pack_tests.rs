//! `write_layer_tar`: a tree written as a layer tar unpacks to the same tree; an overlay upper
//! dir becomes an OCI layer with whiteouts and opaque markers in image-spec order.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::support_tests::*;
use super::*;
use crate::tar::reader::TarReader;

fn pack(dir: &Path, kind: TreeKind) -> (Vec<u8>, PackReport) {
    let mut out = Vec::new();
    let report = write_layer_tar(dir, &mut out, kind).unwrap();
    (out, report)
}

/// Member names of an archive, in order.
fn names(tar: &[u8]) -> Vec<String> {
    let mut r = TarReader::tapped(tar, None);
    let mut out = Vec::new();
    while let Some(m) = r.next_member().unwrap() {
        out.push(String::from_utf8_lossy(&m.path).into_owned());
    }
    out
}

fn rich_tree() -> tempfile::TempDir {
    let caps = b"\x01\x00\x00\x02\x0a\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let m = |mode: u32, uid: u64, pax: &[(&str, &[u8])]| Meta {
        mode,
        uid,
        gid: uid + 1,
        mtime: 1_500_000_000 + uid,
        pax: pax
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
    };
    let long = format!("{}/{}", "L".repeat(120), "n".repeat(200));
    let long_bytes = [&b"long-bytes-\xff-"[..], &[b'z'; 120]].concat();
    let mut t = TarBuild::new();
    t.dir("etc", &m(0o755, 0, &[]))
        .file("etc/passwd", b"root:x:0:0", &m(0o644, 0, &[]))
        .dir("tmp", &m(0o1777, 0, &[]))
        .dir("big-ids", &m(0o2750, 3_000_000, &[]))
        .file(
            "big-ids/f",
            b"x",
            &m(
                0o4755,
                3_000_000,
                &[("SCHILY.xattr.security.capability", caps)],
            ),
        )
        .file(
            "xattrs",
            b"x",
            &m(
                0o600,
                5,
                &[
                    ("SCHILY.xattr.user.a", b"1\n2"),
                    ("SCHILY.xattr.trusted.b", b""),
                ],
            ),
        )
        .file(&long, b"long", &m(0o644, 0, &[]))
        .symlink("link-long", &"t".repeat(150))
        .symlink("link", "etc/passwd")
        .hardlink("hard", "etc/passwd")
        .hardlink("etc/hard2", "etc/passwd")
        .member(
            b'0',
            b"bytes-\xff\xfe",
            b"",
            b"b",
            &m(0o644, 0, &[]),
            (0, 0),
        )
        .member(b'0', &long_bytes, b"", b"lb", &m(0o644, 0, &[]), (0, 0))
        .member(b'3', b"null", b"", b"", &m(0o666, 0, &[]), (1, 3))
        .member(b'4', b"loop", b"", b"", &m(0o660, 0, &[]), (7, 0))
        .member(b'6', b"fifo", b"", b"", &m(0o640, 0, &[]), (0, 0))
        .file("empty", b"", &m(0o000, 0, &[]))
        .file(
            "old",
            b"o",
            &Meta {
                mtime: 0,
                ..Meta::default()
            },
        );
    let dir = tempfile::tempdir().unwrap();
    let tar = t.finish();
    unpack(&tar, &tar, dir.path()).unwrap();
    dir
}

#[test]
fn rootfs_round_trip() {
    let src = rich_tree();
    // A socket has no tar type: it is skipped.
    let _sock = std::os::unix::net::UnixListener::bind(src.path().join("sock")).unwrap();
    let (tar, report) = pack(src.path(), TreeKind::Rootfs);
    fs::remove_file(src.path().join("sock")).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let r = unpack(&tar, &tar, dst.path()).unwrap();
    assert_eq!(describe(src.path()), describe(dst.path()));
    assert_eq!(report.entries, r.entries);
    assert!(r.implied_dirs.is_empty() && r.lower_hardlinks.is_empty());
    let order = names(&tar);
    // Depth first, names in byte order, directories with a trailing slash, no root entry.
    let want_prefix = [
        "L".repeat(120) + "/",
        format!("{}/{}", "L".repeat(120), "n".repeat(200)),
    ];
    assert_eq!(&order[..2], &want_prefix);
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
    assert!(pos("etc/") < pos("etc/hard2") && pos("etc/hard2") < pos("etc/passwd"));
    assert!(pos("etc/passwd") < pos("fifo") && pos("fifo") < pos("hard"));
    // GNU tar reads it too.
    let mut child = std::process::Command::new("tar")
        .args(["-tf", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        order.len()
    );
    // Written twice, the tree gives the same bytes (a stable diffID).
    assert_eq!(pack(src.path(), TreeKind::Rootfs).0, tar);
}

#[test]
fn overlay_upper_becomes_an_oci_layer() {
    let up = tempfile::tempdir().unwrap();
    let u = up.path();
    let mknod = |p: &Path| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap()
    };
    fs::write(u.join("file"), b"data").unwrap();
    set_xattr(&u.join("file"), "trusted.overlay.origin", b"\x00\xfb");
    set_xattr(&u.join("file"), "user.kept", b"k");
    mknod(&u.join("gone"));
    // overlayfs shares one whiteout inode among names
    fs::hard_link(u.join("gone"), u.join("gone2")).unwrap();
    for (d, x) in [
        ("d", "trusted.overlay.opaque"),
        ("e", "user.overlay.opaque"),
    ] {
        fs::create_dir(u.join(d)).unwrap();
        set_xattr(&u.join(d), x, b"y");
        fs::write(u.join(d).join("c"), b"c").unwrap();
    }
    fs::create_dir(u.join("f")).unwrap();
    set_xattr(&u.join("f"), "trusted.overlay.impure", b"y");
    let (tar, report) = pack(u, TreeKind::OverlayUpper);
    assert_eq!(
        names(&tar),
        // Sorted by the names in the upper dir (as docker's walk does), then renamed.
        [
            "d/",
            "d/.wh..wh..opq",
            "d/c",
            // A container's own `user.overlay.opaque` means nothing to the mount (no
            // `userxattr`): no opaque marker, and the xattr is not carried.
            "e/",
            "e/c",
            "f/",
            "file",
            ".wh.gone",
            ".wh.gone2"
        ]
    );
    assert_eq!(report.entries, 9);
    let dst = tempfile::tempdir().unwrap();
    unpack(&tar, &tar, dst.path()).unwrap();
    let d = dst.path();
    for w in ["gone", "gone2"] {
        let m = lmeta(&d.join(w));
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()) && m.rdev() == 0);
    }
    assert_eq!(xattr(&d.join("d"), "trusted.overlay.opaque").unwrap(), b"y");
    assert_eq!(xattr(&d.join("e"), "trusted.overlay.opaque"), None);
    assert_eq!(xattr(&d.join("e"), "user.overlay.opaque"), None);
    assert_eq!(xattr(&d.join("f"), "trusted.overlay.impure"), None);
    assert_eq!(xattr(&d.join("file"), "trusted.overlay.origin"), None);
    assert_eq!(xattr(&d.join("file"), "user.kept").unwrap(), b"k");
    // As a plain rootfs the same tree keeps its devices, and overlay xattrs are still dropped.
    let (raw, _) = pack(u, TreeKind::Rootfs);
    assert!(names(&raw).contains(&"gone".to_string()));
    let dst = tempfile::tempdir().unwrap();
    unpack(&raw, &raw, dst.path()).unwrap();
    assert_eq!(xattr(&dst.path().join("d"), "trusted.overlay.opaque"), None);
}

#[test]
fn overlay_redirects_and_metacopy_are_refused() {
    for x in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
        let up = tempfile::tempdir().unwrap();
        fs::create_dir(up.path().join("moved")).unwrap();
        set_xattr(&up.path().join("moved"), x, b"/old");
        let e = write_layer_tar(up.path(), Vec::new(), TreeKind::OverlayUpper).unwrap_err();
        assert!(e.to_string().contains(x), "{e}");
    }
}

/// A layer directory is an overlay upper dir: packing it as one and unpacking the result gives
/// the same directory back (whiteouts, opaque dirs, hardlinks, metadata).
#[test]
fn layer_dir_round_trip() {
    let mut t = TarBuild::new();
    t.dir("etc", &Meta::default())
        .file(
            "etc/f",
            b"f",
            &Meta {
                mode: 0o4711,
                uid: 3,
                gid: 4,
                mtime: 7,
                pax: vec![],
            },
        )
        .hardlink("etc/g", "etc/f")
        .empty("etc/.wh.motd")
        .dir("opq", &Meta::default())
        .empty("opq/.wh..wh..opq")
        .empty("opq/new")
        .empty(".wh.gone")
        .symlink("s", "/etc/f");
    let tar = t.finish();
    let a = tempfile::tempdir().unwrap();
    unpack(&tar, &tar, a.path()).unwrap();
    let (packed, _) = pack(a.path(), TreeKind::OverlayUpper);
    let b = tempfile::tempdir().unwrap();
    unpack(&packed, &packed, b.path()).unwrap();
    assert_eq!(describe(a.path()), describe(b.path()));
    assert!(names(&packed).contains(&"opq/.wh..wh..opq".to_string()));
}
