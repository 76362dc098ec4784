//! `--keep-blobs`: an image loaded with its compressed layer blobs kept is pushed with exactly
//! those blobs (the registry's manifest names the source layout's layer digests, and zstd stays
//! zstd), unless another format is asked for; `df` counts the kept blobs; a kept blob changed on
//! disk is refused by push with a message naming it (nothing in the store changes) and found by
//! `fsck --verify`, whose repair removes it so that push compresses the layer again; `rmi` takes
//! the blobs with the layers. A load with `--keep-blobs` of layers the store holds already keeps
//! their blobs too, checked against the diffIDs.

use super::{layer_lines, state, store};
use crate::common::Store;
use crate::registry::fixture::{self, path_str, Env, Registry};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The layer digests of the corpus debian image's `tag` manifest in its OCI layout.
fn layout_layers(env: &Env, tag: &str) -> Vec<String> {
    let layout = env.corpus.join("oci").join("debian");
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    let desc = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("tag in index");
    let digest = desc["digest"].as_str().expect("digest");
    let manifest = read_json(&layout.join("blobs/sha256").join(&digest[7..]));
    layer_digests(&manifest)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// The manifest the registry holds for `name`, as skopeo reads it.
fn registry_manifest(name: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Every kept blob file in the store.
fn kept_files(s: &Store) -> Vec<PathBuf> {
    let mut out = vec![];
    for layer in std::fs::read_dir(s.root().join("layers")).expect("layers") {
        let blobs = layer.expect("entry").path().join("blobs");
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            out.extend(entries.map(|e| e.expect("entry").path()));
        }
    }
    out.sort();
    out
}

fn load(env: &Env, s: &Store, tag: &str, name: &str, keep: bool) {
    let src = format!("{}:{tag}", path_str(&env.corpus.join("oci").join("debian")));
    let mut args = vec!["load", &src, "--tag", name];
    if keep {
        args.push("--keep-blobs");
    }
    s.ok(&args);
}

/// The `Layer blobs` row of `df`: (count, active).
fn df_blobs(s: &Store) -> Option<String> {
    let df = s.ok(&["df"]).stdout;
    df.lines().find(|l| l.starts_with("Layer blobs")).map(|l| {
        l.split_whitespace()
            .skip(2)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

#[test]
fn kept_blobs_are_pushed_as_they_came_and_checked() {
    let Some(env) = fixture::env() else { return };
    let _heavy = crate::common::heavy();
    let reg = Registry::start(&env, &[]);
    let host = reg.host();
    let s = store();

    // gzip: the registry gets the layout's own blobs, in a manifest of the image's family
    let name = format!("{host}/kept:gzip");
    load(&env, &s, "gzip", &name, true);
    assert_eq!(kept_files(&s).len(), 4);
    assert_eq!(
        df_blobs(&s).as_deref(),
        Some("4 0"),
        "{}",
        s.ok(&["df"]).stdout
    );
    let r = s.ok(&["push", &name]);
    assert!(
        layer_lines(&r).iter().all(|(_, st)| st == "Pushed"),
        "{}",
        r.describe()
    );
    assert_eq!(
        layer_digests(&registry_manifest(&name)),
        layout_layers(&env, "gzip")
    );

    // asking for another format compresses again
    let recompressed = format!("{host}/kept:as-zstd");
    s.ok(&["tag", &name, &recompressed]);
    s.ok(&["push", "--compression-format", "zstd", &recompressed]);
    let m = registry_manifest(&recompressed);
    let layers = layer_digests(&m);
    assert!(layers
        .iter()
        .all(|d| !layout_layers(&env, "gzip").contains(d)));
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // zstd kept blobs stay zstd by default, in an OCI manifest
    let zs = store();
    let zname = format!("{host}/kept:zstd");
    load(&env, &zs, "zstd", &zname, true);
    zs.ok(&["push", &zname]);
    let m = registry_manifest(&zname);
    assert_eq!(layer_digests(&m), layout_layers(&env, "zstd"));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");

    // a kept blob changed on disk (in a store that knows of no pushed copy to reuse): push
    // refuses it by name and the store stays as it was
    let c = store();
    let other = format!("{host}/kept-other:1");
    load(&env, &c, "gzip", &other, true);
    let victim = kept_files(&c)
        .into_iter()
        .find(|p| {
            let hex = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            layout_layers(&env, "gzip")[3].ends_with(hex)
        })
        .expect("top layer's gzip blob");
    let mut bytes = std::fs::read(&victim).expect("blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&victim, &bytes).expect("write");
    let before = state(&c);
    let r = c.fails(&["push", &other]);
    assert!(
        r.stderr.contains("has changed on disk") && r.stderr.contains(&path_str(&victim)),
        "{}",
        r.describe()
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.describe());
    assert_eq!(state(&c), before);

    // fsck --verify finds it; the repair removes it, and push then compresses that layer again
    let r = c.lamina(&["fsck", "--verify"]);
    assert!(
        !r.success() && r.stdout.contains(&path_str(&victim)),
        "{}",
        r.describe()
    );
    c.ok(&["fsck", "--verify", "--repair"]);
    assert!(!victim.exists());
    c.ok(&["fsck", "--verify"]);
    let r = c.ok(&["push", &other]);
    assert_eq!(layer_lines(&r).len(), 4, "{}", r.describe());
    let pushed = layer_digests(&registry_manifest(&other));
    let source = layout_layers(&env, "gzip");
    assert_eq!(
        pushed[..3],
        source[..3],
        "kept blobs still sent as they are"
    );
    assert_ne!(pushed[3], source[3], "the removed one compressed again");

    // rmi takes the blobs with their layers
    c.ok(&["rmi", &other]);
    assert!(kept_files(&c).is_empty());
    assert_eq!(df_blobs(&c), None);

    // layers the store holds already get their blobs kept by a later --keep-blobs load
    let later = store();
    load(&env, &later, "gzip", "plain:1", false);
    assert!(kept_files(&later).is_empty());
    load(&env, &later, "gzip", "plain:1", true);
    assert_eq!(kept_files(&later).len(), 4);
    later.ok(&["fsck", "--verify"]);
}
