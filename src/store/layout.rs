//! Every path of the on-disk store, built in one place.
//!
//! ```text
//! root/
//!   meta.db               metadata (images, tags, layers, mounts)
//!   features.json         cached kernel feature probe
//!   blobs/sha256/<hex>    manifests and configs
//!   layers/<key>/         diff/ (the unpacked layer) and layer.json; key = diffID hex, or chainID hex
//!                         for layers whose tree depends on their parents
//!   locks/<hex>           per-layer lock files, so two processes never unpack one layer twice
//!   mounts/<id>/          upper/, work/, merged/ (the default mount target)
//!   tmp/                  staging; anything here is incomplete by definition
//! ```
//! Only validated digests and mount ids become path components, so nothing here can name a path outside
//! the root.

use crate::digest::Digest;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn meta_db(&self) -> PathBuf {
        self.root.join("meta.db")
    }

    pub fn features(&self) -> PathBuf {
        self.root.join("features.json")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn layer(&self, key: &str) -> PathBuf {
        self.layers_dir().join(key)
    }

    /// The unpacked tree of a layer, in overlay whiteout format.
    pub fn layer_diff(&self, key: &str) -> PathBuf {
        self.layer(key).join("diff")
    }

    pub fn layer_record(&self, key: &str) -> PathBuf {
        self.layer(key).join("layer.json")
    }

    /// What it takes to give back the layer's exact tar (see `tarsplit`).
    pub fn layer_tar_split(&self, key: &str) -> PathBuf {
        self.layer(key).join(super::recorded::TAR_SPLIT)
    }

    /// The layer's file list, for `fsck --verify` (see `filelist`).
    pub fn layer_files(&self, key: &str) -> PathBuf {
        self.layer(key).join(super::recorded::FILE_LIST)
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub fn layer_lock(&self, diff_id: &Digest) -> PathBuf {
        self.locks_dir().join(diff_id.hex())
    }

    pub fn mounts_dir(&self) -> PathBuf {
        self.root.join("mounts")
    }

    pub fn mount(&self, id: &str) -> PathBuf {
        self.mounts_dir().join(id)
    }

    pub fn mount_upper(&self, id: &str) -> PathBuf {
        self.mount(id).join("upper")
    }

    pub fn mount_work(&self, id: &str) -> PathBuf {
        self.mount(id).join("work")
    }

    pub fn mount_merged(&self, id: &str) -> PathBuf {
        self.mount(id).join("merged")
    }

    /// The copy driver's materialised tree (bind-mounted onto the target).
    pub fn mount_copy(&self, id: &str) -> PathBuf {
        self.mount(id).join("copy")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Every directory that must exist for the store to work.
    pub fn dirs(&self) -> [PathBuf; 6] {
        [
            self.blobs_dir(),
            self.layers_dir(),
            self.locks_dir(),
            self.mounts_dir(),
            self.tmp_dir(),
            self.root.clone(),
        ]
    }
}

/// A mount id: what `--name` accepts and what becomes `mounts/<id>`.
pub fn valid_mount_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !id.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_ids_cannot_leave_the_mounts_dir() {
        for (id, ok) in [
            ("web-1", true),
            ("a.b_c", true),
            ("..", false),
            (".hidden", false),
            ("a/b", false),
            ("", false),
            ("x y", false),
        ] {
            assert_eq!(valid_mount_id(id), ok, "{id}");
        }
    }
}
