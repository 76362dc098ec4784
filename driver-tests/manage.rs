//! Image management as docker users know it (issue 4): images (flags, filters, formats), tag,
//! inspect, history, rmi, prune, save, df, fsck, on synthetic images built here (fast, with the
//! sharing, labels and dates each rule needs) and on the corpus's debian image (the issue's
//! scenario). The store is the common one (`crate::common::Store`, wrapped for the return types
//! read here); its OCI layouts are written here with the testkit's builder.
//!
//! Stores live under /var/tmp/lamina-tests and are removed (mounts first) when a test ends, even
//! when it fails. Without root or without the corpus, the tests that need them print SKIP and pass.

use crate::common::Store;
use lamina_testkit::env;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use lamina_testkit::tree;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---- the store under test

/// The common store (`crate::common::Store`), with the return types these tests read: stdout of
/// what must succeed, stdout + stderr of what must fail.
struct Lamina(Store);

impl Lamina {
    fn new() -> Lamina {
        Lamina(Store::new("manage"))
    }

    /// The store's temp dir, beside its root: room for a test's files.
    fn dir(&self) -> &Path {
        &self.0.base
    }

    fn root(&self) -> &Path {
        self.0.root()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.0.ok(args).stdout
    }

    /// Runs a command that must fail with exit code 1; returns its stdout + stderr.
    fn fails(&self, args: &[&str]) -> String {
        self.exits(1, args)
    }

    /// Runs a command that must exit with `code` (1 error, 2 usage); returns its stdout + stderr.
    fn exits(&self, code: i32, args: &[&str]) -> String {
        let r = self.0.exits(code, args);
        format!("{}{}", r.stdout, r.stderr)
    }

    fn lines(&self, args: &[&str]) -> Vec<String> {
        self.ok(args).lines().map(str::to_string).collect()
    }

    fn inspect(&self, image: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    fn layer_dirs(&self) -> usize {
        fs::read_dir(self.root().join("layers"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn corpus() -> Option<PathBuf> {
    let c = env::corpus_dir();
    c.join("oci/debian/index.json").exists().then_some(c)
}

macro_rules! need_root {
    () => {
        if !env::is_root() {
            eprintln!("SKIP: needs root");
            return;
        }
    };
}

// ---- synthetic images: an OCI layout written by the testkit

/// A layer: (path, content) files; a path ending in `/` is a directory.
type Files = Vec<(&'static str, Vec<u8>)>;

fn layer_tar(files: &Files) -> Vec<u8> {
    let mut w = TarWriter::new();
    for (path, content) in files {
        if path.ends_with('/') {
            w.dir(path, 0o755);
        } else {
            w.file(path, 0o644, content);
        }
    }
    w.finish()
}

struct Synthetic {
    tag: &'static str,
    created: &'static str,
    labels: BTreeMap<&'static str, &'static str>,
    layers: Vec<Files>,
}

/// Writes an OCI layout holding `images` (ref names as given) and returns its dir.
fn write_layout(dir: &Path, images: &[Synthetic]) -> PathBuf {
    let mut oci = OciBuilder::new();
    for img in images {
        // Every other layer gzipped, so both paths of the unpacker are used.
        let layers = img
            .layers
            .iter()
            .enumerate()
            .map(|(i, files)| {
                let how = if i % 2 == 0 {
                    Compression::Gzip
                } else {
                    Compression::None
                };
                Layer::new(&layer_tar(files), how)
            })
            .collect();
        let mut image = Image::new(layers);
        image.created = Some(img.created.to_string());
        image.runtime = json!({"Labels": img.labels, "Cmd": ["/bin/sh"]});
        let mut history = vec![
            json!({"created": img.created, "created_by": "# a metadata-only step", "empty_layer": true}),
        ];
        history.extend(
            (0..img.layers.len())
                .map(|i| json!({"created": img.created, "created_by": format!("step {i}")})),
        );
        image.history = Some(history);
        oci.image(Some(img.tag), image);
    }
    oci.write_layout(dir);
    dir.to_path_buf()
}

fn base_layer() -> Files {
    vec![
        ("etc/", vec![]),
        ("etc/os-release", b"ID=synthetic\n".to_vec()),
        ("usr/", vec![]),
        ("usr/lib/", vec![]),
        ("usr/lib/base.bin", vec![0xab; 300_000]),
    ]
}

/// app:1 and app:2 share their base layer; tool:latest shares nothing.
fn three_images() -> Vec<Synthetic> {
    vec![
        Synthetic {
            tag: "app:1",
            created: "2020-01-01T00:00:00Z",
            labels: BTreeMap::from([("tier", "web"), ("team", "a")]),
            layers: vec![
                base_layer(),
                vec![("srv/", vec![]), ("srv/web", vec![1; 50_000])],
            ],
        },
        Synthetic {
            tag: "app:2",
            created: "2021-01-01T00:00:00Z",
            labels: BTreeMap::from([("tier", "db")]),
            layers: vec![
                base_layer(),
                vec![("srv/", vec![]), ("srv/db", vec![2; 70_000])],
            ],
        },
        Synthetic {
            tag: "tool:latest",
            created: "2022-01-01T00:00:00Z",
            labels: BTreeMap::new(),
            layers: vec![vec![("bin/", vec![]), ("bin/tool", vec![3; 20_000])]],
        },
    ]
}

fn load_three(l: &Lamina) -> PathBuf {
    let layout = write_layout(&l.dir().join("three"), &three_images());
    l.ok(&["load", layout.to_str().unwrap()]);
    layout
}

/// How many images `images -q` shows (it prints an ID once per row, as docker does).
fn distinct_ids(l: &Lamina) -> usize {
    let mut ids = l.lines(&["images", "-q"]);
    ids.sort();
    ids.dedup();
    ids.len()
}

fn id_of(l: &Lamina, image: &str) -> String {
    l.inspect(image)["Id"].as_str().unwrap().to_string()
}

/// The REPOSITORY:TAG of each row of `images ARGS`.
fn names(l: &Lamina, args: &[&str]) -> Vec<String> {
    let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
    a.extend_from_slice(args);
    let mut v = l.lines(&a);
    v.sort();
    v
}

// ---- images

#[test]
fn images_lists_filters_and_formats_as_docker_does() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    let table = l.lines(&["images"]);
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert_eq!(table.len(), 4, "{table:?}");
    // Newest first, by the config's creation time.
    assert!(
        table[1].starts_with("tool ") && table[3].starts_with("app "),
        "{table:?}"
    );
    assert!(table[3].contains(" years ago"), "{table:?}");

    l.ok(&["tag", "app:1", "app:one"]);
    // -q is the ID of every row, as docker prints it: app:1 and app:one show the same ID twice.
    let ids = l.lines(&["images", "-q"]);
    assert_eq!(ids.len(), 4, "-q lists every row: {ids:?}");
    assert_eq!(distinct_ids(&l), 3);
    assert!(ids.iter().all(|i| i.len() == 12));
    let rows = l.lines(&["images", "--format", "{{.Tag}} {{.ID}}"]);
    let one: Vec<&String> = rows
        .iter()
        .filter(|r| r.starts_with("1 ") || r.starts_with("one "))
        .collect();
    assert_eq!(one.len(), 2);
    assert_eq!(
        one[0][one[0].len() - 12..],
        one[1][one[1].len() - 12..],
        "two tags, one IMAGE ID"
    );

    let full = l.lines(&["images", "-q", "--no-trunc"]);
    assert!(
        full.iter()
            .all(|i| i.starts_with("sha256:") && i.len() == 71),
        "{full:?}"
    );
    assert!(full.contains(&id_of(&l, "app:1")));
    assert!(l
        .ok(&["images", "--no-trunc"])
        .contains(&id_of(&l, "tool:latest")));

    // Positional REPO[:TAG] and reference filters (globs on name:tag and on name).
    assert_eq!(names(&l, &["app"]), ["app:1", "app:2", "app:one"]);
    assert_eq!(names(&l, &["app:2"]), ["app:2"]);
    assert_eq!(
        names(&l, &["--filter", "reference=*:latest"]),
        ["tool:latest"]
    );
    assert_eq!(
        names(&l, &["--filter", "reference=app:[12]"]),
        ["app:1", "app:2"]
    );
    assert_eq!(
        names(
            &l,
            &["--filter", "reference=tool", "--filter", "reference=app:2"]
        ),
        ["app:2", "tool:latest"]
    );
    // Labels: key, key=value; several must all hold.
    assert_eq!(
        names(&l, &["--filter", "label=tier"]),
        ["app:1", "app:2", "app:one"]
    );
    assert_eq!(
        names(&l, &["--filter", "label=tier=web"]),
        ["app:1", "app:one"]
    );
    assert_eq!(
        names(&l, &["--filter", "label=tier", "--filter", "label=team=a"]),
        ["app:1", "app:one"]
    );
    // before / since, by creation time, and combined with other keys.
    assert_eq!(
        names(&l, &["--filter", "before=tool:latest"]),
        ["app:1", "app:2", "app:one"]
    );
    assert_eq!(
        names(&l, &["--filter", "since=app:1"]),
        ["app:2", "tool:latest"]
    );
    assert_eq!(
        names(&l, &["--filter", "since=app:1", "--filter", "before=tool"]),
        ["app:2"]
    );
    assert_eq!(
        names(
            &l,
            &["--filter", "reference=app", "--filter", "label=tier=db"]
        ),
        ["app:2"]
    );
    assert!(names(&l, &["--filter", "dangling=true"]).is_empty());
    assert!(l
        .fails(&["images", "--filter", "colour=red"])
        .contains("invalid filter"));
    assert!(l
        .fails(&["images", "--filter", "before=nosuch"])
        .contains("nosuch"));

    // A tag moved to another image leaves the old one dangling: <none>, and dangling=true finds it.
    let old_tool = id_of(&l, "tool:latest");
    let mut newer = three_images().remove(2);
    newer.layers[0].push(("bin/extra", b"x".to_vec()));
    let layout = write_layout(&l.dir().join("newer"), &[newer]);
    l.ok(&["load", layout.to_str().unwrap()]);
    assert_ne!(id_of(&l, "tool:latest"), old_tool);
    // Untagged, but still known by its repository digest: docker shows `tool <none>`.
    assert_eq!(names(&l, &["--filter", "dangling=true"]), ["tool:<none>"]);
    let dangling = l.lines(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(dangling, [old_tool]);
    assert!(!names(&l, &["--filter", "dangling=false"]).contains(&"tool:<none>".to_string()));
    assert!(names(&l, &[]).contains(&"tool:<none>".to_string()));
    assert!(names(&l, &["-a"]).contains(&"tool:<none>".to_string()));
    let tagged = l.lines(&["images", "--filter", "dangling=false", "-q"]);
    assert_eq!(
        tagged.len(),
        4,
        "one ID per row (app:1 and app:one both): {tagged:?}"
    );

    // --format: table prefix, json, digests.
    let t = l.lines(&[
        "images",
        "--format",
        "table {{.Repository}}\\t{{.Size}}",
        "app:2",
    ]);
    assert_eq!(t.len(), 2);
    assert!(
        t[0].starts_with("REPOSITORY") && t[0].ends_with("SIZE"),
        "{t:?}"
    );
    assert!(t[1].starts_with("app") && t[1].ends_with("kB"), "{t:?}");
    for line in l.lines(&["images", "--format", "json"]) {
        let v: Value = serde_json::from_str(&line).unwrap();
        for k in [
            "Repository",
            "Tag",
            "ID",
            "Digest",
            "CreatedSince",
            "CreatedAt",
            "Size",
        ] {
            assert!(v[k].is_string(), "{k} in {line}");
        }
    }
    let at = l.ok(&["images", "--format", "{{.CreatedAt}}", "app:1"]);
    assert_eq!(at.trim(), "2020-01-01 00:00:00 +0000 UTC");
    // By repository: docker's reference filter passes the digest references of `app` (not of
    // `app:2`, which `app@sha256:…` does not match; compat.rs checks that).
    let digests = l.lines(&["images", "--digests", "app"]);
    assert!(digests[0].contains("DIGEST"), "{digests:?}");
    assert!(
        digests[1..].iter().all(|r| r.contains(" sha256:")),
        "an OCI layout load records the manifest digest: {digests:?}"
    );
    let d = l.ok(&["images", "--format", "{{.Digest}}", "app"]);
    assert!(d.lines().all(|l| l.starts_with("sha256:")), "{d}");
    assert!(l
        .fails(&["images", "--format", "{{.Nope}}"])
        .contains("Nope"));
}

// ---- inspect, history

#[test]
fn inspect_and_history_read_the_config() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    let i = l.inspect("app:1");
    let id = i["Id"].as_str().unwrap();
    assert!(id.starts_with("sha256:"));
    assert_eq!(i["RepoTags"], json!(["app:1"]));
    assert_eq!(i["RepoDigests"].as_array().unwrap().len(), 1);
    assert!(i["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with("app@sha256:"));
    assert_eq!(i["Architecture"], "amd64");
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["Created"], "2020-01-01T00:00:00Z");
    assert_eq!(i["Config"]["Labels"]["tier"], "web");
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(i["Size"], 300_000 + 13 + 50_000);
    // By ID prefix, and several at once.
    let both: Value = serde_json::from_str(&l.ok(&["inspect", &id[7..19], "tool:latest"])).unwrap();
    assert_eq!(both.as_array().unwrap().len(), 2);
    assert_eq!(both[0]["Id"], id);
    assert!(l.fails(&["inspect", "nosuch:1"]).contains("nosuch"));

    // history: newest first, the empty layer as 0B, layer sizes from the store in order.
    let h = l.lines(&["history", "app:1"]);
    assert_eq!(
        h[0].split_whitespace().take(3).collect::<Vec<_>>(),
        ["IMAGE", "CREATED", "CREATED"]
    );
    assert_eq!(h.len(), 4, "{h:?}");
    assert!(
        h[1].starts_with(&id[7..19]) && h[1].contains("step 1") && h[1].contains("50kB"),
        "{h:?}"
    );
    assert!(
        h[2].starts_with("<missing>") && h[2].contains("step 0") && h[2].contains("300kB"),
        "{h:?}"
    );
    assert!(
        h[3].contains("# a metadata-only step") && h[3].contains(" 0B"),
        "{h:?}"
    );
    assert_eq!(
        l.lines(&["history", "-q", "app:1"]),
        [&id[7..19], "<missing>", "<missing>"]
    );
    assert_eq!(l.lines(&["history", "-q", "--no-trunc", "app:1"])[0], id);
    assert_eq!(
        l.lines(&["history", "--format", "{{.Size}}|{{.CreatedBy}}", "app:1"]),
        ["50kB|step 1", "300kB|step 0", "0B|# a metadata-only step"]
    );
    let t = l.lines(&[
        "history",
        "--format",
        "table {{.ID}}\\t{{.CreatedAt}}",
        "app:1",
    ]);
    assert!(
        t[0].starts_with("IMAGE") && t[0].contains("CREATED AT"),
        "{t:?}"
    );
    // docker's history CreatedAt is RFC 3339 (issue 12).
    assert!(t[1].ends_with("2020-01-01T00:00:00Z"), "{t:?}");
    let long = l.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "app:1",
    ]);
    assert!(long.contains("# a metadata-only step"));
}

// ---- rmi

#[test]
fn rmi_untags_then_deletes_and_keeps_shared_layers() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    assert_eq!(
        l.layer_dirs(),
        4,
        "app:1 and app:2 share their base layer, stored once"
    );
    let base = l.inspect("app:1")["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let app1_top = l.inspect("app:1")["RootFS"]["Layers"][1]
        .as_str()
        .unwrap()
        .to_string();
    let app1 = id_of(&l, "app:1");
    l.ok(&["tag", "app:1", "app:one"]);
    l.ok(&["tag", "app:1", "example.com/team/app:1"]);

    // One of several tags: untagged only.
    assert_eq!(l.lines(&["rmi", "app:one"]), ["Untagged: app:one"]);
    // An ID with several tags needs -f.
    assert!(l.fails(&["rmi", &app1[7..19]]).contains("must be forced"));
    // The last tag deletes the image and the layers only it used; the shared base stays.
    assert_eq!(
        l.lines(&["rmi", "example.com/team/app:1"]),
        ["Untagged: example.com/team/app:1"]
    );
    let out = l.lines(&["rmi", "app:1"]);
    assert_eq!(out[0], "Untagged: app:1");
    assert!(out.contains(&format!("Deleted: {app1}")), "{out:?}");
    assert!(out.contains(&format!("Deleted: {app1_top}")), "{out:?}");
    assert!(
        !out.contains(&format!("Deleted: {base}")),
        "the base is still used by app:2: {out:?}"
    );
    assert_eq!(l.layer_dirs(), 3);
    assert!(l.root().join("layers").join(&base[7..]).is_dir());
    // Its last user goes: so does the base.
    let out = l.lines(&["rmi", "app:2"]);
    assert!(out.contains(&format!("Deleted: {base}")), "{out:?}");
    assert_eq!(l.layer_dirs(), 1);
    assert!(l.fails(&["rmi", "app:2"]).contains("no such image"));

    // A mounted image is refused; -f untags it, and what is mounted stays until unmounted.
    let mnt = l.ok(&["mount", "--read-only", "--name", "m1", "tool"]);
    let mnt = mnt.trim();
    assert!(Path::new(mnt).join("bin/tool").is_file());
    assert!(l.fails(&["rmi", "tool"]).contains("being used by mount m1"));
    let tool = id_of(&l, "tool");
    // The repository's last tag takes its digest reference along, as in docker.
    let untagged = l.lines(&["rmi", "-f", "tool"]);
    assert_eq!(untagged.len(), 2, "{untagged:?}");
    assert_eq!(untagged[0], "Untagged: tool:latest");
    assert!(
        untagged[1].starts_with("Untagged: tool@sha256:"),
        "{untagged:?}"
    );
    assert!(Path::new(mnt).join("bin/tool").is_file());
    assert_eq!(
        l.lines(&["images", "-q", "--no-trunc"]),
        std::slice::from_ref(&tool)
    );
    l.ok(&["umount", "m1"]);
    assert!(l.ok(&["prune", "-f"]).contains(&format!("deleted: {tool}")));
    assert!(l.lines(&["images", "-q"]).is_empty());
    assert_eq!(l.layer_dirs(), 0);
}

#[test]
fn rmi_of_every_listed_id_with_force_empties_the_store() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    l.ok(&["tag", "app:1", "again:1"]);
    // `images -q | sort -u`, as docker users write it (-q prints app:1's ID once per tag).
    let mut ids = l.lines(&["images", "-q"]);
    ids.sort();
    ids.dedup();
    let mut args = vec!["rmi"];
    args.extend(ids.iter().map(String::as_str));
    args.push("-f");
    let out = l.ok(&args);
    assert_eq!(out.matches("Deleted: sha256:").count(), 3 + 4, "{out}");
    assert!(l.lines(&["images"]).len() == 1);
    assert_eq!(l.layer_dirs(), 0);
    let blobs = fs::read_dir(l.root().join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "configs and manifests go with their images");
}

// ---- prune, df

#[test]
fn prune_spares_what_mounts_use_and_df_shows_the_sharing() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    let v = l.ok(&["df", "-v"]);
    let row = |name: &str| -> Vec<String> {
        v.lines()
            .find(|r| r.split_whitespace().take(2).collect::<Vec<_>>().join(":") == name)
            .unwrap_or_else(|| panic!("no row {name} in\n{v}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // REPOSITORY TAG IMAGE-ID CREATED(3 words) SIZE SHARED UNIQUE MOUNTS
    let app1 = row("app:1");
    assert_eq!(
        &app1[app1.len() - 4..],
        ["350kB", "300kB", "50kB", "0"],
        "{v}"
    );
    let tool = row("tool:latest");
    assert_eq!(&tool[tool.len() - 4..], ["20kB", "0B", "20kB", "0"], "{v}");
    let summary = l.lines(&["df"]);
    assert!(
        summary[1].starts_with("Images") && summary[1].split_whitespace().nth(1) == Some("3"),
        "{summary:?}"
    );
    assert!(
        summary[2].starts_with("Layers") && summary[2].split_whitespace().nth(1) == Some("4"),
        "{summary:?}"
    );
    // Stored once: 300k + 50k + 70k + 20k (+ os-release), not 300k twice.
    assert!(summary[2].contains("440kB"), "{summary:?}");

    // A dangling image and a mount.
    l.ok(&["tag", "app:1", "keep:1"]);
    let mut newer = three_images().remove(2);
    newer.layers[0].push(("bin/extra", b"x".to_vec()));
    let layout = write_layout(&l.dir().join("newer"), &[newer]);
    l.ok(&["load", layout.to_str().unwrap()]);
    l.ok(&["mount", "--name", "web", "app:1"]);
    assert!(
        l.ok(&["df"])
            .lines()
            .nth(3)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()[1..3]
            == ["1", "1"]
    );
    let mounts = l.ok(&["df", "-v"]);
    assert!(
        mounts.contains("web") && mounts.contains("mounted"),
        "{mounts}"
    );

    // Without -f and without a "y" on stdin, nothing happens.
    l.ok(&["prune"]);
    assert_eq!(distinct_ids(&l), 4);
    // prune: the dangling image only.
    let out = l.ok(&["prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert_eq!(
        out.matches("deleted: sha256:").count(),
        2,
        "the old tool image and its layer: {out}"
    );
    assert!(out.contains("Total reclaimed space: 20kB"), "{out}");
    assert_eq!(distinct_ids(&l), 3);
    // Nothing left to prune: 0B.
    assert_eq!(l.ok(&["prune", "-f"]).trim(), "Total reclaimed space: 0B");
    // prune -a: every image no mount uses; the mounted app:1 stays with its tags and layers.
    let out = l.ok(&["prune", "-a", "-f"]);
    assert!(
        out.contains("untagged: app:2") && out.contains("untagged: tool:latest"),
        "{out}"
    );
    assert!(!out.contains("app:1") && !out.contains("keep:1"), "{out}");
    assert!(
        out.contains("Total reclaimed space: 90kB"),
        "app:2's top (70k) and the new tool (20k): {out}"
    );
    assert_eq!(names(&l, &[]), ["app:1", "keep:1"]);
    assert_eq!(l.layer_dirs(), 2);
    let merged = l.root().join("mounts/web/merged");
    assert!(merged.join("usr/lib/base.bin").is_file() && merged.join("srv/web").is_file());
    l.ok(&["umount", "web"]);
    l.ok(&["prune", "-a", "-f"]);
    assert!(l.lines(&["images", "-q"]).is_empty());
    assert_eq!(l.layer_dirs(), 0);
}

// ---- save

/// Saves `image` from `from` in `format`, loads the archive into a new store, and checks the image ID,
/// the diffIDs and the mounted tree.
fn round_trip(from: &Lamina, image: &str, format: &str) {
    let archive = from.dir().join(format!("saved.{format}.tar"));
    from.ok(&[
        "save",
        image,
        "-o",
        archive.to_str().unwrap(),
        "--format",
        format,
    ]);
    let to = Lamina::new();
    let loaded = to.ok(&["load", archive.to_str().unwrap()]);
    let (a, b) = (from.inspect(image), to.inspect(image));
    assert_eq!(a["Id"], b["Id"], "{format}: same image ID ({loaded})");
    assert_eq!(
        a["RootFS"]["Layers"], b["RootFS"]["Layers"],
        "{format}: same diffIDs"
    );
    assert!(
        b["RepoTags"].as_array().unwrap().contains(&json!(image)),
        "{format}: {}",
        b["RepoTags"]
    );
    let ma = from.ok(&["mount", "--read-only", image]);
    let mb = to.ok(&["mount", "--read-only", image]);
    let (ta, tb) = (
        tree::treemanifest(Path::new(ma.trim())),
        tree::treemanifest(Path::new(mb.trim())),
    );
    from.ok(&["umount", ma.trim()]);
    to.ok(&["umount", mb.trim()]);
    assert!(ta.len() > 3);
    // A layer tar without a `./` entry leaves its root dir's mtime to the unpacker (the load time):
    // it is no part of the image, so it is not compared.
    let all_but_the_root_mtime = tree::Compare {
        root_mtime: false,
        ..tree::ALL
    };
    tree::assert_same(
        &format!("{format}: the mounted trees"),
        &ta,
        &tb,
        all_but_the_root_mtime,
    );
}

#[test]
fn save_then_load_gives_back_the_same_images() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    for format in ["oci-archive", "docker-archive"] {
        round_trip(&l, "app:1", format);
    }
    // Several images in one archive; shared layers written once; by ID means no name (as docker).
    let archive = l.dir().join("two.tar");
    l.ok(&[
        "save",
        "app:1",
        "app:2",
        "-o",
        archive.to_str().unwrap(),
        "--format",
        "docker-archive",
    ]);
    let list = Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list.matches("/layer.tar").count(), 3, "{list}");
    let to = Lamina::new();
    to.ok(&["load", archive.to_str().unwrap()]);
    assert_eq!(names(&to, &[]), ["app:1", "app:2"]);
    let id = id_of(&l, "tool:latest");
    let by_id = l.dir().join("byid.tar");
    l.ok(&["save", &id[7..19], "-o", by_id.to_str().unwrap()]);
    let to = Lamina::new();
    assert!(to.ok(&["load", by_id.to_str().unwrap()]).contains(&id));
    assert_eq!(names(&to, &[]), ["<none>:<none>"]);
    // skopeo, an independent reader, accepts what we write.
    if Command::new("skopeo").arg("--version").output().is_ok() {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!(
                "oci-archive:{}",
                l.dir().join("saved.oci-archive.tar").display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo: {out:?}");
        let m: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(m["config"]["digest"], json!(id_of(&l, "app:1")));
    }
    // A changed layer cannot be saved as the image it was: refused, naming the file, no archive left.
    let web = l
        .root()
        .join("layers")
        .join(&l.inspect("app:1")["RootFS"]["Layers"][1].as_str().unwrap()[7..])
        .join("diff/srv/web");
    fs::write(&web, vec![9u8; 50_000]).unwrap();
    let bad = l.dir().join("bad.tar");
    let err = l.fails(&["save", "app:1", "-o", bad.to_str().unwrap()]);
    assert!(err.contains("srv/web") && err.contains("changed"), "{err}");
    assert!(!bad.exists());
    // A format lamina does not know is a usage error (exit 2), as every bad value of a flag is.
    assert!(l
        .exits(
            2,
            &[
                "save",
                "app:2",
                "-o",
                bad.to_str().unwrap(),
                "--format",
                "zip"
            ]
        )
        .contains("zip"));
}

// ---- fsck

#[test]
fn fsck_finds_and_repairs_what_is_safe() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    l.ok(&["fsck"]);
    l.ok(&["fsck", "--verify"]);
    let app2 = id_of(&l, "app:2");
    let tool = l.inspect("tool")["RootFS"]["Layers"][0].as_str().unwrap()[7..].to_string();
    let app1_top = l.inspect("app:1")["RootFS"]["Layers"][1].as_str().unwrap()[7..].to_string();
    // A deleted layer dir, a stale staging dir, an orphaned layer dir, a stale mount, an edited file.
    let m = l.ok(&["mount", "--name", "gone", "app:2"]);
    assert!(Command::new("umount")
        .arg(m.trim())
        .status()
        .unwrap()
        .success());
    fs::remove_dir_all(l.root().join("layers").join(&tool)).unwrap();
    fs::create_dir_all(l.root().join("tmp/layer-99999-0123456789abcdef/diff")).unwrap();
    fs::create_dir_all(l.root().join("layers").join("ab".repeat(32)).join("diff")).unwrap();
    fs::write(
        l.root().join("layers").join(&app1_top).join("diff/srv/web"),
        b"edited",
    )
    .unwrap();

    let out = l.fails(&["fsck"]);
    assert!(
        out.contains(&format!("layer sha256:{tool}")) && out.contains("is missing"),
        "{out}"
    );
    assert!(
        out.contains("tmp/layer-99999-0123456789abcdef: staging dir left"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "layers/{}: a layer dir no row names",
            "ab".repeat(32)
        )),
        "{out}"
    );
    assert!(out.contains("mount gone: nothing is mounted"), "{out}");
    assert!(
        out.contains("image ") && out.contains("(tool:latest)"),
        "{out}"
    );
    assert!(
        !out.contains("srv/web"),
        "without --verify, contents are not read: {out}"
    );
    let out = l.fails(&["fsck", "--verify"]);
    assert!(out.contains("/srv/web: size 50000 -> 6"), "{out}");
    assert!(out.contains("(app:1)"), "{out}");
    // Nothing was changed by looking.
    assert!(l.root().join("tmp/layer-99999-0123456789abcdef").is_dir());

    let out = l.ok(&["fsck", "--repair", "--verify"]);
    assert!(out.contains("[repaired: removed]"), "{out}");
    assert!(out.contains("load it again"), "{out}");
    assert!(out.contains("[repaired: forgotten"), "{out}");
    assert!(!l.root().join("tmp/layer-99999-0123456789abcdef").exists());
    assert!(!l.root().join("layers").join("ab".repeat(32)).exists());
    assert!(l.lines(&["mounts", "-q"]).is_empty());
    // The damaged images are gone; app:2 (only its mount was stale) stays whole; all is clean now.
    assert_eq!(names(&l, &[]), ["app:2"]);
    assert_eq!(id_of(&l, "app:2"), app2);
    l.ok(&["fsck", "--verify"]);
    // Loading again restores what repair removed.
    let layout = l.dir().join("three");
    l.ok(&["load", layout.to_str().unwrap()]);
    assert_eq!(names(&l, &[]), ["app:1", "app:2", "tool:latest"]);
    l.ok(&["fsck", "--verify"]);
    let m = l.ok(&["mount", "--read-only", "app:1"]);
    assert_eq!(
        fs::read(Path::new(m.trim()).join("srv/web")).unwrap(),
        vec![1; 50_000]
    );
}

// ---- the scenario on the corpus's debian image

#[test]
fn debian_gzip_and_zstd_scenario() {
    need_root!();
    let Some(c) = corpus() else {
        eprintln!("SKIP: no corpus (LAMINA_CORPUS)");
        return;
    };
    let debian = c.join("oci/debian");
    let l = Lamina::new();
    l.ok(&["load", &format!("{}:gzip", debian.display())]);
    let zstd = l.ok(&["load", &format!("{}:zstd", debian.display())]);
    assert_eq!(zstd.matches("Already exists").count(), 4, "{zstd}");
    // One image ID, two digests, layers stored once.
    assert_eq!(distinct_ids(&l), 1);
    assert_eq!(names(&l, &[]), ["debian:gzip", "debian:zstd"]);
    let i = l.inspect("debian:gzip");
    assert_eq!(i["RepoDigests"].as_array().unwrap().len(), 2, "{i}");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    assert_eq!(l.layer_dirs(), 4);
    let digests = l.lines(&["images", "--digests", "--format", "{{.Tag}} {{.Digest}}"]);
    let distinct: std::collections::BTreeSet<&str> = digests
        .iter()
        .map(|r| r.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(distinct.len(), 2, "{digests:?}");

    // Tag one twice; rmi one tag: untagged only.
    l.ok(&["tag", "debian:gzip", "mine:a"]);
    l.ok(&["tag", "debian:gzip", "mine:b"]);
    assert_eq!(l.lines(&["rmi", "mine:a"]), ["Untagged: mine:a"]);
    assert_eq!(l.layer_dirs(), 4);
    let h = l.lines(&["history", "debian:gzip"]);
    assert_eq!(h.len(), 5, "{h:?}");

    // Save and load back (both formats): same ID, same diffIDs, same mounted tree.
    round_trip(&l, "debian:gzip", "oci-archive");
    round_trip(&l, "debian:zstd", "docker-archive");

    // df with a mount; prune and prune -a spare the mounted image.
    let m = l.ok(&["mount", "--name", "deb", "debian:gzip"]);
    assert!(Path::new(m.trim()).join("etc/os-release").exists());
    let df = l.lines(&["df"]);
    assert!(
        df[1].split_whitespace().collect::<Vec<_>>()[1..3] == ["1", "1"],
        "{df:?}"
    );
    assert!(
        df[2].split_whitespace().collect::<Vec<_>>()[1..3] == ["4", "4"],
        "{df:?}"
    );
    assert_eq!(l.ok(&["prune", "-f"]).trim(), "Total reclaimed space: 0B");
    assert_eq!(
        l.ok(&["prune", "-a", "-f"]).trim(),
        "Total reclaimed space: 0B"
    );
    assert_eq!(l.layer_dirs(), 4);

    // Remove the rest step by step: layers go only with the last user.
    assert_eq!(l.lines(&["rmi", "mine:b"]), ["Untagged: mine:b"]);
    assert_eq!(l.lines(&["rmi", "debian:zstd"]), ["Untagged: debian:zstd"]);
    assert!(l
        .fails(&["rmi", "debian:gzip"])
        .contains("being used by mount deb"));
    l.ok(&["umount", "deb"]);

    // fsck: an edited file (found by --verify), a deleted layer dir, a stale staging dir.
    let layers = i["RootFS"]["Layers"].as_array().unwrap().clone();
    let hex = |n: usize| layers[n].as_str().unwrap()[7..].to_string();
    // (Layers 1 and 4 are keyed by diffID; 2 and 3 depend on their parents and are keyed by chainID.)
    let version = l
        .root()
        .join("layers")
        .join(hex(0))
        .join("diff/etc/debian_version");
    let mut text = fs::read(&version).unwrap();
    text.extend_from_slice(b"edited\n");
    fs::write(&version, text).unwrap();
    l.ok(&["fsck"]);
    let out = l.fails(&["fsck", "--verify"]);
    assert!(out.contains("/etc/debian_version: size"), "{out}");
    fs::remove_dir_all(l.root().join("layers").join(hex(3))).unwrap();
    fs::create_dir_all(l.root().join("tmp/layer-4242-feedfacefeedface/diff/usr")).unwrap();
    let out = l.fails(&["fsck"]);
    assert!(
        out.contains("is missing") && out.contains("staging dir left"),
        "{out}"
    );
    let out = l.ok(&["fsck", "--repair", "--verify"]);
    assert!(out.contains("load it again"), "{out}");
    assert_eq!(
        l.layer_dirs(),
        0,
        "every layer went with the one image that used them"
    );
    l.ok(&["fsck", "--verify"]);
    // And the store heals by loading again.
    l.ok(&["load", &format!("{}:gzip", debian.display())]);
    l.ok(&["fsck", "--verify"]);
    assert_eq!(
        l.ok(&["rmi", "debian:gzip"]).matches("Deleted: ").count(),
        5
    );
    assert_eq!(l.layer_dirs(), 0);
}

/// A `--no-mount` mount is the runtime's to mount, often in a namespace this process cannot see:
/// fsck leaves it alone, and it keeps its image until `lamina umount`.
#[test]
fn fsck_keeps_prepared_mounts() {
    need_root!();
    let l = Lamina::new();
    load_three(&l);
    l.ok(&["mount", "--no-mount", "--name", "prep", "app:2"]);
    let out = l.ok(&["fsck"]);
    assert!(!out.contains("mount prep"), "{out}");
    l.ok(&["fsck", "--repair"]);
    assert_eq!(l.lines(&["mounts", "-q"]), ["prep"]);
    let out = l.fails(&["rmi", "app:2"]);
    assert!(
        out.contains("prep"),
        "the mount still pins its image: {out}"
    );
    l.ok(&["umount", "prep"]);
    assert!(l.lines(&["mounts", "-q"]).is_empty());
    l.ok(&["rmi", "app:2"]);
}
