use super::*;

const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn parses_like_docker() {
    // (input, domain, path, tag, has digest, full, familiar)
    type Case<'a> = (
        String,
        &'a str,
        &'a str,
        Option<&'a str>,
        bool,
        String,
        String,
    );
    let d = format!("sha256:{HEX}");
    let cases: Vec<Case> = vec![
        (
            "alpine".into(),
            "docker.io",
            "library/alpine",
            None,
            false,
            "docker.io/library/alpine".into(),
            "alpine".into(),
        ),
        (
            "library/alpine:3".into(),
            "docker.io",
            "library/alpine",
            Some("3"),
            false,
            "docker.io/library/alpine:3".into(),
            "alpine:3".into(),
        ),
        (
            "docker.io/library/debian:gzip".into(),
            "docker.io",
            "library/debian",
            Some("gzip"),
            false,
            "docker.io/library/debian:gzip".into(),
            "debian:gzip".into(),
        ),
        (
            "index.docker.io/user/repo:tag".into(),
            "docker.io",
            "user/repo",
            Some("tag"),
            false,
            "docker.io/user/repo:tag".into(),
            "user/repo:tag".into(),
        ),
        (
            "user/repo:tag".into(),
            "docker.io",
            "user/repo",
            Some("tag"),
            false,
            "docker.io/user/repo:tag".into(),
            "user/repo:tag".into(),
        ),
        (
            "docker.io/library/a/b".into(),
            "docker.io",
            "library/a/b",
            None,
            false,
            "docker.io/library/a/b".into(),
            "library/a/b".into(),
        ),
        (
            format!("localhost:5000/a/b@{d}"),
            "localhost:5000",
            "a/b",
            None,
            true,
            format!("localhost:5000/a/b@{d}"),
            format!("localhost:5000/a/b@{d}"),
        ),
        (
            "localhost/x".into(),
            "localhost",
            "x",
            None,
            false,
            "localhost/x".into(),
            "localhost/x".into(),
        ),
        (
            "example.com/x/y:1".into(),
            "example.com",
            "x/y",
            Some("1"),
            false,
            "example.com/x/y:1".into(),
            "example.com/x/y:1".into(),
        ),
        (
            format!("example.com:443/x/y:v1.2-rc_3@{d}"),
            "example.com:443",
            "x/y",
            Some("v1.2-rc_3"),
            true,
            format!("example.com:443/x/y:v1.2-rc_3@{d}"),
            format!("example.com:443/x/y:v1.2-rc_3@{d}"),
        ),
        (
            "[::1]:5000/foo:bar".into(),
            "[::1]:5000",
            "foo",
            Some("bar"),
            false,
            "[::1]:5000/foo:bar".into(),
            "[::1]:5000/foo:bar".into(),
        ),
        (
            "a.b-c--d.e/f".into(),
            "a.b-c--d.e",
            "f",
            None,
            false,
            "a.b-c--d.e/f".into(),
            "a.b-c--d.e/f".into(),
        ),
        (
            "my_repo/a.b__c-d--e".into(),
            "docker.io",
            "my_repo/a.b__c-d--e",
            None,
            false,
            "docker.io/my_repo/a.b__c-d--e".into(),
            "my_repo/a.b__c-d--e".into(),
        ),
        // An uppercase first component is a host, as in docker.
        (
            "Example/repo".into(),
            "Example",
            "repo",
            None,
            false,
            "Example/repo".into(),
            "Example/repo".into(),
        ),
        // Without a slash, "localhost:5000" is a name with a tag.
        (
            "localhost:5000".into(),
            "docker.io",
            "library/localhost",
            Some("5000"),
            false,
            "docker.io/library/localhost:5000".into(),
            "localhost:5000".into(),
        ),
    ];
    for (input, domain, path, tag, has_digest, full, familiar) in cases {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.domain, domain, "{input}");
        assert_eq!(r.path, path, "{input}");
        assert_eq!(r.tag.as_deref(), tag, "{input}");
        assert_eq!(r.digest.is_some(), has_digest, "{input}");
        assert_eq!(r.full(), full, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
        // Round trip: both forms parse back to the same reference.
        assert_eq!(Reference::parse(&r.full()).unwrap(), r, "{input}");
        assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{input}");
    }
}

#[test]
fn refuses_invalid_references() {
    // (input, a word the error must contain)
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "empty"),
        ("Alpine".into(), "lowercase"),
        ("library/Alpine:3".into(), "lowercase"),
        ("example.com/Foo/bar".into(), "lowercase"),
        (HEX.into(), "image ID"),
        ("alpine:".into(), "invalid tag"),
        ("alpine:.x".into(), "invalid tag"),
        ("alpine:-x".into(), "invalid tag"),
        (format!("alpine:{}", "a".repeat(129)), "invalid tag"),
        ("alpine:a/b".into(), "registry host"),
        ("docker.io/alpine:a/b".into(), "invalid tag"),
        ("alpine@sha256:abc".into(), "invalid digest"),
        (format!("alpine@sha512:{HEX}"), "unsupported"),
        ("alpine@".into(), "invalid digest"),
        ("a//b".into(), "path component"),
        ("a/".into(), "path component"),
        ("-a".into(), "path component"),
        ("a-".into(), "path component"),
        ("a..b".into(), "path component"),
        ("a___b".into(), "path component"),
        ("a b".into(), "path component"),
        ("-bad.com/x".into(), "registry host"),
        ("bad.com:/x".into(), "registry host"),
        ("bad.com:80a/x".into(), "registry host"),
        ("[zz]:5000/x".into(), "registry host"),
        (format!("{}/x", "a".repeat(260)), "longer than"),
    ];
    for (input, word) in cases {
        match Reference::parse(&input) {
            Ok(r) => panic!("{input:?} parsed as {r:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(word), "{input:?}: {msg}");
                assert!(msg.contains(&format!("{input:?}")), "{input:?}: {msg}");
            }
        }
    }
}

#[test]
fn default_tag_only_without_tag_or_digest() {
    let r = Reference::parse("debian").unwrap().with_default_tag();
    assert_eq!(r.familiar(), "debian:latest");
    let r = Reference::parse("debian:gzip").unwrap().with_default_tag();
    assert_eq!(r.familiar(), "debian:gzip");
    let with_digest = format!("debian@sha256:{HEX}");
    let r = Reference::parse(&with_digest).unwrap().with_default_tag();
    assert_eq!(r.tag, None);
    assert_eq!(r.repository_familiar(), "debian");
    assert_eq!(
        Reference::parse("x")
            .unwrap()
            .with_tag("v2")
            .unwrap()
            .full(),
        "docker.io/library/x:v2"
    );
    assert!(Reference::parse("x").unwrap().with_tag("-no").is_err());
}

#[test]
fn serde_is_the_full_string() {
    let r = Reference::parse("debian:gzip").unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"docker.io/library/debian:gzip\"");
    assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    assert!(serde_json::from_str::<Reference>("\"Bad\"").is_err());
}

#[test]
fn hostile_tags_are_not_tags() {
    use super::is_valid_tag;
    let long = "a".repeat(129);
    for bad in [
        "../x",
        "..",
        "a/b",
        "-rf",
        ".hidden",
        long.as_str(),
        "nl\nx",
        "esc\u{1b}[31m",
        "sp ace",
        "",
        "tab\t",
        "ünïcode",
    ] {
        assert!(!is_valid_tag(bad), "{bad:?}");
        assert!(
            Reference::parse(&format!("x:{bad}")).is_err() || bad.contains('/'),
            "{bad:?}"
        );
    }
    for good in ["latest", "v1.2.3", "_x", "A-b_c.d", &"a".repeat(128)] {
        assert!(is_valid_tag(good), "{good:?}");
    }
}
