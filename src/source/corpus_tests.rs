//! The corpus's real images (skipped when the corpus is not built): one image in three forms
//! must resolve to the same config and diffIDs, and the multiarch index must pick by platform.

use crate::image::Platform;
use crate::source::{find_ref, open_source, resolve, ResolvedImage};
use lamina_testkit::env::corpus;
use std::path::PathBuf;

fn load(spec: &str, platform: &str) -> ResolvedImage {
    let (src, want) = open_source(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let want = want.expect("spec names a ref");
    let r = find_ref(src.as_ref(), &want).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let platform = Platform::parse(platform).unwrap();
    resolve(src.as_ref(), &r, &platform).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

#[test]
fn debian_in_three_forms_is_one_image() {
    let Some(c) = corpus() else { return };
    let amd64 = "linux/amd64";
    let layout = load(&format!("{}/oci/debian:gzip", c.display()), amd64);
    let oci = load(
        &format!("{}/archives/debian-gzip.oci.tar:debian:gzip", c.display()),
        amd64,
    );
    let docker = load(
        &format!(
            "{}/archives/debian-gzip.docker.tar:debian:gzip",
            c.display()
        ),
        amd64,
    );
    assert_eq!(layout.layers.len(), 4);
    for other in [&oci, &docker] {
        assert_eq!(other.id(), layout.id());
        let a: Vec<_> = layout.layers.iter().map(|(_, d)| d).collect();
        let b: Vec<_> = other.layers.iter().map(|(_, d)| d).collect();
        assert_eq!(a, b);
    }
    assert_eq!(oci.manifest_digest, layout.manifest_digest);
    assert!(layout.manifest_digest.is_some());
    assert_eq!(docker.manifest_digest, None);
    // The oci forms keep gzip blobs; docker-archive layers are the uncompressed tars.
    assert_eq!(oci.manifest.layers, layout.manifest.layers);
    for (desc, diff_id) in &docker.layers {
        assert_eq!(&desc.digest, diff_id);
    }
    // The tag alone also finds it in the layout (a bare word is a tag of the layout's name).
    let (src, _) = open_source(&format!("{}/oci/debian", c.display())).unwrap();
    assert_eq!(src.default_repository(), "debian");
    let r = find_ref(src.as_ref(), "debian:gzip").unwrap();
    assert_eq!(r.name.as_deref(), Some("gzip"));
}

#[test]
fn multiarch_latest_picks_by_platform() {
    let Some(c) = corpus() else { return };
    for spec in [
        format!("{}/oci/multiarch:latest", c.display()),
        format!("{}/archives/multiarch-latest.oci.tar", c.display()),
    ] {
        let (src, want) = open_source(&spec).unwrap();
        let want = want.unwrap_or_else(|| {
            let refs = src.refs().unwrap();
            refs[0].name.clone().unwrap()
        });
        let r = find_ref(src.as_ref(), &want).unwrap();
        if cfg!(target_arch = "x86_64") {
            let res = resolve(src.as_ref(), &r, &Platform::host()).unwrap();
            assert_eq!(res.platform.to_string(), "linux/amd64", "{spec}");
        }
        let res = resolve(src.as_ref(), &r, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(res.platform.normalize().architecture, "arm64", "{spec}");
        assert!(res.warnings.is_empty(), "{:?}", res.warnings);
        let err = resolve(src.as_ref(), &r, &Platform::parse("linux/s390x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/amd64") && err.contains("linux/arm64"),
            "{err}"
        );
    }
}

#[test]
fn every_corpus_source_resolves() {
    let Some(c) = corpus() else { return };
    let mut specs: Vec<PathBuf> = Vec::new();
    for dir in ["oci", "archives"] {
        for e in std::fs::read_dir(c.join(dir)).unwrap() {
            specs.push(e.unwrap().path());
        }
    }
    specs.sort();
    let host = Platform::host();
    for spec in specs {
        let started = std::time::Instant::now();
        let (src, _) = open_source(spec.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let refs = src.refs().unwrap();
        assert!(!refs.is_empty(), "{}", spec.display());
        for r in &refs {
            let res = resolve(src.as_ref(), r, &host)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", spec.display(), r.display_name()));
            assert_eq!(res.layers.len(), res.config.diff_ids().len());
            // Every layer blob is there with the size its descriptor gives.
            for (desc, _) in &res.layers {
                let mut rd = src.open_blob(desc).unwrap();
                let mut head = [0u8; 512];
                let n = std::io::Read::read(&mut rd, &mut head).unwrap();
                assert!(n > 0 || desc.size == 0, "{}", desc.digest);
            }
        }
        eprintln!(
            "{}: {} refs in {:?}",
            spec.display(),
            refs.len(),
            started.elapsed()
        );
    }
}
