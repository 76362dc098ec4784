use super::*;
use crate::mount::support_tests::{mkdirs, write_refused, MountGuard};

/// The route for kernels without `open_tree`: still read-only once it returns.
#[test]
fn bind_then_remount_is_readonly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = mkdirs(tmp.path(), &["src", "dst"]);
    std::fs::write(dirs[0].join("f"), b"f").expect("write");
    let mut guard = MountGuard::default();
    bind_then_remount(&dirs[0], &Target::open(&dirs[1]).expect("target")).expect("bind + remount");
    guard.push(&dirs[1]);
    assert!(is_mountpoint(&dirs[1]));
    assert!(listed_in_mountinfo(&dirs[1]) && !listed_in_mountinfo(&dirs[0]));
    assert_eq!(std::fs::read(dirs[1].join("f")).expect("read"), b"f");
    assert!(write_refused(&dirs[1].join("f")) && write_refused(&dirs[1].join("g")));
    assert!(
        std::fs::write(dirs[0].join("g"), b"g").is_ok(),
        "source stays writable"
    );
}

#[test]
fn mountinfo_escapes_decode() {
    for (raw, want) in [
        ("/a\\040b", "/a b"),
        ("/plain", "/plain"),
        ("/x\\134y", "/x\\y"),
        ("/bad\\9", "/bad\\9"),
    ] {
        assert_eq!(unescape_mountinfo(raw), want);
    }
}
