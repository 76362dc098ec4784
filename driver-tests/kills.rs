//! SIGKILL at a random instant of `rmi`, `prune -a -f`, `mount --name X` and the first mount of a
//! store (the kernel feature probe): the next command of the same kind succeeds, and `fsck` (without
//! `--repair`) then finds nothing; removals leave nothing in `layers/` or `blobs/` behind.

use crate::common::{self, Store};
use crate::concurrency::{file_counts, files_layer, layout};
use rand::Rng;
use std::path::Path;
use std::time::{Duration, Instant};

fn rounds() -> usize {
    std::env::var("LAMINA_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// Starts `lamina ARGS` and SIGKILLs it after a random delay of up to `within`; true when it was
/// still running then.
fn kill_during(s: &Store, args: &[&str], within: Duration) -> bool {
    let mut child = s.spawn_silent(args);
    let delay = rand::thread_rng().gen_range(0..=within.as_millis().max(1) as u64);
    std::thread::sleep(Duration::from_millis(delay));
    let running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// `fsck` finds nothing (and says so with exit 0).
fn assert_clean(s: &Store, what: &str) {
    let r = s.lamina(&["fsck"]);
    assert!(
        r.success() && r.stdout.trim().is_empty(),
        "{what}: fsck found problems: {}",
        r.describe()
    );
}

fn timed(f: impl FnOnce()) -> Duration {
    let t0 = Instant::now();
    f();
    t0.elapsed()
}

#[test]
fn killed_rmi_and_prune_are_finished_by_the_next_one() {
    if !common::require_root() {
        return;
    }
    let rounds = rounds();
    let s = Store::new("kill-rmi");
    let base = files_layer("base", 100, 1_000, false);
    // Many files: removing this layer's tree takes long enough for kills to land inside it.
    let one = layout(
        &s,
        "one",
        vec![base.clone(), files_layer("one", 600, 200, false)],
    );
    let two = layout(&s, "two", vec![base, files_layer("two", 3, 100, false)]);
    let fill = || {
        s.load(&one, &[]);
        s.load(&two, &[]);
    };
    fill();
    let typical = timed(|| {
        s.ok(&["rmi", "one:latest"]);
    });
    s.ok(&["prune", "-a", "-f"]);
    for op in ["rmi", "prune"] {
        let mut hit = 0;
        for round in 0..rounds {
            fill();
            let killed: &[&str] = if op == "rmi" {
                &["rmi", "one:latest"]
            } else {
                &["prune", "-a", "-f"]
            };
            hit += kill_during(&s, killed, typical) as usize;
            let what = format!("{op} round {round}");
            // The next command of the same kind.
            if op == "rmi" {
                let listed = s.ok(&["images", "-q"]).stdout.lines().count();
                if listed == 2 {
                    s.ok(&["rmi", "one:latest"]);
                }
                assert_eq!(
                    file_counts(&s, "two:latest", &["base", "two"]),
                    Some(vec![100, 3]),
                    "{what}: two:latest"
                );
                assert_clean(&s, &what);
                s.ok(&["rmi", "two:latest"]);
            } else {
                s.ok(&["prune", "-a", "-f"]);
            }
            assert_clean(&s, &what);
            for dir in ["layers", "blobs/sha256"] {
                let left = common::list_dir(&s.root.join(dir));
                assert!(left.is_empty(), "{what}: {dir} still holds {left:?}");
            }
        }
        println!("kills: {rounds} SIGKILLs of `{op}` ({hit} while it ran): next {op} succeeded, fsck clean");
    }
}

#[test]
fn killed_named_mount_is_cleared_by_the_next_mount_of_the_name() {
    if !common::require_root() {
        return;
    }
    let rounds = rounds();
    let s = Store::new("kill-mount");
    let img = layout(
        &s,
        "img",
        vec![
            files_layer("a", 20, 100, false),
            files_layer("b", 20, 100, false),
        ],
    );
    s.load(&img, &[]);
    // The first mount probes the kernel (see the next test); time a mount after it.
    s.ok(&["mount", "img:latest", "--name", "probe"]);
    s.ok(&["umount", "probe"]);
    let typical = timed(|| {
        s.ok(&["mount", "img:latest", "--name", "probe"]);
    });
    s.ok(&["umount", "probe"]);
    let (mut hit, mut finished) = (0, 0);
    for round in 0..rounds {
        hit += kill_during(&s, &["mount", "img:latest", "--name", "x"], typical) as usize;
        let r = s.lamina(&["mount", "img:latest", "--name", "x"]);
        if !r.success() {
            // Only a mount the killed command finished may keep the name.
            let mounted = s.ok(&["mounts"]).stdout.contains("x");
            assert!(
                mounted && r.stderr.contains("already exists"),
                "round {round}: {}",
                r.describe()
            );
            finished += 1;
            s.ok(&["umount", "x"]);
            s.ok(&["mount", "img:latest", "--name", "x"]);
        }
        s.ok(&["umount", "x"]);
        assert_clean(&s, &format!("mount --name round {round}"));
    }
    println!(
        "kills: {rounds} SIGKILLs of `mount --name x` ({hit} while it ran, {finished} after it had \
         mounted): next mount --name x succeeded, fsck clean"
    );
}

#[test]
fn killed_first_mount_of_a_store_is_cleared_by_the_next_mount() {
    if !common::require_root() {
        return;
    }
    let rounds = rounds();
    let s = Store::new("kill-probe");
    let img = layout(
        &s,
        "img",
        vec![
            files_layer("a", 5, 100, false),
            files_layer("b", 5, 100, false),
        ],
    );
    s.load(&img, &[]);
    let features = s.root.join("features.json");
    let typical = timed(|| {
        let m = s.mount("img:latest", &[]);
        s.umount(&m);
    });
    let mut hit = 0;
    for round in 0..rounds {
        let _ = std::fs::remove_file(&features);
        hit += kill_during(&s, &["mount", "img:latest"], typical) as usize;
        let m = s.mount("img:latest", &[]);
        assert!(Path::new(&m).join("a").is_dir(), "round {round}");
        s.umount(&m);
        assert_clean(&s, &format!("first mount round {round}"));
    }
    println!("kills: {rounds} SIGKILLs of a store's first mount ({hit} while it ran): next mount succeeded, fsck clean");
}

#[test]
fn damaged_layer_record_is_repaired_or_recreated() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("damaged-record");
    let shared = files_layer("shared", 5, 100, false);
    let one = layout(
        &s,
        "one",
        vec![shared.clone(), files_layer("one", 2, 10, false)],
    );
    let two = layout(
        &s,
        "two",
        vec![shared.clone(), files_layer("two", 2, 10, false)],
    );
    s.load(&one, &[]);
    let dir = s
        .root
        .join("layers")
        .join(&shared.diff_id["sha256:".len()..]);
    let record = dir.join("layer.json");
    let saved = std::fs::read(&record).expect("layer.json");

    // fsck --repair writes it again from the database.
    std::fs::remove_file(&record).expect("rm layer.json");
    let r = s.fails(&["fsck"]);
    assert!(
        r.stdout.contains("layer.json is missing"),
        "{}",
        r.describe()
    );
    s.ok(&["fsck", "--repair"]);
    assert!(
        record.is_file(),
        "fsck --repair did not write layer.json again"
    );
    assert_clean(&s, "after fsck --repair");

    // The next load that needs the layer re-creates it instead of unpacking it again.
    std::fs::remove_file(&record).expect("rm layer.json");
    let r = s.load(&two, &[]);
    let short = &shared.diff_id["sha256:".len().."sha256:".len() + 12];
    assert!(
        common::layer_lines(&r).contains(&(short.to_string(), "Already exists".to_string())),
        "the layer was unpacked again: {}",
        r.describe()
    );
    let back: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).expect("layer.json re-created")).unwrap();
    let before: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(back["diff_id"], before["diff_id"]);
    assert_clean(&s, "after the load");

    // A missing file list is damage, not an older lamina's layer.
    std::fs::remove_file(dir.join("files")).expect("rm files");
    let r = s.fails(&["fsck", "--verify"]);
    assert!(
        r.stdout.contains("file list (files) is missing") && !r.stdout.contains("older lamina"),
        "{}",
        r.describe()
    );
}
