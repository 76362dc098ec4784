//! Damaged and hostile archives give errors, never panics, and never reach outside themselves.

use super::fixture_tests::*;
use crate::image::Platform;
use crate::source::{find_ref, open_source, resolve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fs;

/// Opens and fully resolves whatever the spec holds; any error is fine, a panic is not.
fn try_everything(spec: &str) {
    let Ok((src, _)) = open_source(spec) else {
        return;
    };
    let Ok(refs) = src.refs() else { return };
    for r in refs {
        let _ = find_ref(src.as_ref(), &r.display_name());
        if let Ok(res) = resolve(src.as_ref(), &r, &Platform::host()) {
            for (desc, _) in &res.layers {
                if let Ok(mut rd) = src.open_blob(desc) {
                    let _ = std::io::copy(&mut rd, &mut std::io::sink());
                }
            }
        }
    }
}

#[test]
fn damaged_archives_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let img = TinyImage::new("linux/amd64", &[b"one", b"two"], true);
    let oci = t.path().join("oci.tar");
    write_oci_archive(&oci, &[(&img, Some("v1"))], "");
    let docker = t.path().join("docker.tar");
    write_docker_archive(&docker, &img, Some(&["a:b"]), true);

    let mut rng = StdRng::seed_from_u64(3);
    let victim = t.path().join("victim.tar");
    for original in [fs::read(&oci).unwrap(), fs::read(&docker).unwrap()] {
        for _ in 0..150 {
            let mut b = original.clone();
            if rng.gen_bool(0.3) {
                b.truncate(rng.gen_range(0..b.len()));
            }
            for _ in 0..rng.gen_range(1..8) {
                if b.is_empty() {
                    break;
                }
                // Aim at headers and small members, where the structure is.
                let i = rng.gen_range(0..b.len().min(8192));
                b[i] = rng.gen();
            }
            fs::write(&victim, &b).unwrap();
            try_everything(victim.to_str().unwrap());
        }
    }
}

#[test]
fn docker_archive_paths_cannot_leave_the_archive() {
    let t = tempfile::tempdir().unwrap();
    // A file outside the archive that a traversal would reach.
    let img = TinyImage::new("linux/amd64", &[b"x"], false);
    fs::write(
        t.path()
            .join(format!("{}.json", img.config_desc.digest.hex())),
        &img.config_bytes,
    )
    .unwrap();
    let cases = [
        format!("../{}.json", img.config_desc.digest.hex()),
        format!("/{}/../../{}.json", "a", img.config_desc.digest.hex()),
        "/etc/passwd".to_string(),
    ];
    for (i, config) in cases.iter().enumerate() {
        let path = t.path().join(format!("evil{i}.tar"));
        let manifest = serde_json::json!([{"Config": config, "RepoTags": ["a:b"], "Layers": []}]);
        tar_files(&path, &[("manifest.json", manifest.to_string().as_bytes())]);
        let err = open_source(path.to_str().unwrap())
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains("missing"), "{config}: {err}");
    }
}
