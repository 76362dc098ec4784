//! Runs the unpacker over the real debian image of the test corpus (if it is built), times it,
//! and compares the overlay-merged result with umoci's reference tree. Ignored by default:
//! `cargo test --release --lib unpack::tests_corpus -- --ignored --nocapture`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{unpack_layer, ExpectedBlob, UnpackOptions};

use crate::digest::Digest;

const CORPUS: &str = "/var/cache/lamina/corpus";

struct Layer {
    digest: Digest,
    size: u64,
    diff_id: Digest,
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_path(layout: &Path, d: &Digest) -> PathBuf {
    layout.join("blobs/sha256").join(d.hex())
}

fn layers(layout: &Path, tag: &str) -> Vec<Layer> {
    let index = json(&layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let digest: Digest = desc["digest"].as_str().unwrap().parse().unwrap();
    let manifest = json(&blob_path(layout, &digest));
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let config = json(&blob_path(layout, &config_digest));
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(diff_ids)
        .map(|(l, d)| Layer {
            digest: l["digest"].as_str().unwrap().parse().unwrap(),
            size: l["size"].as_u64().unwrap(),
            diff_id: d.as_str().unwrap().parse().unwrap(),
        })
        .collect()
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn unpack_image(tag: &str, work: &Path) -> Vec<PathBuf> {
    let layout = Path::new(CORPUS).join("oci/debian");
    let mut dirs = Vec::new();
    let all = Instant::now();
    for (i, l) in layers(&layout, tag).iter().enumerate() {
        let dest = work.join(format!("{tag}-{i}"));
        std::fs::create_dir(&dest).unwrap();
        let blob = File::open(blob_path(&layout, &l.digest)).unwrap();
        let expected = ExpectedBlob {
            digest: &l.digest,
            size: Some(l.size),
            diff_id: &l.diff_id,
        };
        let t = Instant::now();
        let report = unpack_layer(blob, &expected, &dest, &UnpackOptions::default()).unwrap();
        eprintln!(
            "debian:{tag} layer {i}: {} entries, {} MB of files, {:.3}s",
            report.entries,
            report.files_size / 1_000_000,
            t.elapsed().as_secs_f64()
        );
        if report.needs_parents() {
            let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
            super::fix_up_layer(&dest, &report, &lowers, &UnpackOptions::default()).unwrap();
        }
        dirs.push(dest);
    }
    eprintln!(
        "debian:{tag}: all layers sequentially in {:.3}s",
        all.elapsed().as_secs_f64()
    );
    dirs
}

#[test]
#[ignore]
fn corpus_debian_matches_umoci() {
    let reference = Path::new(CORPUS).join("work/debian-bundle/rootfs");
    if !Path::new(CORPUS).join("stamps/debian").exists() {
        eprintln!("corpus not built; skipping");
        return;
    }
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let tags = std::env::var("LAMINA_CORPUS_TAGS").unwrap_or("gzip,zstd,plain".into());
    for tag in tags.split(',') {
        let dirs = unpack_image(tag, work.path());
        let lowers: Vec<String> = dirs.iter().rev().map(|d| d.display().to_string()).collect();
        let merged = work.path().join(format!("{tag}-merged"));
        std::fs::create_dir(&merged).unwrap();
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={},index=off", lowers.join(":")))
            .arg(&merged)
            .status()
            .unwrap();
        assert!(st.success());
        let _guard = Unmount(merged.clone());
        let out = Command::new("python3")
            .arg("/work/shared/corpus/treecmp.py")
            .arg(&reference)
            .arg(&merged)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "debian:{tag} differs from umoci's tree:\n{}{}",
            &text[..text.len().min(4000)],
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
