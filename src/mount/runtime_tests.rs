use super::*;

fn spec(lowers: &[&str], upper: Option<(&str, &str)>) -> OverlaySpec {
    OverlaySpec {
        lowers: lowers.iter().map(Into::into).collect(),
        upper: upper.map(|(u, w)| (u.into(), w.into())),
    }
}

#[test]
fn shapes() {
    let one = runtime_mounts(&spec(&["/s/a"], None));
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        r#"[{"type":"bind","source":"/s/a","options":["ro","rbind"]}]"#
    );
    let rw = runtime_mounts(&spec(&["/s/a"], Some(("/m/u", "/m/w"))));
    assert_eq!(
        rw[0].options,
        [
            "lowerdir=/s/a",
            "upperdir=/m/u",
            "workdir=/m/w",
            "index=off"
        ]
    );
    let ro = runtime_mounts(&spec(&["/s/a:b", "/s/c"], None));
    assert_eq!(ro[0].kind, "overlay");
    assert_eq!(ro[0].options, ["lowerdir=/s/a\\:b:/s/c", "index=off"]);
}
