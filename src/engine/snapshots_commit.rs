//! `Commit`: an active snapshot's tree becomes a lamina layer.
//!
//! The layer is keyed by its diffID like every self-contained layer: the digest of the tar lamina
//! writes for the tree (what `lamina commit` writes for a container's upper dir: whiteouts and
//! opaque dirs as OCI whiteouts, overlay's private xattrs left out). The tree itself is not copied:
//! it is staged, its file list written, flushed and renamed into `layers/` as any layer is, and
//! only then does the snapshot's row name it (one transaction turns the active snapshot into the
//! committed one). A layer with that diffID stored already is shared instead.

use super::snapshots::{now_nanos, Labels, LABEL_SNAPSHOT_REF};
use super::{Engine, Result};
use crate::digest::{Digest, HashingWriter};
use crate::store::{refused, SnapshotCommit, SnapshotKind, SnapshotRefusal};
use crate::unpack::{self, TreeKind};
use std::io;

impl Engine {
    /// `Commit`: active snapshot `key` becomes committed snapshot `name` with `labels` (they
    /// replace the active snapshot's). `parent` (containerd 2.2's `rebase`, "" otherwise) gives a
    /// snapshot prepared without a parent its parent now; a snapshot with another one is refused.
    pub fn snapshot_commit(
        &mut self,
        name: &str,
        key: &str,
        labels: Labels,
        parent: &str,
    ) -> Result<()> {
        let row = self.snapshot_row(key)?;
        if row.kind != SnapshotKind::Active {
            return Err(refused(key, SnapshotRefusal::NotActive).into());
        }
        if name.is_empty() {
            return Err(refused(name, SnapshotRefusal::EmptyKey).into());
        }
        if self.store.snapshot(name)?.is_some() {
            return Err(refused(name, SnapshotRefusal::Exists).into());
        }
        let rebase = match (self.committed_parent(parent)?, &row.parent) {
            (None, _) => None,
            (Some(p), Some((id, _))) if p.id == *id => None,
            (Some(_), Some((_, had))) => {
                return Err(refused(key, SnapshotRefusal::ChangedParent(had.clone())).into())
            }
            (Some(p), None) => Some(p),
        };
        let parent_chain = match (&rebase, &row.parent) {
            (Some(p), _) => p.chain_id.clone(),
            (None, Some((_, name))) => self.snapshot_row(name)?.chain_id,
            (None, None) => None,
        };
        let tree = self.store.layout().snapshot_fs(row.id);
        if !tree.is_dir() {
            return Err(refused(key, SnapshotRefusal::Lost(tree.display().to_string())).into());
        }

        let mut hashing = HashingWriter::new(io::sink());
        let packed = unpack::write_layer_tar_with(
            &tree,
            &mut hashing,
            TreeKind::OverlayUpper,
            &self.unpack,
        )?;
        let (_, diff_id, tar_size) = hashing.finish();
        let chain_id = match parent_chain {
            Some(below) => Digest::chain_id(&[below, diff_id.clone()]).unwrap_or(diff_id.clone()),
            None => diff_id.clone(),
        };
        let record = self.store.store_snapshot_layer(
            row.id,
            &diff_id,
            &chain_id,
            tar_size,
            packed.entries,
        )?;
        self.store.link_snapshot_layer(row.id, &record.key())?;
        // containerd names the chain by the diffIDs it verified while applying; that is the name
        // a later Prepare asks for (`snapshots_share`), so it is what the snapshot records.
        let named_chain = labels
            .get(LABEL_SNAPSHOT_REF)
            .and_then(|r| r.parse::<Digest>().ok())
            .unwrap_or(chain_id);
        self.store.commit_snapshot(&SnapshotCommit {
            id: row.id,
            name,
            parent: rebase.map(|p| p.id),
            layer: &record.row(),
            chain_id: &named_chain,
            labels: &labels,
            time: now_nanos(),
        })?;
        self.store.clear_snapshot_dir(row.id)?;
        Ok(())
    }
}
