use super::*;

#[test]
fn terms_name_a_registry_as_docker_splits_them() {
    let cases = [
        ("nginx", ("docker.io", "nginx")),
        ("library/nginx", ("docker.io", "nginx")),
        ("bitnami/nginx", ("docker.io", "bitnami/nginx")),
        ("docker.io/library/nginx", ("docker.io", "nginx")),
        ("index.docker.io/foo", ("docker.io", "foo")),
        ("127.0.0.1:5000/team/app", ("127.0.0.1:5000", "team/app")),
        ("localhost/app", ("localhost", "app")),
        ("quay.io/", ("quay.io", "")),
        (
            "reg.example:443/library/x",
            ("reg.example:443", "library/x"),
        ),
    ];
    for (term, (index, rest)) in cases {
        assert_eq!(
            split_search_term(term),
            (index.to_string(), rest.to_string()),
            "{term}"
        );
    }
}

fn result(stars: Option<u64>, official: bool, automated: bool) -> SearchResult {
    SearchResult {
        name: "x".into(),
        description: String::new(),
        stars,
        official,
        automated,
    }
}

#[test]
fn filters_hold_together() {
    let f = SearchFilter {
        official: Some(true),
        automated: None,
        min_stars: 3,
    };
    assert!(f.matches(&result(Some(3), true, false)));
    assert!(f.matches(&result(Some(9), true, true)));
    assert!(!f.matches(&result(Some(2), true, false)));
    assert!(!f.matches(&result(Some(9), false, false)));
    // a catalog entry has no stars: any stars filter drops it
    assert!(!f.matches(&result(None, true, false)));
    assert!(SearchFilter::default().matches(&result(None, false, false)));
    let automated = SearchFilter {
        automated: Some(false),
        ..SearchFilter::default()
    };
    assert!(!automated.matches(&result(Some(1), false, true)));
}

#[test]
fn the_limit_is_checked_before_any_registry_is_asked() {
    for limit in [0, 101] {
        let e = search(
            "127.0.0.1:1/x",
            limit,
            &SearchFilter::default(),
            &RegistryOptions::default(),
        )
        .expect_err("out of range");
        assert_eq!(
            e.to_string(),
            format!("limit {limit} is outside the range of [1, 100]")
        );
    }
}
