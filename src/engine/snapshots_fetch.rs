//! Fast pull, the remote snapshotters' path: lamina fetches a layer containerd is about to unpack
//! from the registry itself, and containerd fetches and applies nothing.
//!
//! containerd's unpacker (CRI with `disable_snapshot_annotations = false`) prepares each layer's
//! extraction snapshot with labels naming the image, its manifest, the layer's blob and the blobs
//! above it (`snapshots_cri`), plus the chainID the snapshot will be committed as. On the first
//! such Prepare of an image, every listed layer is fetched at once on background threads through
//! the pull path (`load::fetch_layer`: the blob's digest and the config's diffID verified as it
//! streams, staged, flushed, renamed into `layers/`, recorded); each Prepare waits for its own
//! layer, then makes the committed snapshot containerd names and answers AlreadyExists, as
//! `snapshots_share` does. containerd then skips the fetch and the apply of that layer.
//!
//! Anything that goes wrong (no registry, a 401 since kubelet's credentials never reach the
//! snapshotter, a layer not in the manifest, a chain that is not the one containerd asks for)
//! makes the Prepare an ordinary one, with the reason logged: containerd fetches and applies the
//! layer itself. Waiting happens outside the engine: [`Engine::snapshot_prepare_begin`] starts
//! or joins the fetch, [`LayerWait::wait`] blocks, [`Engine::snapshot_prepare_finish`] records.
//!
//! Locks: a fetched layer keeps its `layer-<diffID>` use lock until the snapshot names it, so no
//! `rmi`, `prune` or `fsck --repair` removes it meanwhile; a layer whose tree depends on its
//! parents stays staged (holding its chain lock) until its Prepare, which knows the parents, fixes
//! it up and commits it. A fetched layer no Prepare claims within [`UNCLAIMED_FOR`] is dropped
//! (staged: removed; stored: left to `prune`, like a layer of a failed load).

use super::load::{self, Slot};
use super::snapshots::Labels;
use super::snapshots_cri::CriLayer;
use super::snapshots_fetch_jobs::{key, FetchedLayer, Fetches, Outcome, Pending};
pub use super::snapshots_fetch_jobs::{Fallback, UNCLAIMED_FOR};
use super::{Engine, EngineError, Result};
use crate::mount::RuntimeMount;
use crate::store::{refused, LayerPaths, SnapshotKind, SnapshotRefusal};
use crate::unpack;
use std::path::PathBuf;
use std::sync::Arc;

/// What the first half of a Prepare left to do.
pub enum PrepareStep {
    /// Done: the active snapshot's mounts.
    Ready(Vec<RuntimeMount>),
    /// The layer is being fetched: wait for it (off the engine), then finish.
    Fetching(Box<LayerWait>),
}

/// A Prepare waiting for its layer.
pub struct LayerWait {
    key: String,
    parent: String,
    labels: Labels,
    cri: CriLayer,
    pending: Arc<Pending>,
    fetches: Arc<Fetches>,
}

/// A Prepare whose layer fetch ended, for [`Engine::snapshot_prepare_finish`].
pub struct FetchedPrepare {
    key: String,
    parent: String,
    labels: Labels,
    cri: CriLayer,
    outcome: Outcome,
}

impl LayerWait {
    /// Blocks until the layer is fetched (or its fetch failed).
    pub fn wait(self) -> FetchedPrepare {
        let outcome = self.pending.take();
        self.fetches
            .forget(&key(&self.cri, &self.cri.blob), &self.pending);
        FetchedPrepare {
            key: self.key,
            parent: self.parent,
            labels: self.labels,
            cri: self.cri,
            outcome,
        }
    }
}

impl Engine {
    /// Lets labelled Prepares fetch their layers (the snapshotter turns this on).
    pub fn set_snapshot_fetch(&mut self, on: bool) {
        self.fetch_layers = on;
    }

    /// The first half of `Prepare` (see `snapshot_prepare`): a layer the store holds is shared
    /// (AlreadyExists); a labelled layer of a pull is fetched; else the active snapshot is made.
    pub fn snapshot_prepare_begin(
        &mut self,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<PrepareStep> {
        if let Some(target) = labels.get(super::LABEL_SNAPSHOT_REF).cloned() {
            if self.snapshot_share(&target, parent, &labels)? {
                if let Ok(Some(cri)) = CriLayer::from_labels(&labels) {
                    self.fetches.abandon(&cri);
                }
                return Err(refused(&target, SnapshotRefusal::Exists).into());
            }
        }
        if self.fetch_layers {
            match CriLayer::from_labels(&labels) {
                Ok(Some(cri)) if self.store.snapshot(key)?.is_none() => {
                    let pending = self.fetches.start(self.store.layout(), &cri, &self.unpack);
                    return Ok(PrepareStep::Fetching(Box::new(LayerWait {
                        key: key.to_string(),
                        parent: parent.to_string(),
                        labels,
                        cri,
                        pending,
                        fetches: self.fetches.clone(),
                    })));
                }
                Ok(_) => {}
                Err(why) => {
                    tracing::info!(%key, "not fetching the layer: {}", Fallback::Labels(why))
                }
            }
        }
        let mounts = self.create_snapshot(key, parent, labels, SnapshotKind::Active)?;
        Ok(PrepareStep::Ready(mounts))
    }

    /// The second half of a fetching Prepare: the committed snapshot containerd names is made on
    /// the fetched layer and the answer is AlreadyExists; if the fetch failed or does not fit,
    /// the active snapshot is made as for any Prepare.
    pub fn snapshot_prepare_finish(&mut self, p: FetchedPrepare) -> Result<Vec<RuntimeMount>> {
        let target = p.cri.target.to_string();
        let adopted = match p.outcome {
            Ok(layer) => self.adopt_fetched(&p.parent, &p.cri, &p.labels, layer),
            Err(why) => Err(why),
        };
        match adopted {
            Ok(fetched) => {
                let how = if fetched {
                    "lamina fetched the layer"
                } else {
                    "the store holds the layer"
                };
                tracing::info!(image = %p.cri.image_ref, layer = %p.cri.blob, %target, "fast pull: {how}, committed");
                Err(refused(&target, SnapshotRefusal::Exists).into())
            }
            Err(why) => {
                tracing::warn!(image = %p.cri.image_ref, layer = %p.cri.blob, "fast pull: containerd unpacks the layer: {why}");
                self.create_snapshot(&p.key, &p.parent, p.labels, SnapshotKind::Active)
            }
        }
    }

    /// Makes the committed snapshot `cri.target` over `parent` on the fetched layer; true when
    /// lamina fetched it (false: the store had it).
    fn adopt_fetched(
        &mut self,
        parent: &str,
        cri: &CriLayer,
        labels: &Labels,
        layer: Box<FetchedLayer>,
    ) -> std::result::Result<bool, Arc<Fallback>> {
        let fail = |f: Fallback| Arc::new(f);
        let engine = |source: EngineError| {
            fail(Fallback::Layer {
                blob: cri.blob.clone(),
                source: Box::new(source),
            })
        };
        if layer.chain != cri.target {
            return Err(fail(Fallback::Chain {
                expected: cri.target.clone(),
                found: layer.chain,
            }));
        }
        let parent_row = self.committed_parent(parent).map_err(engine)?;
        let parent_chain = parent_row.as_ref().map(|p| p.chain_id.clone());
        let fits = match (&parent_chain, &layer.below) {
            (None, None) => true,
            (Some(chain), Some(below)) => chain.as_ref().is_none_or(|c| c == below),
            _ => false,
        };
        if !fits {
            return Err(fail(Fallback::Parent {
                parent: parent.to_string(),
                below: layer.below,
            }));
        }
        let target = cri.target.to_string();
        if self
            .store
            .snapshot(&target)
            .map_err(|e| engine(e.into()))?
            .is_some()
        {
            return Err(fail(Fallback::NameTaken(target)));
        }
        let record = match layer.slot {
            Slot::Stored(record) => record,
            Slot::Staged(staging, report, record, chain_lock) => {
                let lowers = match &parent_row {
                    Some(p) => self.parent_layer_dirs(p).map_err(engine)?,
                    None => Vec::new(),
                };
                let diff = LayerPaths::staged(staging.path()).diff();
                unpack::fix_up_layer(&diff, &report, &lowers, &self.unpack)
                    .map_err(|e| engine(e.into()))?;
                load::commit_layer(&self.store, staging, &record).map_err(engine)?;
                drop(chain_lock);
                record
            }
        };
        self.snapshot_adopt_layer(&target, parent, &record.key(), &cri.target, labels.clone())
            .map_err(engine)?;
        drop(layer.in_use);
        Ok(layer.fetched)
    }

    /// The layer dirs of committed snapshot `p` and its parents, nearest first, each once.
    fn parent_layer_dirs(&self, p: &crate::store::SnapshotRow) -> Result<Vec<PathBuf>> {
        let mut stack = Vec::new();
        if let Some(layer) = &p.layer {
            stack.push((p.id, layer.clone()));
        }
        stack.extend(self.store.snapshot_lowers(p.id)?);
        let layout = self.store.layout();
        Ok(crate::layerfs::topmost_distinct(stack, |(_, l)| l.clone())
            .into_iter()
            .map(|(_, l)| layout.layer(&l).diff())
            .collect())
    }
}

#[cfg(test)]
#[path = "snapshots_fetch_tests.rs"]
mod tests;
