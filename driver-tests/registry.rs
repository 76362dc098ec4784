//! `lamina pull`, `login` and `manifest inspect` against the real distribution registry (Debian's
//! docker-registry, started on 127.0.0.1 by ../shared/recipes), with corpus images pushed by
//! skopeo. Every pulled image is checked against the same image loaded from its OCI layout: both
//! are mounted and their trees compared.

pub mod custom;
pub mod fixture;

use fixture::{count, path_str, CuttingProxy, Env, Lamina, Registry};

/// A skopeo source: `oci:CORPUS/oci/NAME:TAG`.
pub(crate) fn oci(env: &Env, image_tag: &str) -> String {
    format!("oci:{}", layout(env, image_tag))
}

/// The layout source `lamina load` takes: `CORPUS/oci/NAME:TAG`.
fn layout(env: &Env, image_tag: &str) -> String {
    let (name, tag) = image_tag.split_once(':').unwrap_or((image_tag, "latest"));
    format!("{}:{tag}", path_str(&env.corpus.join("oci").join(name)))
}

/// The tree of `pulled` in `store` equals the tree of the layout image loaded into a fresh store.
fn assert_same_tree_as_loaded(
    env: &Env,
    store: &Lamina,
    pulled: &str,
    image_tag: &str,
    platform: Option<&str>,
) {
    let loaded = Lamina::new();
    let src = layout(env, image_tag);
    let mut args = vec!["load", src.as_str(), "--tag", "expected:here"];
    if let Some(p) = platform {
        args.extend(["--platform", p]);
    }
    loaded.ok(&args);
    let want = loaded.tree(env, "expected:here");
    let got = store.tree(env, pulled);
    assert!(want.lines().count() > 1, "the loaded tree is not empty");
    assert!(
        got == want,
        "pulled {pulled} differs from loaded {image_tag}:\n{}",
        first_diff(&want, &got)
    );
}

fn first_diff(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("loaded: {x}\npulled: {y}");
        }
    }
    format!(
        "lengths differ: loaded {} lines, pulled {}",
        a.lines().count(),
        b.lines().count()
    )
}

pub(crate) fn layout_digest(env: &Env, image: &str, tag: &str) -> String {
    let index = std::fs::read_to_string(env.corpus.join("oci").join(image).join("index.json"))
        .expect("index.json");
    let v: serde_json::Value = serde_json::from_str(&index).expect("index.json parses");
    v["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .expect("tag in index.json")
        .to_string()
}

#[test]
fn pull_by_tag_then_by_digest_gives_the_loaded_tree() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &[]);
    reg.push(&oci(&env, "many-layers:130"), "many:130", &[]);
    let digest = layout_digest(&env, "many-layers", "130");
    let name = format!("{}/many:130", reg.host());

    let store = Lamina::new();
    let out = store.ok(&["pull", &name]);
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(lines[0], "130: Pulling from many", "{out}");
    assert_eq!(count(&lines, ": Pull complete"), 130, "{out}");
    assert!(lines.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some(name.as_str()),
        "the reference, for scripts"
    );
    assert_same_tree_as_loaded(&env, &store, &name, "many-layers:130", None);

    // again: nothing to fetch, and docker says only that (no layer lines)
    let out = store.ok(&["pull", &name]);
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "130: Pulling from many".to_string(),
            format!("Digest: {digest}"),
            format!("Status: Image is up to date for {name}"),
            name.clone()
        ],
        "{out}"
    );

    // by digest, into a fresh store: a tagless image listed with that digest
    let by_digest = format!("{}/many@{digest}", reg.host());
    let fresh = Lamina::new();
    let out = fresh.ok(&["pull", &by_digest]);
    assert!(
        out.starts_with(&format!("{digest}: Pulling from many")),
        "{out}"
    );
    let listing = fresh.ok(&["images", "--digests"]);
    let row = listing.lines().nth(1).expect("one image row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cols[..3],
        &[
            format!("{}/many", reg.host()).as_str(),
            "<none>",
            digest.as_str()
        ],
        "{listing}"
    );
    assert_same_tree_as_loaded(&env, &fresh, &by_digest, "many-layers:130", None);

    // manifest inspect prints the document the registry holds (its digest is the one pushed),
    // indented as docker prints it (compat.rs checks the indentation)
    let out = fresh
        .cmd(&["manifest", "inspect", &name])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let expected = std::fs::read(
        env.corpus
            .join("oci/many-layers/blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .expect("blob");
    let parsed = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).expect("JSON");
    assert_eq!(parsed(&out.stdout), parsed(&expected));
}

#[test]
fn all_tags_share_layers_and_pages_are_followed() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &[]);
    reg.push(&oci(&env, "multiarch:latest"), "multi:latest", &["--all"]);
    reg.push(
        &oci(&env, "multiarch:latest-amd64"),
        "multi:latest-amd64",
        &[],
    );
    reg.push(
        &oci(&env, "multiarch:latest-arm64"),
        "multi:latest-arm64",
        &[],
    );
    let repo = format!("{}/multi", reg.host());
    // one tag per page: three pages, linked by Link headers
    let store = Lamina::new().env("LAMINA_TAGS_PAGE_SIZE", "1");
    let out = store.ok(&["pull", "-a", &repo]);
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    for tag in ["latest", "latest-amd64", "latest-arm64"] {
        assert!(
            lines.contains(&format!("{tag}: Pulling from multi")),
            "{out}"
        );
    }
    // the host's manifest comes twice (latest and latest-<host arch>): fetched once, and the
    // second time the image is there, so docker shows no layer lines for it
    assert_eq!(count(&lines, ": Pull complete"), 2, "{out}");
    assert_eq!(count(&lines, ": Already exists"), 0, "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {repo}\n")),
        "{out}"
    );
    let listing = store.ok(&["images"]);
    for tag in ["latest", "latest-amd64", "latest-arm64"] {
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(tag)),
            "{tag} in\n{listing}"
        );
    }
    // a tag or digest with -a is a usage mistake
    let err = store.fails(&["pull", "-a", &format!("{repo}:latest")]);
    assert!(err.contains("--all-tags"), "{err}");
    // again: everything is there, nothing to say about layers
    let out = store.ok(&["pull", "-a", &repo]);
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        count(&lines, ": Already exists") + count(&lines, ": Pull complete"),
        0,
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Image is up to date for {repo}\n")),
        "{out}"
    );
}

#[test]
fn multiarch_index_gives_the_host_platform_or_the_one_asked_for() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &[]);
    reg.push(&oci(&env, "multiarch:latest"), "multi:latest", &["--all"]);
    // the same index as a Docker manifest list of schema 2 manifests
    reg.push(
        &oci(&env, "multiarch:latest"),
        "multi-docker:latest",
        &["--all", "--format", "v2s2"],
    );
    let store = Lamina::new();
    let host = format!("{}/multi:latest", reg.host());
    store.ok(&["pull", &host]);
    assert_same_tree_as_loaded(&env, &store, &host, "multiarch:latest", None);
    let host_tree = store.tree(&env, &host);

    let arm = Lamina::new();
    arm.ok(&["pull", "--platform", "linux/arm64", &host]);
    assert_same_tree_as_loaded(&env, &arm, &host, "multiarch:latest", Some("linux/arm64"));
    assert_ne!(arm.tree(&env, &host), host_tree, "the two platforms differ");

    let docker = Lamina::new();
    let list = format!("{}/multi-docker:latest", reg.host());
    docker.ok(&["pull", "--platform", "linux/arm64", &list]);
    assert_eq!(
        docker.tree(&env, &list),
        arm.tree(&env, &host),
        "Docker list and OCI index agree"
    );
    let raw = docker.ok(&["manifest", "inspect", &list]);
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "{raw}"
    );

    let err = store.fails(&["pull", "--platform", "linux/s390x", &host]);
    assert!(
        err.contains("s390x") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn basic_auth_over_tls_with_a_private_ca() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &["--auth", "--tls"]);
    reg.push(&oci(&env, "multiarch:latest-amd64"), "busy:1", &[]);
    let name = format!("{}/busy:1", reg.host());
    let certs = path_str(&reg.cert_dir());
    // 127.0.0.0/8 is insecure by default, as in docker; take that away to check verification
    let store = Lamina::new().env("LAMINA_INSECURE_REGISTRIES", "");

    let err = store.fails(&["pull", &name]);
    assert!(
        err.contains("certificate") && err.contains("--cert-dir"),
        "{err}"
    );
    let err = store.fails(&["pull", "--cert-dir", &certs, &name]);
    assert!(
        err.contains("unauthorized") && err.contains("lamina login"),
        "{err}"
    );

    let login = |password: &str| {
        crate::common::run_with_stdin(
            &mut store.cmd(&[
                "login",
                &reg.host(),
                "-u",
                "lamina",
                "--password-stdin",
                "--cert-dir",
                &certs,
            ]),
            format!("{password}\n").as_bytes(),
        )
    };
    let config = store.docker_config().join("config.json");
    let out = login("wrong");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
    assert!(!config.exists(), "failed logins store nothing");
    let out = login("lamina-pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Login Succeeded"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config)
            .expect("config.json")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    assert_eq!(
        v["auths"][reg.host()]["auth"],
        "bGFtaW5hOmxhbWluYS1wYXNz",
        "base64 of lamina:lamina-pass"
    );

    store.ok(&["pull", "--cert-dir", &certs, &name]);
    assert_same_tree_as_loaded(&env, &store, &name, "multiarch:latest-amd64", None);

    // docker's certs.d layout: certs.d/HOST:PORT/ca.crt
    let certs_d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(certs_d.path().join(reg.host())).expect("mkdir");
    std::fs::copy(
        reg.cacert.as_ref().expect("CA"),
        certs_d.path().join(reg.host()).join("ca.crt"),
    )
    .expect("copy");
    let out = store
        .cmd(&["pull", &name])
        .env("LAMINA_CERTS_D", certs_d.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Image is up to date"));

    // an insecure registry (the loopback default) skips verification, as docker does
    let insecure = Lamina::new();
    std::fs::copy(&config, insecure.docker_config().join("config.json")).expect("copy config");
    insecure.ok(&["pull", &name]);
}

#[test]
fn bearer_tokens_from_the_token_service() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &["--token"]);
    reg.push(&oci(&env, "multiarch:latest-arm64"), "tok/busy:arm", &[]);
    let name = format!("{}/tok/busy:arm", reg.host());
    let store = Lamina::new();
    let err = store.fails(&["pull", &name]);
    assert!(
        err.contains("unauthorized") && err.contains("token"),
        "{err}"
    );

    // credentials written by hand, as docker would have written them
    std::fs::write(
        store.docker_config().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"bGFtaW5hOmxhbWluYS1wYXNz"}}}}}}"#,
            reg.host()
        ),
    )
    .expect("config.json");
    store.ok(&["pull", &name]);
    assert_same_tree_as_loaded(&env, &store, &name, "multiarch:latest-arm64", None);
    let raw = store.ok(&["manifest", "inspect", &name]);
    assert!(raw.contains("\"layers\""), "{raw}");

    // login runs the token flow to check the password
    let other = Lamina::new();
    let out = other.run(&["login", &reg.host(), "-u", "lamina", "-p", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let out = other.run(&["login", &reg.host(), "-u", "lamina", "-p", "lamina-pass"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    other.ok(&["pull", &name]);
}

#[test]
fn missing_things_and_corrupt_blobs_are_clear_errors() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &[]);
    reg.push(&oci(&env, "multiarch:latest-amd64"), "busy:1", &[]);
    let store = Lamina::new();
    let err = store.fails(&["pull", &format!("{}/busy:nope", reg.host())]);
    assert!(
        err.contains("busy:nope not found") && err.contains("manifest unknown"),
        "{err}"
    );
    let err = store.fails(&["pull", &format!("{}/nobody/here:1", reg.host())]);
    assert!(err.contains("nobody/here:1 not found"), "{err}");
    let bogus = format!("sha256:{}", "0".repeat(64));
    let err = store.fails(&["pull", &format!("{}/busy@{bogus}", reg.host())]);
    assert!(err.contains("not found"), "{err}");

    // plain HTTP only when allowed: the loopback default, or --insecure
    let strict = Lamina::new().env("LAMINA_INSECURE_REGISTRIES", "");
    let err = strict.fails(&["pull", &format!("{}/busy:1", reg.host())]);
    assert!(err.contains("--insecure"), "{err}");
    strict.ok(&["pull", "--insecure", &format!("{}/busy:1", reg.host())]);

    // the registry serves other bytes for the layer blob: refused, named, nothing kept
    let manifest = store.ok(&["manifest", "inspect", &format!("{}/busy:1", reg.host())]);
    let v: serde_json::Value = serde_json::from_str(&manifest).expect("manifest json");
    let layer = v["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    let hex = layer.trim_start_matches("sha256:");
    let data = reg
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).expect("blob data");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).expect("corrupt");
    let err = store.fails(&["pull", &format!("{}/busy:1", reg.host())]);
    assert!(err.contains(&layer), "the message names the blob: {err}");
    assert!(
        store.image_ids().is_empty(),
        "nothing half-pulled is visible"
    );
}

#[test]
fn a_registry_that_dies_mid_pull_then_a_pull_that_completes() {
    let Some(env) = fixture::env() else { return };
    let mut reg = Registry::start(&env, &[]);
    reg.push(&oci(&env, "debian:gzip"), "debian:gzip", &[]);
    let name = format!("{}/debian:gzip", reg.host());

    // killed after the first layer is in the store (its line may wait for the layers below it:
    // lines come in layer order): the pull fails, nothing is listed
    let store = Lamina::new().env("LAMINA_RETRIES", "1");
    let run = store.spawn_until(&["pull", &name], |l| l.ends_with(": Pulling from debian"));
    let stored = || {
        std::fs::read_dir(store.root().join("layers"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while stored() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    reg.kill();
    let (ok, lines, stderr) = run.finish();
    assert!(!ok, "the pull must fail: {lines:?}");
    assert!(
        stderr.contains("127.0.0.1") || stderr.contains("blob"),
        "{stderr}"
    );
    let done = stored();
    assert!((1..4).contains(&done), "{done} layers stored: {lines:?}");
    assert!(
        store.image_ids().is_empty(),
        "nothing half-pulled is visible"
    );

    // back up: finished layers are not fetched again
    reg.restart();
    let out = store.ok(&["pull", &name]);
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(count(&lines, ": Already exists") >= done, "{out}");
    assert_eq!(
        count(&lines, ": Already exists") + count(&lines, ": Pull complete"),
        4,
        "{out}"
    );
    assert_same_tree_as_loaded(&env, &store, &name, "debian:gzip", None);

    // a connection cut in the middle of a blob: the pull picks the blob up with a Range request
    let proxy = CuttingProxy::start(reg.port, 4 << 20);
    let via = format!("{}/debian:gzip", proxy.host());
    let patient = Lamina::new()
        .env("LAMINA_RETRIES", "8")
        .env("LAMINA_LOG", "info");
    let out = patient.run(&["pull", &via]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(proxy.has_cut(), "the proxy never cut: {stdout}");
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(count(&lines, ": Pull complete"), 4, "{stdout}");
    let resumed = stderr
        .lines()
        .find_map(|l| l.split("resuming at byte ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        resumed.is_some_and(|n| n > 0),
        "a Range request picked the blob up midway: {stderr}"
    );
    assert_same_tree_as_loaded(&env, &patient, &via, "debian:gzip", None);
}
