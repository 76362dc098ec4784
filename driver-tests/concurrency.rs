//! Commands run at the same time (the README's "Locking"): a removal (`rmi`, `prune -a -f`) or a
//! repair (`fsck --repair`) racing a `load` of an image that shares layers with the removed one
//! never leaves a broken image; eight loads sharing a layer whose tree depends on the layers below
//! unpack it once (counted from the debug log's "unpacked and verified" lines, not timed).

use crate::common::{self, Run, Store};
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A layer of `files` files of `size` random bytes under `dir/` (listed first, so the layer does
/// not depend on its parents, unless `implied`: then `dir/` is not listed and the layer's tree
/// takes it from the layers below).
pub fn files_layer(dir: &str, files: usize, size: usize, implied: bool) -> Layer {
    let mut rng = rand::thread_rng();
    let mut w = TarWriter::new();
    if !implied {
        w.dir(format!("{dir}/"), 0o755);
    }
    for i in 0..files {
        let body: Vec<u8> = (0..size).map(|_| rng.gen_range(b'a'..=b'z')).collect();
        w.file(format!("{dir}/f{i:04}"), 0o644, &body);
    }
    Layer::new(&w.finish(), Compression::Gzip)
}

/// Writes an OCI layout of `layers` named `name` (loaded as `name:latest`).
pub fn layout(s: &Store, name: &str, layers: Vec<Layer>) -> PathBuf {
    let dir = s.scratch(name);
    OciBuilder::new()
        .image(Some("latest"), Image::new(layers))
        .write_layout(&dir);
    dir
}

/// Mounts `image` read-only and counts the files under each of `dirs`; `None` when it cannot be
/// mounted (a broken image).
pub fn file_counts(s: &Store, image: &str, dirs: &[&str]) -> Option<Vec<usize>> {
    let target = s.scratch(&common::unique("view"));
    let r = s.lamina(&[
        "mount",
        image,
        "--read-only",
        "--target",
        &target.to_string_lossy(),
    ]);
    if !r.success() {
        eprintln!("{}", r.describe());
        return None;
    }
    let counts = dirs
        .iter()
        .map(|d| common::list_dir(&target.join(d)).len())
        .collect();
    s.ok(&[std::ffi::OsStr::new("umount"), target.as_os_str()]);
    Some(counts)
}

fn spawn(mut cmd: Command) -> std::thread::JoinHandle<Run> {
    std::thread::spawn(move || common::run(&mut cmd, common::LIMIT))
}

/// The loaded-image names in `images` output.
fn listed(s: &Store) -> Vec<String> {
    s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn removals_and_repairs_racing_a_load_break_nothing() {
    if !common::require_root() {
        return;
    }
    let rounds: usize = std::env::var("LAMINA_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let fixtures = Store::new("race-fixtures");
    // `base` is shared; `slow` keeps the second load busy after it has found `base` (and renamed its
    // small top layer into place), which is when the old lamina's removals struck.
    let base = files_layer("base", 100, 1_000, false);
    let slow = files_layer("slow", 150, 10_000, false);
    let one = layout(
        &fixtures,
        "one",
        vec![base.clone(), files_layer("one", 3, 100, false)],
    );
    let two = layout(
        &fixtures,
        "two",
        vec![base, files_layer("two", 3, 100, false), slow],
    );
    let typical = {
        let s = Store::new("race-timing");
        let t0 = Instant::now();
        s.load(&two, &[]);
        t0.elapsed()
    };
    let mut rng = rand::thread_rng();
    let mut failed = vec![];
    for op in [
        &["rmi", "one:latest"][..],
        &["prune", "-a", "-f"][..],
        &["fsck", "--repair"][..],
    ] {
        let (mut broken, mut errors) = (0, 0);
        for round in 0..rounds {
            let s = Store::new("race");
            s.load(&one, &[]);
            let load = spawn({
                let mut c = s.command();
                c.arg("load").arg(&two);
                c
            });
            std::thread::sleep(Duration::from_millis(
                rng.gen_range(0..=typical.as_millis().max(1) as u64),
            ));
            let removal = spawn({
                let mut c = s.command();
                c.args(op);
                c
            });
            for r in [load.join().expect("load"), removal.join().expect("op")] {
                if !r.success() {
                    errors += 1;
                    eprintln!("round {round}: {}", r.describe());
                }
            }
            let images = listed(&s);
            // `prune -a` may remove `two` too, if it was recorded first: gone is not broken.
            if images.iter().any(|i| i == "two:latest") {
                let want = Some(vec![100, 3, 150]);
                if file_counts(&s, "two:latest", &["base", "two", "slow"]) != want {
                    broken += 1;
                    eprintln!(
                        "round {round}: two:latest is broken after `{}`",
                        op.join(" ")
                    );
                }
            } else if op[0] != "prune" {
                broken += 1;
                eprintln!(
                    "round {round}: two:latest is missing after `{}`",
                    op.join(" ")
                );
            }
            if images.iter().any(|i| i == "one:latest")
                && file_counts(&s, "one:latest", &["base", "one"]) != Some(vec![100, 3])
            {
                broken += 1;
                eprintln!(
                    "round {round}: one:latest is broken after `{}`",
                    op.join(" ")
                );
            }
        }
        println!(
            "races: `{}` racing a load: {rounds} runs, {broken} broken, {errors} errors",
            op.join(" ")
        );
        if broken + errors > 0 {
            failed.push(op.join(" "));
        }
    }
    assert!(
        failed.is_empty(),
        "broken images or errors racing: {failed:?}"
    );
}

/// How many times the debug log of `runs` says layer `diff_id` was unpacked.
fn unpacked(runs: &[Run], diff_id: &str) -> usize {
    runs.iter()
        .flat_map(|r| r.stderr.lines())
        .filter(|l| l.contains("unpacked and verified") && l.contains(diff_id))
        .count()
}

#[test]
fn parallel_loads_unpack_a_parent_dependent_layer_once() {
    if !common::require_root() {
        return;
    }
    const LOADS: usize = 8;
    let s = Store::new("unpack-once").env("LAMINA_LOG", "lamina=debug");
    let base = files_layer("usr", 10, 100, false);
    // `usr/` is not listed: the layer's tree takes it from `base`, so it is stored by chainID.
    let dependent = files_layer("usr", 200, 10_000, true);
    let layouts: Vec<PathBuf> = (0..LOADS)
        .map(|i| {
            let top = files_layer(&format!("top{i}"), 2, 100, false);
            layout(
                &s,
                &format!("img{i}"),
                vec![base.clone(), dependent.clone(), top],
            )
        })
        .collect();
    let loads: Vec<_> = layouts
        .iter()
        .map(|dir: &PathBuf| {
            let mut c = s.command();
            c.arg("load").arg(dir as &Path);
            spawn(c)
        })
        .collect();
    let runs: Vec<Run> = loads
        .into_iter()
        .map(|h| h.join().expect("load").expect_ok())
        .collect();
    let n = unpacked(&runs, &dependent.diff_id);
    println!("unpack-once: {LOADS} concurrent loads, the shared parent-dependent layer unpacked {n} times");
    assert!(
        unpacked(&runs, &base.diff_id) >= 1 && n >= 1,
        "the debug log no longer says which layers were unpacked: {}",
        runs[0].describe()
    );
    assert_eq!(
        n, 1,
        "the shared parent-dependent layer was unpacked {n} times"
    );
    for i in [0, LOADS - 1] {
        let top = format!("top{i}");
        assert_eq!(
            file_counts(&s, &format!("img{i}:latest"), &["usr", &top]),
            Some(vec![200, 2]),
            "img{i}"
        );
    }
}
