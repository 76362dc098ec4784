//! The background half of the fast pull (see `snapshots_fetch`): the fetches in flight, keyed by
//! image and layer blob, each a thread per image running `load::fetch_layer` for its layers
//! concurrently, and the outcome each Prepare waits for and takes.

use super::load::{self, LayerJob, Slot};
use super::pull::Puller;
use super::snapshots_cri::CriLayer;
use super::{EngineError, LayerEvent, LayerStatus, Observer, ResolvedPull};
use crate::digest::Digest;
use crate::image::Platform;
use crate::source::registry::RegistryOptions;
use crate::source::ResolvedImage;
use crate::store::{FileLock, Layout, Store};
use crate::unpack::UnpackOptions;
use std::collections::HashMap;
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
    pub(super) slot: Slot,
    /// Held until the snapshot names the layer (see the module's comment).
    pub(super) in_use: FileLock,
    /// The chainID of the image's layers up to this one, and of those below it.
    pub(super) chain: Digest,
    pub(super) below: Option<Digest>,
    /// False when the store had the layer already.
    pub(super) fetched: bool,
}

/// Boxed: a staged layer's report is large, and the outcome waits in a shared map.
pub(super) type Outcome = std::result::Result<Box<FetchedLayer>, Arc<Fallback>>;

enum State {
    Running,
    Done(Outcome),
    Taken,
}

/// One layer's fetch: its outcome once there, until a Prepare (or the expiry) takes it.
pub(super) struct Pending {
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

    /// Nobody will take the outcome: dropped now (or when it arrives), with its locks.
    fn abandon(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = State::Taken;
        self.changed.notify_all();
    }

    /// Waits for the outcome and takes it.
    pub(super) fn take(&self) -> Outcome {
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
pub(super) type Key = (String, String, Digest);

pub(super) fn key(cri: &CriLayer, blob: &Digest) -> Key {
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
    pub(super) fn start(
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

    /// How many fetched layers wait for their Prepare (or are being fetched).
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.pending.lock().map_or(0, |m| m.len())
    }

    /// A layer containerd got another way (the store shared it): its fetch's outcome is dropped
    /// now rather than held, with its use lock, until [`UNCLAIMED_FOR`] has passed.
    pub(super) fn abandon(&self, cri: &CriLayer) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let pending = map.remove(&key(cri, &cri.blob));
        drop(map);
        if let Some(p) = pending {
            p.abandon();
        }
    }

    pub(super) fn forget(&self, key: &Key, pending: &Arc<Pending>) {
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

    fn resolve(&self) -> std::result::Result<(Puller, ResolvedPull), Fallback> {
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
        (puller, resolved): &(Puller, ResolvedPull),
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
        image: &ResolvedImage,
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
            // containerd keeps its own blobs; the snapshotter keeps none.
            keep_blob: false,
            batch: None,
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
