use super::*;

#[test]
fn next_link_is_found_in_the_forms_registries_send() {
    let cases = [
        (
            r#"</v2/busybox/tags/list?last=busybox&n=1>; rel="next""#,
            Some("/v2/busybox/tags/list?last=busybox&n=1"),
        ),
        (
            r#"<https://r.example/v2/a/tags/list?n=2&last=b>;rel=next"#,
            Some("https://r.example/v2/a/tags/list?n=2&last=b"),
        ),
        (
            r#"</prev?x=1>; rel="prev", </next?a,b=1>; rel="next""#,
            Some("/next?a,b=1"),
        ),
        (r#"</x>; title="y"; REL="Next""#, Some("/x")),
        (r#"</x>; rel="prev""#, None),
        ("", None),
        ("garbage", None),
        ("<unterminated; rel=next", None),
    ];
    for (header, want) in cases {
        assert_eq!(next_link(header).as_deref(), want, "{header}");
    }
}

#[test]
fn relative_links_resolve_against_the_registry() {
    assert_eq!(
        resolve_link("http://127.0.0.1:5000", "/v2/a/tags/list?last=x"),
        "http://127.0.0.1:5000/v2/a/tags/list?last=x"
    );
    assert_eq!(
        resolve_link("https://h", "https://other/x"),
        "https://other/x"
    );
}
