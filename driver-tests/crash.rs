//! A load killed at any instant leaves nothing half-visible; the next load succeeds and clears
//! the staging leftovers. Two loads of images sharing a layer at once store it once.

use crate::common::{self, Store};
use crate::oracle;
use lamina_testkit::oci::{hex_of, Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use lamina_testkit::tree;
use rand::Rng;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn sigkill_during_load_then_reload() {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let Some(images) = common::test_images() else {
        return;
    };
    let _heavy = common::heavy();
    let layout = images.join("debian");
    let expected = oracle::oracle(&layout, "test");
    let rounds: usize = std::env::var("LAMINA_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);

    // how long an undisturbed load takes here, to spread the kills over it
    let typical = {
        let s = Store::new("crash-timing");
        let t0 = Instant::now();
        s.load(&layout, &[]);
        t0.elapsed()
    };
    let mut rng = rand::thread_rng();
    let mut killed_while_running = 0;
    for round in 0..rounds {
        let s = Store::new(&format!("crash{round}"));
        let delay = Duration::from_millis(rng.gen_range(0..=typical.as_millis().max(1) as u64));
        let mut child = s.spawn_silent(&[Path::new("load"), &layout]);
        std::thread::sleep(delay);
        if child.try_wait().expect("wait").is_none() {
            killed_while_running += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        // the next command, whatever it is, clears the staging leftovers; an image it lists
        // is complete (checked below: the reload must find it intact)
        s.ok(&["images", "-q", "--no-trunc"]);
        assert!(
            s.staging_leftovers().is_empty(),
            "round {round} (killed after {delay:?}): staging left after the next command: {:?}",
            s.staging_leftovers()
        );

        let r = s.load(&layout, &[]);
        assert_eq!(
            common::loaded_images(&r),
            ["debian:test"],
            "round {round} (killed after {delay:?}): {}",
            r.describe()
        );
        assert!(
            s.staging_leftovers().is_empty(),
            "round {round}: staging left: {:?}",
            s.staging_leftovers()
        );
        let target = s.scratch("view");
        let m = s.mount(
            "debian:test",
            &["--read-only", "--target", &target.to_string_lossy()],
        );
        let actual = tree::treemanifest(&m);
        s.umount(&m);
        tree::assert_same(
            &format!("round {round}, killed after {delay:?}"),
            &expected,
            &actual,
            tree::ORACLE,
        );
        assert!(
            s.staging_leftovers().is_empty(),
            "round {round}: staging left after mount: {:?}",
            s.staging_leftovers()
        );
    }
    assert!(
        killed_while_running >= rounds / 2,
        "only {killed_while_running} of {rounds} kills hit a running load (typical {typical:?})"
    );
}

fn noise_tar(files: usize, size: usize) -> Vec<u8> {
    let mut rng = rand::thread_rng();
    let mut w = TarWriter::new();
    w.dir("base/", 0o755);
    for i in 0..files {
        let body: Vec<u8> = (0..size).map(|_| rng.gen_range(b'a'..=b'z')).collect();
        w.file(format!("base/f{i:04}"), 0o644, &body);
    }
    w.finish()
}

#[test]
fn concurrent_loads_store_a_shared_layer_once() {
    if !common::require_root() {
        return;
    }
    let base = Layer::new(&noise_tar(400, 40_000), Compression::Gzip);
    for round in 0..3 {
        let s = Store::new(&format!("concurrent{round}"));
        let mut layouts = Vec::new();
        for tag in ["one", "two"] {
            let img = Image::new(vec![base.clone(), crate::load::marker_layer(tag)]);
            let dir = s.scratch(tag);
            OciBuilder::new()
                .image(Some("latest"), img)
                .write_layout(&dir);
            layouts.push(dir);
        }
        let handles: Vec<_> = layouts
            .iter()
            .map(|dir| {
                let mut cmd = s.command();
                cmd.arg("load").arg(dir);
                std::thread::spawn(move || common::run(&mut cmd, common::LIMIT))
            })
            .collect();
        for h in handles {
            h.join().expect("thread").expect_ok();
        }
        let dirs = common::list_dir(&s.root.join("layers"));
        assert_eq!(
            dirs.len(),
            3,
            "round {round}: base once + two tops: {dirs:?}"
        );
        assert!(
            dirs.iter().any(|d| d == hex_of(&base.diff_id)),
            "round {round}: {dirs:?}"
        );
        for tag in ["one", "two"] {
            let m = s.mount(&format!("{tag}:latest"), &["--read-only"]);
            assert_eq!(
                common::list_dir(&m.join("base")).len(),
                400,
                "round {round}: {tag}"
            );
            assert!(m.join("etc").join(tag).is_file());
            s.umount(&m);
        }
        assert!(
            s.staging_leftovers().is_empty(),
            "round {round}: {:?}",
            s.staging_leftovers()
        );
    }
}
