//! Where a docker user meets lamina's image commands, lamina answers as docker does (issue 12,
//! point 4). Each test names the docker behaviour it compares with (moby's
//! daemon/images/image_delete.go and images.go, distribution/pull_v2.go, docker-cli's
//! manifest/inspect.go); the registry ones run against the real distribution registry, as
//! registry.rs does.

mod registry;

use crate::common::{Run, Store};
use crate::registry::fixture::Env;
use crate::registry::layout_digest;
use lamina_testkit::env::{corpus, is_root, skip};
use lamina_testkit::messages::repeated_part;
use std::path::{Path, PathBuf};

/// The corpus with its multi-platform image, as root; None after a SKIP line.
fn multiarch_corpus() -> Option<PathBuf> {
    if !is_root() {
        skip("compat tests need root (unpacking owners)");
        return None;
    }
    let dir = corpus()?;
    if !dir.join("stamps/multiarch").exists() {
        skip("compat tests: the corpus's multiarch image is not built");
        return None;
    }
    Some(dir)
}

/// `CORPUS/oci/multiarch:REF`
fn multi(corpus: &Path, r: &str) -> PathBuf {
    PathBuf::from(format!("{}:{r}", corpus.join("oci/multiarch").display()))
}

/// The manifest digest of a ref of the corpus's multiarch layout.
fn multi_digest(corpus: &Path, r: &str) -> String {
    let env = Env {
        shared: PathBuf::new(),
        corpus: corpus.to_path_buf(),
    };
    layout_digest(&env, "multiarch", r)
}

/// This host's architecture as image platforms spell it, and one that is not it.
fn host_and_foreign_arch() -> (&'static str, &'static str) {
    if std::env::consts::ARCH == "aarch64" {
        ("arm64", "amd64")
    } else {
        ("amd64", "arm64")
    }
}

/// `images --digests` rows as (repository, tag, digest).
fn digest_rows(s: &Store, extra: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["images", "--digests"];
    args.extend_from_slice(extra);
    s.ok(&args)
        .lines()
        .into_iter()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_string(), c[1].to_string(), c[2].to_string())
        })
        .collect()
}

fn row(repo: &str, tag: &str, digest: &str) -> (String, String, String) {
    (repo.to_string(), tag.to_string(), digest.to_string())
}

/// stderr lines that are warnings.
fn warnings(r: &Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter(|l| l.contains("WARNING"))
        .map(str::to_string)
        .collect()
}

// ---- rmi and digest references (moby daemon/images/image_delete.go)

#[test]
fn rmi_of_a_digest_reference_removes_only_that_reference() {
    let Some(corpus) = multiarch_corpus() else {
        return;
    };
    let (host, _) = host_and_foreign_arch();
    let r = format!("latest-{host}");
    let digest = multi_digest(&corpus, &r);
    let s = Store::new("compat");
    s.load(&multi(&corpus, &r), &["--tag", "one/app:1"]);
    assert_eq!(digest_rows(&s, &[]), [row("one/app", "1", &digest)]);
    // docker: `rmi NAME@sha256:…` untags that reference only; the image and its tag stay.
    assert_eq!(
        s.ok(&["rmi", &format!("one/app@{digest}")]).lines(),
        [format!("Untagged: one/app@{digest}")]
    );
    assert_eq!(digest_rows(&s, &[]), [row("one/app", "1", "<none>")]);
    s.ok(&["inspect", "one/app:1"]);
    s.ok(&["fsck"]);
}

#[test]
fn the_last_tag_of_a_repository_takes_its_digest_references_along() {
    let Some(corpus) = multiarch_corpus() else {
        return;
    };
    let (host, _) = host_and_foreign_arch();
    let r = format!("latest-{host}");
    let digest = multi_digest(&corpus, &r);
    let s = Store::new("compat");
    s.load(&multi(&corpus, &r), &["--tag", "one/app:1"]);
    s.ok(&["tag", "one/app:1", "one/app:2"]);
    s.ok(&["tag", "one/app:1", "two/app:1"]);
    let id = s.ok(&["images", "-q", "--no-trunc"]).lines()[0].clone();

    // Another tag of the repository is left: docker untags the one named, nothing else.
    assert_eq!(s.ok(&["rmi", "one/app:1"]).lines(), ["Untagged: one/app:1"]);
    // The repository's last tag: docker also untags its digest references, and says so.
    assert_eq!(
        s.ok(&["rmi", "one/app:2"]).lines(),
        [
            "Untagged: one/app:2".to_string(),
            format!("Untagged: one/app@{digest}")
        ]
    );
    // No orphan digest row: the image is listed by its remaining name only.
    assert_eq!(digest_rows(&s, &[]), [row("two/app", "1", "<none>")]);
    // The last reference: the image goes.
    let out = s.ok(&["rmi", "two/app:1"]).lines();
    assert_eq!(
        out[..2],
        ["Untagged: two/app:1".to_string(), format!("Deleted: {id}")]
    );
    assert!(digest_rows(&s, &[]).is_empty());
    assert!(
        crate::common::list_dir(&s.root().join("blobs/sha256")).is_empty(),
        "no blob left behind"
    );
    s.ok(&["fsck"]);
}

// ---- images REPO and --filter reference= (moby daemon/images/images.go: FamiliarMatch per reference)

#[test]
fn reference_filters_select_digest_rows_too() {
    let Some(corpus) = multiarch_corpus() else {
        return;
    };
    let (host, foreign) = host_and_foreign_arch();
    let (d1, d2) = (
        multi_digest(&corpus, &format!("latest-{host}")),
        multi_digest(&corpus, &format!("latest-{foreign}")),
    );
    let s = Store::new("compat");
    s.load(
        &multi(&corpus, &format!("latest-{host}")),
        &["--tag", "one/app:1"],
    );
    s.load(
        &multi(&corpus, &format!("latest-{foreign}")),
        &[
            "--tag",
            "two/app:1",
            "--platform",
            &format!("linux/{foreign}"),
        ],
    );
    assert_eq!(digest_rows(&s, &["one/app"]), [row("one/app", "1", &d1)]);
    assert_eq!(
        digest_rows(&s, &["--filter", "reference=two/*"]),
        [row("two/app", "1", &d2)]
    );
    // docker matches `one/app:1` against `one/app@sha256:…` and `one/app`: the digest reference
    // does not pass, so the tag row shows no digest.
    assert_eq!(
        digest_rows(&s, &["--filter", "reference=one/app:1"]),
        [row("one/app", "1", "<none>")]
    );
    let by_template = s
        .ok(&[
            "images",
            "--format",
            "{{.Repository}} {{.Digest}}",
            "one/app",
        ])
        .lines();
    assert_eq!(by_template, [format!("one/app {d1}")]);
}

// ---- warnings and messages

#[test]
fn a_platform_warning_is_printed_once_plainly_and_says_requested_only_when_asked() {
    let Some(corpus) = multiarch_corpus() else {
        return;
    };
    let (host, foreign) = host_and_foreign_arch();
    let s = Store::new("compat");
    let foreign_image = multi(&corpus, &format!("latest-{foreign}"));
    let r = s.load(&foreign_image, &["--tag", "f:1"]);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "once: {}", r.stderr);
    assert!(
        !r.stderr.contains('\u{1b}'),
        "no colour codes into a pipe: {:?}",
        r.stderr
    );
    assert!(
        !w[0].contains("requested"),
        "no --platform was given: {}",
        w[0]
    );
    assert!(w[0].contains(&format!("linux/{host}")), "{}", w[0]);

    let r = s.load(
        &foreign_image,
        &["--tag", "f:2", "--platform", &format!("linux/{host}")],
    );
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "once: {}", r.stderr);
    assert!(w[0].contains("requested"), "--platform was given: {}", w[0]);
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
}

#[test]
fn messages_do_not_repeat_themselves() {
    let Some(corpus) = multiarch_corpus() else {
        return;
    };
    let s = Store::new("compat");
    let (host, _) = host_and_foreign_arch();
    s.load(
        &multi(&corpus, &format!("latest-{host}")),
        &["--tag", "one/app:1"],
    );
    let index = multi(&corpus, "latest");
    let index = index.to_str().expect("utf-8");
    let failures = [
        s.fails(&["tag", "one/app:1", "Bad::REF"]),
        s.fails(&["pull", "Bad:REF"]),
        s.fails(&["load", index, "--platform", "linux/s390x"]),
        s.fails(&["rmi", "nothing:here"]),
    ];
    for r in &failures {
        let line = r.stderr.lines().next().unwrap_or_default();
        assert_eq!(repeated_part(line), None, "{}", r.describe());
    }
    assert_eq!(
        failures[0].stderr.matches("invalid reference").count(),
        1,
        "{}",
        failures[0].stderr
    );
}

/// The README's multi-platform `load … --tag` line, run as written (from the corpus directory,
/// where `oci/` is).
#[test]
fn the_readme_multi_platform_load_runs_as_written() {
    let Some(corpus) = multiarch_corpus() else {
        return;
    };
    let readme = std::fs::read_to_string(lamina_testkit::env::repo_dir().join("README.md"))
        .expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.starts_with("lamina load oci/multiarch") && l.contains("--tag"))
        .expect("the README has a multi-platform load --tag line");
    let args: Vec<&str> = line
        .split('#')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .collect();
    let s = Store::new("compat");
    let out = s
        .command()
        .args(&args)
        .current_dir(&corpus)
        .output()
        .expect("lamina runs");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = args[args.iter().position(|a| *a == "--tag").expect("--tag") + 1];
    let arch = args[args
        .iter()
        .position(|a| *a == "--platform")
        .expect("--platform")
        + 1]
    .split('/')
    .nth(1)
    .expect("os/arch");
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspect", tag]).stdout).expect("inspect JSON");
    assert_eq!(inspect[0]["Architecture"], arch, "{line}");
}
