use super::*;
use crate::store::SnapshotKind;
use std::collections::BTreeMap;

fn info(name: &str, kind: SnapshotKind, parent: &str, labels: &[(&str, &str)]) -> SnapshotInfo {
    SnapshotInfo {
        name: name.into(),
        parent: parent.into(),
        kind,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        created: 0,
        updated: 0,
    }
}

/// The snapshots and filters of containerd's conformance suite (checkWalk), and what each finds.
#[test]
fn the_conformance_suites_walk_filters() {
    use SnapshotKind::*;
    let root = ("containerd.io/gc.root", "check-walk");
    let all = [
        info("a-np", Active, "", &[root]),
        info("p", Committed, "", &[root]),
        info("a", Active, "p", &[root]),
        info("v", View, "p", &[root]),
        info("p-wl", Committed, "", &[root, ("l", "1")]),
        info("a-wl", Active, "p-wl", &[root, ("l", "2")]),
        info("v-wl", View, "p-wl", &[root, ("l", "3")]),
        info("a-np-wl", Active, "", &[root, ("l", "2")]),
    ];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[r#"labels."containerd.io/gc.root"==check-walk"#],
            &["a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"],
        ),
        (
            &[r#"kind==active,labels."containerd.io/gc.root"==check-walk"#],
            &["a-np", "a", "a-wl", "a-np-wl"],
        ),
        (
            &[r#"kind==view,labels."containerd.io/gc.root"==check-walk"#],
            &["v", "v-wl"],
        ),
        (&["kind==committed"], &["p", "p-wl"]),
        (&["name==p", "name==a-np-wl"], &["p", "a-np-wl"]),
        (&["name==a-wl,labels.l"], &["a-wl"]),
        (&["parent==p"], &["a", "v"]),
        (
            &[r#"parent!="",labels."containerd.io/gc.root"==check-walk"#],
            &["a", "v", "a-wl", "v-wl"],
        ),
        (&["labels.l"], &["p-wl", "a-wl", "v-wl", "a-np-wl"]),
        (&["labels.l==2"], &["a-wl", "a-np-wl"]),
        (&["name~=^a-.*wl$"], &["a-wl", "a-np-wl"]),
        (&["name~=/^p/"], &["p", "p-wl"]),
        (&["labels.l!=2 , kind == view"], &["v", "v-wl"]),
        (
            &[],
            &["a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"],
        ),
    ];
    for (filters, want) in cases {
        let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        let parsed = Filters::parse(&filters).unwrap_or_else(|e| panic!("{filters:?}: {e}"));
        let got: Vec<&str> = all
            .iter()
            .filter(|i| parsed.matches(i))
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(&got, want, "{filters:?}");
    }
}

/// What containerd's metadata layer asks after a remote snapshotter's AlreadyExists.
#[test]
fn the_metadata_layers_target_filter() {
    let chain = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let filter = format!(r#"labels."containerd.io/snapshot.ref"=={chain},parent=="default/3/x""#);
    let f = Filters::parse(&[filter]).unwrap();
    let hit = info(
        "y",
        SnapshotKind::Committed,
        "default/3/x",
        &[("containerd.io/snapshot.ref", chain)],
    );
    let mut miss = hit.clone();
    miss.parent = "default/3/z".into();
    assert!(f.matches(&hit));
    assert!(!f.matches(&miss));
}

#[test]
fn bad_filters_say_where() {
    for bad in [
        "kind=active",
        "kind==",
        "==x",
        r#"labels."unterminated==x"#,
        "name~=(",
        "name==a b",
        r#"name=="\q""#,
    ] {
        let e = Filters::parse(&[bad.to_string()]).unwrap_err();
        assert!(e.contains("position"), "{bad}: {e}");
    }
}

#[test]
fn quoted_values_unescape_as_go_strings() {
    let f = Filters::parse(&[r#"labels."a.b"=="x\"y\u00e9\x41""#.to_string()]).unwrap();
    assert!(f.matches(&info("n", SnapshotKind::View, "", &[("a.b", "x\"yéA")])));
}
