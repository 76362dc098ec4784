use super::*;
use crate::engine::{Digest, ImageRow, MountId};
use serde_json::json;

fn details(config: serde_json::Value) -> ImageDetails {
    let id: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    ImageDetails {
        row: ImageRow {
            id,
            created: Some("2020-01-01T00:00:00Z".into()),
            loaded: 1_600_000_000,
            size: 1234,
        },
        config,
        tags: vec!["app:1".into()],
        repo_digests: vec![],
        mounts: vec![MountId::parse("m1").unwrap()],
    }
}

fn as_json(v: &Value) -> serde_json::Value {
    serde_json::from_str(&v.to_json(false)).unwrap()
}

/// docker's field set, in docker's order, with "" (not null) for what the config lacks.
#[test]
fn inspect_has_docker_s_fields() {
    let v = image_value(
        &details(json!({"architecture": "amd64", "os": "linux",
                        "config": {"Env": ["A=1"], "Labels": {"k": "v"}},
                        "rootfs": {"type": "layers", "diff_ids": ["sha256:1", "sha256:2"]}})),
        &[
            PathBuf::from("/s/layers/2/diff"),
            PathBuf::from("/s/layers/1/diff"),
        ],
    );
    let Value::Struct(_, fields) = &v else {
        panic!("{v:?}")
    };
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "Id",
            "RepoTags",
            "RepoDigests",
            "Parent",
            "Comment",
            "Created",
            "DockerVersion",
            "Author",
            "Config",
            "Architecture",
            "Os",
            "Size",
            "GraphDriver",
            "RootFS",
            "Metadata",
            "Mounts"
        ]
    );
    let j = as_json(&v);
    for k in ["Parent", "Comment", "Created", "DockerVersion", "Author"] {
        assert!(j[k].is_string(), "{k}: {}", j[k]);
    }
    assert_eq!(j["RepoDigests"], json!([]));
    assert_eq!(j["Size"], 1234);
    assert_eq!(j["Config"]["Labels"]["k"], "v");
    assert_eq!(
        j["RootFS"],
        json!({"Type": "layers", "Layers": ["sha256:1", "sha256:2"]})
    );
    assert_eq!(
        j["GraphDriver"],
        json!({"Data": {"UpperDir": "/s/layers/2/diff", "LowerDir": "/s/layers/1/diff"}, "Name": "overlay"})
    );
    assert_eq!(j["Metadata"]["LastTagTime"], "2020-09-13T12:26:40Z");
    assert_eq!(j["Mounts"], json!(["m1"]));
}

#[test]
fn inspect_comment_and_variant_come_from_the_config() {
    let v = image_value(
        &details(
            json!({"variant": "v8", "history": [{"comment": "first"}, {"comment": "made by commit"}]}),
        ),
        &[PathBuf::from("/one")],
    );
    let j = as_json(&v);
    assert_eq!(j["Comment"], "made by commit");
    assert_eq!(j["Variant"], "v8");
    assert_eq!(j["Config"], json!({}));
    assert_eq!(j["GraphDriver"]["Data"], json!({"UpperDir": "/one"}));
    let t =
        Template::parse("{{.Id}} {{.Os}}|{{json .RootFS}}|{{.GraphDriver.Data.UpperDir}}").unwrap();
    assert_eq!(
        t.execute(&v).unwrap(),
        format!(
            "sha256:{} |{{\"Type\":\"layers\",\"Layers\":[]}}|/one",
            "ab".repeat(32)
        )
    );
}
