use super::*;

#[test]
fn normalizes_member_paths() {
    let cases = [
        ("a/b", "", Some("a/b")),
        ("./a/b", "", Some("a/b")),
        ("/a//b/", "", Some("a/b")),
        ("../x.tar", "abc", Some("x.tar")),
        ("../../x.tar", "abc", None),
        ("..", "", None),
        (".", "", None),
        ("c/../d", "a/b", Some("a/b/d")),
        ("/abs", "a", Some("abs")),
    ];
    for (p, base, want) in cases {
        assert_eq!(normalize(p, base).as_deref(), want, "{p} in {base}");
    }
}
