use super::*;

#[test]
fn glob_follows_go_path_match() {
    let cases = [
        ("*:latest", "debian:latest", true),
        ("*:latest", "debian:gzip", false),
        ("*", "debian", true),
        ("*", "library/debian", false),
        ("deb?an", "debian", true),
        ("deb[a-j]an", "debian", true),
        ("deb[^a-j]an", "debian", false),
        ("deb[!x]an", "debian", true),
        ("debian:*", "debian:gzip", true),
        ("*/*", "example.com/x", true),
        ("\\*", "*", true),
        ("\\*", "a", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("[", "a", false),
        ("", "", true),
        ("", "a", false),
    ];
    for (p, n, want) in cases {
        assert_eq!(glob_match(p, n), want, "{p} ~ {n}");
    }
}

#[test]
fn references_match_with_or_without_the_tag() {
    assert!(reference_match("debian", "debian:gzip"));
    assert!(reference_match("debian:gzip", "debian:gzip"));
    assert!(!reference_match("debian:zstd", "debian:gzip"));
    assert!(reference_match("*:gz*", "debian:gzip"));
    assert!(reference_match("example.com/*/*", "example.com/a/b:1"));
    assert!(!reference_match("busybox", "debian:gzip"));
    assert!(reference_match("docker.io/library/debian", "debian:gzip"));
    assert!(reference_match(
        "docker.io/library/debian:gzip",
        "debian:gzip"
    ));
    assert!(reference_match("docker.io/team/app", "team/app:1"));
}

#[test]
fn filters_parse_and_combine_as_docker_does() {
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let f = ImageFilter::parse(&args(&[
        "dangling=false",
        "label=a",
        "label=b=2",
        "reference=deb*",
        "reference=busy*",
        "before=x",
        "since=y",
    ]))
    .unwrap();
    assert_eq!(f.dangling, Some(false));
    assert_eq!(f.before, ["x"]);
    assert_eq!(f.since, ["y"]);
    // reference values: any may match
    assert!(f.reference_matches("debian:gzip"));
    assert!(f.reference_matches("busybox:latest"));
    assert!(!f.reference_matches("alpine:3"));
    // label values: all must hold
    let labels = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(f.labels_match(&labels(&[("a", "x"), ("b", "2")])));
    assert!(!f.labels_match(&labels(&[("a", "x"), ("b", "3")])));
    assert!(!f.labels_match(&labels(&[("b", "2")])));
    assert!(ImageFilter::default().reference_matches("anything:1"));

    for bad in ["nokey", "color=red", "dangling=maybe"] {
        assert!(ImageFilter::parse(&args(&[bad])).is_err(), "{bad}");
    }
    assert!(ImageFilter::parse(&args(&["dangling=true", "dangling=false"])).is_err());
}

/// docker's image list filters each reference on its own: `images debian --digests` shows only
/// debian's digests, `reference=debian:gzip` keeps the tag and drops the digest reference (its
/// FamiliarMatch against `debian@sha256:…` and `debian` fails), and an image that only other
/// repositories name is not listed.
#[test]
fn reference_filters_select_tags_and_digest_references_one_by_one() {
    let d = |c: char| -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    };
    let image = || {
        (
            vec!["debian:gzip".to_string(), "other/app:1".to_string()],
            vec![
                ("debian".to_string(), d('a')),
                ("other/app".to_string(), d('b')),
            ],
        )
    };
    let filter = |p: &str| ImageFilter::parse(&[format!("reference={p}")]).unwrap();

    let (mut tags, mut digests) = image();
    assert!(filter("debian").select_references(&mut tags, &mut digests));
    assert_eq!(tags, ["debian:gzip"]);
    assert_eq!(digests, [("debian".to_string(), d('a'))]);

    let (mut tags, mut digests) = image();
    assert!(filter("debian:gzip").select_references(&mut tags, &mut digests));
    assert_eq!(tags, ["debian:gzip"]);
    assert!(digests.is_empty(), "{digests:?}");

    let (mut tags, mut digests) = image();
    let by_digest = format!("debian@{}", d('a'));
    assert!(filter(&by_digest).select_references(&mut tags, &mut digests));
    assert!(tags.is_empty());
    assert_eq!(digests, [("debian".to_string(), d('a'))]);

    let (mut tags, mut digests) = image();
    assert!(!filter("alpine").select_references(&mut tags, &mut digests));

    // no reference filter: everything stays
    let (mut tags, mut digests) = image();
    assert!(ImageFilter::default().select_references(&mut tags, &mut digests));
    assert_eq!((tags, digests), image());
}
