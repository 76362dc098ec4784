//! containerd 2.2's parallel unpack (the `rebase` capability): layers are prepared without a
//! parent, each applied alone, and given their parent at Commit. The committed chain must then stack
//! as if they had been prepared on each other; a snapshot prepared on another parent is refused.

use super::*;
use std::path::PathBuf;

/// The tree of active snapshot `key`: an active snapshot without a parent is one bind mount.
fn tree_of(e: &Engine, key: &str) -> PathBuf {
    let mounts = e.snapshot_mounts(key).unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    PathBuf::from(&mounts[0].source)
}

/// The lower dirs of a view, top first.
fn lowers(mounts: &[RuntimeMount]) -> Vec<PathBuf> {
    let opt = mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap_or_else(|| panic!("no lowerdir: {mounts:?}"));
    opt.split(':').map(PathBuf::from).collect()
}

#[test]
fn commit_with_a_parent_rebases_a_layer_prepared_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&tmp.path().join("store")).unwrap();
    e.snapshot_prepare("extract-0", "", Labels::new()).unwrap();
    std::fs::write(tree_of(&e, "extract-0").join("base.txt"), b"base").unwrap();
    // the upper layer is unpacked before its parent is committed
    e.snapshot_prepare("extract-1", "", Labels::new()).unwrap();
    std::fs::write(tree_of(&e, "extract-1").join("top.txt"), b"top").unwrap();
    e.snapshot_commit("base", "extract-0", Labels::new(), "")
        .unwrap();
    e.snapshot_commit("top", "extract-1", Labels::new(), "base")
        .unwrap();
    assert_eq!(e.snapshot_stat("top").unwrap().parent, "base");

    let view = e.snapshot_view("v", "top", Labels::new()).unwrap();
    let dirs = lowers(&view);
    assert_eq!(dirs.len(), 2, "{view:?}");
    assert_eq!(std::fs::read(dirs[0].join("top.txt")).unwrap(), b"top");
    assert_eq!(std::fs::read(dirs[1].join("base.txt")).unwrap(), b"base");

    // a snapshot prepared on a parent cannot be committed onto another one
    e.snapshot_prepare("extract-2", "base", Labels::new())
        .unwrap();
    let err = e
        .snapshot_commit("other", "extract-2", Labels::new(), "top")
        .unwrap_err();
    assert!(err.snapshot_refusal().is_some(), "{err}");
    assert!(e.snapshot_stat("other").is_err());
}
