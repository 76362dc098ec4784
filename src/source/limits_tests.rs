//! Bounds on what a source makes us read: nested indexes that fan out, blobs that are not files.

use super::fixture_tests::*;
use crate::image::media_types as mt;
use crate::image::{Descriptor, Platform};
use crate::source::{open_source, resolve, SourceError, SourceRef, MAX_BLOBS_VISITED};
use std::time::{Duration, Instant};

/// An index whose `fan_out` entries, none with a platform, all name `child`.
fn index_of(child: &Descriptor, fan_out: usize) -> Blob {
    let mut entry = child.clone();
    entry.platform = None;
    let manifests: Vec<&Descriptor> = std::iter::repeat_n(&entry, fan_out).collect();
    let bytes = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": manifests,
    })
    .to_string();
    Blob::new(mt::OCI_INDEX, bytes.as_bytes())
}

/// A layout whose ref `top` is `depth` indexes deep, each listing the one below `fan_out` times.
fn nested_layout(dir: &std::path::Path, depth: usize, fan_out: usize) -> Descriptor {
    let img = TinyImage::new("linux/amd64", &[b"x"], false);
    write_layout(dir, &[(&img, None)]);
    let mut blobs = Vec::new();
    let mut child = img.manifest_desc.clone();
    for _ in 0..depth {
        let idx = index_of(&child, fan_out);
        child = idx.desc.clone();
        blobs.push(idx);
    }
    let refs: Vec<&Blob> = blobs.iter().collect();
    write_raw_layout(dir, &refs, &[(&child, "top")]);
    child
}

fn resolve_top(dir: &std::path::Path, platform: &str) -> Result<(), SourceError> {
    let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
    let r = src
        .refs()
        .unwrap()
        .into_iter()
        .find(|r| r.name.as_deref() == Some("top"))
        .expect("top");
    resolve(src.as_ref(), &r, &Platform::parse(platform).unwrap()).map(drop)
}

#[test]
fn exponentially_fanning_indexes_are_refused_quickly() {
    let t = tempfile::tempdir().unwrap();
    // 6^7 = 279936 paths to the one manifest: walked naively, hours.
    nested_layout(t.path(), 7, 6);
    let start = Instant::now();
    // No entry declares a platform and none matches: every path would be opened.
    let e = resolve_top(t.path(), "linux/arm64").unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, SourceError::Limit { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&MAX_BLOBS_VISITED.to_string()), "{msg}");
    assert!(msg.contains("top"), "{msg}");
}

#[test]
fn a_small_nested_index_without_platforms_still_resolves() {
    let t = tempfile::tempdir().unwrap();
    nested_layout(t.path(), 3, 2);
    resolve_top(t.path(), "linux/amd64").unwrap();
}

#[test]
fn indexes_nested_too_deep_or_too_wide_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let deep = t.path().join("deep");
    nested_layout(&deep, 9, 1);
    let msg = resolve_top(&deep, "linux/amd64").unwrap_err().to_string();
    assert!(msg.contains("nested more than 8 deep"), "{msg}");

    let wide = t.path().join("wide");
    nested_layout(&wide, 1, 2000);
    let e = resolve_top(&wide, "linux/amd64").unwrap_err();
    assert!(matches!(e, SourceError::Limit { .. }), "{e}");
    assert!(e.to_string().contains("2000 entries"), "{e}");
}

#[test]
fn a_fifo_or_a_symlink_as_a_layout_blob_is_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"x"], false);
    for (name, plant) in [("fifo", true), ("symlink", false)] {
        let dir = t.path().join(name);
        write_layout(&dir, &[(&img, Some("v"))]);
        let blob = dir
            .join("blobs/sha256")
            .join(img.manifest_desc.digest.hex());
        std::fs::remove_file(&blob).unwrap();
        if plant {
            rustix::fs::mkfifoat(
                rustix::fs::CWD,
                &blob,
                rustix::fs::Mode::from_raw_mode(0o644),
            )
            .unwrap();
        } else {
            std::os::unix::fs::symlink("/etc/hostname", &blob).unwrap();
        }
        let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
        let r = SourceRef {
            name: Some("v".into()),
            descriptor: img.manifest_desc.clone(),
        };
        let msg = resolve(src.as_ref(), &r, &Platform::host())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not a regular file"), "{name}: {msg}");
        assert!(
            msg.contains(img.manifest_desc.digest.hex()),
            "{name}: {msg}"
        );
    }
}

#[test]
fn a_fifo_given_as_an_archive_is_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("image.tar");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let msg = open_source(fifo.to_str().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("a FIFO"), "{msg}");
}

#[test]
fn a_docker_archive_listing_too_many_images_is_refused_before_reading_them() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("many.tar");
    let entry = serde_json::json!({"Config": "c.json", "RepoTags": null, "Layers": []});
    let manifest = serde_json::Value::Array(vec![entry; 5000]).to_string();
    tar_files(&path, &[("manifest.json", manifest.as_bytes())]);
    let e = open_source(path.to_str().unwrap()).err().unwrap();
    assert!(matches!(e, SourceError::Limit { .. }), "{e}");
    assert!(e.to_string().contains("5000 images"), "{e}");
}
