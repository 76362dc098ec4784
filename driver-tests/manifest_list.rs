//! `lamina manifest create|annotate|push|rm|inspect` against the real distribution registry (as
//! the pull and push tests start it). The members are the project's busybox image and its arm64
//! twin (`arm64-fake`: the same layer, a config that says arm64 and no variant), copied into the
//! registry by skopeo as OCI and as Docker schema 2 images. What lamina pushes is read back by
//! skopeo (`inspect --raw`) and pulled back by platform into a fresh store.

use crate::common::{self, Run, Store};
use crate::registry::fixture::{self, path_str, Env, Registry};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::process::Command;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The registry tests' environment and the busybox layout with its `arm64-fake` image.
fn env() -> Option<(Env, PathBuf)> {
    let env = fixture::env()?;
    let layout = common::test_images()?.join("busybox/oci");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap_or_default();
    if !index.contains("\"arm64-fake\"") {
        common::skip("manifest lists need busybox:arm64-fake (scripts/build-test-images.sh)");
        return None;
    }
    Some((env, layout))
}

/// A store with its own docker config, 127.0.0.0/8 and localhost insecure as in docker.
fn store() -> Store {
    Store::new("manifest-list")
        .with_docker_config()
        .env_remove("LAMINA_INSECURE_REGISTRIES")
        .env_remove("LAMINA_CERTS_D")
        .env("LAMINA_RETRIES", "1")
}

/// Copies busybox (amd64) and arm64-fake into `REPO:amd64` and `REPO:arm64`.
fn push_members(reg: &Registry, layout: &std::path::Path, repo: &str, format: &[&str]) {
    for (tag, arch) in [("latest", "amd64"), ("arm64-fake", "arm64")] {
        let src = format!("oci:{}:{tag}", path_str(layout));
        reg.push(&src, &format!("{repo}:{arch}"), format);
    }
}

/// `skopeo inspect --raw docker://NAME`: the bytes the registry serves, or None when it has none.
fn raw(name: &str) -> Option<Vec<u8>> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .expect("skopeo runs");
    out.status.success().then_some(out.stdout)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes));
    })
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn image_id(s: &Store, name: &str) -> String {
    s.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .stdout
        .trim()
        .to_string()
}

/// (os, architecture, variant) of each entry of a list document or of `inspect -v`'s descriptors.
fn platforms(entries: &[serde_json::Value]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|e| {
            let p = &e["platform"];
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (s("os"), s("architecture"), s("variant"))
        })
        .collect()
}

fn linux(arch: &str, variant: &str) -> (String, String, String) {
    ("linux".into(), arch.into(), variant.into())
}

fn stdout_lines(r: &Run) -> Vec<String> {
    r.stdout.lines().map(str::to_string).collect()
}

/// The error line of a failed command, which must name `needle`.
fn says(r: &Run, needle: &str) {
    assert!(
        r.stderr.starts_with("lamina: manifest ") && r.stderr.contains(needle),
        "expected {needle:?}: {}",
        r.describe()
    );
}

#[test]
fn lists_of_both_families_push_and_pull_back_by_platform() {
    let Some((env, layout)) = env() else { return };
    let reg = Registry::start(&env, &[]);
    let host = reg.host();
    let s = store();
    for (family, format, list_type, member_type) in [
        ("oci", &[][..], OCI_INDEX, OCI_MANIFEST),
        (
            "docker",
            &["--format", "v2s2"][..],
            DOCKER_LIST,
            DOCKER_MANIFEST,
        ),
    ] {
        let members = format!("{host}/bb-{family}");
        push_members(&reg, &layout, &format!("bb-{family}"), format);
        let (amd, arm) = (format!("{members}:amd64"), format!("{members}:arm64"));
        let member_raw = [raw(&amd).expect("amd64"), raw(&arm).expect("arm64")];
        // (an OCI manifest may leave its mediaType out: umoci's do)
        let served = json(&member_raw[1])["mediaType"].clone();
        assert_eq!(
            served.as_str().unwrap_or(OCI_MANIFEST),
            member_type,
            "{family}"
        );
        let arm_id = json(&member_raw[1])["config"]["digest"].clone();
        let amd_id = json(&member_raw[0])["config"]["digest"].clone();

        // the list goes to another repository: the members' blobs and manifests follow it
        let list = format!("{host}/list-{family}:1");
        let r = s.ok(&["manifest", "create", &list, &amd, &arm]);
        assert_eq!(r.stdout, format!("Created manifest list {list}\n"));
        s.ok(&["manifest", "annotate", &list, &arm, "--variant", "v8"]);

        // -v: each member's platform (from its config, and the variant annotated) and size
        let v = json(
            s.ok(&["manifest", "inspect", "-v", &list])
                .stdout
                .as_bytes(),
        );
        let entries = v.as_array().expect("an array of images");
        let descriptors: Vec<serde_json::Value> =
            entries.iter().map(|e| e["Descriptor"].clone()).collect();
        assert_eq!(
            platforms(&descriptors),
            [linux("amd64", ""), linux("arm64", "v8")]
        );
        for (e, bytes) in entries.iter().zip(&member_raw) {
            assert_eq!(e["Descriptor"]["size"], bytes.len(), "{family}: {e}");
            assert_eq!(e["Descriptor"]["digest"], sha256(bytes).as_str());
            assert_eq!(e["Descriptor"]["mediaType"], member_type);
        }
        assert_eq!(entries[1]["Ref"], arm.as_str());

        let r = s.ok(&["manifest", "push", &list]);
        let lines = stdout_lines(&r);
        let repo = list.trim_end_matches(":1");
        for (line, bytes) in lines.iter().zip(&member_raw) {
            let d = sha256(bytes);
            assert_eq!(line, &format!("Pushed ref {repo}@{d} with digest: {d}"));
        }
        assert_eq!(lines.len(), 3, "{}", r.describe());
        let pushed = raw(&list).expect("the registry has the list");
        assert_eq!(lines[2], sha256(&pushed), "the digest the registry holds");
        let doc = json(&pushed);
        assert_eq!(doc["mediaType"], list_type, "{family}");
        let manifests = doc["manifests"].as_array().expect("manifests");
        assert_eq!(
            platforms(manifests),
            [linux("amd64", ""), linux("arm64", "v8")]
        );
        assert!(manifests.iter().all(|m| m["mediaType"] == member_type));
        // the local list shows the very document that was pushed (docker's three-space form)
        let local = s.ok(&["manifest", "inspect", &list]).stdout;
        assert_eq!(local.trim_end().as_bytes(), &pushed[..]);

        // each platform comes back from the list, with its own image ID
        let fresh = store();
        fresh.ok(&["pull", "--platform", "linux/arm64/v8", &list]);
        assert_eq!(image_id(&fresh, &list), arm_id.as_str().unwrap_or("?"));
        let fresh = store();
        fresh.ok(&["pull", "--platform", "linux/amd64", &list]);
        assert_eq!(image_id(&fresh, &list), amd_id.as_str().unwrap_or("?"));

        // --purge: pushed again (same digest), then the local list is gone
        let r = s.ok(&["manifest", "push", "--purge", &list]);
        assert_eq!(stdout_lines(&r).last(), Some(&lines[2]));
        let r = s.fails(&["manifest", "inspect", &list, &arm]);
        says(&r, "does not exist in");
    }
}

#[test]
fn amend_rm_and_bad_input_change_nothing() {
    let Some((env, layout)) = env() else { return };
    let reg = Registry::start(&env, &[]);
    let host = reg.host();
    push_members(&reg, &layout, "bb", &[]);
    let s = store();
    let (amd, arm) = (format!("{host}/bb:amd64"), format!("{host}/bb:arm64"));
    let list = format!("{host}/bb:multi");
    let state = |name: &str| s.lamina(&["manifest", "inspect", "-v", name]).stdout;

    // --amend: an existing list is refused without it, and keeps what it holds with it
    s.ok(&["manifest", "create", &list, &amd]);
    let r = s.fails(&["manifest", "create", &list, &arm]);
    says(
        &r,
        "refusing to amend an existing manifest list with no --amend flag",
    );
    s.ok(&["manifest", "create", "--amend", &list, &arm]);
    s.ok(&["manifest", "annotate", &list, &arm, "--variant", "v8"]);
    s.ok(&["manifest", "create", "--amend", &list, &amd, &arm]);
    let v = json(state(&list).as_bytes());
    let descriptors: Vec<serde_json::Value> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["Descriptor"].clone())
        .collect();
    assert_eq!(
        platforms(&descriptors),
        [linux("amd64", ""), linux("arm64", "v8")],
        "amending keeps the annotation"
    );
    let before = state(&list);

    // a member that does not exist: nothing of the new list is kept, the old one is as it was
    let fresh_list = format!("{host}/bb:other");
    let missing = format!("{host}/bb:nope");
    let r = s.fails(&["manifest", "create", &fresh_list, &amd, &missing]);
    says(&r, &missing);
    says(&r, "not found");
    let r = s.fails(&["manifest", "inspect", &fresh_list, &amd]);
    says(&r, "does not exist in");
    let r = s.fails(&["manifest", "create", "--amend", &list, &missing]);
    says(&r, "not found");
    assert_eq!(state(&list), before);

    // annotating an image that is not in the list
    let r = s.fails(&["manifest", "annotate", &list, &missing, "--arch", "arm"]);
    says(
        &r,
        &format!("manifest for image {missing} does not exist in {list}"),
    );
    // an os/arch docker does not know
    let r = s.fails(&["manifest", "annotate", &list, &arm, "--os", "plan10"]);
    says(&r, "unsupported os/arch combination: plan10/arm64");
    assert_eq!(state(&list), before);

    // a member from another registry (the same one, under another name): refused before
    // anything is sent; the list stays
    let port = host.rsplit(':').next().unwrap_or_default();
    let foreign = format!("localhost:{port}/bb:arm64");
    let mixed = format!("{host}/elsewhere:1");
    s.ok(&["manifest", "create", &mixed, &amd, &foreign]);
    let kept = state(&mixed);
    let r = s.fails(&["manifest", "push", &mixed]);
    says(
        &r,
        &format!(
            "cannot use source images from a different registry than the target image: \
             localhost:{port} != {host}"
        ),
    );
    assert!(raw(&mixed).is_none(), "no list was pushed");
    let amd_digest = sha256(&raw(&amd).expect("amd64"));
    assert!(
        raw(&format!("{host}/elsewhere@{amd_digest}")).is_none(),
        "no member was pushed"
    );
    assert_eq!(state(&mixed), kept);

    // pushing a list that does not exist
    let r = s.fails(&["manifest", "push", &format!("{host}/bb:none")]);
    says(&r, &format!("No such manifest: {host}/bb:none"));

    // a list in its members' repository: nothing to bring over, only the list is put
    let r = s.ok(&["manifest", "push", &list]);
    assert_eq!(stdout_lines(&r).len(), 1, "{}", r.describe());
    assert_eq!(stdout_lines(&r)[0], sha256(&raw(&list).expect("pushed")));

    // rm: every list it can, and an error for the one that does not exist
    let r = s.fails(&["manifest", "rm", &list, &format!("{host}/bb:none"), &mixed]);
    says(&r, &format!("No such manifest: {host}/bb:none"));
    for (name, member) in [(&list, &amd), (&mixed, &amd)] {
        let r = s.fails(&["manifest", "inspect", name, member]);
        says(&r, "does not exist in");
    }
}
