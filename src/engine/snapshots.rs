//! containerd's snapshots: the operations of its Snapshots v1 API (served by `lamina snapshotter`),
//! with containerd's semantics, on lamina's store.
//!
//! Keys and names share one namespace. An active snapshot captures changes in its own `fs/` dir
//! (overlay's upper dir over its parents' layers); committing it makes that tree a lamina layer
//! (see `snapshots_commit`); a view is a read-only mount of its parent. What `Mounts` returns is
//! what containerd's overlayfs snapshotter returns for the same stack, so containerd's differ
//! applies layers into it and runc mounts it: a bind mount for a snapshot without parents or a view
//! of one layer, else one overlay mount. Layers are named by their short `l/` links (see
//! `store::snapshots`), so the option string of a 500-layer chain fits in a page once containerd
//! has made the names relative.

use super::snapshots_fetch::PrepareStep;
use super::snapshots_filter::Filters;
use super::{Engine, EngineError, Result};
use crate::mount::{self, OverlaySpec, RuntimeMount};
use crate::store::{
    disk_usage, refused, LayerKey, Layout, NewSnapshot, SnapshotKind, SnapshotRefusal, SnapshotRow,
    StoreError,
};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Labels of a snapshot.
pub type Labels = BTreeMap<String, String>;

/// The label containerd's unpacker puts on an extraction snapshot: the chainID its layer will be
/// committed as. A snapshotter that holds that chain already says so with AlreadyExists (the
/// protocol of remote snapshotters), and containerd skips fetching and applying the layer.
pub const LABEL_SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";

/// Set by containerd's unpacker on the extraction snapshot of every layer but the first: the
/// chainID of the layers below. In containerd 2.2's parallel unpack (the `rebase` capability) the
/// snapshot is prepared *without* its parent, which is given at Commit instead.
pub const LABEL_PARENT_CHAIN: &str = "containerd.io/snapshot/parent-chain-id";

/// What `Stat`, `Update` and `Walk` tell about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    /// Empty for none.
    pub parent: String,
    pub kind: SnapshotKind,
    pub labels: Labels,
    /// Unix nanoseconds.
    pub created: i64,
    pub updated: i64,
}

impl SnapshotInfo {
    fn of(row: SnapshotRow) -> SnapshotInfo {
        SnapshotInfo {
            name: row.key,
            parent: row.parent.map(|(_, name)| name).unwrap_or_default(),
            kind: row.kind,
            labels: row.labels,
            created: row.created,
            updated: row.updated,
        }
    }
}

/// What a snapshot's own tree takes on disk (its parents not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotUsage {
    pub size: u64,
    pub inodes: u64,
}

/// Now, in unix nanoseconds (snapshots' times: containerd compares them below a second).
pub(super) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl EngineError {
    /// Why a snapshot request was refused, when it was (a server tells containerd the exact class).
    pub fn snapshot_refusal(&self) -> Option<&SnapshotRefusal> {
        match self {
            EngineError::Store(StoreError::Snapshot { refusal, .. }) => Some(refusal),
            _ => None,
        }
    }
}

impl Engine {
    /// `Prepare`: an active snapshot `key` over `parent` (a committed snapshot, or "" for an
    /// empty tree). With a [`LABEL_SNAPSHOT_REF`] this store can serve (see `snapshots_share`), or
    /// CRI labels naming a layer lamina fetched itself (see `snapshots_fetch`), the committed
    /// snapshot of that chain is made instead and the answer is AlreadyExists. This waits for a
    /// fetch on the engine; a server waits off it with the two halves.
    pub fn snapshot_prepare(
        &mut self,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<RuntimeMount>> {
        match self.snapshot_prepare_begin(key, parent, labels)? {
            PrepareStep::Ready(mounts) => Ok(mounts),
            PrepareStep::Fetching(wait) => self.snapshot_prepare_finish(wait.wait()),
        }
    }

    /// `View`: a read-only snapshot `key` of `parent`.
    pub fn snapshot_view(
        &mut self,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<RuntimeMount>> {
        self.create_snapshot(key, parent, labels, SnapshotKind::View)
    }

    pub(super) fn create_snapshot(
        &mut self,
        key: &str,
        parent: &str,
        labels: Labels,
        kind: SnapshotKind,
    ) -> Result<Vec<RuntimeMount>> {
        if key.is_empty() {
            return Err(refused(key, SnapshotRefusal::EmptyKey).into());
        }
        let parent = self.committed_parent(parent)?;
        if let Some(p) = &parent {
            let layers = 1 + distinct_lowers(self.store.snapshot_lowers(p.id)?).len();
            let max = mount::DEFAULT_MAX_LOWERS;
            if layers > max {
                return Err(refused(key, SnapshotRefusal::TooDeep { layers, max }).into());
            }
        }
        let id = self.store.add_snapshot(&NewSnapshot {
            key: key.to_string(),
            kind,
            parent: parent.map(|p| p.id),
            layer: None,
            chain_id: None,
            labels,
            time: now_nanos(),
        })?;
        if let Err(e) = self.store.make_snapshot_dirs(id) {
            if let Some(row) = self.store.snapshot(key)? {
                let _ = self.store.remove_snapshot(&row);
            }
            return Err(e.into());
        }
        self.snapshot_mounts(key)
    }

    /// The committed snapshot `name` as a parent (`None` for ""): NotFound when it is missing,
    /// InvalidArgument when it is not committed.
    pub(super) fn committed_parent(&self, name: &str) -> Result<Option<SnapshotRow>> {
        if name.is_empty() {
            return Ok(None);
        }
        match self.store.snapshot(name)? {
            None => Err(refused(name, SnapshotRefusal::ParentNotFound).into()),
            Some(row) if row.kind != SnapshotKind::Committed => {
                Err(refused(name, SnapshotRefusal::ParentNotCommitted).into())
            }
            Some(row) => Ok(Some(row)),
        }
    }

    pub(super) fn snapshot_row(&self, key: &str) -> Result<SnapshotRow> {
        self.store
            .snapshot(key)?
            .ok_or_else(|| refused(key, SnapshotRefusal::NotFound).into())
    }

    /// `Mounts`: what to mount for an active snapshot or a view.
    pub fn snapshot_mounts(&self, key: &str) -> Result<Vec<RuntimeMount>> {
        let row = self.snapshot_row(key)?;
        if row.kind == SnapshotKind::Committed {
            return Err(refused(key, SnapshotRefusal::Committed).into());
        }
        let layout = self.store.layout();
        let tree = layout.snapshot_fs(row.id);
        if !tree.is_dir() {
            return Err(refused(key, SnapshotRefusal::Lost(tree.display().to_string())).into());
        }
        let lowers = self.store.snapshot_lowers(row.id)?;
        // The links are derived from the rows: one a killed commit did not make is made here.
        for (id, layer) in &lowers {
            if std::fs::symlink_metadata(layout.short_link(*id)).is_err() {
                self.store.link_snapshot_layer(*id, layer)?;
            }
        }
        Ok(describe_mounts(layout, &row, &lowers))
    }

    /// `Stat`.
    pub fn snapshot_stat(&self, key: &str) -> Result<SnapshotInfo> {
        Ok(SnapshotInfo::of(self.snapshot_row(key)?))
    }

    /// `Update`: only labels change. No field paths replace all labels; `labels` does too;
    /// `labels.<k>` sets or (absent from `labels`) deletes one; anything else is refused.
    pub fn snapshot_update(
        &mut self,
        name: &str,
        labels: Labels,
        field_paths: &[String],
    ) -> Result<SnapshotInfo> {
        let row = self.snapshot_row(name)?;
        let mut updated = row.labels.clone();
        if field_paths.is_empty() {
            updated = labels;
        } else {
            for path in field_paths {
                if path == "labels" {
                    updated = labels.clone();
                } else if let Some(k) = path.strip_prefix("labels.") {
                    match labels.get(k) {
                        Some(v) => updated.insert(k.to_string(), v.clone()),
                        None => updated.remove(k),
                    };
                } else {
                    return Err(refused(name, SnapshotRefusal::FieldPath(path.clone())).into());
                }
            }
        }
        let time = now_nanos();
        self.store.update_snapshot_labels(&row, &updated, time)?;
        let mut info = SnapshotInfo::of(row);
        info.labels = updated;
        info.updated = time;
        Ok(info)
    }

    /// `Walk` (`List` on the wire): the snapshots any of `filters` matches (see
    /// `snapshots_filter`), all of them when none is given.
    pub fn snapshot_walk(&self, filters: &[String]) -> Result<Vec<SnapshotInfo>> {
        let filters = Filters::parse(filters).map_err(|reason| {
            refused(
                "",
                SnapshotRefusal::Filter {
                    filter: filters.join(" | "),
                    reason,
                },
            )
        })?;
        Ok(self
            .store
            .snapshots()?
            .into_iter()
            .map(SnapshotInfo::of)
            .filter(|info| filters.matches(info))
            .collect())
    }

    /// `Usage`: the blocks and inodes of the snapshot's own tree (a committed snapshot's layer,
    /// an active snapshot's upper dir; a view has none).
    pub fn snapshot_usage(&self, key: &str) -> Result<SnapshotUsage> {
        let row = self.snapshot_row(key)?;
        let layout = self.store.layout();
        let dir = match (&row.kind, &row.layer) {
            (SnapshotKind::Committed, Some(layer)) => layout.layer(layer).diff(),
            (SnapshotKind::Active, _) => layout.snapshot_fs(row.id),
            _ => return Ok(SnapshotUsage::default()),
        };
        let (size, inodes) = disk_usage(&dir)?;
        Ok(SnapshotUsage { size, inodes })
    }

    /// `Remove`: the snapshot goes (refused while it has children); a committed snapshot's layer
    /// goes with it unless an image or another snapshot uses it.
    pub fn snapshot_remove(&mut self, key: &str) -> Result<()> {
        let row = self.snapshot_row(key)?;
        self.store.remove_snapshot(&row)?;
        Ok(())
    }

    /// `Cleanup`, and the snapshotter's start: removes what killed operations left without a row.
    pub fn snapshot_cleanup(&mut self) -> Result<usize> {
        Ok(self.store.clear_snapshot_leftovers()?)
    }
}

/// A snapshot's parents' layers (nearest first) with a layer two of them share (an image that
/// repeats a layer: one lamina layer under two committed snapshots) only at its nearest place:
/// overlayfs refuses one directory twice, even through two `l/` links (ELOOP).
fn distinct_lowers(lowers: Vec<(i64, LayerKey)>) -> Vec<(i64, LayerKey)> {
    crate::layerfs::topmost_distinct(lowers, |(_, layer)| layer.clone())
}

/// The mounts of active snapshot or view `row` over `lowers` (its parents' layers, nearest
/// first, each layer once: see `distinct_lowers`), as containerd's overlayfs snapshotter gives them.
pub(super) fn describe_mounts(
    layout: &Layout,
    row: &SnapshotRow,
    lowers: &[(i64, LayerKey)],
) -> Vec<RuntimeMount> {
    let lowers = &distinct_lowers(lowers.to_vec())[..];
    let tree = layout.snapshot_fs(row.id);
    let active = row.kind == SnapshotKind::Active;
    match lowers {
        // containerd 2.2's parallel unpack applies each layer without its parents: an overlay
        // mount naming only the upper dir makes containerd's applier write whiteouts as overlay
        // whiteouts there (what containerd does for its own overlayfs, "bindToOverlay").
        [] if active && row.labels.contains_key(LABEL_PARENT_CHAIN) => vec![RuntimeMount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("upperdir={}", tree.display()),
                format!("workdir={}", layout.snapshot_work(row.id).display()),
                "index=off".into(),
            ],
        }],
        [] => vec![RuntimeMount::bind(&tree, !active)],
        [(_, layer)] if !active => vec![RuntimeMount::bind(&layout.layer(layer).diff(), true)],
        _ => mount::runtime_mounts(&OverlaySpec {
            lowers: lowers
                .iter()
                .map(|(id, _)| layout.short_link(*id))
                .collect(),
            upper: active.then(|| (tree.clone(), layout.snapshot_work(row.id))),
        }),
    }
}

#[cfg(test)]
#[path = "snapshots_tests.rs"]
mod tests;
