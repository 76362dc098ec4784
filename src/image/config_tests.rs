use super::*;
use crate::image::manifest::{parse_manifest, ManifestKind};

const A: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const B: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// A Docker-style config: nulls, a string Cmd, fields this module does not model.
fn docker_config() -> String {
    format!(
        r#"{{"architecture":"arm64","variant":"v8","os":"linux","created":"2024-01-01T00:00:00Z",
            "docker_version":"24.0.0","container_config":{{"Hostname":"abc"}},
            "config":{{"User":"1000:1000","Env":["PATH=/usr/bin","A=b"],"Entrypoint":null,
                       "Cmd":"/bin/sh","WorkingDir":"/srv","Labels":null,
                       "ExposedPorts":{{"80/tcp":{{}}}},"Volumes":{{"/data":{{}}}},
                       "StopSignal":"SIGTERM","Healthcheck":{{"Test":["NONE"]}}}},
            "rootfs":{{"type":"layers","diff_ids":["{A}","{B}"]}},
            "history":[{{"created":"2024-01-01T00:00:00Z","created_by":"ADD x /"}},
                       {{"created_by":"ENV A=b","empty_layer":true}},
                       {{"created_by":"RUN y","comment":"c","author":"me"}}]}}"#
    )
}

#[test]
fn parses_docker_configs_and_keeps_bytes() {
    let text = docker_config();
    let c = ImageConfig::parse(text.clone().into_bytes()).unwrap();
    assert_eq!(c.bytes(), text.as_bytes());
    assert_eq!(c.digest(), Digest::of_bytes(text.as_bytes()));
    assert_eq!(c.platform().to_string(), "linux/arm64/v8");
    let cc = c.container_config();
    assert_eq!(cc.user, "1000:1000");
    assert_eq!(cc.env, vec!["PATH=/usr/bin", "A=b"]);
    assert_eq!(cc.entrypoint, None);
    assert_eq!(cc.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(cc.working_dir, "/srv");
    assert!(cc.labels.is_empty());
    assert!(cc.exposed_ports.contains_key("80/tcp"));
    assert!(cc.volumes.contains_key("/data"));
    assert_eq!(cc.stop_signal, "SIGTERM");
    assert_eq!(c.diff_ids().len(), 2);
    let h = &c.file().history;
    assert_eq!(h.len(), 3);
    assert!(h[1].empty_layer && !h[0].empty_layer);
    assert_eq!(h[2].author.as_deref(), Some("me"));
}

#[test]
fn an_empty_entrypoint_is_not_a_missing_one() {
    let c = ImageConfig::parse(
        br#"{"os":"linux","architecture":"amd64","config":{"Entrypoint":[]},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
    )
    .unwrap();
    assert_eq!(c.container_config().entrypoint, Some(vec![]));
    assert_eq!(c.container_config().cmd, None);
}

#[test]
fn refuses_bad_configs() {
    // (document, words the message must contain)
    let cases: &[(&str, &[&str])] = &[
        ("{", &["malformed JSON", "EOF"]),
        (r#"{"os":"linux"}"#, &["malformed JSON", "rootfs"]),
        (
            r#"{"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#,
            &["malformed JSON", "invalid digest"],
        ),
        (
            r#"{"rootfs":{"type":"tarball","diff_ids":[]}}"#,
            &["rootfs.type", "tarball"],
        ),
        (
            r#"{"rootfs":{"type":"layers"},"config":{"Env":"A=b"}}"#,
            &["malformed JSON"],
        ),
    ];
    for (doc, words) in cases {
        let err = ImageConfig::parse(doc.as_bytes().to_vec())
            .expect_err(doc)
            .to_string();
        for w in *words {
            assert!(err.contains(w), "{doc} => {err} (missing {w:?})");
        }
    }
}

#[test]
fn diff_ids_must_match_the_manifest_layers() {
    let c = ImageConfig::parse(docker_config().into_bytes()).unwrap();
    let layer = |d: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":1}}"#
        )
    };
    for (layers, ok) in [
        (vec![layer(A), layer(B)], true),
        (vec![layer(A)], false),
        (vec![layer(A), layer(B), layer(A)], false),
    ] {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{A}","size":1}},
                "layers":[{}]}}"#,
            layers.join(",")
        );
        let ManifestKind::Manifest(m) = parse_manifest(doc.as_bytes(), None).unwrap() else {
            panic!()
        };
        let r = c.check_layers(&m);
        assert_eq!(r.is_ok(), ok, "{} layers", layers.len());
        if let Err(e) = r {
            let e = e.to_string();
            assert!(
                e.contains("2 diff_ids") && e.contains(&format!("{} layers", layers.len())),
                "{e}"
            );
        }
    }
}

#[test]
fn with_layer_keeps_unmodelled_fields() {
    let c = ImageConfig::parse(docker_config().into_bytes()).unwrap();
    let new_layer = Digest::of_bytes(b"layer");
    let hist = History {
        created: Some("2025-05-05T00:00:00Z".into()),
        created_by: Some("lamina commit".into()),
        ..Default::default()
    };
    let c2 = c.with_layer(&new_layer, &hist).unwrap();
    assert_eq!(c2.diff_ids().len(), 3);
    assert_eq!(c2.diff_ids()[2], new_layer);
    assert_eq!(c2.file().history.len(), 4);
    assert_eq!(c2.file().created.as_deref(), Some("2025-05-05T00:00:00Z"));
    let v = c2.to_value().unwrap();
    assert_eq!(v["docker_version"], "24.0.0");
    assert_eq!(v["container_config"]["Hostname"], "abc");
    assert_eq!(v["config"]["Healthcheck"]["Test"][0], "NONE");
    assert_ne!(c2.digest(), c.digest());
    // A config without history or diff_ids (null) can still be extended.
    let bare = ImageConfig::parse(
        br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":null},"history":null}"#.to_vec(),
    )
    .unwrap();
    let b2 = bare.with_layer(&new_layer, &hist).unwrap();
    assert_eq!(b2.diff_ids(), &[new_layer]);
    assert_eq!(b2.file().history.len(), 1);
}
