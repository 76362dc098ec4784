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

/// Where to unpack: `LAMINA_CORPUS_WORK` (e.g. a tmpfs, to time the unpacker rather than the
/// disk), else /var/tmp.
fn work_root() -> PathBuf {
    std::env::var_os("LAMINA_CORPUS_WORK").map_or_else(|| "/var/tmp".into(), PathBuf::from)
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn unpack_image(image: &str, tag: &str, work: &Path) -> Vec<PathBuf> {
    let layout = Path::new(CORPUS).join("oci").join(image);
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
            "{image}:{tag} layer {i}: {} entries, {} MB of files, {:.3}s",
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
        "{image}:{tag}: all layers sequentially in {:.3}s",
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
    let work = tempfile::tempdir_in(work_root()).unwrap();
    let tags = std::env::var("LAMINA_CORPUS_TAGS").unwrap_or("gzip,zstd,plain".into());
    for tag in tags.split(',') {
        let dirs = unpack_image("debian", tag, work.path());
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
            .arg(treecmp())
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

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The 1 GiB file of `big` streams through fixed buffers: peak RSS stays far below 100 MiB.
#[test]
#[ignore]
fn corpus_big_unpacks_in_flat_memory() {
    if !Path::new(CORPUS).join("stamps/big").exists() {
        eprintln!("corpus not built; skipping");
        return;
    }
    let work = tempfile::tempdir_in(work_root()).unwrap();
    let before = peak_rss_kib();
    unpack_image("big", "gzip", work.path());
    let after = peak_rss_kib();
    eprintln!("peak RSS: {before} KiB before, {after} KiB after");
    assert!(after < 100 * 1024, "peak RSS {after} KiB");
}

/// The store's way: two layers at a time (each is independent).
#[test]
#[ignore]
fn corpus_debian_two_at_a_time() {
    if !Path::new(CORPUS).join("stamps/debian").exists() {
        return;
    }
    let layout = Path::new(CORPUS).join("oci/debian");
    let work = tempfile::tempdir_in(work_root()).unwrap();
    let all = layers(&layout, "gzip");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(l) = all.get(i) else { break };
                let dest = work.path().join(i.to_string());
                std::fs::create_dir(&dest).unwrap();
                let blob = File::open(blob_path(&layout, &l.digest)).unwrap();
                let e = ExpectedBlob {
                    digest: &l.digest,
                    size: Some(l.size),
                    diff_id: &l.diff_id,
                };
                unpack_layer(blob, &e, &dest, &UnpackOptions::default()).unwrap();
            });
        }
    });
    eprintln!(
        "debian:gzip, 2 layers at a time: {:.3}s",
        t.elapsed().as_secs_f64()
    );
}

/// Compares a tree with the corpus' `expected/<name>.json` (path -> type and sha256 or target).
const COMPARE_EXPECTED: &str = r#"
import hashlib, json, os, stat, sys
want = json.load(open(sys.argv[1]))
root = sys.argv[2]
got = {}
for dp, dns, fns in os.walk(root):
    for n in dns + fns:
        p = os.path.join(dp, n)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            got[rel] = {"type": "dir"}
        elif stat.S_ISLNK(st.st_mode):
            got[rel] = {"type": "symlink", "target": os.readlink(p)}
        elif stat.S_ISREG(st.st_mode):
            got[rel] = {"type": "file", "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
        else:
            got[rel] = {"type": "other"}
bad = [k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
for k in bad[:20]:
    print(k, want.get(k), got.get(k))
sys.exit(1 if bad else 0)
"#;

/// many-layers: whiteouts of files and directories, opaque dirs, and hardlinks spread over 130
/// and 500 small layers. Each layer is unpacked on its own (fixed up where it needs its
/// parents); the 130-layer stack is mounted and compared with the corpus' expected tree.
#[test]
#[ignore]
fn corpus_many_layers() {
    if !Path::new(CORPUS).join("stamps/many-layers").exists() {
        return;
    }
    let layout = Path::new(CORPUS).join("oci/many-layers");
    for tag in ["130", "500"] {
        let work = tempfile::tempdir_in(work_root()).unwrap();
        let t = Instant::now();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut fixed = 0;
        for (i, l) in layers(&layout, tag).iter().enumerate() {
            let dest = work.path().join(i.to_string());
            std::fs::create_dir(&dest).unwrap();
            let blob = File::open(blob_path(&layout, &l.digest)).unwrap();
            let e = ExpectedBlob {
                digest: &l.digest,
                size: Some(l.size),
                diff_id: &l.diff_id,
            };
            let opts = UnpackOptions::default();
            let report = unpack_layer(blob, &e, &dest, &opts).unwrap();
            if report.needs_parents() {
                let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
                super::fix_up_layer(&dest, &report, &lowers, &opts).unwrap();
                fixed += 1;
            }
            dirs.push(dest);
        }
        eprintln!(
            "many-layers:{tag}: {} layers ({fixed} fixed up) in {:.3}s",
            dirs.len(),
            t.elapsed().as_secs_f64()
        );
        if tag == "500" {
            continue; // too many lowers for one mount(2) option string
        }
        let lowers: Vec<String> = (0..dirs.len()).rev().map(|i| i.to_string()).collect();
        let merged = work.path().join("merged");
        std::fs::create_dir(&merged).unwrap();
        let st = Command::new("mount")
            .current_dir(work.path())
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={},index=off", lowers.join(":")))
            .arg(&merged)
            .status()
            .unwrap();
        assert!(st.success());
        let _guard = Unmount(merged.clone());
        let expected = Path::new(CORPUS).join(format!("expected/many-layers-{tag}.json"));
        let out = Command::new("python3")
            .args(["-c", COMPARE_EXPECTED])
            .arg(&expected)
            .arg(&merged)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "many-layers:{tag} differs:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every debian layer dir, packed back into a tar (as `lamina save` without kept blobs or
/// `lamina commit` would) and unpacked again, is the same tree.
#[test]
#[ignore]
fn corpus_debian_pack_round_trip() {
    if !Path::new(CORPUS).join("stamps/debian").exists() {
        return;
    }
    let work = tempfile::tempdir_in(work_root()).unwrap();
    for (i, dir) in unpack_image("debian", "gzip", work.path())
        .iter()
        .enumerate()
    {
        let t = Instant::now();
        let mut tar = Vec::new();
        let packed = super::write_layer_tar(dir, &mut tar, super::TreeKind::OverlayUpper).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let again = work.path().join(format!("again-{i}"));
        std::fs::create_dir(&again).unwrap();
        let d = Digest::of_bytes(&tar);
        let e = ExpectedBlob {
            digest: &d,
            size: None,
            diff_id: &d,
        };
        let r = unpack_layer(&tar[..], &e, &again, &UnpackOptions::default()).unwrap();
        eprintln!(
            "layer {i}: packed {} entries, {} MB, in {secs:.3}s",
            packed.entries,
            tar.len() / 1_000_000
        );
        assert_eq!(r.entries, packed.entries);
        let out = Command::new("python3")
            .arg(treecmp())
            .arg(dir)
            .arg(&again)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "layer {i}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The shared corpus's tree comparer (these tests are `#[ignore]`d and need ../shared anyway).
fn treecmp() -> PathBuf {
    lamina_testkit::env::shared_dir()
        .expect("../shared (LAMINA_SHARED)")
        .join("corpus/treecmp.py")
}
