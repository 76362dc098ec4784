use super::*;

#[test]
fn binds_follow_dockers_rules() {
    let ok: &[(&str, &str, &str, bool)] = &[
        ("/srv:/data", "/srv", "/data", false),
        ("/srv:/data:ro", "/srv", "/data", true),
        ("/srv:/data:rw", "/srv", "/data", false),
        ("/srv:/a/../b/./c/", "/srv", "/b/c", false),
    ];
    for (spec, source, destination, readonly) in ok {
        let b = BindMount::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(b.source, PathBuf::from(source), "{spec}");
        assert_eq!(b.destination, PathBuf::from(destination), "{spec}");
        assert_eq!(b.readonly, *readonly, "{spec}");
    }
    for bad in [
        "vol:/data",
        "/srv:data",
        "/srv:/",
        "/srv:/..",
        "/srv",
        "/srv:/data:rx",
        "/a:/b:ro:x",
    ] {
        assert!(BindMount::parse(bad).is_err(), "{bad} must be refused");
    }
}

#[test]
fn a_read_only_bind_is_a_private_rbind_with_ro() {
    let m = BindMount::parse("/srv:/data:ro").unwrap().to_mount();
    assert_eq!(m.typ().as_deref(), Some("bind"));
    assert_eq!(m.destination(), &PathBuf::from("/data"));
    assert_eq!(
        m.options().as_deref(),
        Some(&["rbind".to_string(), "rprivate".into(), "ro".into()][..])
    );
    let rw = BindMount::parse("/srv:/data").unwrap().to_mount();
    assert!(!rw.options().as_ref().unwrap().contains(&"ro".to_string()));
}

fn lookup(key: &str) -> Option<String> {
    (key == "HOME").then(|| "/root".to_string())
}

#[test]
fn bare_names_take_the_callers_value_or_are_dropped() {
    assert_eq!(env_entry("A=b=c", lookup).unwrap(), Some("A=b=c".into()));
    assert_eq!(env_entry("A=", lookup).unwrap(), Some("A=".into()));
    assert_eq!(
        env_entry("HOME", lookup).unwrap(),
        Some("HOME=/root".into())
    );
    assert_eq!(env_entry("UNSET", lookup).unwrap(), None);
    assert!(env_entry("=x", lookup).is_err());
    assert!(env_entry("A B", lookup).is_err());
}

#[test]
fn env_files_skip_comments_and_blank_lines() {
    let text = "# a comment\n\n  A=1\nB=2 3\nHOME\nUNSET\nC=\"quoted\"\n";
    assert_eq!(
        env_file_entries(text, lookup).unwrap(),
        vec!["A=1", "B=2 3", "HOME=/root", "C=\"quoted\""]
    );
    assert!(env_file_entries("BAD NAME\n", lookup).is_err());
    assert!(env_file_entries("B = 2\n", lookup).is_err());
}
