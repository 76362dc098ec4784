use super::*;

#[test]
fn common_parent_is_deepest_shared_dir() {
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["/s/l/A", "/s/l/B", "/s/l/C"], Some("/s/l")),
        (&["/s/l/A", "/s/x/B"], Some("/s")),
        (&["/s/l/A/diff", "/s/l/A"], Some("/s/l")),
        (&["/a"], Some("/")),
        (&["rel"], Some("")),
    ];
    for (dirs, want) in cases {
        let dirs: Vec<&Path> = dirs.iter().map(Path::new).collect();
        assert_eq!(common_parent(&dirs), want.map(PathBuf::from), "{dirs:?}");
    }
}

#[test]
fn legacy_options_order_and_flags() {
    let spec = OverlaySpec {
        lowers: vec!["a".into(), "b".into()],
        upper: Some(("u".into(), "w".into())),
    };
    let names: Vec<String> = ["a", "b", "u", "w"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        legacy_options(&names, &spec),
        "lowerdir=a:b,upperdir=u,workdir=w,index=off"
    );
    let ro = OverlaySpec {
        upper: None,
        ..spec
    };
    assert_eq!(legacy_options(&names[..2], &ro), "lowerdir=a:b,index=off");
}
