use super::*;

const A: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const B: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn oci_manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}",
            "config":{{"mediaType":"{}","digest":"{A}","size":2}},
            "layers":[{{"mediaType":"{}","digest":"{B}","size":3,"annotations":null}}],
            "annotations":{{"k":"v"}}}}"#,
        mt::OCI_MANIFEST,
        mt::OCI_CONFIG,
        mt::OCI_LAYER_TAR_GZIP
    )
}

fn docker_manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}",
            "config":{{"mediaType":"{}","digest":"{A}","size":2}},
            "layers":[{{"mediaType":"{}","digest":"{B}","size":3}},
                      {{"mediaType":"{}","digest":"{A}","size":9,"urls":["https://x/y"]}}]}}"#,
        mt::DOCKER_MANIFEST,
        mt::DOCKER_CONFIG,
        mt::DOCKER_LAYER_TAR_GZIP,
        mt::DOCKER_FOREIGN_LAYER
    )
}

fn index(media_type: Option<&str>) -> String {
    let mt_field = media_type
        .map(|m| format!(r#""mediaType":"{m}","#))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,{mt_field}
            "manifests":[{{"mediaType":"{}","digest":"{A}","size":5,
                           "platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
                          {{"mediaType":"{}","digest":"{B}","size":6,
                           "annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
        mt::OCI_MANIFEST,
        mt::OCI_MANIFEST
    )
}

#[test]
fn parses_oci_and_docker_manifests() {
    let ManifestKind::Manifest(m) = parse_manifest(oci_manifest().as_bytes(), None).unwrap() else {
        panic!("not a manifest")
    };
    assert_eq!(m.config.digest.to_string(), A);
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.layers[0].size, 3);
    assert_eq!(m.annotations["k"], "v");

    let ManifestKind::Manifest(m) = parse_manifest(docker_manifest().as_bytes(), None).unwrap()
    else {
        panic!("not a manifest")
    };
    assert_eq!(m.media_type.as_deref(), Some(mt::DOCKER_MANIFEST));
    assert_eq!(m.layers[1].urls, vec!["https://x/y".to_string()]);
    for l in &m.layers {
        assert_eq!(
            layer_compression(&l.media_type).unwrap(),
            LayerCompression::Gzip
        );
    }
}

#[test]
fn parses_indexes_with_and_without_media_type() {
    for (doc, hint) in [
        (index(Some(mt::OCI_INDEX)), None),
        (index(Some(mt::DOCKER_MANIFEST_LIST)), None),
        (index(None), Some(mt::OCI_INDEX)),
        (index(None), None),
    ] {
        let ManifestKind::Index(i) = parse_manifest(doc.as_bytes(), hint).unwrap() else {
            panic!("not an index: {doc}")
        };
        assert_eq!(i.manifests.len(), 2);
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(i.manifests[1].ref_name(), Some("v1"));
    }
}

#[test]
fn refuses_what_it_cannot_use() {
    let no_mt_manifest =
        oci_manifest().replace(&format!(r#""mediaType":"{}","#, mt::OCI_MANIFEST), "");
    let both = format!(
        r#"{{"schemaVersion":2,"manifests":[],"config":{{"mediaType":"x","digest":"{A}","size":1}},"layers":[]}}"#
    );
    // (document, hint, words the message must contain)
    let cases: Vec<(String, Option<&str>, &[&str])> = vec![
        (
            r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#.into(),
            None,
            &["schema 1", "schemaVersion 1", "skopeo"],
        ),
        (
            r#"{"schemaVersion":2,"layers":[]}"#.into(),
            Some(mt::DOCKER_SCHEMA1_SIGNED),
            &["schema 1", "prettyjws"],
        ),
        (
            format!(
                r#"{{"mediaType":"{}","schemaVersion":1}}"#,
                mt::DOCKER_SCHEMA1_MANIFEST
            ),
            None,
            &["schema 1", "v1+json"],
        ),
        (
            "{\"schemaVersion\":2,".into(),
            None,
            &["malformed JSON", "EOF"],
        ),
        ("[1,2]".into(), None, &["malformed JSON"]),
        ("".into(), None, &["malformed JSON"]),
        (
            oci_manifest().replace(B, "sha256:1234"),
            None,
            &["malformed JSON", "invalid digest"],
        ),
        (
            oci_manifest().replace(r#""size":3"#, r#""size":-3"#),
            None,
            &["malformed JSON", "-3"],
        ),
        (
            oci_manifest().replace(r#""schemaVersion":2"#, r#""schemaVersion":3"#),
            None,
            &["schemaVersion 3"],
        ),
        (
            oci_manifest().replace(r#""schemaVersion":2,"#, ""),
            None,
            &["schemaVersion is missing"],
        ),
        (
            oci_manifest().replace(
                mt::OCI_MANIFEST,
                "application/vnd.oci.artifact.manifest.v1+json",
            ),
            None,
            &["unsupported media type", "artifact"],
        ),
        (both, None, &["cannot tell"]),
        (r#"{"schemaVersion":2}"#.into(), None, &["neither"]),
        (
            index(Some(mt::OCI_MANIFEST)),
            None,
            &["must not have manifests"],
        ),
        (
            no_mt_manifest,
            Some(mt::OCI_INDEX),
            &["must not have config"],
        ),
    ];
    for (doc, hint, words) in cases {
        let err = parse_manifest(doc.as_bytes(), hint)
            .expect_err(&doc)
            .to_string();
        for w in words {
            assert!(err.contains(w), "{doc}\n=> {err}\n(missing {w:?})");
        }
    }
}

#[test]
fn layer_media_types() {
    use LayerCompression::*;
    let cases = [
        (mt::OCI_LAYER_TAR, Some(None)),
        (mt::OCI_LAYER_TAR_GZIP, Some(Gzip)),
        (mt::OCI_LAYER_TAR_ZSTD, Some(Zstd)),
        (mt::OCI_LAYER_NONDIST_TAR_GZIP, Some(Gzip)),
        (mt::DOCKER_LAYER_TAR, Some(None)),
        (mt::DOCKER_LAYER_TAR_GZIP, Some(Gzip)),
        (mt::DOCKER_FOREIGN_LAYER, Some(Gzip)),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            Option::None,
        ),
        (
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            Option::None,
        ),
    ];
    for (m, want) in cases {
        assert_eq!(layer_compression(m).ok(), want, "{m}");
    }
}

#[test]
fn round_trips_through_serde() {
    let ManifestKind::Manifest(m) = parse_manifest(oci_manifest().as_bytes(), None).unwrap() else {
        panic!()
    };
    let again = serde_json::to_vec(&m).unwrap();
    let ManifestKind::Manifest(m2) = parse_manifest(&again, None).unwrap() else {
        panic!()
    };
    assert_eq!(m, m2);
    let text = String::from_utf8(again).unwrap();
    assert!(text.contains("\"mediaType\""), "{text}");
    assert!(!text.contains("urls"), "{text}");
}
