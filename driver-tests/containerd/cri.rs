//! Issue 10 point 5 under a real containerd: the fast pull. A pull through containerd's CRI plugin
//! (kubelet's `PullImage`, `disable_snapshot_annotations = false`) into an empty lamina store:
//! lamina fetches every layer from the registry itself on the labelled Prepares, containerd
//! fetches no layer blob and lamina serves no Commit. Then a pod runs the image as kubelet would
//! (../shared/recipes/cri-pod: RunPodSandbox, CreateContainer, StartContainer), and containerd's
//! GC takes the fetched layers away again. A registry only containerd has credentials for makes
//! every layer fall back to containerd's own fetch and apply.

use super::fixture::{self, Containerd, Options};
use super::share::layer_digests;
use super::{
    assert_chain_tree, grpc, remove_and_check_gc, serve_layered, COMMIT_LOGGED, LAYERED_EXPECTED,
    LAYERED_PROBE,
};
use crate::common::{self, Store};
use crate::oracle;
use crate::registry::fixture as registry;
use lamina_testkit::oci::{Image, Layer, OciBuilder};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What the snapshotter logs once per layer it fetched for a Prepare (`engine::snapshots_fetch`).
const FETCHED_LOGGED: &str = "fast pull: lamina fetched the layer";

/// The sandbox image ../shared/recipes/cri-pod/cri-up.sh (and the fixture's CRI config) names.
const PAUSE: &str = "docker.io/library/pause:local";

#[test]
fn a_cri_pull_is_fetched_by_lamina_and_its_pod_runs() {
    let Some((recipes, images, env)) = fixture::registry_setup() else {
        return;
    };
    let Some(client) = cri_client(&recipes) else {
        return;
    };
    let layout = images.join("busybox/oci");
    let reg = serve_layered(&env, &layout);
    // the snapshotter reads an empty docker config (the registry is anonymous), not ~/.docker
    let store = Store::new("ctr-cri").with_docker_config();
    let c = Containerd::start(
        recipes.clone(),
        store,
        Options {
            cri_registry: Some(reg.host()),
            fetch_layers: true,
            ..Options::default()
        },
    );
    let name = format!("{}/busybox:layered", reg.host());
    let started = Instant::now();
    let image_ref = grpc::cri_pull(&c.socket(), &name).unwrap_or_else(|(code, msg)| {
        panic!(
            "CRI PullImage {name}: {code:?} {msg}\n--- snapshotter log (tail) ---\n{}",
            fixture::tail(&c.snapshotter.log_text(), 30)
        )
    });
    eprintln!("CRI PullImage {name} (fast pull): {:?}", started.elapsed());
    assert!(image_ref.starts_with("sha256:"), "image ref {image_ref}");

    // every layer came through lamina: fetched by it, no Commit, no blob in containerd's content
    let layers = layer_digests(&layout, "layered");
    let log = c.snapshotter.log_text();
    assert_eq!(
        c.snapshotter.logged(FETCHED_LOGGED),
        layers.len(),
        "layers lamina fetched:\n{log}"
    );
    assert_eq!(c.snapshotter.logged(COMMIT_LOGGED), 0, "Commits:\n{log}");
    let content = c.ctr_in("k8s.io", &["content", "ls", "-q"]).stdout;
    for layer in &layers {
        assert!(
            !content.contains(layer.as_str()),
            "containerd fetched layer {layer} itself:\n{content}"
        );
    }
    assert_eq!(c.layers().len(), layers.len(), "lamina's store");
    let committed = c
        .snapshots_in("k8s.io")
        .into_iter()
        .filter(|s| s.2 == "Committed")
        .count();
    assert_eq!(committed, layers.len(), "containerd's committed snapshots");
    assert_chain_tree(&c, "k8s.io", &name, &oracle::oracle(&layout, "layered"));

    // a pod runs the image as kubelet would
    let pause = c.store.base.join("pause.tar");
    pause_archive(&layout, &pause);
    c.ctr_in(
        "k8s.io",
        &[
            "images",
            "import",
            "--snapshotter",
            "lamina",
            pause.to_str().expect("utf-8"),
        ],
    )
    .expect_ok();
    let mut pod = Command::new(client.join("venv/bin/python"));
    pod.arg(recipes.join("cri-pod/cri_pod.py"))
        .arg(&c.dir)
        .arg(&name)
        .args(["sh", "-c", LAYERED_PROBE])
        .env("PYTHONPATH", &client);
    let r = common::run(&mut pod, Duration::from_secs(180));
    assert!(
        r.success(),
        "{}\n--- containerd log (tail) ---\n{}",
        r.describe(),
        fixture::tail(&c.log_text(), 30)
    );
    assert_eq!(
        cri_log_text(&r.stdout),
        LAYERED_EXPECTED,
        "{}",
        r.describe()
    );

    // containerd's GC removes both images: nothing of them stays in lamina's store
    remove_and_check_gc(&c, "k8s.io");
}

/// The fast pull over a base `lamina load` stored (`busybox:latest` is `busybox:layered`'s bottom
/// layer): the base is shared, the first labelled Prepare is the second layer's, and lamina
/// fetches the three above it. containerd fetches and applies nothing.
#[test]
fn a_cri_pull_over_a_loaded_base_fetches_only_the_rest() {
    let Some(recipes) = fixture::recipes() else {
        return;
    };
    let Some(images) = common::test_images() else {
        return;
    };
    let Some(env) = registry::env() else {
        return;
    };
    let layout = images.join("busybox/oci");
    let reg = serve_layered(&env, &layout);
    let store = Store::new("ctr-cri-base").with_docker_config();
    store.load(Path::new(&format!("{}:latest", layout.display())), &[]);
    let c = Containerd::start(
        recipes,
        store,
        Options {
            cri_registry: Some(reg.host()),
            fetch_layers: true,
            ..Options::default()
        },
    );
    let name = format!("{}/busybox:layered", reg.host());
    grpc::cri_pull(&c.socket(), &name).unwrap_or_else(|(code, msg)| {
        panic!(
            "CRI PullImage {name}: {code:?} {msg}\n--- snapshotter log (tail) ---\n{}",
            fixture::tail(&c.snapshotter.log_text(), 30)
        )
    });
    let layers = layer_digests(&layout, "layered");
    let log = c.snapshotter.log_text();
    assert_eq!(
        c.snapshotter.logged(FETCHED_LOGGED),
        layers.len() - 1,
        "{log}"
    );
    assert_eq!(c.snapshotter.logged(COMMIT_LOGGED), 0, "{log}");
    let content = c.ctr_in("k8s.io", &["content", "ls", "-q"]).stdout;
    for layer in &layers {
        assert!(!content.contains(layer.as_str()), "{layer} in:\n{content}");
    }
    assert_eq!(
        c.layers().len(),
        layers.len(),
        "each layer once in lamina's store"
    );
    assert_eq!(
        c.run_in("k8s.io", &[], &name, &["sh", "-c", LAYERED_PROBE]),
        LAYERED_EXPECTED
    );
}

/// A registry that wants credentials only containerd has (as kubelet's pull secrets): lamina's
/// fetches get a 401, and every layer falls back to containerd's own fetch and apply. The pull
/// succeeds all the same, each layer once in lamina's store, and the snapshotter says why.
#[test]
fn a_cri_pull_lamina_cannot_fetch_falls_back_to_containerd() {
    let Some((recipes, images, env)) = fixture::registry_setup() else {
        return;
    };
    let layout = images.join("busybox/oci");
    let reg = registry::Registry::start(&env, &["--auth"]);
    reg.push(
        &format!("oci:{}:layered", layout.display()),
        "busybox:layered",
        &[],
    );
    let c = Containerd::start(
        recipes,
        Store::new("ctr-cri-auth").with_docker_config(),
        Options {
            cri_registry: Some(reg.host()),
            fetch_layers: true,
            cri_auth: Some(("lamina".into(), "lamina-pass".into())),
        },
    );
    let name = format!("{}/busybox:layered", reg.host());
    grpc::cri_pull(&c.socket(), &name).unwrap_or_else(|(code, msg)| {
        panic!(
            "CRI PullImage {name}: {code:?} {msg}\n--- snapshotter log (tail) ---\n{}",
            fixture::tail(&c.snapshotter.log_text(), 30)
        )
    });
    let layers = layer_digests(&layout, "layered");
    let log = c.snapshotter.log_text();
    assert_eq!(c.snapshotter.logged(FETCHED_LOGGED), 0, "{log}");
    assert_eq!(
        c.snapshotter
            .logged("fast pull: containerd unpacks the layer"),
        layers.len(),
        "a fallback logged per layer:\n{log}"
    );
    assert!(log.contains("401") || log.contains("unauthorized"), "{log}");
    assert_eq!(c.snapshotter.logged(COMMIT_LOGGED), layers.len(), "{log}");
    let content = c.ctr_in("k8s.io", &["content", "ls", "-q"]).stdout;
    for layer in &layers {
        assert!(content.contains(layer.as_str()), "{layer} in:\n{content}");
    }
    assert_eq!(c.layers().len(), layers.len(), "lamina's store");
    assert_chain_tree(&c, "k8s.io", &name, &oracle::oracle(&layout, "layered"));
}

/// The text of a CRI container log (`<time> <stream> <tag> <text>` per line).
fn cri_log_text(log: &str) -> String {
    log.lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .map(|t| format!("{t}\n"))
        .collect()
}

/// ../shared/recipes/cri-pod's Python CRI client, made once (cri-client-setup.sh: PyPI and
/// crates.io) in `$LAMINA_CRI_CLIENT`, default /var/cache/lamina/cri-client; None (after a SKIP
/// line) when it cannot be made.
fn cri_client(recipes: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os("LAMINA_CRI_CLIENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lamina/cri-client"));
    if dir.join("api_pb2_grpc.py").is_file() && dir.join("venv/bin/python").is_file() {
        return Some(dir);
    }
    let mut setup = Command::new(recipes.join("cri-pod/cri-client-setup.sh"));
    setup.arg(&dir);
    let r = common::run(&mut setup, Duration::from_secs(600));
    if !r.success() {
        common::skip(&format!(
            "CRI pod test: cri-client-setup.sh {} failed (it needs PyPI and crates.io): {}",
            dir.display(),
            r.describe()
        ));
        return None;
    }
    Some(dir)
}

/// PAUSE as an oci-archive: busybox's one layer with a Cmd that stays alive (a sandbox's
/// container must), what ../shared/recipes/README.md suggests.
fn pause_archive(layout: &Path, out: &Path) {
    let read = |digest: &str| -> Vec<u8> {
        let p = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let json = |bytes: Vec<u8>| -> Value { serde_json::from_slice(&bytes).expect("JSON") };
    let layer = layer_digests(layout, "latest")
        .into_iter()
        .next()
        .expect("busybox:latest has a layer");
    let index = json(std::fs::read(layout.join("index.json")).expect("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "latest")
        .and_then(|m| m["digest"].as_str())
        .map(|d| json(read(d)))
        .expect("busybox:latest in index.json");
    let config = json(read(manifest["config"]["digest"].as_str().expect("config")));
    let diff_id = config["rootfs"]["diff_ids"][0]
        .as_str()
        .expect("diffID")
        .to_string();
    let media_type = manifest["layers"][0]["mediaType"]
        .as_str()
        .expect("mediaType")
        .to_string();
    let mut image = Image::new(vec![Layer::from_blob(read(&layer), &media_type, diff_id)]);
    image.runtime = json!({"Env": ["PATH=/bin"], "Cmd": ["sleep", "1000000"]});
    OciBuilder::new()
        .image(Some(PAUSE), image)
        .write_oci_archive(out);
}
