use super::*;

/// What Go's json.Indent(src, "", "\t") gives for the same input (checked against Go's rules:
/// `": "` after keys, empty containers kept, whitespace between tokens dropped, strings untouched).
#[test]
fn indent_is_go_json_indent() {
    let raw = br#"{"schemaVersion":2, "a" : [ ],"b":{},"c":[1,{"d":"x, {y}: \"z\""}]}"#;
    let want = "{\n\t\"schemaVersion\": 2,\n\t\"a\": [],\n\t\"b\": {},\n\t\"c\": [\n\t\t1,\n\t\t{\n\t\t\t\"d\": \"x, {y}: \\\"z\\\"\"\n\t\t}\n\t]\n}";
    assert_eq!(json_indent(raw, "\t"), want);
    // Indenting is idempotent: already indented input comes out the same.
    assert_eq!(json_indent(want.as_bytes(), "\t"), want);
}

#[test]
fn verbose_entries_carry_docker_s_fields() {
    let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
    let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
    let platform = Platform::parse("linux/arm64/v8").unwrap();
    let one = image_manifest(
        &format!("example.com/x:1@{digest}"),
        &digest,
        media_types::OCI_MANIFEST,
        bytes,
        Some(&platform),
    );
    let v: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v["Ref"], format!("example.com/x:1@{digest}"));
    assert_eq!(v["Descriptor"]["mediaType"], media_types::OCI_MANIFEST);
    assert_eq!(v["Descriptor"]["size"], bytes.len());
    assert_eq!(v["Descriptor"]["platform"]["architecture"], "arm64");
    assert_eq!(v["Descriptor"]["platform"]["variant"], "v8");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["Raw"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, bytes);
    assert_eq!(v["OCIManifest"]["schemaVersion"], 2);
    assert!(v.get("SchemaV2Manifest").is_none());
}
