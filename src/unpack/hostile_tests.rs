//! Bad input is refused: wrong digests and sizes, broken compression and tar framing, paths that
//! try to leave the layer, whiteouts that name nothing, overlay xattrs. And it never panics.

use std::fs;
use std::path::Path;

use super::support_tests::*;
use super::*;
use crate::digest::Digest;
use crate::layerfs::OPAQUE_XATTR;

fn expect_err(tar: &[u8]) -> UnpackError {
    let (_dir, r) = unpack_tar(tar);
    r.expect_err("must be refused")
}

#[test]
fn wrong_digest_size_or_diff_id() {
    let tar = TarBuild::new().file("f", b"x", &Meta::default()).finish();
    let blob = gzip(&tar);
    let (good, diff) = (Digest::of_bytes(&blob), Digest::of_bytes(&tar));
    let other = Digest::of_bytes(b"other");
    let run = |digest: &Digest, size: Option<u64>, diff_id: &Digest| {
        let dir = tempfile::tempdir().unwrap();
        let e = ExpectedBlob {
            digest,
            size,
            diff_id,
        };
        unpack_layer(&blob[..], &e, dir.path(), &UnpackOptions::default()).unwrap_err()
    };
    let e = run(&other, None, &diff);
    assert!(
        matches!(e, UnpackError::DigestMismatch { ref got, .. } if *got == good),
        "{e}"
    );
    assert!(
        e.to_string().contains(&other.to_string()),
        "names the blob: {e}"
    );
    let e = run(&good, Some(blob.len() as u64 - 1), &diff);
    assert!(
        matches!(e, UnpackError::SizeMismatch { got, .. } if got == blob.len() as u64),
        "{e}"
    );
    let e = run(&good, Some(blob.len() as u64 + 1), &diff);
    assert!(matches!(e, UnpackError::SizeMismatch { .. }), "{e}");
    let e = run(&good, Some(blob.len() as u64), &other);
    assert!(
        matches!(e, UnpackError::DiffIdMismatch { ref got, .. } if *got == diff),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn broken_compression_and_framing() {
    let mut t = TarBuild::new();
    t.file("f", &vec![1u8; 100_000], &Meta::default())
        .file("g", b"x", &Meta::default());
    let tar = t.finish();
    let gz = gzip(&tar);
    let truncated_gz = &gz[..gz.len() / 2];
    let mut corrupt_zstd = zstd(&tar);
    let mid = corrupt_zstd.len() / 2;
    corrupt_zstd[mid] ^= 0xff;
    corrupt_zstd[mid + 1] ^= 0x55;
    let mut bad_checksum = tar.clone();
    bad_checksum[512 * 197 + 10] ^= 1; // inside the second header's name
    let mut bad_first = tar.clone();
    bad_first[0] = b'X';
    let truncated_tar = &tar[..512 + 50_000];
    let cases: &[(&str, &[u8])] = &[
        ("truncated gzip", truncated_gz),
        ("corrupt zstd", &corrupt_zstd),
        ("bad header checksum (second member)", &bad_checksum),
        ("bad header checksum (first member)", &bad_first),
        ("tar truncated inside data", truncated_tar),
        ("bzip2", b"BZh91AY&SY\0\0\0\0\0\0"),
        ("xz", b"\xfd7zXZ\0\0\x04\xe6\xd6\xb4\x46"),
    ];
    for (what, blob) in cases {
        let dir = tempfile::tempdir().unwrap();
        // Digests match the bytes given, so the failure is the stream's own.
        let e = unpack(blob, &tar, dir.path()).expect_err(what);
        let ok = matches!(e, UnpackError::Decompress { .. } | UnpackError::Tar { .. });
        assert!(ok, "{what}: {e}");
    }
    // With the digest of the intact blob, a corrupt one is reported as a digest mismatch.
    let dir = tempfile::tempdir().unwrap();
    let (d, diff) = (Digest::of_bytes(&gz), Digest::of_bytes(&tar));
    let e = ExpectedBlob {
        digest: &d,
        size: None,
        diff_id: &diff,
    };
    let err = unpack_layer(truncated_gz, &e, dir.path(), &UnpackOptions::default()).unwrap_err();
    assert!(matches!(err, UnpackError::DigestMismatch { .. }), "{err}");
}

/// Runs a hostile archive with a sentinel directory beside the layer dir, which must stay empty.
fn refused_without_escape(what: &str, t: &TarBuild) -> UnpackError {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layer/diff");
    let sentinel = work.path().join("sentinel");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir(&sentinel).unwrap();
    let tar = t.finish();
    let e = unpack(&tar, &tar, &dest).expect_err(what);
    assert_eq!(
        fs::read_dir(&sentinel).unwrap().count(),
        0,
        "{what}: wrote outside"
    );
    assert_eq!(
        fs::read_dir(work.path()).unwrap().count(),
        2,
        "{what}: wrote outside"
    );
    e
}

#[test]
fn paths_that_leave_the_layer_are_refused() {
    let sentinel_abs = |w: &str| format!("/proc/self/cwd/{w}");
    let cases: Vec<(&str, TarBuild)> = vec![
        ("/abs", {
            let mut t = TarBuild::new();
            t.member(b'0', b"/abs/olute", b"", b"x", &Meta::default(), (0, 0));
            t
        }),
        ("../x", {
            let mut t = TarBuild::new();
            t.member(b'0', b"../sentinel/x", b"", b"x", &Meta::default(), (0, 0));
            t
        }),
        ("a/../../x", {
            let mut t = TarBuild::new();
            t.member(
                b'0',
                b"a/../../sentinel/x",
                b"",
                b"x",
                &Meta::default(),
                (0, 0),
            );
            t
        }),
        ("symlink to / then through it", {
            let mut t = TarBuild::new();
            t.symlink("a", "/").empty("a/tmp/evil");
            t
        }),
        ("symlink to .. then through it", {
            let mut t = TarBuild::new();
            t.symlink("a", "../../sentinel").empty("a/x");
            t
        }),
        ("symlink replacing a dir, then through it", {
            let mut t = TarBuild::new();
            t.dir("d", &Meta::default()).symlink("d", "..").empty("d/x");
            t
        }),
        ("hardlink ../../etc/passwd", {
            let mut t = TarBuild::new();
            t.hardlink("p", "../../etc/passwd");
            t
        }),
        ("hardlink through a symlink", {
            let mut t = TarBuild::new();
            t.symlink("etc", "/etc").hardlink("p", "etc/passwd");
            t
        }),
        ("whiteout through a symlink", {
            let mut t = TarBuild::new();
            t.symlink("a", &sentinel_abs("sentinel")).empty("a/.wh.x");
            t
        }),
        ("opaque marker through a symlink", {
            let mut t = TarBuild::new();
            t.symlink("a", "..").empty("a/.wh..wh..opq");
            t
        }),
    ];
    for (what, t) in &cases {
        let e = refused_without_escape(what, t);
        assert!(matches!(e, UnpackError::UnsafePath { .. }), "{what}: {e}");
    }
}

#[test]
fn bad_whiteouts_are_refused() {
    for name in [".wh.", "d/.wh..", "d/.wh..."] {
        let mut t = TarBuild::new();
        t.dir("d", &Meta::default()).empty(name);
        let e = refused_without_escape(name, &t);
        assert!(matches!(e, UnpackError::UnsafePath { .. }), "{name}: {e}");
    }
}

#[test]
fn overlay_xattrs_in_a_layer_are_refused() {
    for key in [
        OPAQUE_XATTR,
        "user.overlay.redirect",
        "trusted.overlay.metacopy",
    ] {
        let m = Meta {
            pax: vec![(format!("SCHILY.xattr.{key}"), b"y".to_vec())],
            ..Meta::default()
        };
        let e = expect_err(&TarBuild::new().dir("d", &m).finish());
        match e {
            UnpackError::OverlayXattr {
                ref name, ref path, ..
            } => {
                assert_eq!((name.as_str(), path.as_str()), (key, "d"))
            }
            _ => panic!("{key}: {e}"),
        }
    }
}

#[test]
fn other_bad_members() {
    let huge_pax = Meta {
        pax: vec![("comment".into(), vec![b'x'; 2 << 20])],
        ..Meta::default()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "hardlink to a directory",
            TarBuild::new()
                .dir("d", &Meta::default())
                .hardlink("l", "d")
                .finish(),
        ),
        (
            "unknown type",
            TarBuild::new()
                .member(b'V', b"vol", b"", b"", &Meta::default(), (0, 0))
                .finish(),
        ),
        (
            "root as a file",
            TarBuild::new().file("./", b"", &Meta::default()).finish(),
        ),
        (
            "PAX header over 1 MiB",
            TarBuild::new().file("f", b"", &huge_pax).finish(),
        ),
        (
            "uid -1",
            TarBuild::new()
                .file(
                    "f",
                    b"",
                    &Meta {
                        uid: u32::MAX as u64,
                        ..Meta::default()
                    },
                )
                .finish(),
        ),
        (
            "file under a file",
            TarBuild::new().empty("f").empty("f/g").finish(),
        ),
        (
            "empty symlink target",
            TarBuild::new().symlink("s", "").finish(),
        ),
        (
            "NUL in a PAX path",
            TarBuild::new()
                .file(
                    "f",
                    b"",
                    &Meta {
                        pax: vec![("path".into(), b"a\0b".to_vec())],
                        ..Meta::default()
                    },
                )
                .finish(),
        ),
        (
            "PAX header at the end",
            TarBuild::new()
                .raw_header(b'x', b"pax", b"", 0, &Meta::default(), (0, 0))
                .finish(),
        ),
    ];
    for (what, tar) in cases {
        let e = expect_err(&tar);
        assert!(matches!(e, UnpackError::Tar { .. }), "{what}: {e}");
    }
}

#[test]
fn mangled_archives_never_panic() {
    let mut t = TarBuild::new();
    t.dir(
        "d",
        &Meta {
            pax: vec![("SCHILY.xattr.user.a".into(), b"b".to_vec())],
            ..Meta::default()
        },
    )
    .file(&"n".repeat(200), b"data", &Meta::default())
    .symlink("d/s", "x")
    .hardlink("d/h", &"n".repeat(200))
    .gnu_long(b'0', "g".repeat(150).as_bytes(), b"", b"gnu")
    .empty("d/.wh.gone");
    let tar = t.finish();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut bad = tar.clone();
        for _ in 0..(1 + next() % 4) {
            let i = (next() % bad.len() as u64) as usize;
            bad[i] = next() as u8;
        }
        let (_dir, _r) = unpack_tar(&bad); // any result but a panic
    }
}

#[test]
fn messages_name_the_blob_and_entry() {
    let mut t = TarBuild::new();
    t.member(b'0', b"a/../../etc/x", b"", b"", &Meta::default(), (0, 0));
    let e = expect_err(&t.finish()).to_string();
    assert!(
        e.starts_with("layer sha256:") && e.contains("a/../../etc/x"),
        "{e}"
    );
    let _ = Path::new("");
}

/// Blobs of unknown size go through the two-thread pipeline, small known ones run inline: both
/// must give the same tree, or the same refusal.
#[test]
fn pipeline_and_inline_agree() {
    let mut good = TarBuild::new();
    good.dir("d", &Meta::default())
        .file("d/big", &vec![3u8; 1 << 20], &Meta::default())
        .empty("d/.wh..wh..opq")
        .empty(".wh.gone")
        .hardlink("d/h", "d/big")
        .symlink("s", "d");
    let good = good.finish();
    let gz = gzip(&good);
    let mut escape = TarBuild::new();
    escape.symlink("a", "/").empty("a/x");
    let escape = escape.finish();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("good", good.clone(), good.clone()),
        ("good gzip", gz.clone(), good.clone()),
        ("truncated gzip", gz[..gz.len() / 2].to_vec(), good.clone()),
        ("symlink escape", escape.clone(), escape),
        (
            "truncated tar",
            good[..good.len() / 2].to_vec(),
            good.clone(),
        ),
    ];
    for (what, blob, tar) in cases {
        let digest = Digest::of_bytes(&blob);
        let diff_id = Digest::of_bytes(&tar);
        let run = |size: Option<u64>| {
            let dir = tempfile::tempdir().unwrap();
            let e = ExpectedBlob {
                digest: &digest,
                size,
                diff_id: &diff_id,
            };
            let r = unpack_layer(&blob[..], &e, dir.path(), &UnpackOptions::default());
            (r.map(|_| describe(dir.path())), dir)
        };
        let (threaded, _a) = run(None);
        let (inline, _b) = run(Some(blob.len() as u64));
        match (threaded, inline) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
            (Err(a), Err(b)) => assert_eq!(
                std::mem::discriminant(&a),
                std::mem::discriminant(&b),
                "{what}: {a} / {b}"
            ),
            (a, b) => panic!("{what}: {a:?} / {b:?}"),
        }
    }
}
