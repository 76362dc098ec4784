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

use super::load::{self, LayerJob, Slot};
use super::pull::Puller;
use super::snapshots::Labels;
use super::snapshots_cri::CriLayer;
use super::{Engine, EngineError, LayerEvent, LayerStatus, Observer, Result};
use crate::digest::Digest;
use crate::image::Platform;
use crate::mount::RuntimeMount;
use crate::source::registry::RegistryOptions;
use crate::store::{refused, FileLock, LayerPaths, Layout, SnapshotKind, SnapshotRefusal, Store};
use crate::unpack::{self, UnpackOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a fetched layer waits for the Prepare that claims it. containerd prepares an image's
/// layers one after another, so a layer is claimed once those below it are: a layer containerd
/// applies itself (a fallback) is the longest wait.
pub const UNCLAIMED_FOR: Duration = Duration::from_secs(600);

/// Why a Prepare did not take the fast path (logged; containerd then unpacks the layer).
#[derive(Debug, thiserror::Error)]
pub enum Fallback {
    #[error("CRI labels: {0}")]
    Labels(String),
    #[error("{image}: {source}")]
    Registry {
        image: String,
        source: Box<EngineError>,
    },
    #[error("{image}: its manifest has no layer {blob}")]
    NotInImage { image: String, blob: Digest },
    #[error("the image's chain is {found}, containerd asks for {expected}")]
    Chain { expected: Digest, found: Digest },
    #[error("parent {parent:?} is not the chain {below:?} below the layer in the image")]
    Parent {
        parent: String,
        below: Option<Digest>,
    },
    #[error("a snapshot named {0} exists already")]
    NameTaken(String),
    #[error("layer {blob}: {source}")]
    Layer {
        blob: Digest,
        source: Box<EngineError>,
    },
    #[error("the fetch stopped without a result (a worker thread died)")]
    Lost,
    #[error("taken by another Prepare of the same layer")]
    Taken,
}

/// A layer fetched for a Prepare, not yet a snapshot.
pub struct FetchedLayer {
    slot: Slot,
    /// Held until the snapshot names the layer (see the module's comment).
    in_use: FileLock,
    /// The chainID of the image's layers up to this one, and of those below it.
    chain: Digest,
    below: Option<Digest>,
    /// False when the store had the layer already.
    fetched: bool,
}

/// Boxed: a staged layer's report is large, and the outcome waits in a shared map.
type Outcome = std::result::Result<Box<FetchedLayer>, Arc<Fallback>>;

enum State {
    Running,
    Done(Outcome),
    Taken,
}

/// One layer's fetch: its outcome once there, until a Prepare (or the expiry) takes it.
struct Pending {
    state: Mutex<State>,
    changed: Condvar,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            state: Mutex::new(State::Running),
            changed: Condvar::new(),
        }
    }

    fn set(&self, outcome: Outcome) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, State::Running) {
            *state = State::Done(outcome);
        }
        self.changed.notify_all();
    }

    /// Waits for the outcome and takes it.
    fn take(&self) -> Outcome {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while matches!(*state, State::Running) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(outcome) => outcome,
            _ => Err(Arc::new(Fallback::Taken)),
        }
    }

    /// Waits until a Prepare took the outcome or `deadline` passed; then the outcome nobody took.
    fn unclaimed_at(&self, deadline: Instant) -> Option<Outcome> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if matches!(*state, State::Taken) || left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(outcome) => Some(outcome),
            _ => None,
        }
    }
}

/// Which fetch: image reference, manifest digest ("" when not labelled), layer blob.
type Key = (String, String, Digest);

fn key(cri: &CriLayer, blob: &Digest) -> Key {
    let manifest = cri.manifest.as_ref().map(Digest::to_string);
    (
        cri.image_ref.clone(),
        manifest.unwrap_or_default(),
        blob.clone(),
    )
}

/// The fetches started and not yet claimed, shared by the engine and the fetching threads.
#[derive(Default)]
pub struct Fetches {
    pending: Mutex<HashMap<Key, Arc<Pending>>>,
}

impl Fetches {
    /// The fetch of `cri`'s layer: joined when one runs, else started together with every listed
    /// layer above it that no fetch has yet.
    fn start(
        self: &Arc<Self>,
        layout: &Layout,
        cri: &CriLayer,
        opts: &UnpackOptions,
    ) -> Arc<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = map.get(&key(cri, &cri.blob)) {
            return running.clone();
        }
        let mine = Arc::new(Pending::new());
        map.insert(key(cri, &cri.blob), mine.clone());
        let mut new = vec![(cri.blob.clone(), mine.clone())];
        for blob in &cri.blobs {
            map.entry(key(cri, blob)).or_insert_with(|| {
                let p = Arc::new(Pending::new());
                new.push((blob.clone(), p.clone()));
                p
            });
        }
        drop(map);
        let job = Job {
            fetches: self.clone(),
            layout: layout.clone(),
            cri: cri.clone(),
            opts: opts.clone(),
        };
        let layers = new.clone();
        let spawned = std::thread::Builder::new()
            .name("lamina-fetch".into())
            .spawn(move || job.run(layers));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no thread to fetch layers on");
            for (blob, p) in new {
                p.set(Err(Arc::new(Fallback::Layer {
                    blob,
                    source: Box::new(EngineError::Invalid(format!("no fetch thread: {e}"))),
                })));
            }
        }
        mine
    }

    fn forget(&self, key: &Key, pending: &Arc<Pending>) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(key).is_some_and(|p| Arc::ptr_eq(p, pending)) {
            map.remove(key);
        }
    }
}

/// The layers of one image to fetch, on a thread of their own.
struct Job {
    fetches: Arc<Fetches>,
    layout: Layout,
    cri: CriLayer,
    opts: UnpackOptions,
}

impl Job {
    fn run(self, layers: Vec<(Digest, Arc<Pending>)>) {
        let started = Instant::now();
        match self.resolve() {
            Ok(puller_and_image) => self.fetch_all(&puller_and_image, &layers),
            Err(e) => {
                let e = Arc::new(e);
                for (_, p) in &layers {
                    p.set(Err(e.clone()));
                }
            }
        }
        tracing::debug!(image = %self.cri.image_ref, layers = layers.len(), elapsed = ?started.elapsed(), "fetches done");
        let deadline = Instant::now() + UNCLAIMED_FOR;
        for (blob, p) in &layers {
            if let Some(Ok(_dropped)) = p.unclaimed_at(deadline) {
                tracing::info!(image = %self.cri.image_ref, layer = %blob, "fetched layer not asked for; dropped");
            }
            self.fetches.forget(&key(&self.cri, blob), p);
        }
    }

    fn resolve(&self) -> std::result::Result<(Puller, super::ResolvedPull), Fallback> {
        let registry = |source: EngineError| Fallback::Registry {
            image: self.cri.image_ref.clone(),
            source: Box::new(source),
        };
        // docker's config.json credentials and insecure-registry rules, as `lamina pull`
        let puller = Puller::open(&self.cri.reference, &RegistryOptions::default(), None)
            .map_err(registry)?;
        let resolved = puller
            .resolve(&self.cri.manifest_ref(), &Platform::host())
            .map_err(registry)?;
        Ok((puller, resolved))
    }

    /// Fetches `layers` of the resolved image concurrently, each outcome to its pending.
    fn fetch_all(
        &self,
        (puller, resolved): &(Puller, super::ResolvedPull),
        layers: &[(Digest, Arc<Pending>)],
    ) {
        let image = resolved.image();
        let diff_ids: Vec<Digest> = image.layers.iter().map(|(_, d)| d.clone()).collect();
        let chains: Vec<Digest> = (1..=diff_ids.len())
            .filter_map(|n| Digest::chain_id(&diff_ids[..n]))
            .collect();
        let staged_top = AtomicUsize::new(0);
        let next = AtomicUsize::new(0);
        let workers = load::layer_workers().min(layers.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let store = Store::connect(&self.layout);
                    while let Some((blob, pending)) =
                        layers.get(next.fetch_add(1, Ordering::SeqCst))
                    {
                        let outcome = match &store {
                            Err(e) => Err(Fallback::Layer {
                                blob: blob.clone(),
                                source: Box::new(EngineError::Invalid(format!("store: {e}"))),
                            }),
                            Ok(store) => {
                                self.fetch_one(store, puller, image, &chains, &staged_top, blob)
                            }
                        };
                        pending.set(outcome.map(Box::new).map_err(Arc::new));
                    }
                });
            }
        });
        // a worker that died left its layers running: their Prepares must not wait forever
        for (_, p) in layers {
            p.set(Err(Arc::new(Fallback::Lost)));
        }
    }

    fn fetch_one(
        &self,
        store: &Store,
        puller: &Puller,
        image: &crate::source::ResolvedImage,
        chains: &[Digest],
        staged_top: &AtomicUsize,
        blob: &Digest,
    ) -> std::result::Result<FetchedLayer, Fallback> {
        let Some(index) = image.layers.iter().position(|(d, _)| &d.digest == blob) else {
            return Err(Fallback::NotInImage {
                image: self.cri.image_ref.clone(),
                blob: blob.clone(),
            });
        };
        let (desc, diff_id) = &image.layers[index];
        let failed = |source| Fallback::Layer {
            blob: blob.clone(),
            source: Box::new(source),
        };
        let in_use = store
            .lock_layer_use(diff_id)
            .map_err(|e| failed(e.into()))?;
        let job = LayerJob {
            desc,
            diff_id,
            chain_id: &chains[index],
            index,
            staged_top,
        };
        let seen = Seen::default();
        let started = Instant::now();
        let slot =
            load::fetch_layer(store, puller.source(), &job, &self.opts, &seen).map_err(failed)?;
        let fetched = seen.0.load(Ordering::SeqCst);
        tracing::debug!(image = %self.cri.image_ref, layer = %blob, fetched, elapsed = ?started.elapsed(), "layer ready");
        Ok(FetchedLayer {
            slot,
            in_use,
            chain: chains[index].clone(),
            below: index.checked_sub(1).map(|b| chains[b].clone()),
            fetched,
        })
    }
}

/// Whether the pull path read the layer from the registry (rather than finding it stored).
#[derive(Default)]
struct Seen(AtomicBool);

impl Observer for Seen {
    fn layer(&self, event: &LayerEvent) {
        if event.status == LayerStatus::Loading {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

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
