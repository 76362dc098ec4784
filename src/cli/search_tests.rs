use super::*;

#[test]
fn filters_parse_with_dockers_messages() {
    let f = parse_filter(&["is-official=true".into(), "stars=3".into()]).expect("ok");
    assert_eq!(
        f,
        SearchFilter {
            official: Some(true),
            automated: None,
            min_stars: 3
        }
    );
    let f = parse_filter(&["is-automated=0".into()]).expect("ok");
    assert_eq!(f.automated, Some(false));
    for (arg, msg) in [
        ("is-official=maybe", "invalid filter 'is-official=maybe'"),
        ("stars=-1", "invalid filter 'stars=-1'"),
        ("color=red", "invalid filter 'color'"),
        ("stars", "bad format of filter"),
    ] {
        let e = parse_filter(&[arg.into()]).expect_err(arg);
        assert!(e.0.starts_with(msg), "{arg}: {}", e.0);
    }
}

#[test]
fn records_cut_descriptions_and_mark_flags_as_docker() {
    let r = SearchResult {
        name: "n".into(),
        description: format!("line one\r\nline two {}", "x".repeat(60)),
        stars: Some(7),
        official: true,
        automated: false,
    };
    let rec = record(&r, true, false);
    let get = |rec: &Record, k: &str| rec.iter().find(|(f, _)| *f == k).unwrap().1.clone();
    let d = get(&rec, "Description");
    assert_eq!(d.chars().count(), 45);
    assert!(
        d.starts_with("line one  line two ") && d.ends_with('…'),
        "{d}"
    );
    assert_eq!(get(&rec, "StarCount"), "7");
    assert_eq!(get(&rec, "IsOfficial"), "[OK]");
    assert_eq!(get(&rec, "IsAutomated"), "");
    let full = record(&r, false, true);
    assert_eq!(get(&full, "Description").chars().count(), 19 + 60);
    assert_eq!(get(&full, "IsOfficial"), "true");
    assert_eq!(get(&full, "IsAutomated"), "false");
    // catalog entries: no stars, shown as nothing
    let cat = SearchResult { stars: None, ..r };
    assert_eq!(get(&record(&cat, true, false), "StarCount"), "");
}
