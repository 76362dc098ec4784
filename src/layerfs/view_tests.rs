//! `find` stops at the first layer that shows a name; what it returns is still the merge's:
//! opaque dirs, non-directories on the way and directories merged from several layers.

use super::*;
use crate::layerfs::OPAQUE_XATTR;
use std::fs;

fn opaque(dir: &Path) {
    rustix::fs::setxattr(dir, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty()).unwrap();
}

#[test]
fn find_shows_what_the_merge_shows() {
    if !rustix::process::geteuid().is_root() {
        return eprintln!("SKIP: trusted xattrs need root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let l = |i: usize| tmp.path().join(format!("l{i}"));
    // l2 (bottom): a/y, a/b/x, n/f, m/deep/g
    fs::create_dir_all(l(2).join("a/b")).unwrap();
    fs::write(l(2).join("a/y"), b"").unwrap();
    fs::write(l(2).join("a/b/x"), b"").unwrap();
    fs::create_dir_all(l(2).join("n")).unwrap();
    fs::write(l(2).join("n/f"), b"").unwrap();
    fs::create_dir_all(l(2).join("m/deep")).unwrap();
    fs::write(l(2).join("m/deep/g"), b"").unwrap();
    // l1: a/ opaque with a/z; n is a file; m/ merges on
    fs::create_dir_all(l(1).join("a")).unwrap();
    opaque(&l(1).join("a"));
    fs::write(l(1).join("a/z"), b"").unwrap();
    fs::write(l(1).join("n"), b"").unwrap();
    fs::create_dir_all(l(1).join("m")).unwrap();
    // l0 (top): a/q, m/
    fs::create_dir_all(l(0).join("a")).unwrap();
    fs::write(l(0).join("a/q"), b"").unwrap();
    fs::create_dir_all(l(0).join("m")).unwrap();

    let view = LowerView::open(&[l(0), l(1), l(2)]).unwrap();
    let layer = |p: &str| view.find(Path::new(p)).unwrap().map(|(layer, _, _)| layer);
    assert_eq!(layer("a"), Some(0));
    assert_eq!(layer("a/q"), Some(0));
    assert_eq!(layer("a/z"), Some(1));
    assert_eq!(layer("a/y"), None, "hidden by l1's opaque a/");
    assert_eq!(layer("a/b/x"), None, "hidden by l1's opaque a/");
    assert_eq!(layer("n"), Some(1));
    assert_eq!(layer("n/f"), None, "l1's file n hides l2's dir");
    assert_eq!(layer("m/deep/g"), Some(2), "m/ merges down to l2");
    assert_eq!(layer("nothing"), None);

    // Stacked one at a time, as a load does: the same answers.
    let mut stacked = LowerView::open(&[]).unwrap();
    for i in [2, 1, 0] {
        stacked.push_top(&l(i)).unwrap();
    }
    let (layer, _, _) = stacked.find(Path::new("a/z")).unwrap().unwrap();
    assert_eq!(layer, 1);
    assert!(stacked.find(Path::new("a/y")).unwrap().is_none());
}
