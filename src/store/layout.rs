//! Every path of the on-disk store, built in one place, from typed keys.
//!
//! ```text
//! root/
//!   meta.db               metadata (images, tags, layers, mounts)
//!   features.json         cached kernel feature probe
//!   blobs/sha256/<hex>    manifests and configs
//!   layers/<key>/         diff/ (the unpacked layer) and layer.json; key = diffID hex, or chainID hex
//!                         for layers whose tree depends on their parents, or flat-<hex> for a cache
//!                         of flattened bottom layers
//!   locks/                lock files of running commands: layer-<diffID>, unpack-<diffID>,
//!                         chain-<chainID>, mount-<id>, newmount-<id> (see `store::locks`)
//!   mounts/<id>/          upper/, work/, merged/ (the default mount target)
//!   snapshots/<id>/       fs/ and work/ of containerd's active snapshots and views (`lamina snapshotter`)
//!   l/<short>             short symlinks to the layer dirs of committed snapshots (`../layers/<key>/diff`),
//!                         so that containerd's `lowerdir=` of a 500-layer chain fits in one page
//!   tmp/                  staging; anything here is incomplete by definition
//! ```
//! Only a [`LayerKey`], a [`MountId`] or a [`Digest`] becomes a path component, and each is validated
//! when it is made, so nothing here can name a path outside the root.

use crate::digest::Digest;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name of a layer dir under `layers/`: the hex of a diffID or chainID, or `flat-<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerKey(String);

const FLAT_PREFIX: &str = "flat-";
const NEW_MOUNT_PREFIX: &str = "newmount-";

impl LayerKey {
    /// A layer stored under a digest: its diffID (self-contained) or its chainID (parent-dependent).
    pub fn of(digest: &Digest) -> LayerKey {
        LayerKey(digest.hex().to_string())
    }

    /// The cache of flattened bottom layers named by `digest` (of the dirs it merges).
    pub fn flat(digest: &Digest) -> LayerKey {
        LayerKey(format!("{FLAT_PREFIX}{}", digest.hex()))
    }

    /// A key read back from the database or a directory listing; `None` unless it is one of the
    /// forms above.
    pub fn parse(s: &str) -> Option<LayerKey> {
        let hex = s.strip_prefix(FLAT_PREFIX).unwrap_or(s);
        (hex.len() == 64 && Digest::from_hex(hex).is_ok()).then(|| LayerKey(s.to_string()))
    }

    pub fn is_flat(&self) -> bool {
        self.0.starts_with(FLAT_PREFIX)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mount id: what `--name` accepts and what becomes `mounts/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MountId(String);

impl MountId {
    /// `None` unless `id` is letters, digits, `.`, `_` and `-`, not starting with `.`.
    pub fn parse(id: &str) -> Option<MountId> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !id.starts_with('.');
        ok.then(|| MountId(id.to_string()))
    }

    /// A fresh random id (32 hex digits).
    pub fn random() -> MountId {
        MountId(format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The files of one layer dir, staged under `tmp/` or final under `layers/<key>/`: both have the
/// same shape, so the paths are named once.
#[derive(Debug, Clone)]
pub struct LayerPaths {
    dir: PathBuf,
}

impl LayerPaths {
    /// The layer dir being built at `dir` (a staging dir).
    pub fn staged(dir: &Path) -> LayerPaths {
        LayerPaths {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unpacked tree of a layer, in overlay whiteout format.
    pub fn diff(&self) -> PathBuf {
        self.dir.join("diff")
    }

    pub fn record(&self) -> PathBuf {
        self.dir.join("layer.json")
    }

    /// What it takes to give back the layer's exact tar (see `tar::split`).
    pub fn tar_split(&self) -> PathBuf {
        self.dir.join(super::recorded::TAR_SPLIT)
    }

    /// The layer's file list, for `fsck --verify` (see `filelist`).
    pub fn files(&self) -> PathBuf {
        self.dir.join(super::recorded::FILE_LIST)
    }

    /// The compressed blobs of the layer kept for `push` (see `kept_blobs`).
    pub fn kept_blobs(&self) -> PathBuf {
        self.dir.join("blobs")
    }

    /// One kept blob, named by its digest's hex.
    pub fn kept_blob(&self, digest: &Digest) -> PathBuf {
        self.kept_blobs().join(digest.hex())
    }
}

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

    pub fn layer(&self, key: &LayerKey) -> LayerPaths {
        LayerPaths {
            dir: self.layers_dir().join(key.as_str()),
        }
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Held shared by the users of layers with this diffID, exclusive by their removers.
    pub fn layer_lock(&self, diff_id: &Digest) -> PathBuf {
        self.locks_dir().join(format!("layer-{}", diff_id.hex()))
    }

    /// Held while a layer with this diffID is looked for and unpacked.
    pub fn unpack_lock(&self, diff_id: &Digest) -> PathBuf {
        self.locks_dir().join(format!("unpack-{}", diff_id.hex()))
    }

    /// Held while the layer at this chainID is unpacked, until it is committed.
    pub fn chain_lock(&self, chain_id: &Digest) -> PathBuf {
        self.locks_dir().join(format!("chain-{}", chain_id.hex()))
    }

    /// Held while mount `id` is made or removed.
    pub fn mount_lock(&self, id: &MountId) -> PathBuf {
        self.locks_dir().join(format!("mount-{}", id.as_str()))
    }

    /// Exists while mount `id` is being made: left behind, it says the maker was killed.
    pub fn mount_marker(&self, id: &MountId) -> PathBuf {
        self.locks_dir()
            .join(format!("{NEW_MOUNT_PREFIX}{}", id.as_str()))
    }

    /// The mounts whose maker left a marker (see [`mount_marker`](Layout::mount_marker)).
    pub fn marked_mounts(&self) -> std::io::Result<Vec<MountId>> {
        let mut out = vec![];
        for entry in std::fs::read_dir(self.locks_dir())? {
            let name = entry?.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix(NEW_MOUNT_PREFIX))
                .and_then(MountId::parse)
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub fn mounts_dir(&self) -> PathBuf {
        self.root.join("mounts")
    }

    pub fn mount(&self, id: &MountId) -> PathBuf {
        self.mounts_dir().join(id.as_str())
    }

    pub fn mount_upper(&self, id: &MountId) -> PathBuf {
        self.mount(id).join("upper")
    }

    pub fn mount_work(&self, id: &MountId) -> PathBuf {
        self.mount(id).join("work")
    }

    pub fn mount_merged(&self, id: &MountId) -> PathBuf {
        self.mount(id).join("merged")
    }

    /// The copy driver's materialised tree (bind-mounted onto the target).
    pub fn mount_copy(&self, id: &MountId) -> PathBuf {
        self.mount(id).join("copy")
    }

    /// The OCI runtime bundle `lamina run` writes for the container on this mount.
    pub fn mount_bundle(&self, id: &MountId) -> PathBuf {
        self.mount(id).join("bundle")
    }

    /// The state dir (`--root`) of the OCI runtime `runtime` for lamina's containers.
    pub fn runtime_state(&self, runtime: &str) -> PathBuf {
        self.root.join("runtime").join(runtime)
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// The dir of one of containerd's snapshots (by its row id): `fs/` (its tree, the upper dir of
    /// an active snapshot) and `work/` (overlay's work dir).
    pub fn snapshot(&self, id: i64) -> PathBuf {
        self.snapshots_dir().join(id.to_string())
    }

    pub fn snapshot_fs(&self, id: i64) -> PathBuf {
        self.snapshot(id).join("fs")
    }

    pub fn snapshot_work(&self, id: i64) -> PathBuf {
        self.snapshot(id).join("work")
    }

    /// The key of the layer an active snapshot's commit is storing, written before the layer
    /// dir is renamed into `layers/` (see `store::snapshot_layers`).
    pub fn snapshot_layer_marker(&self, id: i64) -> PathBuf {
        self.snapshot(id).join("layer")
    }

    pub fn short_links_dir(&self) -> PathBuf {
        self.root.join("l")
    }

    /// The short symlink naming a committed snapshot's layer dir: its row id in base 36.
    pub fn short_link(&self, id: i64) -> PathBuf {
        self.short_links_dir().join(base36(id))
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

/// `n` in base 36 (digits, then lowercase letters): `l/` names stay 1–3 characters for the first
/// 46656 snapshots.
pub fn base36(n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = n.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
