//! The overlay layer format, once: how a layer dir marks what it hides from the layers below it,
//! which xattrs belong to overlayfs itself, and one fd-based view of a stack of layer dirs with
//! overlayfs's merged lookup (used by the copier, `lamina diff` and the unpacker's fix-up).
//!
//! Invariants: the format here is the one the store writes and the kernel reads (a 0/0 character
//! device is a whiteout; `trusted.overlay.opaque=y` marks an opaque dir; the store never mounts
//! with `userxattr`). The view only reads layer dirs, only through fds: every dir is opened
//! beneath its layer's root without following a symlink.
//!
//! Sits below source, unpack, mount, copier and runtime; uses only `sys`.

mod format;
mod view;

use std::collections::HashSet;
use std::hash::Hash;
use std::io;
use std::path::PathBuf;

pub use format::{
    is_opaque, is_overlay_xattr, is_whiteout, set_opaque, AUFS_META_PREFIX, OPAQUE_MARKER,
    OPAQUE_XATTR, PRIVATE_XATTR_PREFIX, WHITEOUT_PREFIX,
};
pub use view::{LowerView, MergedDir, Shown};

/// A stack of layers (top first) with each layer kept only at its topmost place, as `key` names
/// it. overlayfs refuses one directory twice in a stack (ELOOP, "overlapping layers"), and an
/// image may repeat a layer (two empty ones, or the same change made twice). Dropping the lower
/// copy leaves the merged tree as it was: the lower copy is reached only for a path the upper
/// copy does not hold, and then it holds nothing there either; a directory it would add to a
/// merge holds what the upper copy's already added.
pub fn topmost_distinct<T, K: Eq + Hash>(stack: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = HashSet::new();
    stack.into_iter().filter(|l| seen.insert(key(l))).collect()
}

/// A view operation failed on `path` (a layer dir's path joined with the entry's).
#[derive(Debug, thiserror::Error)]
#[error("{op} {path:?}: {source}")]
pub struct ViewError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

#[cfg(test)]
mod tests {
    use super::topmost_distinct;

    #[test]
    fn a_repeated_layer_is_kept_at_its_topmost_place() {
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&["a"], &["a"]),
            (&["a", "b", "c"], &["a", "b", "c"]),
            (&["a", "a"], &["a"]),
            (&["x", "y", "x", "base"], &["x", "y", "base"]),
            (&["a", "b", "a", "b", "a"], &["a", "b"]),
        ];
        for (stack, want) in cases {
            let got = topmost_distinct(stack.to_vec(), |l| *l);
            assert_eq!(&got, want, "{stack:?}");
        }
    }

    #[test]
    fn the_key_decides_what_is_the_same_layer() {
        // snapshots: (row id, layer) pairs; two rows on one layer dir are one layer
        let stack = vec![(3, "x"), (2, "y"), (1, "x")];
        assert_eq!(
            topmost_distinct(stack, |(_, l)| *l),
            vec![(3, "x"), (2, "y")]
        );
    }
}
