//! A power-loss stand-in (this kernel has no device-mapper, so no dm-log-writes to replay): the
//! store lives on a loop-mounted ext4 whose backing file holds only what reached the loop device.
//! Background writeback is held back (vm.dirty_*, restored by a guard) and the filesystem's journal
//! commit interval is long, so what reaches the device is what lamina flushed (fsync, syncfs) and
//! what the kernel wrote for it. A load, pull, commit or rmi is frozen (SIGSTOP) at a random
//! moment, the backing file copied as the crash image, the process killed; the copy is then
//! journal-replayed (fsck.ext4), mounted and checked: the store opens, `fsck` is clean or `--repair`
//! makes it clean, every image recorded before the operation is there, and every image recorded at
//! all mounts to the tree it had when it was made. README "Power loss" says how faithful this is.

use crate::common::{self, Store};
use crate::full_disk::{sh, LoopFs};
use crate::registry::fixture;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use lamina_testkit::tree::{self, Manifest};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The vm.dirty_* settings as they were; put back on drop (a panicking test unwinds through it).
struct WritebackHeld {
    saved: Vec<(&'static str, String)>,
}

const VM: &str = "/proc/sys/vm";

impl WritebackHeld {
    fn hold() -> WritebackHeld {
        let names = [
            "dirty_writeback_centisecs",
            "dirty_expire_centisecs",
            "dirty_background_bytes",
            "dirty_background_ratio",
            "dirty_bytes",
            "dirty_ratio",
        ];
        let saved = names
            .iter()
            .map(|n| {
                let v = std::fs::read_to_string(format!("{VM}/{n}")).expect("read vm sysctl");
                (*n, v.trim().to_string())
            })
            .collect();
        let held = WritebackHeld { saved };
        // no periodic flusher, nothing old enough to expire, thresholds far above what the test
        // dirties (a few MB); setting a ratio clears its _bytes twin
        for (n, v) in [
            ("dirty_writeback_centisecs", "0"),
            ("dirty_expire_centisecs", "360000"),
            ("dirty_background_ratio", "50"),
            ("dirty_ratio", "60"),
        ] {
            std::fs::write(format!("{VM}/{n}"), v).expect("set vm sysctl");
        }
        held
    }
}

impl Drop for WritebackHeld {
    fn drop(&mut self) {
        let get = |n: &str| {
            self.saved
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or("0")
        };
        // the _bytes form wins when it was set; otherwise the ratio (writing one zeroes the other)
        let mut order = vec!["dirty_writeback_centisecs", "dirty_expire_centisecs"];
        for (bytes, ratio) in [
            ("dirty_background_bytes", "dirty_background_ratio"),
            ("dirty_bytes", "dirty_ratio"),
        ] {
            order.push(if get(bytes) != "0" { bytes } else { ratio });
        }
        for n in order {
            let _ = std::fs::write(format!("{VM}/{n}"), get(n));
        }
    }
}

fn layer(name: &str, files: usize, size: usize) -> Layer {
    let mut rng = rand::thread_rng();
    let mut w = TarWriter::new();
    w.dir(format!("{name}/"), 0o755);
    for i in 0..files {
        let body: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
        w.file(format!("{name}/f{i:03}"), 0o644, &body);
    }
    Layer::new(&w.finish(), Compression::Gzip)
}

/// What the test knows about an image it may find in a crash copy: the tree it mounts to.
type Expected = BTreeMap<String, Manifest>;

/// `lamina mount TAG --read-only` in `s`, described, unmounted.
fn tree_of(s: &Store, tag: &str) -> Result<Manifest, String> {
    let r = s.lamina(&["mount", tag, "--read-only"]);
    if !r.success() {
        return Err(r.describe());
    }
    let dir = PathBuf::from(r.stdout.trim());
    let m = tree::describe(&dir);
    let u = s.lamina(&[Path::new("umount"), &dir]);
    if !u.success() {
        return Err(u.describe());
    }
    Ok(m)
}

/// (image ID, NAME:TAG) of every image listed.
fn ids(s: &Store) -> Vec<(String, String)> {
    s.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ])
    .stdout
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(id, t)| (id.to_string(), t.to_string()))
    .collect()
}

#[derive(Default)]
struct Counts {
    crashes: usize,
    frozen_running: usize,
    repaired: usize,
    damaged: Vec<String>,
    missing: Vec<String>,
}

/// The crash copy `img`, checked: see the module comment.
fn check_image(
    check: &mut Store,
    img: &Path,
    expected: &Expected,
    must_have: &BTreeSet<String>,
    c: &mut Counts,
) {
    // journal replay and repair, as the boot after a power cut would (exit 1 and 2: corrected)
    let fsck = Command::new("fsck.ext4")
        .args(["-f", "-y"])
        .arg(img)
        .output()
        .expect("fsck.ext4");
    let code = fsck.status.code().unwrap_or(8);
    assert!(code < 4, "fsck.ext4 of the crash copy: exit {code}");
    let dir = check.scratch("fs");
    sh(Command::new("mount")
        .args(["-o", "loop"])
        .arg(img)
        .arg(&dir));
    sh(Command::new("mount").arg("--make-private").arg(&dir));
    check.root = dir.join("store");
    let first = check.lamina(&["fsck"]);
    if !first.success() || !first.stderr.contains(" 0 problems found") {
        check.ok(&["fsck", "--repair"]);
        let again = check.ok(&["fsck"]);
        assert!(
            again.stderr.contains(" 0 problems found"),
            "fsck after --repair: {}\nfirst: {}",
            again.describe(),
            first.describe()
        );
        c.repaired += 1;
    }
    let found = ids(check);
    for id in must_have {
        if !found.iter().any(|(f, _)| f == id) {
            c.missing.push(format!("crash {}: {id}", c.crashes));
        }
    }
    for (id, t) in found {
        // an `rmi` cut between untagging and deleting leaves the image untagged (`x:<none>`, kept
        // by its repository digest, as docker's would be): it is still an image to check
        let key = match t.strip_suffix(":<none>") {
            Some(repo) => format!("{}:ref", repo.rsplit('/').next().unwrap_or(repo)),
            None => t.clone(),
        };
        let want = expected
            .get(&key)
            .or_else(|| expected.get(&id))
            .unwrap_or_else(|| panic!("crash {}: an image the test never made: {t}", c.crashes));
        match tree_of(check, &id) {
            Ok(got) => {
                let d = tree::differences(want, &got, tree::ORACLE);
                if !d.is_empty() {
                    c.damaged.push(format!(
                        "crash {}: {t}: {:?}",
                        c.crashes,
                        &d[..d.len().min(3)]
                    ));
                }
            }
            Err(e) => c.damaged.push(format!("crash {}: {t}: {e}", c.crashes)),
        }
    }
}

/// Runs `args` on `live`, freezes it after a random part of `typical`, copies the crash image,
/// kills it, and checks the copy. When the command had already ended: the delay that missed it.
fn crash_during(
    live: &Store,
    fs: &LoopFs,
    args: &[String],
    typical: Duration,
    expected: &Expected,
    must_have: &BTreeSet<String>,
    c: &mut Counts,
) -> Option<Duration> {
    let mut rng = rand::thread_rng();
    let delay = Duration::from_micros(rng.gen_range(0..=typical.as_micros().max(1) as u64));
    let mut child = live.spawn_silent(args);
    std::thread::sleep(delay);
    let pid = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::STOP);
    let missed = child.try_wait().expect("wait").is_some();
    if !missed {
        c.frozen_running += 1;
    }
    let mut check = Store::new("power-check");
    let img = check.base.join("crash.img");
    sh(Command::new("cp")
        .arg("--sparse=always")
        .arg(&fs.image)
        .arg(&img));
    let _ = child.kill();
    let _ = child.wait();
    c.crashes += 1;
    check_image(&mut check, &img, expected, must_have, c);
    missed.then_some(delay)
}

fn timed(s: &Store, args: &[String]) -> Duration {
    let t = Instant::now();
    s.ok(args);
    t.elapsed()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn power_loss_during_load_pull_commit_and_rmi_damages_no_recorded_image() {
    if !common::require_root() || !common::have_tool("mkfs.ext4") || !common::have_tool("fsck.ext4")
    {
        return;
    }
    let _heavy = common::heavy();
    let rounds: usize = std::env::var("LAMINA_POWER_LOSS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut live = Store::new("power");
    // journal commits every 10 minutes instead of 5 s, so jbd2 does not write data back for us
    let fs = LoopFs::with_options(&live, 96, 0, "loop,commit=600");
    live.root = fs.dir.join("store");
    let _held = WritebackHeld::hold();

    // three images sharing a bottom layer; the base ones stay, the others come and go
    let shared = layer("shared", 40, 8_000);
    let mut sources = BTreeMap::new();
    for name in ["base", "x", "y"] {
        let img = Image::new(vec![
            shared.clone(),
            layer(name, 60, 6_000),
            layer(&format!("{name}2"), 3, 100_000),
        ]);
        let dir = live.scratch(&format!("src-{name}"));
        OciBuilder::new()
            .image(Some("latest"), img)
            .write_layout(&dir);
        sources.insert(name, dir);
    }
    let mut expected = Expected::new();
    live.load(&sources["base"], &["--tag", "base:1"]);
    expected.insert(
        "base:1".into(),
        tree_of(&live, "base:1").expect("mount base"),
    );
    for name in ["x", "y"] {
        let tag = format!("{name}:ref");
        live.load(&sources[name], &["--tag", &tag]);
        expected.insert(format!("{name}:ref"), tree_of(&live, &tag).expect("mount"));
        live.ok(&["rmi", &tag]);
    }
    let refs: BTreeMap<&str, Manifest> = ["x", "y"]
        .into_iter()
        .map(|n| (n, expected[&format!("{n}:ref")].clone()))
        .collect();
    let reference = |name: &str| refs[name].clone();

    let registry = fixture::env().map(|env| {
        let reg = fixture::Registry::start(&env, &[]);
        for name in ["x", "y"] {
            reg.push(
                &format!("oci:{}:latest", sources[name].display()),
                &format!("pl/{name}:1"),
                &[],
            );
        }
        (env, reg)
    });
    let kinds: Vec<&str> = if registry.is_some() {
        vec!["load", "pull", "commit", "rmi"]
    } else {
        common::skip("power-loss: no registry (../shared recipes); pull's crashes go to load");
        vec!["load", "commit", "rmi"]
    };

    let mut c = Counts::default();
    let mut typical: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    for round in 0..rounds {
        let kind = kinds[round % kinds.len()];
        *per_kind.entry(kind).or_default() += 1;
        let name = if rng.gen_bool(0.5) { "x" } else { "y" };
        let (args, made, cleanup): (Vec<String>, String, Vec<Vec<String>>) = match kind {
            "load" => {
                let tag = format!("{name}:l{round}");
                let args = vec![
                    "load".into(),
                    sources[name].display().to_string(),
                    "--tag".into(),
                    tag.clone(),
                ];
                expected.insert(tag.clone(), reference(name));
                (args, tag.clone(), vec![strings(&["rmi", &tag])])
            }
            "pull" => {
                let (_, reg) = registry.as_ref().expect("registry");
                let tag = format!("{}/pl/{name}:1", reg.host());
                expected.insert(tag.clone(), reference(name));
                (
                    strings(&["pull", &tag]),
                    tag.clone(),
                    vec![strings(&["rmi", &tag])],
                )
            }
            "commit" => {
                let id = format!("c{round}");
                let merged = live.mount("base:1", &["--name", &id]);
                let size = rng.gen_range(100_000..2_000_000);
                let body: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
                std::fs::write(merged.join(format!("made{round}")), body)
                    .expect("write into mount");
                let tag = format!("made:{round}");
                expected.insert(tag.clone(), tree::describe(&merged));
                (
                    strings(&["commit", &id, &tag]),
                    tag.clone(),
                    vec![strings(&["umount", &id]), strings(&["rmi", &tag])],
                )
            }
            _ => {
                let tag = format!("{name}:r{round}");
                live.load(&sources[name], &["--tag", &tag]);
                expected.insert(tag.clone(), reference(name));
                (
                    strings(&["rmi", &tag]),
                    tag.clone(),
                    vec![strings(&["rmi", &tag])],
                )
            }
        };
        // every image recorded before the operation, but the one an rmi removes, must survive
        let before = ids(&live);
        let removed: Vec<&String> = before
            .iter()
            .filter(|(_, t)| kind == "rmi" && *t == made)
            .map(|(id, _)| id)
            .collect();
        let must_have: BTreeSet<String> = before
            .iter()
            .map(|(id, _)| id.clone())
            .filter(|id| !removed.contains(&id))
            .collect();
        let t = match typical.get(kind) {
            Some(t) => *t,
            None => {
                // the first of each kind runs undisturbed, to time it
                let t = timed(&live, &args);
                for a in &cleanup {
                    let _ = live.lamina(a);
                }
                if kind == "rmi" {
                    live.load(&sources[name], &["--tag", &made]);
                }
                if kind == "commit" {
                    let id = format!("c{round}");
                    live.mount("base:1", &["--name", &id]);
                    let merged = live.root().join("mounts").join(&id).join("merged");
                    std::fs::write(merged.join(format!("made{round}")), b"again").expect("write");
                    expected.insert(made.clone(), tree::describe(&merged));
                }
                typical.insert(kind, t);
                t
            }
        };
        if let Some(late) = crash_during(&live, &fs, &args, t, &expected, &must_have, &mut c) {
            // the first run was slower than this kind runs now (a cold cache): aim earlier
            typical.insert(kind, late.min(t) * 3 / 4);
        }
        // images are also known by ID, for a later copy that shows one untagged
        for (id, t) in ids(&live) {
            if let Some(m) = expected.get(&t).cloned() {
                expected.insert(id, m);
            }
        }
        for a in &cleanup {
            let _ = live.lamina(a);
        }
        // and whatever a killed command left recorded (an rmi cut after untagging leaves the image
        // untagged): each round starts from the base image alone
        for (id, t) in ids(&live) {
            if t != "base:1" {
                let _ = live.lamina(&["rmi", "-f", &id]);
            }
        }
    }
    println!(
        "power-loss: {} crashes, {} damaged, {} missing ({} frozen while running, {} needed fsck \
         --repair; {per_kind:?}; {:.1?})",
        c.crashes,
        c.damaged.len(),
        c.missing.len(),
        c.frozen_running,
        c.repaired,
        started.elapsed()
    );
    assert!(c.damaged.is_empty(), "damaged: {:#?}", c.damaged);
    assert!(c.missing.is_empty(), "missing: {:#?}", c.missing);
    assert!(
        c.frozen_running >= c.crashes / 2,
        "only {} of {} freezes hit a running command",
        c.frozen_running,
        c.crashes
    );
}
