//! Sharing layers with containerd, as remote snapshotters do.
//!
//! containerd's unpacker prepares each layer's extraction snapshot with the label
//! `containerd.io/snapshot.ref` = the chainID it will be committed as. When lamina already holds a
//! layer at that chain position (an image `lamina load` or `lamina pull` stored), the snapshotter
//! makes the committed snapshot itself, named by the label, on the layer the store has, and answers
//! AlreadyExists: containerd's metadata layer then finds it by
//! `labels."containerd.io/snapshot.ref"==<chainID>,parent==<parent>` and skips fetching and applying
//! the layer. No bytes are copied: the snapshot and the image use one layer dir.

use super::snapshots::{now_nanos, Labels, LABEL_SNAPSHOT_REF};
use super::{Engine, Result};
use crate::digest::Digest;
use crate::store::{LayerKey, LayerRow, NewSnapshot, SnapshotKind};

impl Engine {
    /// Whether the committed snapshot for chain `target` over `parent` exists now: found, or made
    /// from a layer the store holds. False when containerd has to unpack the layer itself.
    pub(super) fn snapshot_share(
        &mut self,
        target: &str,
        parent: &str,
        labels: &Labels,
    ) -> Result<bool> {
        let parent = match self.committed_parent(parent) {
            Ok(p) => p,
            // Prepare reports the bad parent.
            Err(_) => return Ok(false),
        };
        let parent_id = parent.as_ref().map(|p| p.id);
        let exists = self.store.snapshots()?.into_iter().any(|s| {
            s.kind == SnapshotKind::Committed
                && s.parent.as_ref().map(|p| p.0) == parent_id
                && s.labels.get(LABEL_SNAPSHOT_REF).map(String::as_str) == Some(target)
        });
        if exists {
            return Ok(true);
        }
        let Ok(chain) = target.parse::<Digest>() else {
            return Ok(false);
        };
        let Some((layer, below)) = self.layer_at_chain(&chain)? else {
            return Ok(false);
        };
        // The layers below must be the same chain (containerd names the parent by it too).
        let same_base = match (&parent, &below) {
            (None, None) => true,
            (Some(p), Some(below)) => p.chain_id.as_ref().is_none_or(|c| c == below),
            _ => false,
        };
        if !same_base || self.store.snapshot(target)?.is_some() {
            return Ok(false);
        }
        let parent_name = parent.map(|p| p.key).unwrap_or_default();
        self.snapshot_adopt_layer(target, &parent_name, &layer.key, &chain, labels.clone())?;
        Ok(true)
    }

    /// A layer lamina's images hold at chain position `chain`, and the chainID of the layers below
    /// it (`None` at the bottom).
    fn layer_at_chain(&self, chain: &Digest) -> Result<Option<(LayerRow, Option<Digest>)>> {
        for image in self.store.images()? {
            let mut below: Option<Digest> = None;
            for layer in self.store.image_layers(&image.id)? {
                let here = match &below {
                    None => layer.diff_id.clone(),
                    Some(b) => Digest::chain_id(&[b.clone(), layer.diff_id.clone()])
                        .unwrap_or_else(|| layer.diff_id.clone()),
                };
                if &here == chain {
                    return Ok(Some((layer, below)));
                }
                below = Some(here);
            }
        }
        Ok(None)
    }

    /// Records committed snapshot `name` (over committed snapshot `parent`, "" for none) as the
    /// stored layer `layer`, at chain position `chain_id`. The entry point for layers the store
    /// got by other means than a Commit (a lamina load or pull, or the snapshotter fetching them
    /// itself); the caller answers containerd with AlreadyExists.
    pub fn snapshot_adopt_layer(
        &mut self,
        name: &str,
        parent: &str,
        layer: &LayerKey,
        chain_id: &Digest,
        labels: Labels,
    ) -> Result<()> {
        let parent = self.committed_parent(parent)?;
        let id = self.store.add_snapshot(&NewSnapshot {
            key: name.to_string(),
            kind: SnapshotKind::Committed,
            parent: parent.map(|p| p.id),
            layer: Some(layer.clone()),
            chain_id: Some(chain_id.clone()),
            labels,
            time: now_nanos(),
        })?;
        self.store.link_snapshot_layer(id, layer)?;
        Ok(())
    }
}
