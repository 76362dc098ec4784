use super::*;

fn member(media_type: &str, hex: char, size: u64, platform: Option<&str>) -> Descriptor {
    let digest: Digest = format!("sha256:{}", hex.to_string().repeat(64))
        .parse()
        .unwrap();
    let mut d = Descriptor::new(media_type, digest, size);
    d.platform = platform.map(|p| Platform::parse(p).unwrap());
    d
}

/// The bytes distribution's FromDescriptors marshals (json.MarshalIndent with three spaces):
/// entries as mediaType, size, digest, platform; empty optional platform fields left out.
#[test]
fn a_docker_list_is_indented_and_ordered_as_distribution_marshals_it() {
    let amd = member(mt::DOCKER_MANIFEST, 'a', 525, Some("linux/amd64"));
    let mut arm = member(mt::DOCKER_MANIFEST, 'b', 527, Some("linux/arm64/v8"));
    arm.annotations
        .insert("dropped".into(), "as docker drops it".into());
    let (media_type, bytes) = build_list(&[&amd, &arm]).unwrap();
    assert_eq!(media_type, mt::DOCKER_MANIFEST_LIST);
    let want = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{}\",\n   \"manifests\": [\n      {{\n         \"mediaType\": \"{}\",\n         \"size\": 525,\n         \"digest\": \"sha256:{}\",\n         \"platform\": {{\n            \"architecture\": \"amd64\",\n            \"os\": \"linux\"\n         }}\n      }},\n      {{\n         \"mediaType\": \"{}\",\n         \"size\": 527,\n         \"digest\": \"sha256:{}\",\n         \"platform\": {{\n            \"architecture\": \"arm64\",\n            \"os\": \"linux\",\n            \"variant\": \"v8\"\n         }}\n      }}\n   ]\n}}",
        mt::DOCKER_MANIFEST_LIST,
        mt::DOCKER_MANIFEST,
        "a".repeat(64),
        mt::DOCKER_MANIFEST,
        "b".repeat(64),
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), want);
}

#[test]
fn the_first_member_decides_the_list_type_as_in_docker() {
    let oci = member(mt::OCI_MANIFEST, 'a', 1, Some("linux/amd64"));
    let docker = member(mt::DOCKER_MANIFEST, 'b', 2, Some("linux/arm64"));
    assert_eq!(build_list(&[&oci, &docker]).unwrap().0, mt::OCI_INDEX);
    assert_eq!(
        build_list(&[&docker, &oci]).unwrap().0,
        mt::DOCKER_MANIFEST_LIST
    );
    let (_, bytes) = build_list(&[&oci]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["mediaType"], mt::OCI_INDEX);
    assert_eq!(v["manifests"][0]["mediaType"], mt::OCI_MANIFEST);
}

#[test]
fn a_member_without_platform_still_has_the_platform_object() {
    let d = member(mt::OCI_MANIFEST, 'c', 3, None);
    let (_, bytes) = build_list(&[&d]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v["manifests"][0]["platform"],
        serde_json::json!({"architecture": "", "os": ""})
    );
}

#[test]
fn os_version_and_features_follow_the_platform_spec_order() {
    let mut d = member(mt::OCI_MANIFEST, 'd', 4, Some("windows/amd64"));
    if let Some(p) = d.platform.as_mut() {
        p.os_version = Some("10.0.17763.1".into());
        p.os_features = vec!["win32k".into(), "a<b&c".into()];
    }
    let (_, bytes) = build_list(&[&d]).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let order: Vec<usize> = [
        "\"architecture\"",
        "\"os\"",
        "\"os.version\"",
        "\"os.features\"",
    ]
    .iter()
    .map(|k| text.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    // Go's encoder escapes HTML characters inside strings
    assert!(text.contains(r#""a\u003cb\u0026c""#), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["manifests"][0]["platform"]["os.features"][1], "a<b&c");
}

#[test]
fn config_platform_reads_the_config_fields_docker_reads() {
    let p = config_platform(
        br#"{"architecture":"arm64","os":"linux","variant":"v8","os.version":"","config":{}}"#,
    )
    .unwrap();
    assert_eq!(p, Platform::parse("linux/arm64/v8").unwrap());
    let p = config_platform(br#"{"os.features":["x"],"rootfs":{}}"#).unwrap();
    assert_eq!((p.os.as_str(), p.architecture.as_str()), ("", ""));
    assert_eq!(p.os_features, vec!["x".to_string()]);
    assert!(config_platform(b"[1,2]").is_err());
}

#[test]
fn os_arch_pairs_are_docker_s() {
    for (os, arch, ok) in [
        ("linux", "arm64", true),
        ("linux", "s390x", true),
        ("windows", "amd64", true),
        ("windows", "arm64", false),
        ("linux", "aarch64", false),
        ("", "", false),
    ] {
        assert_eq!(is_valid_os_arch(os, arch), ok, "{os}/{arch}");
    }
}
