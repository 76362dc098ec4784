//! containerd's snapshots (served by `lamina snapshotter`), stored beside lamina's own images.
//!
//! A committed snapshot *is* a lamina layer: its tree is `layers/<key>/diff`, recorded in the
//! `layers` table like any loaded layer (so `df` counts it and `fsck` checks it), and a layer is
//! kept while any image or snapshot uses it. Active snapshots and views have a dir of their own,
//! `snapshots/<id>/` (`fs/` is the tree an active snapshot captures, overlay's upper dir; `work/`
//! is overlay's work dir), and become layers only when committed. Each committed snapshot also has
//! a short symlink `l/<id in base 36>` to its layer dir: containerd mounts what `Mounts` returns
//! with `mount(2)`, whose option string must fit in one page, and it shortens a long `lowerdir=`
//! only by making its entries relative to their common parent dir (containerd's
//! `compactLowerdirOption`), so 500 lowers need names of a few characters.
//!
//! Invariants:
//! - Every change of a snapshot's row is one transaction; the dirs follow it. A committed
//!   snapshot's layer dir is renamed into `layers/` (through `tmp/`, as every layer is) before the
//!   row names it (from the recording of the layer on, the active snapshot's row names it too, so
//!   the layer is used until the commit or the snapshot's removal); an active snapshot's dir is
//!   made after its row, and removed after its row is
//!   deleted. What a killed process leaves between the two (a dir or link without a row) is removed
//!   by [`Store::clear_snapshot_leftovers`]; a row whose dir is gone is reported, never recreated
//!   empty. How a commit stores its layer is in `snapshot_layers`.
//! - A snapshot with children is never removed, and only a committed snapshot is a parent.

use super::db::LayerRow;
use super::gc::LayerRemoval;
use super::layout::LayerKey;
use super::{ErrorKind, IoContext, Result, Store, StoreError};
use crate::digest::Digest;
use crate::sys::open::{file_type, open_root, DirAccess};
use crate::sys::walk::{walk, Entry, Visitor};
use rustix::fd::AsFd;
use rustix::fs::FileType;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The three kinds of containerd's snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Read-only: a view of its parent; never committed.
    View,
    /// Writable: its changes are captured, to be committed.
    Active,
    /// A layer: immutable, a parent for others.
    Committed,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::View => "view",
            SnapshotKind::Active => "active",
            SnapshotKind::Committed => "committed",
        }
    }

    pub fn parse(s: &str) -> Option<SnapshotKind> {
        match s {
            "view" => Some(SnapshotKind::View),
            "active" => Some(SnapshotKind::Active),
            "committed" => Some(SnapshotKind::Committed),
            _ => None,
        }
    }
}

/// One of containerd's snapshots, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// Never reused: names `snapshots/<id>/` and `l/<id in base 36>`.
    pub id: i64,
    /// The key of an active snapshot or view, the name of a committed one (one namespace).
    pub key: String,
    pub kind: SnapshotKind,
    /// The parent's id and name.
    pub parent: Option<(i64, String)>,
    /// The layer a committed snapshot is.
    pub layer: Option<LayerKey>,
    /// The chainID of a committed snapshot's layers.
    pub chain_id: Option<Digest>,
    pub labels: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub created: i64,
    pub updated: i64,
}

/// A snapshot to record.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub key: String,
    pub kind: SnapshotKind,
    pub parent: Option<i64>,
    /// For a committed snapshot made from a layer the store holds.
    pub layer: Option<LayerKey>,
    pub chain_id: Option<Digest>,
    pub labels: BTreeMap<String, String>,
    /// Unix nanoseconds (created and updated).
    pub time: i64,
}

/// An active snapshot becoming the committed snapshot `name` of `layer`.
#[derive(Debug, Clone)]
pub struct SnapshotCommit<'a> {
    pub id: i64,
    pub name: &'a str,
    /// A parent given at commit (containerd 2.2's "rebase"), for a snapshot prepared without one.
    pub parent: Option<i64>,
    pub layer: &'a LayerRow,
    pub chain_id: &'a Digest,
    pub labels: &'a BTreeMap<String, String>,
    pub time: i64,
}

/// Why a snapshot request is refused. containerd tells these apart by their errdefs class (see
/// `snapshotter`'s status codes), and its conformance suite checks the class of each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotRefusal {
    #[error("snapshot does not exist")]
    NotFound,
    #[error("snapshot already exists")]
    Exists,
    #[error("parent snapshot does not exist")]
    ParentNotFound,
    #[error("parent is not a committed snapshot")]
    ParentNotCommitted,
    #[error("cannot remove snapshot with child")]
    HasChildren,
    #[error("snapshot is not active")]
    NotActive,
    #[error("snapshot is committed: only active snapshots and views have mounts")]
    Committed,
    #[error("cannot change the parent of an active snapshot on commit (it has {0})")]
    ChangedParent(String),
    #[error("cannot update field {0:?} (only labels and labels.<key> can be updated)")]
    FieldPath(String),
    #[error("invalid filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("empty key")]
    EmptyKey,
    #[error("{layers} layers under it; overlayfs stacks at most {max}")]
    TooDeep { layers: usize, max: usize },
    #[error("its directory {0} is missing (a commit was interrupted); remove it")]
    Lost(String),
}

impl SnapshotRefusal {
    /// The store's kind for it (containerd's errdefs class is finer: see `snapshotter`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotRefusal::NotFound | SnapshotRefusal::ParentNotFound => ErrorKind::NotFound,
            SnapshotRefusal::Exists => ErrorKind::AlreadyExists,
            SnapshotRefusal::HasChildren
            | SnapshotRefusal::NotActive
            | SnapshotRefusal::Committed
            | SnapshotRefusal::TooDeep { .. }
            | SnapshotRefusal::Lost(_) => ErrorKind::InUse,
            SnapshotRefusal::ParentNotCommitted
            | SnapshotRefusal::ChangedParent(_)
            | SnapshotRefusal::FieldPath(_)
            | SnapshotRefusal::Filter { .. }
            | SnapshotRefusal::EmptyKey => ErrorKind::Invalid,
        }
    }
}

impl Store {
    pub fn snapshot(&self, key: &str) -> Result<Option<SnapshotRow>> {
        Ok(self.db.snapshot(key)?)
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        Ok(self.db.snapshots()?)
    }

    /// The committed snapshots under snapshot `id` (parent first) and their layers.
    pub fn snapshot_lowers(&self, id: i64) -> Result<Vec<(i64, LayerKey)>> {
        Ok(self.db.snapshot_lowers(id)?)
    }

    /// Records a snapshot (no dirs yet: see [`Store::make_snapshot_dirs`]); returns its id.
    pub fn add_snapshot(&mut self, new: &NewSnapshot) -> Result<i64> {
        self.db
            .insert_snapshot(new)?
            .map_err(|refusal| refused(&new.key, refusal))
    }

    /// Makes `snapshots/<id>/fs` (0755, as containerd's overlay snapshotter makes it: it is the
    /// root of the container's tree) and `work/`.
    pub fn make_snapshot_dirs(&self, id: i64) -> Result<()> {
        let dir = self.layout.snapshot(id);
        super::perms::create_private_dir(&self.layout.snapshots_dir())
            .at(&self.layout.snapshots_dir())?;
        fs::DirBuilder::new()
            .mode(super::perms::DIR_MODE)
            .create(&dir)
            .at(&dir)?;
        let work = self.layout.snapshot_work(id);
        fs::DirBuilder::new()
            .mode(super::perms::DIR_MODE)
            .create(&work)
            .at(&work)?;
        let tree = self.layout.snapshot_fs(id);
        fs::DirBuilder::new().mode(0o755).create(&tree).at(&tree)?;
        fs::set_permissions(&tree, fs::Permissions::from_mode(0o755)).at(&tree)
    }

    /// Points `l/<id>` at layer `key`'s tree (relative, so the store can move).
    pub fn link_snapshot_layer(&self, id: i64, key: &LayerKey) -> Result<()> {
        let dir = self.layout.short_links_dir();
        super::perms::create_private_dir(&dir).at(&dir)?;
        let link = self.layout.short_link(id);
        let target = Path::new("..")
            .join("layers")
            .join(key.as_str())
            .join("diff");
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at(&link),
        }
        std::os::unix::fs::symlink(&target, &link).at(&link)
    }

    /// Records the commit of an active snapshot whose layer is stored.
    pub fn commit_snapshot(&mut self, c: &SnapshotCommit) -> Result<()> {
        self.db
            .commit_snapshot(c)?
            .map_err(|refusal| refused(c.name, refusal))
    }

    pub fn update_snapshot_labels(
        &mut self,
        row: &SnapshotRow,
        labels: &BTreeMap<String, String>,
        time: i64,
    ) -> Result<()> {
        match self.db.update_snapshot(row.id, labels, time)? {
            true => Ok(()),
            false => Err(refused(&row.key, SnapshotRefusal::NotFound)),
        }
    }

    /// Forgets a snapshot without children, then removes its dir or link, and its layer when no
    /// image or other snapshot uses it (returned).
    pub fn remove_snapshot(&mut self, row: &SnapshotRow) -> Result<Option<LayerRow>> {
        // The layer's lock from before the removal is recorded (see `try_lock_layer_removal`); a
        // running command that holds it leaves the layer to the next one, as always.
        let held = match &row.layer {
            Some(key) => self.try_lock_layer_removal(key)?,
            None => None,
        };
        let gone = self
            .db
            .delete_snapshot(row.id)?
            .map_err(|refusal| refused(&row.key, refusal))?;
        let link = self.layout.short_link(row.id);
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at(&link),
        }
        self.clear_snapshot_dir(row.id)?;
        let Some(key) = gone else {
            return Ok(None);
        };
        let removal = match held.filter(|(layer, _)| layer.key == key) {
            Some((layer, lock)) => self.finish_held_layer_removal(&key, layer, lock)?,
            None => self.finish_layer_removal(&key)?,
        };
        match removal {
            LayerRemoval::Removed(layer) => Ok(Some(layer)),
            _ => Ok(None),
        }
    }

    /// Removes `snapshots/<id>/` (what is left of a committed snapshot: its work dir).
    pub fn clear_snapshot_dir(&self, id: i64) -> Result<()> {
        let dir = self.layout.snapshot(id);
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        // Out of `snapshots/` in one rename, then deleted: a killed removal leaves only `tmp/`.
        let trash = self.stage("delete")?;
        fs::rename(&dir, trash.path().join("snapshot")).at(&dir)?;
        drop(trash);
        Ok(())
    }

    /// Removes dirs under `snapshots/` and links under `l/` that no row needs (what a process
    /// killed between a row and its files left), after recording the layers of commits killed
    /// before they recorded them (see `snapshot_layers`). Returns how many of all these.
    pub fn clear_snapshot_leftovers(&mut self) -> Result<usize> {
        let mut removed = self.adopt_cut_commits()?;
        let rows = self.db.snapshots()?;
        let with_dir: HashSet<String> = rows
            .iter()
            .filter(|r| r.kind != SnapshotKind::Committed)
            .map(|r| r.id.to_string())
            .collect();
        let with_link: HashSet<String> = rows
            .iter()
            .filter(|r| r.kind == SnapshotKind::Committed)
            .map(|r| super::layout::base36(r.id))
            .collect();
        for (dir, keep) in [
            (self.layout.snapshots_dir(), &with_dir),
            (self.layout.short_links_dir(), &with_link),
        ] {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at(&dir),
            };
            for entry in entries {
                let entry = entry.at(&dir)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) {
                    continue;
                }
                let path = entry.path();
                if entry.file_type().at(&path)?.is_dir() {
                    super::staging::remove_tree(&path).at(&path)?;
                } else {
                    fs::remove_file(&path).at(&path)?;
                }
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// What a tree takes on disk, as containerd's `fs.DiskUsage` counts it: the blocks of each inode
/// once (hardlinks are one), and the number of inodes, the root included.
pub fn disk_usage(dir: &Path) -> Result<(u64, u64)> {
    let root = open_root(dir, DirAccess::Read)
        .map_err(io::Error::from)
        .at(dir)?;
    let st = rustix::fs::fstat(root.as_fd())
        .map_err(io::Error::from)
        .at(dir)?;
    let mut usage = Usage {
        seen: HashSet::from([(st.st_dev, st.st_ino)]),
        bytes: st.st_blocks as u64 * 512,
    };
    walk(root.as_fd(), &mut usage).at(dir)?;
    Ok((usage.bytes, usage.seen.len() as u64))
}

struct Usage {
    seen: HashSet<(u64, u64)>,
    bytes: u64,
}

impl Visitor for Usage {
    type Error = io::Error;

    fn entry(&mut self, e: &Entry<'_>) -> io::Result<bool> {
        if self.seen.insert((e.stat.st_dev, e.stat.st_ino)) {
            self.bytes += e.stat.st_blocks as u64 * 512;
        }
        Ok(file_type(e.stat) == FileType::Directory)
    }

    fn io_error(&self, path: &[u8], e: io::Error) -> io::Error {
        let path = String::from_utf8_lossy(path);
        io::Error::new(e.kind(), format!("{path}: {e}"))
    }
}

/// The error for a refused request about snapshot `key`.
pub fn refused(key: &str, refusal: SnapshotRefusal) -> StoreError {
    StoreError::Snapshot {
        key: key.to_string(),
        refusal,
    }
}

#[cfg(test)]
#[path = "snapshots_tests.rs"]
mod tests;
