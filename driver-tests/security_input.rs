//! Hostile input that used to crash or hang lamina (issue 15, points 4, 5 and 9): a registry that
//! redirects to `file:`/`data:`/`unix:` URLs, serves endless tag pages or links back to a page
//! already read; layouts with a FIFO for a blob or nested indexes that fan out exponentially (from
//! a layout and from a registry); a layer whose PAX headers pile up xattrs. Each must fail with a
//! clear error, within a short time limit, with flat memory and the store exactly as it was. And
//! layers in every tar header format GNU tar writes (GNU with atime/ctime, ustar, PAX, v7) load and
//! save back byte for byte.

mod fake_registry;

use crate::common::{self, Run, Store};
use crate::hostile::snapshot;
use crate::load::{marker_image, marker_layer};
use fake_registry::{Answer, FakeRegistry};
use lamina_testkit::oci::{gzip, hex_of, sha256, Compression, Image, Layer, OciBuilder};
use lamina_testkit::oci::{MT_INDEX, MT_MANIFEST};
use lamina_testkit::tarw::TarWriter;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Every hostile command must end well within this.
const LIMIT: Duration = Duration::from_secs(60);
/// Peak RSS a refused command may reach: a small load stays far below it, and each attack here
/// would need far more if it were followed.
const PEAK_KIB: u64 = 96 << 10;

/// A store holding one good image, that talks to registries as an isolated client.
fn store(tag: &str) -> Option<Store> {
    if !common::require_root() {
        return None;
    }
    let s = Store::new(&format!("secin-{tag}"))
        .with_docker_config()
        .env_remove("LAMINA_INSECURE_REGISTRIES")
        .env("LAMINA_RETRIES", "0");
    let good = s.scratch("good");
    OciBuilder::new()
        .image(Some("latest"), marker_image("secin-good"))
        .write_layout(&good);
    s.load(&good, &[]);
    Some(s)
}

/// `cmd` run under /usr/bin/time, which reports its peak RSS on the last stderr line, and under
/// `timeout`, which kills it before the runner's limit (the runner kills only its own child, so a
/// hung lamina under `time` would outlive the test).
fn measured(cmd: &Command) -> Command {
    let mut t = Command::new("/usr/bin/time");
    let kill_after = (LIMIT - Duration::from_secs(5)).as_secs().to_string();
    t.args([
        "-f",
        "peak-rss-kib=%M",
        "timeout",
        "-s",
        "KILL",
        &kill_after,
    ])
    .arg(cmd.get_program())
    .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    t
}

/// Runs `lamina ARGS` and checks the refusal: exit 1 within [`LIMIT`], a message holding every
/// one of `words`, no panic, peak memory under [`PEAK_KIB`], the store as it was and no staging
/// left behind.
fn refused(s: &Store, args: &[&str], words: &[&str]) -> Run {
    let before = snapshot(s);
    let mut cmd = s.command();
    cmd.args(args);
    let timed = Path::new("/usr/bin/time").exists() && common::have_tool("timeout");
    let mut cmd = if timed { measured(&cmd) } else { cmd };
    let start = Instant::now();
    let r = common::run(&mut cmd, LIMIT);
    let took = start.elapsed();
    assert_eq!(r.status, Some(1), "{}", r.describe());
    for w in words {
        assert!(r.stderr.contains(w), "no {w:?} in: {}", r.describe());
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.describe());
    if timed {
        let peak: u64 = r
            .stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("peak-rss-kib="))
            .and_then(|v| v.trim().parse().ok())
            .expect("peak RSS from /usr/bin/time");
        assert!(peak < PEAK_KIB, "peak RSS {peak} KiB: {}", r.describe());
        eprintln!("{args:?}: refused in {took:?}, peak RSS {peak} KiB");
    }
    assert_eq!(snapshot(s), before, "the store changed: {}", r.describe());
    assert!(s.staging_leftovers().is_empty(), "staging left behind");
    r
}

#[test]
fn registry_redirects_to_urls_without_a_host_are_refused() {
    let Some(s) = store("redirect") else { return };
    for target in [
        "file:///etc/passwd",
        "data:text/plain,x",
        "unix:/run/docker.sock",
    ] {
        let to = target.to_string();
        let reg = FakeRegistry::start(move |_| Answer::redirect(&to));
        let image = format!("{}/evil:latest", reg.host());
        let r = refused(&s, &["pull", &image], &["refusing the redirect", target]);
        assert!(
            r.stderr.contains("/v2/evil/manifests/latest"),
            "{}",
            r.describe()
        );
    }
}

/// A tag page holding `tag`, linking to `next` when given.
fn tag_page(tag: &str, next: Option<&str>) -> Answer {
    let page = Answer::json(json!({"name": "evil", "tags": [tag]}).to_string());
    match next {
        Some(n) => page.header("Link", &format!("<{n}>; rel=\"next\"")),
        None => page,
    }
}

#[test]
fn endless_tag_pages_end_with_an_error() {
    let Some(s) = store("endless-tags") else {
        return;
    };
    let reg = FakeRegistry::start(|path| {
        let n: u64 = path
            .rsplit_once("last=t")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0);
        tag_page(
            &format!("t{}", n + 1),
            Some(&format!("/v2/evil/tags/list?n=1&last=t{}", n + 1)),
        )
    });
    let image = format!("{}/evil", reg.host());
    refused(
        &s,
        &["pull", "-a", &image],
        &["tag list of evil", "more than 1000 pages"],
    );
    assert!(reg.requests() <= 1001, "{} requests", reg.requests());

    // Pages of a megabyte each: the total is capped long before the page count.
    let big = "x".repeat(1 << 20);
    let reg = FakeRegistry::start(move |path| {
        let n = path.len();
        tag_page(
            &big,
            Some(&format!("/v2/evil/tags/list?last={}", "y".repeat(n))),
        )
    });
    let image = format!("{}/evil", reg.host());
    refused(&s, &["pull", "-a", &image], &["tag list of evil", "in all"]);
}

#[test]
fn a_link_back_to_a_page_already_read_stops() {
    let Some(s) = store("link-loop") else { return };
    let reg = FakeRegistry::start(|path| {
        if path.contains("last=b") {
            tag_page("c", Some("/v2/evil/tags/list?n=1&last=a"))
        } else if path.contains("last=a") {
            tag_page("b", Some("/v2/evil/tags/list?n=1&last=b"))
        } else {
            tag_page("a", Some("/v2/evil/tags/list?n=1&last=a"))
        }
    });
    let image = format!("{}/evil", reg.host());
    refused(&s, &["pull", "-a", &image], &["a page already read"]);
    assert_eq!(reg.requests(), 3, "pages read before the loop was seen");
}

#[test]
fn a_fifo_where_a_layout_has_a_blob_does_not_block_load() {
    let Some(s) = store("fifo") else { return };
    // One layer: nothing of the image is stored before the FIFO is met.
    let img = Image::new(vec![marker_layer("secin-fifo")]);
    let blobs = [
        ("layer", img.layers[0].digest.clone()),
        ("config", img.config_digest()),
        ("manifest", img.manifest_digest()),
    ];
    for (what, digest) in blobs {
        let dir = s.scratch(&format!("fifo-{what}"));
        OciBuilder::new()
            .image(Some("latest"), img.clone())
            .write_layout(&dir);
        let blob = dir.join("blobs/sha256").join(hex_of(&digest));
        std::fs::remove_file(&blob).expect("rm blob");
        let made = Command::new("mkfifo").arg(&blob).status().expect("mkfifo");
        assert!(made.success());
        let src = format!("{}:latest", dir.display());
        refused(
            &s,
            &["load", &src],
            &["is a FIFO, not a regular file", hex_of(&digest)],
        );
    }
}

/// `depth` indexes above `child`, each listing the one below `fan_out` times without a platform.
fn fan_out(b: &mut OciBuilder, child: Value, depth: usize, fan_out: usize) -> Value {
    let mut child = child;
    for _ in 0..depth {
        let mut entry = child.clone();
        entry
            .as_object_mut()
            .expect("descriptor")
            .remove("platform");
        let entries = vec![entry; fan_out];
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}),
        )
        .expect("json");
        child = json!({"mediaType": MT_INDEX, "digest": b.blob(&index), "size": index.len()});
    }
    child
}

#[test]
fn a_layout_of_exponentially_fanning_indexes_is_refused_quickly() {
    let Some(s) = store("fan-layout") else {
        return;
    };
    let img = marker_image("secin-fan");
    let mut b = OciBuilder::new();
    b.image(None, img.clone());
    // 7 levels of 6: 279936 paths to one manifest.
    let top = fan_out(&mut b, img.manifest_descriptor(), 7, 6);
    b.descriptor(Some("top"), top);
    let dir = s.scratch("fan");
    b.write_layout(&dir);
    let src = format!("{}:top", dir.display());
    refused(
        &s,
        &["load", "--platform", "linux/arm64", &src],
        &["more than 256 manifests"],
    );
}

/// A registry serving the blobs of `b` by digest, `latest` naming `top`; blob GETs are redirected
/// (307, a relative Location) to `/real/DIGEST` when `redirect` is set, as registries send blobs
/// to their storage.
fn serve(b: &OciBuilder, top: &Value, redirect: bool) -> FakeRegistry {
    let mut blobs: HashMap<String, Vec<u8>> = b
        .files()
        .into_iter()
        .filter_map(|(path, bytes)| {
            let hex = path.strip_prefix("blobs/sha256/")?.to_string();
            Some((format!("sha256:{hex}"), bytes))
        })
        .collect();
    let top_digest = top["digest"].as_str().expect("digest").to_string();
    let top_bytes = blobs[&top_digest].clone();
    blobs.insert("latest".into(), top_bytes);
    FakeRegistry::start(move |path| {
        let Some((_, name)) = path.rsplit_once('/') else {
            return Answer::not_found();
        };
        if redirect && path.contains("/blobs/") {
            return Answer {
                status: 307,
                ..Answer::redirect(&format!("/real/{name}"))
            };
        }
        let Some(bytes) = blobs.get(name) else {
            return Answer::not_found();
        };
        let is_index =
            serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v["mediaType"] == MT_INDEX);
        let mut a = Answer::json(bytes.clone());
        if path.contains("/manifests/") {
            a.headers.clear();
            let t = if is_index { MT_INDEX } else { MT_MANIFEST };
            a = a.header("Content-Type", t);
        }
        a
    })
}

#[test]
fn a_redirect_to_an_http_url_with_a_host_is_still_followed() {
    let Some(s) = store("redirect-ok") else {
        return;
    };
    let img = marker_image("secin-redirected");
    let mut b = OciBuilder::new();
    b.image(None, img.clone());
    let reg = serve(&b, &img.manifest_descriptor(), true);
    let image = format!("{}/fine:latest", reg.host());
    s.ok(&["pull", &image]);
    // the manifest, then config and two layers: each a redirect and the real GET
    assert_eq!(reg.requests(), 1 + 3 * 2, "requests");
    let listed = s.ok(&["images"]).stdout;
    assert!(listed.contains("/fine"), "{listed}");
}

#[test]
fn a_registry_of_exponentially_fanning_indexes_is_refused_quickly() {
    let Some(s) = store("fan-registry") else {
        return;
    };
    let img = marker_image("secin-fan-reg");
    let mut b = OciBuilder::new();
    b.image(None, img.clone());
    let top = fan_out(&mut b, img.manifest_descriptor(), 7, 6);
    let reg = serve(&b, &top, false);
    let image = format!("{}/evil:latest", reg.host());
    refused(
        &s,
        &["pull", "--platform", "linux/arm64", &image],
        &["more than 256 manifests"],
    );
    assert!(reg.requests() < 300, "{} requests", reg.requests());
}

#[test]
fn xattr_records_piled_up_over_pax_headers_are_refused() {
    let Some(s) = store("pax-flood") else {
        return;
    };
    // 2000 PAX headers of 64 KiB of xattrs before one file: 128 MiB held if they accumulated.
    let mut t = TarWriter::new();
    let value = vec![b'v'; 64 << 10];
    for i in 0..2000 {
        t.pax(&[(&format!("SCHILY.xattr.user.k{i}"), &value)]);
    }
    let tar = t.file("victim", 0o644, b"x").finish();
    let layer = Layer::from_blob(gzip(&tar), lamina_testkit::oci::MT_LAYER_GZIP, sha256(&tar));
    drop(tar);
    let digest = layer.digest.clone();
    let dir = s.scratch("pax");
    OciBuilder::new()
        .image(Some("latest"), Image::new(vec![layer]))
        .write_layout(&dir);
    let src = format!("{}:latest", dir.display());
    refused(
        &s,
        &["load", &src],
        &[
            &hex_of(&digest)[..12],
            "extension headers",
            "in all before one member",
        ],
    );
}

/// A tree for the format tests: dirs, files, a symlink, a hard link, and (when `long`) a path of
/// 150 bytes whose last name fits 100 (ustar puts the rest in its prefix field).
fn format_tree(dir: &Path, long: bool) {
    let sub = if long {
        dir.join(format!("{}/{}", "p".repeat(60), "q".repeat(60)))
    } else {
        dir.join("sub")
    };
    std::fs::create_dir_all(&sub).expect("mkdir");
    std::fs::write(sub.join("file"), b"deep\n").expect("write");
    std::fs::write(dir.join("top"), vec![7u8; 3000]).expect("write");
    std::os::unix::fs::symlink("top", dir.join("link")).expect("symlink");
    std::fs::hard_link(dir.join("top"), dir.join("hard")).expect("hardlink");
}

#[test]
fn layers_in_every_tar_header_format_save_back_byte_for_byte() {
    if !common::have_tool("tar") {
        return;
    }
    let Some(s) = store("formats") else { return };
    let cases: [(&str, &[&str], bool); 6] = [
        ("gnu-incremental", &["-G", "--format=gnu"], true),
        ("gnu", &["--format=gnu"], true),
        ("oldgnu", &["--format=oldgnu"], true),
        ("ustar", &["--format=ustar"], true),
        ("pax", &["--format=pax"], true),
        ("v7", &["--format=v7"], false),
    ];
    for (name, flags, long) in cases {
        let tree = s.scratch(&format!("tree-{name}"));
        format_tree(&tree, long);
        let tar_path = s.base.join(format!("{name}.tar"));
        let made = Command::new("tar")
            .args(flags)
            .arg("-cf")
            .arg(&tar_path)
            .arg("-C")
            .arg(&tree)
            .arg(".")
            .output()
            .expect("tar runs");
        assert!(made.status.success(), "{name}: {:?}", made);
        let tar = std::fs::read(&tar_path).expect("read tar");
        let diff_id = sha256(&tar);
        let dir = s.scratch(&format!("layout-{name}"));
        OciBuilder::new()
            .image(
                Some(name),
                Image::new(vec![Layer::new(&tar, Compression::Gzip)]),
            )
            .write_layout(&dir);
        s.load(&dir, &[]);
        let image = format!("layout-{name}:{name}");
        let out = s.base.join(format!("saved-{name}.tar"));
        s.ok(&["save", "-o", out.to_str().expect("utf-8"), &image]);
        let unpacked = s.scratch(&format!("saved-{name}"));
        let x = Command::new("tar")
            .arg("-xf")
            .arg(&out)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("tar -x");
        assert!(x.success());
        let saved = std::fs::read(unpacked.join("blobs/sha256").join(hex_of(&diff_id)))
            .unwrap_or_else(|e| panic!("{name}: no saved layer named by its diffID: {e}"));
        assert!(
            saved == tar,
            "{name}: the saved layer differs from the loaded tar"
        );
        assert_eq!(sha256(&saved), diff_id, "{name}");
    }
}
