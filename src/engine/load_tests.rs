use super::*;

#[test]
fn ref_names_become_tags_as_the_design_says() {
    let cases = [
        ("gzip", "debian", "docker.io/library/debian:gzip"),
        ("debian:gzip", "whatever", "docker.io/library/debian:gzip"),
        ("example.com/x/y:1", "d", "example.com/x/y:1"),
        (
            "busybox:latest",
            "busybox-oci",
            "docker.io/library/busybox:latest",
        ),
    ];
    for (r, repo, want) in cases {
        assert_eq!(tag_for_ref(r, repo).unwrap(), want, "{r}");
    }
    assert!(tag_for_ref("Bad Tag", "debian").is_err());
}

#[test]
fn repository_is_the_name_without_tag() {
    assert_eq!(
        store::repository_of("docker.io/library/debian:gzip"),
        "docker.io/library/debian"
    );
    assert_eq!(
        store::repository_of("localhost:5000/a/b:1"),
        "localhost:5000/a/b"
    );
}
