//! `fix_up_layer`: implied directories take the lower layers' metadata, lower hardlinks get
//! their target copied up; whiteouts and opaque directories in between are honoured.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::support_tests::*;
use super::*;
use crate::layerfs::OPAQUE_XATTR;

fn layer(root: &Path, name: &str, t: &TarBuild) -> (PathBuf, LayerReport) {
    let dest = root.join(name);
    fs::create_dir(&dest).unwrap();
    let tar = t.finish();
    let r = unpack(&tar, &tar, &dest).unwrap();
    (dest, r)
}

fn tmp_meta() -> Meta {
    Meta {
        mode: 0o1777,
        uid: 0,
        gid: 0,
        mtime: 1_234_567_890,
        pax: vec![("SCHILY.xattr.user.note".into(), b"tmp".to_vec())],
    }
}

#[test]
fn implied_dirs_take_lower_metadata() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut base = TarBuild::new();
    base.dir("tmp", &tmp_meta())
        .dir(
            "usr",
            &Meta {
                mode: 0o750,
                uid: 5,
                gid: 6,
                ..Meta::default()
            },
        )
        .dir(
            "usr/lib",
            &Meta {
                mode: 0o700,
                ..Meta::default()
            },
        )
        .dir("gone", &tmp_meta())
        .dir("opq", &tmp_meta())
        .dir("opq/sub", &tmp_meta());
    let (l0, _) = layer(w, "l0", &base);
    // A middle layer whites out `gone`, makes `opq` opaque, and sets an overlay xattr itself
    // through the opaque marker (which must not be copied onto the implied dir).
    let mut mid = TarBuild::new();
    mid.empty(".wh.gone").empty("opq/.wh..wh..opq");
    let (l1, r1) = layer(w, "l1", &mid);
    assert_eq!(r1.implied_dirs, [PathBuf::from("opq")]);
    fix_up_layer(
        &l1,
        &r1,
        std::slice::from_ref(&l0),
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(mode_of(&l1.join("opq")), 0o1777, "opq takes l0's metadata");
    let mut top = TarBuild::new();
    top.empty("tmp/file")
        .empty("usr/lib/x/y")
        .empty("gone/z")
        .empty("opq/sub/w")
        .empty("opq/own/v");
    let (l2, r2) = layer(w, "l2", &top);
    assert!(r2.needs_parents());
    let lowers = [l1.clone(), l0.clone()];
    fix_up_layer(&l2, &r2, &lowers, &UnpackOptions::default()).unwrap();
    let tmp = lmeta(&l2.join("tmp"));
    assert_eq!((tmp.mode() & 0o7777, tmp.mtime()), (0o1777, 1_234_567_890));
    assert_eq!(xattr(&l2.join("tmp"), "user.note").unwrap(), b"tmp");
    let usr = lmeta(&l2.join("usr"));
    assert_eq!((usr.mode() & 0o7777, usr.uid(), usr.gid()), (0o750, 5, 6));
    assert_eq!(mode_of(&l2.join("usr/lib")), 0o700);
    assert_eq!(mode_of(&l2.join("usr/lib/x")), 0o755, "no lower has it");
    assert_eq!(mode_of(&l2.join("gone")), 0o755, "whited out in l1");
    assert_eq!(mode_of(&l2.join("opq")), 0o1777, "l1 has it (fixed up)");
    assert_eq!(xattr(&l2.join("opq"), OPAQUE_XATTR), None);
    assert_eq!(xattr(&l2.join("opq"), "user.note").unwrap(), b"tmp");
    assert_eq!(
        mode_of(&l2.join("opq/sub")),
        0o755,
        "hidden by l1's opaque opq"
    );
    assert_eq!(mode_of(&l2.join("opq/own")), 0o755);
}

#[test]
fn this_layers_opaque_dir_hides_lower_children() {
    let work = tempfile::tempdir().unwrap();
    let mut base = TarBuild::new();
    base.dir("a", &tmp_meta()).dir("a/b", &tmp_meta());
    let (l0, _) = layer(work.path(), "l0", &base);
    let mut top = TarBuild::new();
    top.empty("a/.wh..wh..opq").empty("a/b/c");
    let (l1, r1) = layer(work.path(), "l1", &top);
    fix_up_layer(&l1, &r1, &[l0], &UnpackOptions::default()).unwrap();
    assert_eq!(
        mode_of(&l1.join("a")),
        0o1777,
        "the opaque dir itself keeps its metadata"
    );
    assert_eq!(
        mode_of(&l1.join("a/b")),
        0o755,
        "its lower children are hidden"
    );
    assert_eq!(xattr(&l1.join("a"), OPAQUE_XATTR).unwrap(), b"y");
}

#[test]
fn lower_hardlinks_are_copied_up() {
    let work = tempfile::tempdir().unwrap();
    let mut base = TarBuild::new();
    let file_meta = Meta {
        mode: 0o4755,
        uid: 7,
        gid: 8,
        mtime: 1_111_111_111,
        pax: vec![("SCHILY.xattr.user.x".into(), b"v".to_vec())],
    };
    base.dir(
        "usr",
        &Meta {
            mode: 0o755,
            ..Meta::default()
        },
    )
    .dir(
        "usr/bin",
        &Meta {
            mode: 0o711,
            ..Meta::default()
        },
    )
    .file("usr/bin/perl", b"#!perl", &file_meta)
    .file("usr/bin/other", b"o", &Meta::default());
    let (l0, _) = layer(work.path(), "l0", &base);
    let mut top = TarBuild::new();
    top.dir(
        "usr",
        &Meta {
            mode: 0o755,
            mtime: 42,
            ..Meta::default()
        },
    )
    .dir(
        "links",
        &Meta {
            mode: 0o755,
            mtime: 43,
            ..Meta::default()
        },
    )
    .hardlink("links/perl5", "usr/bin/perl")
    .hardlink("links/perl-again", "links/perl5")
    .hardlink("links/other", "usr/bin/other")
    .file("usr/bin/other", b"replaced", &Meta::default());
    let (l1, r1) = layer(work.path(), "l1", &top);
    let got: Vec<_> = r1
        .lower_hardlinks
        .iter()
        .map(|(l, t)| (l.to_str().unwrap(), t.to_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("links/other", "usr/bin/other"),
            ("links/perl-again", "usr/bin/perl"),
            ("links/perl5", "usr/bin/perl")
        ]
    );
    assert_eq!(r1.implied_dirs, [PathBuf::from("usr/bin")]);
    fix_up_layer(&l1, &r1, &[l0], &UnpackOptions::default()).unwrap();
    let perl = lmeta(&l1.join("usr/bin/perl"));
    assert_eq!(fs::read(l1.join("usr/bin/perl")).unwrap(), b"#!perl");
    assert_eq!(
        (perl.mode() & 0o7777, perl.uid(), perl.gid(), perl.mtime()),
        (0o4755, 7, 8, 1_111_111_111)
    );
    assert_eq!(xattr(&l1.join("usr/bin/perl"), "user.x").unwrap(), b"v");
    assert_eq!(perl.nlink(), 3);
    assert_eq!(lmeta(&l1.join("links/perl5")).ino(), perl.ino());
    assert_eq!(lmeta(&l1.join("links/perl-again")).ino(), perl.ino());
    // The layer's own usr/bin/other came after the link: the link keeps the lower content.
    assert_eq!(fs::read(l1.join("links/other")).unwrap(), b"o");
    assert_eq!(fs::read(l1.join("usr/bin/other")).unwrap(), b"replaced");
    assert_eq!(mode_of(&l1.join("usr/bin")), 0o711);
    assert_eq!(
        lmeta(&l1.join("links")).mtime(),
        43,
        "listed dirs keep their mtime"
    );
    assert_eq!(lmeta(&l1.join("usr")).mtime(), 42);
}

#[test]
fn lower_hardlink_to_nothing_is_an_error() {
    let work = tempfile::tempdir().unwrap();
    let (l0, _) = layer(work.path(), "l0", TarBuild::new().empty("x"));
    let (l1, r1) = layer(work.path(), "l1", TarBuild::new().hardlink("l", "missing"));
    let e = fix_up_layer(&l1, &r1, &[l0], &UnpackOptions::default()).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn lower_symlinks_are_not_followed() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"s").unwrap();
    let mut base = TarBuild::new();
    base.symlink("lnk", outside.to_str().unwrap())
        .symlink("dir", "/");
    let (l0, _) = layer(work.path(), "l0", &base);
    let mut top = TarBuild::new();
    top.hardlink("h", "lnk/secret").empty("dir/tmp/x");
    let (l1, r1) = layer(work.path(), "l1", &top);
    assert!(fix_up_layer(
        &l1,
        &r1,
        std::slice::from_ref(&l0),
        &UnpackOptions::default()
    )
    .is_err());
    // Without the hardlink, `dir` in the lower is a symlink that the layer writes beneath: refused,
    // and nothing outside was touched.
    let (l2, r2) = layer(work.path(), "l2", TarBuild::new().empty("dir/tmp/x"));
    let err = fix_up_layer(&l2, &r2, &[l0], &UnpackOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("symlink in a lower layer"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn report_paths_must_stay_inside() {
    let work = tempfile::tempdir().unwrap();
    let (l0, r0) = layer(work.path(), "l0", TarBuild::new().empty("x"));
    for bad in ["../x", "/abs", "a/./b", ""] {
        let mut r = r0.clone();
        r.implied_dirs = vec![PathBuf::from(bad)];
        assert!(
            fix_up_layer(&l0, &r, &[], &UnpackOptions::default()).is_err(),
            "{bad}"
        );
        let mut r = r0.clone();
        r.lower_hardlinks = vec![(PathBuf::from("l"), PathBuf::from(bad))];
        assert!(
            fix_up_layer(&l0, &r, &[], &UnpackOptions::default()).is_err(),
            "{bad}"
        );
    }
}

/// The copied-up file of a lower hardlink keeps its holes: a terabyte sparse file in a lower
/// layer costs a few blocks, not a terabyte, in the layer that links to it.
#[test]
fn lower_hardlinks_copy_sparse_files_hole_for_hole() {
    use std::os::unix::fs::FileExt;
    let work = tempfile::tempdir().unwrap();
    let (l0, _) = layer(work.path(), "l0", TarBuild::new().empty("big"));
    let f = fs::OpenOptions::new()
        .write(true)
        .open(l0.join("big"))
        .unwrap();
    f.write_all_at(b"data", 1 << 39).unwrap();
    f.set_len(1 << 40).unwrap();
    drop(f);
    let (l1, r1) = layer(work.path(), "l1", TarBuild::new().hardlink("l", "big"));
    fix_up_layer(&l1, &r1, &[l0], &UnpackOptions::default()).unwrap();
    let md = lmeta(&l1.join("l"));
    assert_eq!(md.len(), 1 << 40);
    assert!(md.blocks() < 1024, "{} blocks", md.blocks());
    let mut b = [0u8; 4];
    fs::File::open(l1.join("l"))
        .unwrap()
        .read_exact_at(&mut b, 1 << 39)
        .unwrap();
    assert_eq!(&b, b"data");
}
