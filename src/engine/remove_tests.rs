use super::*;

fn tag(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn a_reference_is_a_tag_or_a_digest_reference_in_full() {
    assert_eq!(
        tag("debian"),
        ImageRef::Tag("docker.io/library/debian:latest".into())
    );
    let d = tag(&format!("debian@{D}"));
    assert_eq!(
        d,
        ImageRef::Digest("docker.io/library/debian".into(), D.parse().unwrap())
    );
    assert_eq!(d.familiar(), format!("debian@{D}"));
    assert_eq!(d.full(), format!("docker.io/library/debian@{D}"));
}

/// moby's isSingleReference cases: at most one tag, every digest reference in its repository.
#[test]
fn single_reference_as_docker_decides_it() {
    let digest_of = |repo: &str| tag(&format!("{repo}@{D}"));
    assert!(!is_single_reference(&[]));
    assert!(is_single_reference(&[tag("a:1")]));
    assert!(is_single_reference(&[digest_of("a")]));
    assert!(is_single_reference(&[tag("a:1"), digest_of("a")]));
    assert!(!is_single_reference(&[tag("a:1"), digest_of("b")]));
    assert!(!is_single_reference(&[tag("a:1"), tag("a:2")]));
    assert!(!is_single_reference(&[digest_of("a"), digest_of("b")]));
}
