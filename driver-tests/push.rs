//! `lamina push` (and `image push`) against the real distribution registry (as the pull tests
//! start it), through a proxy that counts the bytes lamina sends: a push, a second push that sends
//! no layer, a cross-repository mount, basic auth over TLS, bearer tokens, a connection cut in the
//! middle of a layer; what was pushed is pulled back into a fresh store, and read by skopeo and
//! umoci, and must be the same image and the same tree.

pub mod servers;

use crate::common::{self, Run, Store};
use crate::oracle;
use crate::registry::fixture::{self, path_str, Env, Registry};
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use servers::CountingProxy;
use std::process::Command;

/// A push that sent at most this many bytes sent no layer (requests and manifests only; the
/// smallest debian layer is far larger).
const NO_LAYER_BYTES: u64 = 64 << 10;

/// A store as the registry tests make them: its own docker config, no insecure-registry list
/// (127.0.0.0/8 is insecure by default, as in docker), few retries.
fn store() -> Store {
    Store::new("push")
        .with_docker_config()
        .env_remove("LAMINA_INSECURE_REGISTRIES")
        .env_remove("LAMINA_CERTS_D")
        .env("LAMINA_RETRIES", "2")
}

/// Loads the corpus debian image (gzip) as `name`.
fn load_debian(env: &Env, s: &Store, name: &str) {
    let src = format!("{}:gzip", path_str(&env.corpus.join("oci").join("debian")));
    s.ok(&["load", &src, "--tag", name]);
}

/// What a failed push must leave as it was: the images and their digests, and the disk usage
/// (without the ages `images` and `df` print, which a slow run sees change).
fn state(s: &Store) -> String {
    let images = s
        .ok(&[
            "images",
            "-a",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}} {{.Size}}",
        ])
        .stdout;
    let df = s.ok(&["df", "-v"]).stdout;
    let ages = regex::Regex::new(r"(\d+|About an?|Less than a) \w+ ago").expect("regex");
    format!("{images}\n{}", ages.replace_all(&df, "AGE"))
}

fn image_id(s: &Store, name: &str) -> String {
    s.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .stdout
        .trim()
        .to_string()
}

/// The layer lines of a push: (12 hex, status).
fn layer_lines(r: &Run) -> Vec<(String, String)> {
    r.stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(h, _)| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .collect()
}

/// `TAG: digest: sha256:… size: N` -> the digest.
fn pushed_digest(r: &Run, tag: &str) -> String {
    let prefix = format!("{tag}: digest: ");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no digest line for {tag}: {}", r.describe()));
    let rest = &line[prefix.len()..];
    let (digest, size) = rest.split_once(" size: ").expect("size");
    assert!(
        digest.starts_with("sha256:") && size.parse::<u64>().is_ok(),
        "{line}"
    );
    digest.to_string()
}

/// `skopeo copy docker://NAME oci:DIR/layout:copied` (Go's registry client and gzip/zstd readers):
/// the temp dir that holds the layout, and the layout.
fn skopeo_to_layout(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("lamina-push-oci-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let layout = dir.path().join("layout");
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:copied", path_str(&layout)))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, layout)
}

#[test]
fn push_again_mount_all_tags_and_pull_back() {
    let Some(env) = fixture::env() else { return };
    let _heavy = common::heavy();
    let reg = Registry::start(&env, &[]);
    let proxy = CountingProxy::start(reg.port, None);
    let host = proxy.host();
    let s = store();
    let name = format!("{host}/deb:1");
    load_debian(&env, &s, &name);
    let id = image_id(&s, &name);

    let r = s.ok(&["push", &name]);
    assert!(
        r.stdout
            .starts_with(&format!("The push refers to repository [{host}/deb]\n")),
        "{}",
        r.describe()
    );
    let layers = layer_lines(&r);
    assert_eq!(layers.len(), 4, "{}", r.describe());
    assert!(
        layers.iter().all(|(_, st)| st == "Pushed"),
        "{}",
        r.describe()
    );
    let digest = pushed_digest(&r, "1");
    let first = proxy.sent();
    assert!(first > 10 << 20, "the layers went up: {first} bytes");

    // again: the registry has every layer, nothing is sent but requests
    let r = s.ok(&["image", "push", &name]);
    let again = layer_lines(&r);
    assert_eq!(again.len(), 4, "{}", r.describe());
    for ((h1, _), (h2, st)) in layers.iter().zip(&again) {
        assert_eq!(
            (h1, st.as_str()),
            (h2, "Layer already exists"),
            "{}",
            r.describe()
        );
    }
    assert_eq!(pushed_digest(&r, "1"), digest, "same manifest");
    let sent = proxy.sent() - first;
    assert!(sent < NO_LAYER_BYTES, "second push sent {sent} bytes");

    // another repository of the same registry: mounted, not sent
    let other = format!("{host}/team/other:2");
    s.ok(&["tag", &name, &other]);
    let before = proxy.sent();
    let r = s.ok(&["push", &other]);
    let mounted = layer_lines(&r);
    assert_eq!(mounted.len(), 4, "{}", r.describe());
    assert!(
        mounted.iter().all(|(_, st)| st == "Mounted from deb"),
        "{}",
        r.describe()
    );
    let sent = proxy.sent() - before;
    assert!(sent < NO_LAYER_BYTES, "mount sent {sent} bytes");

    // -a: every tag of the repository in the store
    s.ok(&["tag", &name, &format!("{host}/deb:2")]);
    let r = s.ok(&["push", "-a", &format!("{host}/deb")]);
    assert_eq!(pushed_digest(&r, "1"), digest);
    assert_eq!(pushed_digest(&r, "2"), digest);

    // pulled back into a fresh store: same image ID, same tree
    let fresh = store();
    fresh.ok(&["pull", &other]);
    assert_eq!(
        image_id(&fresh, &other),
        id,
        "image ID survives the round trip"
    );
    let listed = fresh.ok(&["images", "--digests", "--no-trunc"]).stdout;
    assert!(listed.contains(&digest), "{listed}");
    let expected = oracle::oracle(&env.corpus.join("oci").join("debian"), "gzip");
    oracle::check_mount(&fresh, &other, "overlay", &expected);

    // skopeo reads it, and umoci unpacks what skopeo copied as lamina mounts it
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(4));
    if !lamina_testkit::env::on_path("umoci") {
        return;
    }
    let (_dir, layout) = skopeo_to_layout(&name);
    let umoci = oracle::oracle(&layout, "copied");
    oracle::check_mount(&s, &name, "overlay", &umoci);
}

#[test]
fn zstd_push_round_trips() {
    let Some(env) = fixture::env() else { return };
    let _heavy = common::heavy();
    let reg = Registry::start(&env, &[]);
    let s = store();
    let name = format!("{}/z:1", reg.host());
    load_debian(&env, &s, &name);
    let r = s.ok(&["push", "--compression-format", "zstd", &name]);
    assert_eq!(layer_lines(&r).len(), 4, "{}", r.describe());
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ])
        .output()
        .expect("skopeo");
    let raw = String::from_utf8_lossy(&raw.stdout);
    assert!(raw.contains("tar+zstd"), "{raw}");
    let fresh = store();
    fresh.ok(&["pull", &name]);
    assert_eq!(image_id(&fresh, &name), image_id(&s, &name));
}

#[test]
fn push_resumes_after_a_connection_cut_mid_layer() {
    let Some(env) = fixture::env() else { return };
    let _heavy = common::heavy();
    let reg = Registry::start(&env, &[]);
    let proxy = CountingProxy::start(reg.port, Some(3 << 20));
    let s = store();
    let name = format!("{}/cut:1", proxy.host());
    load_debian(&env, &s, &name);
    let r = s.ok(&["push", &name]);
    assert!(proxy.has_cut(), "the proxy cut a connection");
    assert!(
        r.stderr.contains("resuming") || r.stderr.contains("restarting"),
        "the resume is said on stderr: {}",
        r.describe()
    );
    let fresh = store();
    fresh.ok(&["pull", &name]);
    assert_eq!(image_id(&fresh, &name), image_id(&s, &name));
}

/// distribution can lose an upload to a cut (the broken PATCH's bytes land after it said where
/// to resume): the resumed PATCH is refused 404 BLOB_UPLOAD_INVALID, and the layer is sent again
/// in a new upload, not given up on.
#[test]
fn push_restarts_a_layer_whose_upload_the_registry_lost_to_a_cut() {
    if !common::require_root() {
        return;
    }
    let (port, held) = servers::session_losing_registry();
    let s = store();
    let mut noise = vec![0u8; 10 << 20];
    rand::Rng::fill(&mut rand::thread_rng(), &mut noise[..]);
    let mut tar = TarWriter::new();
    tar.file("noise", 0o644, &noise);
    let mut oci = OciBuilder::new();
    oci.image(
        Some("1"),
        Image::new(vec![Layer::new(&tar.finish(), Compression::Gzip)]),
    );
    let layout = s.scratch("lost");
    oci.write_layout(&layout);
    let name = format!("127.0.0.1:{port}/lost:1");
    s.ok(&["load", &format!("{}:1", layout.display()), "--tag", &name]);
    let r = s.ok(&["push", &name]);
    assert!(
        r.stderr.contains("resuming at byte 0") && r.stderr.contains("restarting its upload"),
        "the resume and the restart are said on stderr: {}",
        r.describe()
    );
    let digest = pushed_digest(&r, "1");
    let held = held.lock().expect("blobs");
    let manifest: serde_json::Value =
        serde_json::from_slice(held.get(&digest).expect("the manifest was put")).expect("json");
    for d in manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .chain([&manifest["config"]])
    {
        let digest = d["digest"].as_str().expect("digest");
        assert!(
            held.contains_key(digest),
            "{digest} was uploaded whole: {}",
            r.describe()
        );
    }
}

mod auth;
mod bad_input;
mod kept;
mod levels;
