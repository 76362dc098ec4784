//! `--format` and docker's command forms (issue 12): the real binary's output for Go templates,
//! tables, `images -q`, `--digests`, ages, history's CreatedAt, `inspect` (docker's field set,
//! several names, `-f`), `mounts --format`, bad templates, and `image ...` aliases. Each expected
//! output is what docker prints for the same data (docker-cli's formatter and go-units rules).
//!
//! The images are synthetic OCI layouts written here with the testkit: two small layers, a tag
//! and a creation time chosen per test (ages need a time relative to now).

use crate::common::Store;
use lamina_testkit::env;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

macro_rules! need_root {
    () => {
        if !env::is_root() {
            eprintln!("SKIP: needs root");
            return;
        }
    };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC ("2020-01-01T00:00:00Z"), as GNU date prints it: an oracle that is not lamina's
/// own civil-time code.
fn rfc3339(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date runs");
    assert!(out.status.success(), "date -d @{secs} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn layer(name: &str, size: usize) -> Layer {
    let mut w = TarWriter::new();
    w.dir("data/", 0o755);
    w.file(format!("data/{name}"), 0o644, &vec![7; size]);
    Layer::new(&w.finish(), Compression::Gzip)
}

/// Loads a two-layer image tagged `tag`, made at `created`, labelled tier=web; returns its ID.
fn load_image(s: &Store, tag: &str, created: &str) -> String {
    let mut image = Image::new(vec![
        layer(&format!("{tag}-base"), 3000),
        layer(&format!("{tag}-top"), 2000),
    ]);
    image.created = Some(created.to_string());
    image.runtime = json!({"Labels": {"tier": "web"}, "Cmd": ["/bin/sh"]});
    image.history = Some(vec![
        json!({"created": created, "created_by": "/bin/sh -c #(nop) ADD base"}),
        json!({"created": created, "created_by": "/bin/sh -c #(nop) ADD top", "comment": "top step"}),
    ]);
    let dir = s.scratch(&tag.replace([':', '/'], "-"));
    let mut oci = OciBuilder::new();
    oci.image(Some(tag), image);
    oci.write_layout(&dir);
    s.load(&dir, &[]);
    inspect(s, &[tag])[0]["Id"].as_str().unwrap().to_string()
}

fn inspect(s: &Store, names: &[&str]) -> Value {
    let mut args = vec!["inspect"];
    args.extend_from_slice(names);
    serde_json::from_str(&s.ok(&args).stdout).unwrap()
}

fn lines(s: &Store, args: &[&str]) -> Vec<String> {
    s.ok(args).lines()
}

/// docker prints one row per (repository, tag), and `-q` is the `{{.ID}}` of each row: an image
/// with two tags shows its ID twice. `-q` with a format of one's own uses that format.
#[test]
fn images_quiet_prints_the_id_of_every_row_as_docker() {
    need_root!();
    let s = Store::new("format");
    let id = load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    s.ok(&["tag", "app:1", "app:extra"]);
    let short = &id[7..19];
    assert_eq!(lines(&s, &["images", "-q"]), [short, short]);
    assert_eq!(
        lines(&s, &["images", "-q", "--no-trunc"]),
        [id.as_str(), id.as_str()]
    );
    assert_eq!(
        lines(
            &s,
            &["images", "-q", "--format", "{{.Repository}}:{{.Tag}}"]
        ),
        ["app:1", "app:extra"]
    );
    // `--format table -q` is docker's quiet format again.
    assert_eq!(
        lines(&s, &["images", "-q", "--format", "table"]),
        [short, short]
    );
}

/// docker's NewImageFormat: `--digests` with a `table` format of one's own appends a DIGEST
/// column (unless it shows `{{.Digest}}` already).
#[test]
fn digests_with_a_table_format_add_the_digest_column() {
    need_root!();
    let s = Store::new("format");
    load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    let digest = inspect(&s, &["app:1"])[0]["RepoDigests"][0]
        .as_str()
        .unwrap()
        .split_once('@')
        .unwrap()
        .1
        .to_string();
    let out = s
        .ok(&[
            "images",
            "--digests",
            "--format",
            "table {{.Repository}}\\t{{.Tag}}",
        ])
        .stdout;
    assert_eq!(
        out,
        format!("REPOSITORY   TAG       DIGEST\napp          1         {digest}\n")
    );
    let shown = s
        .ok(&[
            "images",
            "--digests",
            "--format",
            "table {{.Digest}}\\t{{.Tag}}",
        ])
        .stdout;
    assert_eq!(
        shown,
        format!("DIGEST{}TAG\n{digest}   1\n", " ".repeat(digest.len() - 3))
    );
}

/// go-units' HumanDuration rounds hours (90 minutes is "2 hours"); history's CreatedAt is
/// RFC 3339, as `docker history --format '{{.CreatedAt}}'` prints it.
#[test]
fn ages_round_as_docker_and_history_created_at_is_rfc3339() {
    need_root!();
    let s = Store::new("format");
    let created = now() - 90 * 60;
    load_image(&s, "app:1", &rfc3339(created));
    assert_eq!(
        lines(&s, &["images", "--format", "{{.CreatedSince}}"]),
        ["2 hours ago"]
    );
    assert_eq!(
        lines(
            &s,
            &[
                "history",
                "--format",
                "{{.CreatedSince}}|{{.CreatedAt}}",
                "app:1"
            ]
        ),
        [
            format!("2 hours ago|{}", rfc3339(created)),
            format!("2 hours ago|{}", rfc3339(created))
        ]
    );
    let table = lines(&s, &["images"]);
    assert!(table[1].contains(" 2 hours ago "), "{table:?}");
    // -q with a format obeys the format here too.
    assert_eq!(
        lines(
            &s,
            &[
                "history",
                "-q",
                "--format",
                "{{.Comment}}|{{.CreatedBy}}",
                "app:1"
            ]
        ),
        [
            "top step|/bin/sh -c #(nop) ADD top",
            "|/bin/sh -c #(nop) ADD base"
        ]
    );
}

/// docker's image inspect document: its fields in its order, "" for absent strings, the layer
/// dirs under GraphDriver, indented by four spaces.
#[test]
fn inspect_prints_docker_s_fields() {
    need_root!();
    let s = Store::new("format");
    let id = load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    let out = s.ok(&["inspect", "app:1"]).stdout;
    assert!(out.starts_with("[\n    {\n        \"Id\": "), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let i = &v[0];
    let keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "Architecture",
        "Author",
        "Comment",
        "Config",
        "Created",
        "DockerVersion",
        "GraphDriver",
        "Id",
        "Metadata",
        "Mounts",
        "Os",
        "Parent",
        "RepoDigests",
        "RepoTags",
        "RootFS",
        "Size",
    ];
    want.sort();
    assert_eq!(keys, want);
    // Order as docker's: Id first, Parent and Comment before Created, Metadata last of docker's.
    let at = |k: &str| {
        out.find(&format!("\n        \"{k}\""))
            .unwrap_or(usize::MAX)
    };
    assert!(at("RepoDigests") < at("Parent") && at("Parent") < at("Comment"));
    assert!(
        at("Comment") < at("Created") && at("Os") < at("Size") && at("RootFS") < at("Metadata")
    );
    for k in ["Parent", "DockerVersion", "Author"] {
        assert_eq!(i[k], "", "{k}");
    }
    assert_eq!(i["Comment"], "top step");
    assert_eq!(i["Id"], id);
    assert_eq!(i["Created"], "2020-01-01T00:00:00Z");
    assert_eq!(i["Config"]["Labels"]["tier"], "web");
    assert_eq!(i["GraphDriver"]["Name"], "overlay");
    let upper = PathBuf::from(i["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap());
    let lower = PathBuf::from(i["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap());
    assert!(
        upper.join("data/app:1-top").is_file(),
        "{}",
        upper.display()
    );
    assert!(
        lower.join("data/app:1-base").is_file(),
        "{}",
        lower.display()
    );
    assert!(upper.starts_with(s.root()) && lower.starts_with(s.root()));
    assert!(i["Metadata"]["LastTagTime"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 2);
}

/// docker inspect with names it cannot find: the JSON of those it found, then `Error: No such
/// object: X` per missing one on stderr, exit 1 (`[]` when none was found).
#[test]
fn inspect_of_several_names_prints_those_found_and_errors_for_the_rest() {
    need_root!();
    let s = Store::new("format");
    let id = load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    let r = s.fails(&["inspect", "app:1", "nosuch:1", "other"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["Id"], id);
    assert_eq!(
        r.stderr,
        "Error: No such object: nosuch:1\nError: No such object: other\n"
    );
    let r = s.fails(&["inspect", "nosuch:1"]);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("[]\n", "Error: No such object: nosuch:1\n")
    );
    let r = s.fails(&["inspect", "-f", "{{.Id}}", "nosuch:1", "app:1"]);
    assert_eq!(r.stdout, format!("{id}\n"));
    let r = s.fails(&["image", "inspect", "nosuch:1"]);
    assert_eq!(r.stderr, "Error: No such image: nosuch:1\n");
}

/// Go templates through the binary: conditionals, range, functions, json, nested fields.
#[test]
fn templates_run_as_go_s() {
    need_root!();
    let s = Store::new("format");
    load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    s.ok(&["tag", "app:1", "web/app:v2"]);
    assert_eq!(
        lines(
            &s,
            &[
                "images",
                "--format",
                "{{if eq .Tag \"1\"}}one{{else}}other{{end}} {{upper .Repository}} {{json .Tag}} \
                 {{title .Tag}} [{{pad .Tag 1 0}}] {{truncate .Repository 2}} {{join (split .Repository \"/\") \"+\"}}",
            ]
        ),
        ["one APP \"1\" 1 [ 1] ap app", "other WEB/APP \"v2\" V2 [ v2] we web+app"]
    );
    let out = s
        .ok(&[
            "inspect",
            "--format",
            "{{range .RepoTags}}{{.}},{{end}}|{{json .Config.Labels}}|{{index .Config.Labels \"tier\"}}|\
             {{len .RootFS.Layers}}|{{with .Config.Cmd}}{{join . \" \"}}{{end}}",
            "app:1",
        ])
        .stdout;
    assert_eq!(out, "app:1,web/app:v2,|{\"tier\":\"web\"}|web|2|/bin/sh\n");
}

/// A bare `table` is the command's default table; a table of one's own aligns as docker's
/// tabwriter does (columns padded to the widest cell + 3, at least 10).
#[test]
fn bare_table_is_the_default_table() {
    need_root!();
    let s = Store::new("format");
    load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    load_image(&s, "longer-repository/name:tag", "2021-01-01T00:00:00Z");
    s.mount("app:1", &["--name", "fmt1"]);
    for cmd in [vec!["images"], vec!["history", "app:1"], vec!["mounts"]] {
        let plain = s.ok(&cmd).stdout;
        let mut with = cmd.clone();
        with.extend(["--format", "table"]);
        assert_eq!(s.ok(&with).stdout, plain, "{cmd:?}");
    }
    let images = lines(&s, &["images"]);
    assert_eq!(
        images[0]
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    );
    assert_eq!(
        s.ok(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"])
            .stdout,
        "REPOSITORY               TAG\n\
         longer-repository/name   tag\n\
         app                      1\n"
    );
    let history = lines(&s, &["history", "app:1"]);
    assert!(
        history[0].starts_with("IMAGE          CREATED       CREATED BY")
            && history[0].ends_with("SIZE      COMMENT"),
        "{history:?}"
    );
    assert_eq!(
        lines(
            &s,
            &[
                "mounts",
                "--format",
                "{{.ID}} {{.Image}} {{.Driver}} {{.Mode}}"
            ]
        ),
        ["fmt1 app:1 overlay rw"]
    );
    let row: Value = serde_json::from_str(&s.ok(&["mounts", "--format", "json"]).stdout).unwrap();
    for k in [
        "ID",
        "Image",
        "ImageID",
        "Driver",
        "Mode",
        "CreatedSince",
        "CreatedAt",
        "Mountpoint",
    ] {
        assert!(row[k].is_string(), "{k}: {row}");
    }
    assert!(
        row["Mountpoint"].as_str().unwrap().ends_with("/merged"),
        "{row}"
    );
    assert_eq!(lines(&s, &["mounts", "-q"]), ["fmt1"]);
    s.ok(&["umount", "fmt1"]);
}

/// docker: a template that does not parse is `template parsing error: template: :1: ...`, exit
/// 1 for listings and 64 for inspect; one that fails on a row prints nothing and exits 1.
#[test]
fn bad_templates_are_errors_worded_as_docker_s() {
    need_root!();
    let s = Store::new("format");
    load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    let unclosed = "template parsing error: template: :1: unclosed action";
    for cmd in [
        vec!["images", "--format", "{{.ID"],
        vec!["history", "--format", "{{.ID", "app:1"],
        vec!["mounts", "--format", "{{.ID"],
    ] {
        let r = s.fails(&cmd);
        assert!(r.stderr.contains(unclosed), "{cmd:?}: {}", r.describe());
        assert_eq!(r.stdout, "", "{cmd:?}");
    }
    let r = s.exits(64, &["inspect", "-f", "{{.Id", "app:1"]);
    assert_eq!(r.stderr, format!("{unclosed}\n"));
    let r = s.fails(&["images", "--format", "{{nosuch .ID}}"]);
    assert!(
        r.stderr.contains("function \"nosuch\" not defined"),
        "{}",
        r.describe()
    );
    let r = s.fails(&["images", "--format", "table {{.ID}}\\t{{.Nope}}"]);
    assert!(
        r.stderr
            .contains("executing \"\" at <.Nope>: can't evaluate field Nope"),
        "{}",
        r.describe()
    );
    assert_eq!(r.stdout, "", "nothing is printed when a row fails");
    let r = s.fails(&["inspect", "-f", "{{.Nope}}", "app:1"]);
    assert!(
        r.stderr.contains("template parsing error: "),
        "{}",
        r.describe()
    );
}

/// `lamina image ls|pull|rm|tag|inspect|history|prune|save|load|import` run the same commands.
#[test]
fn image_aliases_are_docker_s_command_forms() {
    need_root!();
    let s = Store::new("format");
    let id = load_image(&s, "app:1", "2020-01-01T00:00:00Z");
    s.ok(&["image", "tag", "app:1", "app:2"]);
    assert_eq!(s.ok(&["image", "ls"]).stdout, s.ok(&["images"]).stdout);
    assert_eq!(
        s.ok(&["image", "list", "-q"]).stdout,
        s.ok(&["images", "-q"]).stdout
    );
    assert_eq!(
        s.ok(&["image", "inspect", "app:2"]).stdout,
        s.ok(&["inspect", "app:2"]).stdout
    );
    assert_eq!(
        s.ok(&["image", "history", "app:1"]).stdout,
        s.ok(&["history", "app:1"]).stdout
    );
    let archive = s.scratch("save").join("app.tar");
    let archive = archive.to_str().unwrap();
    s.ok(&["image", "save", "app:1", "-o", archive]);
    s.ok(&["image", "rm", "app:2"]);
    assert_eq!(lines(&s, &["images", "--format", "{{.Tag}}"]), ["1"]);
    s.ok(&["image", "rm", "app:1"]);
    assert!(s.ok(&["images", "-q"]).stdout.is_empty());
    s.ok(&["image", "load", archive]);
    assert_eq!(inspect(&s, &["app:1"])[0]["Id"], id.as_str());
    let rootfs = s.scratch("rootfs");
    std::fs::write(rootfs.join("hello"), b"hi\n").unwrap();
    s.ok(&["image", "import", rootfs.to_str().unwrap(), "imported:1"]);
    assert_eq!(
        lines(&s, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).len(),
        2
    );
    s.ok(&["image", "rm", "imported:1"]);
    let pruned = s.ok(&["image", "prune", "-a", "-f"]).stdout;
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert!(s.ok(&["images", "-q"]).stdout.is_empty());
    // pull is wired to the same command: the same refusal for a bad reference, no network needed.
    let (a, b) = (
        s.fails(&["pull", "UPPER:case"]),
        s.fails(&["image", "pull", "UPPER:case"]),
    );
    assert_eq!(a.stderr, b.stderr);
}
