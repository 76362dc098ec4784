//! `lamina snapshotter` under a real containerd (Debian's 1.6, `[proxy_plugins.lamina]`): images
//! imported with `ctr images import` and pulled with `ctr images pull` from the local registry run
//! with `ctr run`, their trees (through a view containerd asks lamina for) equal `umoci unpack`'s,
//! and `ctr images rm` leaves no layer in lamina's store once containerd's GC has run. A 500-layer
//! image imports and runs. A layer chain `lamina load` stored is shared with a pull through
//! containerd's CRI plugin (the unpacker's `containerd.io/snapshot.ref` path): containerd fetches
//! and applies nothing. The sharing tests are in `containerd/share.rs`, the port of containerd 2.x's rename case in
//! `containerd/rename.rs`, the fast pull (lamina fetches the layers of a CRI pull itself) and a
//! pod run through CRI in `containerd/cri.rs`, SIGKILLs of the snapshotter in the middle of
//! containerd's calls in `containerd/kills.rs`.

mod calls;
mod cri;
mod fixture;
mod grpc;
mod kills;
mod mounts;
mod rename;
mod share;

use crate::common::{self, Store};
use crate::oracle;
use crate::registry::fixture as registry;
use fixture::{Containerd, Options, NS};
use lamina_testkit::compress::sha256_hex;
use lamina_testkit::oci::OciBuilder;
use lamina_testkit::tree::{self, Manifest};
use std::path::Path;
use std::time::{Duration, Instant};

/// The facts ../shared/recipes/make-busybox-image.sh builds into `busybox:layered` (whiteout,
/// opaque dir, hardlink, a file rewritten by a later layer), read back inside a container.
const LAYERED_PROBE: &str = "cat /etc/lamina/layer2.txt; ls /opt; ls /opt/keep; \
     stat -c %h /opt/keep/c; test -e /bin/vi && echo vi-present || echo vi-gone";
const LAYERED_EXPECTED: &str = "layer2 rewritten by layer3\nkeep\nc\nc-hardlink\n2\nvi-gone\n";

/// Whether the container's rootfs takes a write.
const READ_ONLY_PROBE: &str = "touch /probe 2>/dev/null && echo writable || echo read-only";

/// What the snapshotter's log holds once per Commit it serves (the module that serves it).
const COMMIT_LOGGED: &str = "snapshotter::commit";

/// Names directly under `dir` ("/bin") in a manifest.
fn children(m: &Manifest, dir: &str) -> Vec<String> {
    let prefix = format!("{dir}/");
    let mut v: Vec<String> = m
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The image's chain (through a view) equals `expected`.
fn assert_chain_tree(c: &Containerd, namespace: &str, what: &str, expected: &Manifest) {
    let top = c.top_of_chain(namespace);
    let actual = c.view_tree(namespace, &top);
    tree::assert_same(
        &format!("{what} through containerd and lamina vs umoci unpack"),
        expected,
        &actual,
        tree::ORACLE,
    );
}

/// `ctr images rm --sync` of every image in `namespace` (containerd's GC runs before the last
/// returns); then lamina's store holds no layer, no snapshot dir and no short link, and containerd
/// no snapshot.
fn remove_and_check_gc(c: &Containerd, namespace: &str) {
    let images = c
        .ctr_in(namespace, &["images", "ls", "-q"])
        .expect_ok()
        .stdout;
    let images: Vec<&str> = images.lines().collect();
    assert!(!images.is_empty(), "no image in {namespace} to remove");
    let mut rm = vec!["images", "rm", "--sync"];
    rm.extend(images.iter().copied());
    c.ctr_in(namespace, &rm).expect_ok();
    // `ctr run --rm` leaves its container's snapshot to the GC too; give a late one a moment
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = (
            c.layers(),
            common::list_dir(&c.store.root.join("snapshots")),
            common::list_dir(&c.store.root.join("l")),
            c.snapshots_in(namespace),
        );
        if left.0.is_empty() && left.1.is_empty() && left.2.is_empty() && left.3.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after ctr images rm {images:?} + GC, left in lamina's store (layers, snapshots, l) \
             and containerd: {left:?}\n--- snapshotter log (tail) ---\n{}",
            fixture::tail(&c.snapshotter.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let df = c.store.ok(&["df"]).stdout;
    let layers_row = df
        .lines()
        .find(|l| l.starts_with("Layers"))
        .unwrap_or_else(|| panic!("no Layers row in lamina df:\n{df}"));
    assert_eq!(
        layers_row.split_whitespace().nth(1),
        Some("0"),
        "lamina df after GC:\n{df}"
    );
}

/// `lamina fsck --verify` finds the store containerd filled consistent, and `lamina prune -a`
/// (which removes lamina's unused images) leaves containerd's snapshots alone.
fn assert_store_sound(c: &Containerd) {
    let before = c.layers();
    let r = c.store.ok(&["fsck", "--verify"]);
    assert!(
        r.lines().iter().any(|l| l.contains(" 0 problems found")),
        "{}",
        r.describe()
    );
    c.store.ok(&["prune", "-a", "-f"]);
    assert_eq!(
        c.layers(),
        before,
        "lamina prune -a removed a snapshot's layer"
    );
}

/// The one image name `ctr images ls -q` shows.
fn only_image(c: &Containerd) -> String {
    let r = c.ctr(&["images", "ls", "-q"]);
    let names: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(names.len(), 1, "{}", r.describe());
    names[0].to_string()
}

#[test]
fn import_run_and_gc_of_busybox_images() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    let Some(images) = common::test_images() else {
        return;
    };
    if !common::have_tool("umoci") {
        return;
    }
    let layout = images.join("busybox/oci");
    let c = Containerd::start(recipes, Store::new("ctr"), Options::default());

    // one layer, from an oci-archive
    let archive = images.join("busybox/busybox-oci.tar");
    c.import(&archive);
    let expected = oracle::oracle(&layout, "latest");
    let passwd = c.run("busybox:latest", &["cat", "/etc/passwd"]);
    assert_eq!(
        expected["/etc/passwd"].fields.get("sha256"),
        Some(&sha256_hex(passwd.as_bytes())),
        "/etc/passwd inside the container: {passwd}"
    );
    let listed = c.run("busybox:latest", &["ls", "-1A", "/bin"]);
    let mut listed: Vec<String> = listed.lines().map(str::to_string).collect();
    listed.sort();
    assert_eq!(
        listed,
        children(&expected, "/bin"),
        "ls /bin in the container"
    );
    assert_chain_tree(&c, NS, "busybox:latest", &expected);
    assert_eq!(
        c.run_in(
            NS,
            &["--read-only"],
            "busybox:latest",
            &["sh", "-c", READ_ONLY_PROBE]
        ),
        "read-only\n",
        "a --read-only container's rootfs (a View of the one layer)"
    );
    assert_eq!(c.layers().len(), 1, "one layer in lamina's store");
    remove_and_check_gc(&c, NS);

    // four layers with whiteouts, an opaque dir and a hardlink, from a docker-archive
    let archive = images.join("busybox/layered-docker.tar");
    c.import(&archive);
    let name = only_image(&c);
    assert_eq!(c.run(&name, &["sh", "-c", LAYERED_PROBE]), LAYERED_EXPECTED);
    assert_chain_tree(&c, NS, &name, &oracle::oracle(&layout, "layered"));
    assert_store_sound(&c);
    let probe = format!("{LAYERED_PROBE}; {READ_ONLY_PROBE}");
    assert_eq!(
        c.run_in(NS, &["--read-only"], &name, &["sh", "-c", &probe]),
        format!("{LAYERED_EXPECTED}read-only\n"),
        "a --read-only container's rootfs (a View of four layers)"
    );
    remove_and_check_gc(&c, NS);
}

#[test]
fn pull_from_the_local_registry_runs_and_is_collected() {
    let Some((recipes, images, env)) = fixture::registry_setup() else {
        return;
    };
    let layout = images.join("busybox/oci");
    let reg = serve_layered(&env, &layout);
    let c = Containerd::start(recipes, Store::new("ctr-pull"), Options::default());
    let name = format!("{}/busybox:layered", reg.host());
    c.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "lamina",
        &name,
    ]);
    assert_eq!(c.run(&name, &["sh", "-c", LAYERED_PROBE]), LAYERED_EXPECTED);
    assert_chain_tree(&c, NS, &name, &oracle::oracle(&layout, "layered"));
    assert_eq!(c.layers().len(), 4, "four layers in lamina's store");
    assert_eq!(
        c.snapshotter.logged(COMMIT_LOGGED),
        4,
        "one Commit per layer:\n{}",
        c.snapshotter.log_text()
    );
    remove_and_check_gc(&c, NS);
}

#[test]
fn a_500_layer_image_imports_and_runs() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    let Some(corpus) = common::corpus() else {
        return;
    };
    if !common::have_tool("umoci") || !Path::new("/bin/busybox").is_file() {
        common::skip("500-layer run: umoci or /bin/busybox (busybox-static) missing");
        return;
    }
    let _heavy = common::heavy();
    let _long = common::long_mountinfo();
    let expected = oracle::oracle(&corpus.join("oci/many-layers"), "500");
    let c = Containerd::start(recipes, Store::new("ctr-500"), Options::default());
    let archive = corpus.join("archives/many-layers-500.oci.tar");
    let took = c.import(&archive);
    eprintln!(
        "ctr images import of 500 layers into lamina: {:.1} s",
        took.as_secs_f64()
    );
    assert_eq!(c.layers().len(), 500, "500 layers in lamina's store");
    // the image has no binaries: the host's static busybox is bound in
    let started = Instant::now();
    let out = c.run_in(
        NS,
        &[
            "--mount",
            "type=bind,src=/bin/busybox,dst=/bin/busybox,options=rbind:ro",
        ],
        "many-layers:500",
        &["/bin/busybox", "cat", "/etc/layer-counter"],
    );
    eprintln!(
        "ctr run --rm on 500 layers: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out, "500\n");
    assert_chain_tree(&c, NS, "many-layers:500", &expected);
}

#[test]
fn a_layer_two_namespaces_share_outlives_one_removal() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    let Some(images) = common::test_images() else {
        return;
    };
    let c = Containerd::start(recipes, Store::new("ctr-ns"), Options::default());
    let archive = images.join("busybox/busybox-oci.tar");
    let archive = archive.to_str().expect("utf-8");
    let other = "lamina-test-2";
    for ns in [NS, other] {
        c.ctr_in(
            ns,
            &["images", "import", "--snapshotter", "lamina", archive],
        )
        .expect_ok();
    }
    // the same tree committed twice is one lamina layer under two snapshots
    assert_eq!(c.layers().len(), 1, "one layer for both namespaces");
    assert_eq!(
        c.snapshotter.logged(COMMIT_LOGGED),
        2,
        "one Commit per namespace"
    );
    remove_and_check_gc_of_one(&c, other);
    assert_eq!(
        c.layers().len(),
        1,
        "the other namespace's snapshot keeps the layer"
    );
    assert_eq!(
        c.run("busybox:latest", &["echo", "still here"]),
        "still here\n"
    );
    remove_and_check_gc(&c, NS);
}

/// `ctr -n NAMESPACE images rm --sync` of everything there; containerd then has no snapshot left
/// in that namespace.
fn remove_and_check_gc_of_one(c: &Containerd, namespace: &str) {
    let images = c
        .ctr_in(namespace, &["images", "ls", "-q"])
        .expect_ok()
        .stdout;
    let mut rm = vec!["images", "rm", "--sync"];
    rm.extend(images.lines());
    c.ctr_in(namespace, &rm).expect_ok();
    assert_eq!(c.snapshots_in(namespace), vec![], "{namespace} after GC");
}

#[test]
fn the_debian_image_imports_runs_and_equals_umoci() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    let Some(corpus) = common::corpus() else {
        return;
    };
    if !common::have_tool("umoci") {
        return;
    }
    let _heavy = common::heavy();
    let expected = oracle::oracle(&corpus.join("oci/debian"), "gzip");
    let c = Containerd::start(recipes, Store::new("ctr-debian"), Options::default());
    let archive = corpus.join("archives/debian-gzip.oci.tar");
    let took = c.import(&archive);
    eprintln!(
        "ctr images import of debian:gzip into lamina: {:.1} s",
        took.as_secs_f64()
    );
    let version = c.run("debian:gzip", &["cat", "/etc/debian_version"]);
    assert_eq!(
        expected["/etc/debian_version"].fields.get("sha256"),
        Some(&sha256_hex(version.as_bytes())),
        "/etc/debian_version inside the container: {version}"
    );
    assert_chain_tree(&c, NS, "debian:gzip", &expected);
    remove_and_check_gc(&c, NS);
}

#[test]
fn containerd_reconnects_to_a_restarted_snapshotter() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    let Some(images) = common::test_images() else {
        return;
    };
    let mut c = Containerd::start(recipes, Store::new("ctr-restart"), Options::default());
    let archive = images.join("busybox/layered-docker.tar");
    c.import(&archive);
    let name = only_image(&c);
    c.snapshotter.kill();
    // the new one replaces the dead one's socket; what containerd recorded is in lamina's store
    c.snapshotter = fixture::Snapshotter::start(&c.store);
    // gRPC's reconnect backoff may refuse the first calls, and a call already on the dead
    // connection ends "connection closed"; both are gRPC's Unavailable, which a client retries
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.try_run_in(NS, &[], &name, &["sh", "-c", LAYERED_PROBE]);
        if r.success() {
            assert_eq!(r.stdout, LAYERED_EXPECTED);
            break;
        }
        assert!(
            Instant::now() < deadline
                && (r.stderr.contains("connection refused")
                    || r.stderr.trim_end().ends_with(": unavailable")),
            "after the snapshotter's restart: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_store_sound(&c);
    remove_and_check_gc(&c, NS);
}

/// Regression: an image that repeats a layer has two committed snapshots on one lamina layer; a
/// container (or view) over both failed to mount with "too many levels of symbolic links".
#[test]
fn an_image_repeating_a_layer_runs() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    if !common::have_tool("umoci") || !Path::new("/bin/busybox").is_file() {
        common::skip("repeated layer: umoci or /bin/busybox (busybox-static) missing");
        return;
    }
    let c = Containerd::start(recipes, Store::new("ctr-repeat"), Options::default());
    let layout = c.store.scratch("repeat");
    OciBuilder::new()
        .image(Some("latest"), crate::mount::repeated_layer_image())
        .write_layout(&layout);
    let archive = c.store.base.join("repeat.tar");
    OciBuilder::new()
        .image(Some("repeat:latest"), crate::mount::repeated_layer_image())
        .write_oci_archive(&archive);
    c.import(&archive);
    assert_eq!(
        c.layers().len(),
        3,
        "X is one lamina layer under two snapshots"
    );
    let out = c.run_in(
        NS,
        &[
            "--mount",
            "type=bind,src=/bin/busybox,dst=/bin/busybox,options=rbind:ro",
        ],
        "repeat:latest",
        &["/bin/busybox", "sh", "-c", "cat /etc/x; ls /d /etc"],
    );
    assert_eq!(out, "from X\n/d:\nfx\nfy\n\n/etc:\nx\n");
    assert_chain_tree(&c, NS, "repeat:latest", &oracle::oracle(&layout, "latest"));
    remove_and_check_gc(&c, NS);
}

/// A local distribution registry serving the test images' `busybox:layered` (from `layout`).
fn serve_layered(env: &registry::Env, layout: &Path) -> registry::Registry {
    let reg = registry::Registry::start(env, &[]);
    reg.push(
        &format!("oci:{}:layered", layout.display()),
        "busybox:layered",
        &[],
    );
    reg
}
