//! The layer a committed snapshot is: the active snapshot's tree stored as a lamina layer, and
//! recorded as the layer the active snapshot uses until the commit is recorded (`commit_snapshot`).
//!
//! Invariant: from the moment a commit's layer dir is in `layers/`, something uses it or will: the
//! active snapshot's row names it once it is recorded, and before that (a commit killed between the
//! rename and the transaction) the marker `snapshots/<id>/layer`, written before the rename, lets
//! the next start of the snapshotter record it for the snapshot ([`Store::adopt_cut_commits`]).
//! Nothing on containerd's side would ever remove a layer that no snapshot names: its GC removes
//! the killed commit's active snapshot, and with it, now, the layer.

use super::layers::LayerRecord;
use super::layout::LayerKey;
use super::snapshots::{refused, SnapshotKind, SnapshotRefusal};
use super::{staging, IoContext, Result, Store};
use crate::digest::Digest;
use std::fs;

impl Store {
    /// Makes the tree of active snapshot `id` a stored layer: staged, its file list written,
    /// flushed, renamed into `layers/` (an identical layer stored already is kept instead), and
    /// recorded as the layer the active snapshot uses, in one transaction. The snapshot stays
    /// active (see [`Store::commit_snapshot`]).
    pub fn store_snapshot_layer(
        &mut self,
        id: i64,
        diff_id: &Digest,
        chain_id: &Digest,
        tar_size: u64,
        entries: u64,
    ) -> Result<LayerRecord> {
        let record = self.place_snapshot_layer(id, diff_id, chain_id, tar_size, entries)?;
        if !self.db.attach_snapshot_layer(id, &record.row())? {
            return Err(refused(&id.to_string(), SnapshotRefusal::NotActive));
        }
        Ok(record)
    }

    /// `store_snapshot_layer` up to the record: the tree staged and renamed into `layers/`, the
    /// marker naming it written first.
    pub(super) fn place_snapshot_layer(
        &self,
        id: i64,
        diff_id: &Digest,
        chain_id: &Digest,
        tar_size: u64,
        entries: u64,
    ) -> Result<LayerRecord> {
        let tree = self.layout.snapshot_fs(id);
        let staging = self.stage("snapshot")?;
        let staged = super::layout::LayerPaths::staged(staging.path());
        let size = super::df::tree_size(&tree)?;
        fs::rename(&tree, staged.diff()).at(&tree)?;
        super::recorded::finish_records(staging.path())?;
        let record = LayerRecord {
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
            parent_dependent: false,
            blob_digest: diff_id.clone(),
            compressed_size: tar_size,
            size,
            entries,
        };
        // flushed with the layer by the syncfs before its rename (`place_layer`)
        let marker = self.layout.snapshot_layer_marker(id);
        staging::write_atomic(&marker, record.key().as_str().as_bytes()).at(&marker)?;
        self.place_layer(staging, &record)?;
        Ok(record)
    }

    /// Records, for each active snapshot whose commit was killed after renaming its layer into
    /// `layers/` and before recording it, that layer as the one it uses (from the layer's own
    /// `layer.json`). A layer recorded already is someone else's too, and is left as it is.
    /// Returns how many were recorded.
    pub(super) fn adopt_cut_commits(&mut self) -> Result<usize> {
        let mut adopted = 0;
        for row in self.db.snapshots()? {
            if row.kind != SnapshotKind::Active || row.layer.is_some() {
                continue;
            }
            let marker = self.layout.snapshot_layer_marker(row.id);
            let Ok(text) = fs::read_to_string(&marker) else {
                continue; // no commit was under way (or it was cut before staging its layer)
            };
            let Some(key) = LayerKey::parse(text.trim()) else {
                continue;
            };
            if self.db.layer(&key)?.is_some() {
                continue;
            }
            let Some(record) = self.layer_record(&key)? else {
                continue; // cut before the rename: staging is cleared by the store's open
            };
            if record.key() == key && self.db.attach_snapshot_layer(row.id, &record.row())? {
                adopted += 1;
            }
        }
        Ok(adopted)
    }
}
