//! Damaged layouts and documents: refused before parsing, with errors that name the blob.

use super::fixture_tests::*;
use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::Platform;
use crate::source::{find_ref, open_source, resolve};
use std::fs;
use std::io::Write;
use std::path::Path;

#[test]
fn corrupt_blobs_are_refused_before_parsing() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"one"], true);
    let blob = |dir: &Path, d: &Digest| dir.join("blobs/sha256").join(d.hex());
    let amd64 = Platform::parse("linux/amd64").unwrap();
    // (name, how to damage the layout, words the error must contain)
    type Damage = fn(&Path, &TinyImage);
    let cases: Vec<(&str, Damage, Vec<String>)> = vec![
        (
            "manifest digest",
            |d, i| {
                let p = d.join("blobs/sha256").join(i.manifest_desc.digest.hex());
                let mut b = fs::read(&p).unwrap();
                b[0] = b' ';
                fs::write(&p, b).unwrap();
            },
            vec![
                "manifest".into(),
                "digest mismatch".into(),
                img.manifest_desc.digest.to_string(),
            ],
        ),
        (
            "config size",
            |d, i| {
                let p = d.join("blobs/sha256").join(i.config_desc.digest.hex());
                let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
                f.write_all(b"  ").unwrap();
            },
            vec![
                "config".into(),
                "size mismatch".into(),
                format!("expected {} bytes", img.config_desc.size),
                img.config_desc.digest.to_string(),
            ],
        ),
        (
            "missing config",
            |d, i| {
                fs::remove_file(d.join("blobs/sha256").join(i.config_desc.digest.hex())).unwrap()
            },
            vec!["not found".into(), img.config_desc.digest.to_string()],
        ),
    ];
    for (name, damage, words) in cases {
        let dir = t.path().join(name.replace(' ', "-"));
        write_layout(&dir, &[(&img, Some("v1"))]);
        assert!(blob(&dir, &img.manifest_desc.digest).exists());
        damage(&dir, &img);
        let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
        let r = find_ref(src.as_ref(), "v1").unwrap();
        let err = resolve(src.as_ref(), &r, &amd64).unwrap_err().to_string();
        for w in &words {
            assert!(err.contains(w.as_str()), "{name}: {err} (missing {w})");
        }
    }
}

#[test]
fn bad_documents_are_named_in_errors() {
    let t = tempfile::tempdir().unwrap();
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let config = Blob::new(
        mt::OCI_CONFIG,
        br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let schema1 = Blob::new(mt::OCI_MANIFEST, br#"{"schemaVersion":1,"fsLayers":[]}"#);
    let malformed = Blob::new(mt::OCI_MANIFEST, br#"{"schemaVersion":2,"config":"#);
    let one_layer = Blob::new(mt::OCI_LAYER_TAR, b"not a tar, but never read");
    let too_many = Blob::new(
        mt::OCI_MANIFEST,
        manifest_json(&config.desc, std::slice::from_ref(&one_layer.desc)).as_bytes(),
    );
    // (manifest, words the error must contain)
    let cases = [
        (&schema1, vec!["schema 1", "skopeo"]),
        (&malformed, vec!["malformed JSON", "EOF"]),
        (&too_many, vec!["0 diff_ids", "1 layers"]),
    ];
    for (i, (manifest, words)) in cases.iter().enumerate() {
        let dir = t.path().join(format!("case{i}"));
        write_raw_layout(
            &dir,
            &[&config, manifest, &one_layer],
            &[(&manifest.desc, "v1")],
        );
        let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
        let r = find_ref(src.as_ref(), "v1").unwrap();
        let err = resolve(src.as_ref(), &r, &amd64).unwrap_err().to_string();
        assert!(err.contains(&manifest.desc.digest.to_string()), "{err}");
        for w in words {
            assert!(err.contains(w), "{err} (missing {w})");
        }
    }
}

#[test]
fn unknown_refs_list_what_is_there() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"x"], true);
    let dir = t.path().join("l");
    write_layout(&dir, &[(&img, Some("a")), (&img, None)]);
    let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
    let err = find_ref(src.as_ref(), "b").unwrap_err().to_string();
    assert!(
        err.contains("\"b\"") && err.contains("a, <unnamed sha256:"),
        "{err}"
    );
    assert_eq!(src.refs().unwrap().len(), 2);
    assert_eq!(src.refs().unwrap()[1].name, None);
}
