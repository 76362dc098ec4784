//! Sources built in temp dirs: layouts, oci-archives and docker-archives of tiny images.

use super::fixture_tests::*;
use super::*;
use crate::image::media_types as mt;
use crate::image::Platform;
use lamina_testkit::tarw::TarWriter;
use std::fs;

fn host() -> Platform {
    Platform::host()
}

#[test]
fn layout_dir_resolves_by_tag_and_by_reference() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"one", b"two"], true);
    let dir = t.path().join("debian");
    write_layout(&dir, &[(&img, Some("gzip"))]);

    let (src, r) = open_source(dir.to_str().unwrap()).unwrap();
    assert_eq!(r, None);
    assert_eq!(src.default_repository(), "debian");
    assert!(src.describe().contains("oci layout"), "{}", src.describe());
    for want in ["gzip", "debian:gzip", "docker.io/library/debian:gzip"] {
        let found = find_ref(src.as_ref(), want).unwrap();
        assert_eq!(found.name.as_deref(), Some("gzip"), "{want}");
    }
    let by_digest = find_ref(src.as_ref(), &img.manifest_desc.digest.to_string()).unwrap();
    assert_eq!(
        by_digest.descriptor,
        img.manifest_desc_for_index(Some("gzip"))
    );

    let found = find_ref(src.as_ref(), "gzip").unwrap();
    let res = resolve(
        src.as_ref(),
        &found,
        &Platform::parse("linux/amd64").unwrap(),
    )
    .unwrap();
    img.check(&res);
    assert_eq!(res.manifest_digest, Some(img.manifest_desc.digest.clone()));
    assert!(res.warnings.is_empty(), "{:?}", res.warnings);
    // Layer blobs come back byte for byte.
    for ((desc, _), blob) in res.layers.iter().zip(&img.layer_blobs) {
        let mut got = Vec::new();
        src.open_blob(desc).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(&got, blob);
    }
}

#[test]
fn oci_archive_serves_the_same_image_without_extracting() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"alpha", b"beta", b"gamma"], true);
    let dir = t.path().join("layout");
    write_layout(&dir, &[(&img, Some("latest"))]);
    let tar_path = t.path().join("busybox-oci.tar");
    write_oci_archive(&tar_path, &[(&img, Some("latest"))], "./");

    let (src, r) = open_source(&format!("{}:latest", tar_path.display())).unwrap();
    assert_eq!(r.as_deref(), Some("latest"));
    assert_eq!(src.default_repository(), "busybox-oci");
    assert!(src.describe().starts_with("oci-archive"));
    let found = find_ref(src.as_ref(), "latest").unwrap();
    let res = resolve(
        src.as_ref(),
        &found,
        &Platform::parse("linux/amd64").unwrap(),
    )
    .unwrap();
    img.check(&res);

    // Several threads read blobs of one archive at once, each with its own handle.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for ((desc, _), blob) in res.layers.iter().zip(&img.layer_blobs) {
                    let mut got = Vec::new();
                    src.open_blob(desc).unwrap().read_to_end(&mut got).unwrap();
                    assert_eq!(&got, blob);
                }
            });
        }
    });
}

#[test]
fn docker_archive_synthesises_a_manifest() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"base", b"top"], false);
    for legacy in [true, false] {
        let path = t.path().join(format!("img-{legacy}.docker.tar"));
        write_docker_archive(
            &path,
            &img,
            Some(&["img:v1", "example.com/other/img:v2"]),
            legacy,
        );
        let (src, _) = open_source(path.to_str().unwrap()).unwrap();
        assert_eq!(src.default_repository(), format!("img-{legacy}"));
        let refs = src.refs().unwrap();
        let names: Vec<_> = refs.iter().map(|r| r.name.clone().unwrap()).collect();
        assert_eq!(names, ["img:v1", "example.com/other/img:v2"]);
        for r in &refs {
            let res = resolve(src.as_ref(), r, &Platform::parse("linux/amd64").unwrap()).unwrap();
            assert_eq!(
                res.manifest_digest, None,
                "docker-archives have no manifest digest"
            );
            assert_eq!(res.config.digest(), img.config_desc.digest);
            assert_eq!(res.config_bytes, img.config_bytes);
            let diff_ids: Vec<_> = res.layers.iter().map(|(_, d)| d.clone()).collect();
            assert_eq!(diff_ids, img.diff_ids);
            for ((desc, diff_id), blob) in res.layers.iter().zip(&img.layer_tars) {
                assert_eq!(
                    &desc.digest, diff_id,
                    "uncompressed: blob digest is the diffID"
                );
                assert_eq!(desc.media_type, mt::DOCKER_LAYER_TAR);
                assert_eq!(desc.size, blob.len() as u64);
                let mut got = Vec::new();
                src.open_blob(desc).unwrap().read_to_end(&mut got).unwrap();
                assert_eq!(&got, blob);
            }
        }
        // A bare tag finds the one image with that tag.
        let r = find_ref(src.as_ref(), "v1").unwrap();
        assert_eq!(r.name.as_deref(), Some("img:v1"));
        let r = find_ref(src.as_ref(), "example.com/other/img:v2").unwrap();
        assert_eq!(
            r.reference("x").unwrap().unwrap().full(),
            "example.com/other/img:v2"
        );
    }
    // No RepoTags: one image without a name.
    let path = t.path().join("untagged.tar");
    write_docker_archive(&path, &img, None, true);
    let (src, _) = open_source(path.to_str().unwrap()).unwrap();
    let refs = src.refs().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].name, None);
    resolve(src.as_ref(), &refs[0], &host()).unwrap();
}

#[test]
fn docker_archive_config_name_must_match_its_digest() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"x"], false);
    let mut tampered = img.clone();
    tampered.config_bytes.push(b' ');
    let path = t.path().join("bad.tar");
    write_docker_archive_named(
        &path,
        &tampered,
        &img.config_desc.digest,
        Some(&["a:b"]),
        true,
    );
    let err = open_source(path.to_str().unwrap())
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(img.config_desc.digest.hex()), "{err}");
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let t = tempfile::tempdir().unwrap();
    let amd = TinyImage::new("linux/amd64", &[b"amd"], true);
    let arm = TinyImage::new("linux/arm64/v8", &[b"arm"], true);
    let dir = t.path().join("multi");
    let index = write_layout_with_index(&dir, &[&amd, &arm], "latest", true);
    let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
    let r = find_ref(src.as_ref(), "latest").unwrap();
    assert_eq!(r.descriptor.digest, index.digest);

    let res = resolve(src.as_ref(), &r, &Platform::parse("linux/amd64").unwrap()).unwrap();
    amd.check(&res);
    let res = resolve(src.as_ref(), &r, &Platform::parse("linux/arm64").unwrap()).unwrap();
    arm.check(&res);
    assert_eq!(res.platform.to_string(), "linux/arm64/v8");
    // The index walked to the manifest comes along (a pull keeps it for fsck and rmi).
    assert_eq!(res.indexes.len(), 1);
    assert_eq!(res.indexes[0].0, index.digest);

    let err = resolve(src.as_ref(), &r, &Platform::parse("linux/s390x").unwrap())
        .unwrap_err()
        .to_string();
    // The caller names the image ("pull NAME: …"); the error says which platforms there are.
    for w in ["linux/s390x", "linux/amd64", "linux/arm64/v8"] {
        assert!(err.contains(w), "{err} (missing {w})");
    }
}

#[test]
fn index_entries_without_platform_are_judged_by_their_config() {
    let t = tempfile::tempdir().unwrap();
    let amd = TinyImage::new("linux/amd64", &[b"amd"], true);
    let arm = TinyImage::new("linux/arm64/v8", &[b"arm"], true);
    let dir = t.path().join("multi");
    write_layout_with_index(&dir, &[&arm, &amd], "latest", false);
    let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
    let r = find_ref(src.as_ref(), "latest").unwrap();
    let res = resolve(src.as_ref(), &r, &Platform::parse("linux/amd64").unwrap()).unwrap();
    amd.check(&res);
    let res = resolve(
        src.as_ref(),
        &r,
        &Platform::parse("linux/arm64/v8").unwrap(),
    )
    .unwrap();
    arm.check(&res);
}

#[test]
fn a_single_manifest_for_another_platform_resolves_and_says_its_platform() {
    let t = tempfile::tempdir().unwrap();
    let arm = TinyImage::new("linux/arm64/v8", &[b"arm"], true);
    let dir = t.path().join("arm");
    write_layout(&dir, &[(&arm, Some("v1"))]);
    let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
    let r = find_ref(src.as_ref(), "v1").unwrap();
    let res = resolve(src.as_ref(), &r, &Platform::parse("linux/amd64").unwrap()).unwrap();
    arm.check(&res);
    // The caller words the mismatch (it knows whether the platform was asked for): no warning here.
    assert!(res.warnings.is_empty(), "{:?}", res.warnings);
    assert_eq!(res.platform, Platform::parse("linux/arm64/v8").unwrap());
}

#[test]
fn spec_splits_at_a_colon_whose_left_side_exists() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"x"], true);
    let dir = t.path().join("l");
    write_layout(&dir, &[(&img, Some("debian:gzip"))]);
    let base = dir.to_str().unwrap();
    let cases = [
        (base.to_string(), None),
        (format!("{base}:v1"), Some("v1")),
        (format!("{base}:debian:gzip"), Some("debian:gzip")),
        (format!("{base}:"), None),
    ];
    for (spec, want) in cases {
        let (_, r) = open_source(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(r.as_deref(), want, "{spec}");
    }
    // A directory whose name has a colon is a path, not a ref.
    let colon = t.path().join("a:b");
    write_layout(&colon, &[(&img, Some("v1"))]);
    let (src, r) = open_source(colon.to_str().unwrap()).unwrap();
    assert_eq!(r, None);
    assert_eq!(src.default_repository(), "a:b");
    let missing = t.path().join("nope:x");
    let err = open_source(missing.to_str().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn unrecognised_sources_say_what_was_looked_for() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let text = t.path().join("text.tar");
    fs::write(&text, vec![b'x'; 2048]).unwrap();
    let gz = t.path().join("x.tar.gz");
    fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let plain_tar = t.path().join("plain.tar");
    tar_files(&plain_tar, &[("hello.txt", b"hi".as_slice())]);
    let cases = [
        (&empty, "oci-layout and index.json"),
        (&text, "not a recognised image source"),
        (&gz, "gzip"),
        (&plain_tar, "manifest.json"),
    ];
    for (path, word) in cases {
        let err = open_source(path.to_str().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(word), "{}: {err}", path.display());
        assert!(err.contains(path.to_str().unwrap()), "{err}");
    }
}

#[test]
fn archive_links_stay_inside_the_archive() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("links.tar");
    let mut b = TarWriter::new();
    b.file("./data/real", 0o644, b"content")
        .symlink("a/sym", "../data/real")
        .hardlink("hard", "./data/real")
        .symlink("escape", "../../etc/passwd")
        .symlink("loop1", "loop2")
        .symlink("loop2", "loop1");
    fs::write(&path, b.finish()).unwrap();
    let idx = tar_index::TarIndex::build(&path).unwrap();
    for name in ["data/real", "./a/sym", "hard"] {
        let mut s = String::new();
        idx.open(name)
            .unwrap()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "content", "{name}");
    }
    for name in ["escape", "loop1", "data", "nothing"] {
        assert!(idx.open(name).unwrap().is_none(), "{name}");
    }
}

#[test]
fn nested_indexes_without_platform_are_searched() {
    let t = tempfile::tempdir().unwrap();
    let amd = TinyImage::new("linux/amd64", &[b"amd"], true);
    let arm = TinyImage::new("linux/arm64/v8", &[b"arm"], true);
    let s390 = TinyImage::new("linux/s390x", &[b"s390"], true);
    let dir = t.path().join("nested");
    let inner = write_layout_with_index(&dir, &[&amd, &arm], "inner", true);
    let mut s390_desc = s390.manifest_desc.clone();
    s390_desc.platform = Some(s390.platform.clone());
    let outer = Blob::new(
        mt::OCI_INDEX,
        serde_json::json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX,
                           "manifests": [s390_desc, inner]})
        .to_string()
        .as_bytes(),
    );
    let s390_blobs = s390.blobs();
    let mut blobs: Vec<&Blob> = s390_blobs.iter().collect();
    blobs.push(&outer);
    // The inner index's blobs are already in the layout; write the outer one and name it.
    write_raw_layout(&dir, &blobs, &[(&outer.desc, "outer")]);
    let (src, _) = open_source(dir.to_str().unwrap()).unwrap();
    let r = find_ref(src.as_ref(), "outer").unwrap();
    for (want, img) in [
        ("linux/amd64", &amd),
        ("linux/arm64", &arm),
        ("linux/s390x", &s390),
    ] {
        let res = resolve(src.as_ref(), &r, &Platform::parse(want).unwrap()).unwrap();
        img.check(&res);
    }
    let err = resolve(src.as_ref(), &r, &Platform::parse("linux/ppc64le").unwrap())
        .unwrap_err()
        .to_string();
    for w in ["linux/s390x", "linux/amd64", "linux/arm64/v8"] {
        assert!(err.contains(w), "{err} (missing {w})");
    }
}
