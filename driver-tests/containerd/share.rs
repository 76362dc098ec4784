//! Issue 10 point 4 under a real containerd: layers `lamina load` stored are shared with an image
//! pull through containerd's CRI plugin (kubelet's path: containerd's unpacker prepares each layer
//! with `containerd.io/snapshot.ref`, lamina answers AlreadyExists, containerd fetches and applies
//! nothing for that layer). ctr 1.6's own import and pull unpack without that label, so they
//! cannot share: hence CRI.

use super::fixture::{self, Containerd, Options};
use super::{
    assert_chain_tree, grpc, remove_and_check_gc, serve_layered, COMMIT_LOGGED, LAYERED_EXPECTED,
    LAYERED_PROBE,
};
use crate::common::{self, Store};
use crate::oracle;
use std::path::Path;
use std::time::{Duration, Instant};

/// A CRI pull of `busybox:layered` into a store where `lamina load` put `busybox:LOADED` first:
/// the bottom `shared` layers are lamina's (no Commit, no fetch), containerd applies the rest over
/// them. Then both sides remove their image (lamina's first when `lamina_first`): the layers live as
/// long as either side uses them.
fn cri_pull_over_loaded(loaded: &str, shared: usize, lamina_first: bool) {
    let Some((recipes, images, env)) = fixture::registry_setup() else {
        return;
    };
    let layout = images.join("busybox/oci");
    let reg = serve_layered(&env, &layout);
    let store = Store::new("ctr-share");
    store.load(Path::new(&format!("{}:{loaded}", layout.display())), &[]);
    let held = common::list_dir(&store.root.join("layers"));
    assert_eq!(held.len(), shared, "lamina load stored {shared} layers");

    let c = Containerd::start(
        recipes,
        store,
        Options {
            cri_registry: Some(reg.host()),
            ..Options::default()
        },
    );
    let name = format!("{}/busybox:layered", reg.host());
    let image_ref = grpc::cri_pull(&c.socket(), &name).unwrap_or_else(|(code, msg)| {
        panic!(
            "CRI PullImage {name}: {code:?} {msg}\n--- containerd log (tail) ---\n{}",
            fixture::tail(&c.log_text(), 30)
        )
    });
    assert!(image_ref.starts_with("sha256:"), "image ref {image_ref}");

    // containerd applied only what lamina lacked: one Commit per such layer, and it never fetched
    // a shared layer's blob (its unpacker fetches a layer only to apply it)
    let layers = layer_digests(&layout, "layered");
    assert_eq!(
        c.snapshotter.logged(COMMIT_LOGGED),
        layers.len() - shared,
        "Commits served:\n{}",
        c.snapshotter.log_text()
    );
    let now = c.layers();
    assert_eq!(now.len(), layers.len(), "each layer once in lamina's store");
    assert!(
        held.iter().all(|l| now.contains(l)),
        "the loaded layers are the ones used: {held:?} in {now:?}"
    );
    let content = c.ctr_in("k8s.io", &["content", "ls", "-q"]).stdout;
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(
            content.contains(layer.as_str()),
            i >= shared,
            "layer {i} ({layer}) fetched by containerd iff not shared:\n{content}"
        );
    }
    let committed = c
        .snapshots_in("k8s.io")
        .into_iter()
        .filter(|s| s.2 == "Committed")
        .count();
    assert_eq!(committed, layers.len(), "containerd's committed snapshots");

    // a container runs on them, and the chain's tree is umoci's
    assert_eq!(
        c.run_in("k8s.io", &[], &name, &["sh", "-c", LAYERED_PROBE]),
        LAYERED_EXPECTED
    );
    assert_chain_tree(&c, "k8s.io", &name, &oracle::oracle(&layout, "layered"));
    assert_eq!(c.layers(), now, "running added no layer");

    let ids = c.store.ok(&["images", "-q"]).stdout;
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "lamina holds the one image it loaded");
    if lamina_first {
        // lamina's image goes: its layers stay, containerd's snapshots use them
        c.store.ok(&["rmi", ids[0]]);
        assert_eq!(c.layers(), now, "containerd's snapshots keep the layers");
        assert_eq!(
            c.run_in("k8s.io", &[], &name, &["sh", "-c", LAYERED_PROBE]),
            LAYERED_EXPECTED
        );
        // then containerd's: nothing uses them any more
        remove_and_check_gc(&c, "k8s.io");
    } else {
        // containerd's image goes: lamina's image keeps its layers, and still mounts
        let mut rm = vec!["images", "rm", "--sync"];
        let names = c
            .ctr_in("k8s.io", &["images", "ls", "-q"])
            .expect_ok()
            .stdout;
        rm.extend(names.lines());
        c.ctr_in("k8s.io", &rm).expect_ok();
        // (the GC's removals reach lamina before --sync returns; a late one gets a moment)
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.layers() != held && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            c.layers(),
            held,
            "lamina's image keeps its layers, the others go"
        );
        let expected = oracle::oracle(&layout, loaded);
        oracle::check_mount(&c.store, ids[0], "overlay", &expected);
        // then lamina's
        c.store.ok(&["rmi", ids[0]]);
        assert_eq!(
            c.layers(),
            Vec::<String>::new(),
            "nothing uses the layers any more"
        );
    }
}

#[test]
fn a_chain_lamina_holds_is_shared_with_a_cri_pull() {
    cri_pull_over_loaded("layered", 4, true);
}

#[test]
fn a_cri_pull_applies_its_layers_over_a_base_lamina_holds() {
    cri_pull_over_loaded("latest", 1, false);
}

/// The layer digests of LAYOUT:TAG's manifest.
pub(super) fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .expect("JSON")
    };
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index = read(&layout.join("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .expect("tag in index.json");
    read(&blob(manifest))["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["digest"].as_str().map(str::to_string))
        .collect()
}
