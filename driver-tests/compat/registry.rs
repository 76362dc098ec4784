//! The compat tests that need the distribution registry (pull's lines, fsck after a
//! multi-platform pull, manifest inspect, warnings and refusals of a pull), as registry.rs runs it.

use super::host_and_foreign_arch;
use crate::registry::fixture::{self, Env, Lamina, Registry};
use crate::registry::{layout_digest, oci};
use lamina_testkit::messages::repeated_part;
use std::process::Command;

/// A registry with the corpus's debian:gzip pushed as deb:gzip, deb:latest and deb:same, and the
/// multiarch index as multi:latest (all platforms).
fn registry() -> Option<(Env, Registry)> {
    let env = fixture::env()?;
    let reg = Registry::start(&env, &[]);
    for tag in ["gzip", "latest", "same"] {
        reg.push(&oci(&env, "debian:gzip"), &format!("deb:{tag}"), &[]);
    }
    reg.push(&oci(&env, "multiarch:latest"), "multi:latest", &["--all"]);
    let (_, foreign) = host_and_foreign_arch();
    reg.push(
        &oci(&env, &format!("multiarch:latest-{foreign}")),
        "foreign:1",
        &[],
    );
    Some((env, reg))
}

#[test]
fn pull_prints_what_docker_prints() {
    let Some((env, reg)) = registry() else { return };
    let host = reg.host();
    let digest = layout_digest(&env, "debian", "gzip");
    let store = Lamina::new();

    // docker: `Using default tag: latest` when no tag is given; layer lines in manifest order.
    let out = store.ok(&["pull", &format!("{host}/deb")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        ["Using default tag: latest", "latest: Pulling from deb"],
        "{out}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&store.ok(&["manifest", "inspect", &format!("{host}/deb:gzip")]))
            .expect("manifest JSON");
    let want: Vec<String> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            format!(
                "{}: Pull complete",
                &l["digest"].as_str().expect("digest")[7..19]
            )
        })
        .collect();
    let got: Vec<String> = lines
        .iter()
        .filter(|l| l.ends_with(": Pull complete"))
        .map(|l| l.to_string())
        .collect();
    assert!(want.len() > 1, "a multi-layer image: {want:?}");
    assert_eq!(got, want, "bottom layer first, as the manifest lists them");

    // The same tag again: docker prints only the digest and the status.
    let name = format!("{host}/deb:latest");
    let again = store.ok(&["pull", &name]);
    assert_eq!(
        again.lines().collect::<Vec<_>>(),
        [
            "latest: Pulling from deb".to_string(),
            format!("Digest: {digest}"),
            format!("Status: Image is up to date for {name}"),
            name.clone()
        ]
    );
    // Another tag of the same image: no layer lines, but a new name.
    let same = format!("{host}/deb:same");
    assert_eq!(
        store.ok(&["pull", &same]).lines().collect::<Vec<_>>(),
        [
            "same: Pulling from deb".to_string(),
            format!("Digest: {digest}"),
            format!("Status: Downloaded newer image for {same}"),
            same.clone()
        ]
    );
    // A tag the registry does not have: nothing on stdout, one plain line on stderr.
    let out = store.run(&["pull", &format!("{host}/deb:nope")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("manifest unknown"), "{err}");
    assert_eq!(repeated_part(err.trim()), None, "{err}");
}

#[test]
fn fsck_follows_an_index_to_the_manifest_a_pull_chose() {
    let Some((env, reg)) = registry() else { return };
    let (host_arch, _) = host_and_foreign_arch();
    let index = layout_digest(&env, "multiarch", "latest");
    let manifest = layout_digest(&env, "multiarch", &format!("latest-{host_arch}"));
    let store = Lamina::new();
    let name = format!("{}/multi:latest", reg.host());
    store.ok(&["pull", &name]);
    let root = store.root();
    let blob = |d: &str| root.join("blobs/sha256").join(&d[7..]);
    // Nothing to report, nothing to repair: the index names the manifest.
    for args in [&["fsck"][..], &["fsck", "--repair"][..]] {
        let out = store.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(err.contains("0 problems found"), "{args:?}: {err}");
    }
    assert!(blob(&index).is_file(), "the index the tag names is kept");
    assert!(
        blob(&manifest).is_file(),
        "--repair kept the platform's manifest"
    );
    // rmi takes both along, and leaves nothing for fsck.
    let out = store.ok(&["rmi", &name]);
    assert!(
        out.contains(&format!("Untagged: {}/multi@{index}", reg.host())),
        "{out}"
    );
    assert!(!blob(&index).exists() && !blob(&manifest).exists());
    store.ok(&["fsck"]);
}

/// Go's json.Indent as Python's json.dumps writes it (`": "`, one element a line), keys in order.
fn python_indent(raw: &[u8], indent: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys; print(json.dumps(json.loads(sys.stdin.read()), indent=sys.argv[1]))",
            indent,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(raw)?;
            c.wait_with_output()
        })
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn manifest_inspect_prints_indented_json_and_verbose_entries_as_docker() {
    let Some((env, reg)) = registry() else { return };
    let store = Lamina::new();
    let blob = |d: &str| {
        std::fs::read(env.corpus.join("oci/multiarch/blobs/sha256").join(&d[7..])).expect("blob")
    };
    let (host_arch, _) = host_and_foreign_arch();
    let one = layout_digest(&env, "multiarch", &format!("latest-{host_arch}"));
    let index = layout_digest(&env, "multiarch", "latest");
    let name = format!("{}/multi:latest", reg.host());
    // docker: a manifest list as distribution marshals it (three spaces), a manifest tab-indented.
    let out = store.ok(&["manifest", "inspect", &name]);
    assert_eq!(out, python_indent(&blob(&index), "   "));
    let by_digest = format!("{}/multi@{one}", reg.host());
    let out = store.ok(&["manifest", "inspect", &by_digest]);
    assert_eq!(out, python_indent(&blob(&one), "\t"));

    // -v: one ImageManifest per platform, with its Ref, Descriptor (platform, size), Raw bytes
    // and the manifest.
    let out = store.ok(&["manifest", "inspect", "-v", &name]);
    assert!(
        out.starts_with("[\n\t{\n\t\t\"Ref\": "),
        "tab-indented: {out}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let listed: serde_json::Value = serde_json::from_slice(&blob(&index)).expect("index");
    let entries = v.as_array().expect("an array for a list");
    assert_eq!(
        entries.len(),
        listed["manifests"].as_array().expect("manifests").len()
    );
    for (e, l) in entries
        .iter()
        .zip(listed["manifests"].as_array().expect("manifests"))
    {
        let d = l["digest"].as_str().expect("digest");
        assert_eq!(e["Ref"], format!("{name}@{d}"));
        assert_eq!(e["Descriptor"]["digest"], d);
        assert_eq!(e["Descriptor"]["size"], l["size"]);
        assert_eq!(e["Descriptor"]["platform"], l["platform"]);
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(e["Raw"].as_str().expect("Raw"))
            .expect("base64");
        assert_eq!(raw, blob(d));
        assert_eq!(
            e["OCIManifest"],
            serde_json::from_slice::<serde_json::Value>(&raw).expect("manifest")
        );
    }
}

#[test]
fn pull_warnings_are_printed_once_and_say_requested_only_when_asked() {
    let Some((_env, reg)) = registry() else {
        return;
    };
    let (host_arch, _) = host_and_foreign_arch();
    let name = format!("{}/foreign:1", reg.host());
    for (platform, requested) in [(None, false), (Some(format!("linux/{host_arch}")), true)] {
        let store = Lamina::new();
        let mut args = vec!["pull"];
        if let Some(p) = &platform {
            args.extend(["--platform", p]);
        }
        args.push(&name);
        let out = store.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let w: Vec<&str> = err.lines().filter(|l| l.contains("WARNING")).collect();
        assert_eq!(w.len(), 1, "once: {err}");
        assert!(
            !err.contains('\u{1b}'),
            "no colour codes into a pipe: {err:?}"
        );
        assert_eq!(
            w[0].contains("requested"),
            requested,
            "{platform:?}: {}",
            w[0]
        );
    }
}

/// What a registry refuses reads once: not `unauthorized: unauthorized: …`, not `login R: R: …`.
#[test]
fn registry_refusals_do_not_repeat_themselves() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &["--auth"]);
    let (host_arch, _) = host_and_foreign_arch();
    reg.push(
        &oci(&env, &format!("multiarch:latest-{host_arch}")),
        "busy:1",
        &[],
    );
    let name = format!("{}/busy:1", reg.host());
    let store = Lamina::new();
    let check = |err: &str| {
        let line = err.lines().last().unwrap_or_default();
        assert_eq!(repeated_part(line), None, "{err}");
        assert_eq!(line.matches("unauthorized").count(), 1, "{err}");
    };
    check(&store.fails(&["pull", &name]));
    check(&store.fails(&["login", &reg.host(), "-u", "lamina", "-p", "nope"]));
    // Wrong credentials, as docker would have stored them: the registry's own refusal.
    std::fs::write(
        store.docker_config().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"bGFtaW5hOm5vcGU="}}}}}}"#,
            reg.host()
        ),
    )
    .expect("config.json");
    check(&store.fails(&["pull", &name]));
    check(&store.fails(&["manifest", "inspect", &name]));
}
