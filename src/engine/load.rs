//! `load`: bringing an image into the store. Layers are unpacked concurrently, each verified, staged
//! and renamed into place; then one transaction records the image. `pull`, `import` and `commit`
//! end here too.
//!
//! Locks (see `store::locks` and the README's "Locking"): a worker takes `layer-<diffID>` shared
//! before it looks for a layer and the load holds it until the image is recorded, so no `rmi`,
//! `prune` or `fsck --repair` deletes a layer the load has found, staged or renamed into place. Two
//! processes loading images that share a layer never unpack it twice: `chain-<chainID>` and
//! `unpack-<diffID>` are held while it is looked for and unpacked, and `chain-` until a layer whose
//! tree depends on its parents (implied directories, hardlinks into lower layers; fixed up once the
//! layers below are known and stored under its chainID) is committed.

use super::load_batch::LayerBatch;
use super::{keep_blobs, Engine, EngineError, Observer, Result};
use crate::digest::Digest;
use crate::image::Platform;
use crate::layerfs::LowerView;
use crate::source::{self, ImageSource, ResolvedImage, SourceRef};
use crate::store::staging::Staging;
use crate::store::{self, FileLock, ImageRow, LayerPaths, LayerRecord, Layout, Store};
use crate::unpack::{self, ExpectedBlob, LayerReport, UnpackOptions};
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What happened to one layer of an image being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// Already in the store: nothing to do.
    Exists,
    /// Being read from the source.
    Loading,
    /// Unpacked, verified and stored.
    Loaded,
}

#[derive(Debug, Clone)]
pub struct LayerEvent {
    /// Position in the image, 0 = bottom (events of different layers arrive in any order).
    pub index: usize,
    pub diff_id: Digest,
    pub status: LayerStatus,
    /// Compressed bytes of the blob, when known.
    pub size: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub id: Digest,
    /// Full names tagged by this load (e.g. docker.io/library/debian:gzip).
    pub tags: Vec<String>,
    /// Images that lost a tag to this one and are now dangling or less tagged.
    pub untagged_from: Vec<Digest>,
}

/// An opened source (OCI layout, oci-archive, docker-archive) and the images picked from it.
pub struct Loader {
    source: Box<dyn ImageSource>,
    refs: Vec<SourceRef>,
}

impl Loader {
    /// `PATH[:REF]`: every image of the source, or the one REF names. With a `tag`, the source must
    /// hold exactly one.
    pub fn open(spec: &str, tag: Option<&str>) -> Result<Loader> {
        let (source, want) = source::open_source(spec)?;
        let refs = match &want {
            None => source.refs()?,
            Some(w) => vec![source::find_ref(&*source, w)?],
        };
        if refs.is_empty() {
            return Err(EngineError::Invalid(format!(
                "{} holds no image",
                source.describe()
            )));
        }
        if tag.is_some() && refs.len() > 1 {
            return Err(EngineError::Invalid(format!(
                "--tag names one image, but {} holds {}; pick one with PATH:REF",
                source.describe(),
                refs.len()
            )));
        }
        Ok(Loader { source, refs })
    }

    /// The names of the picked images, as the source writes them.
    pub fn ref_names(&self) -> Vec<Option<String>> {
        self.refs.iter().map(|r| r.name.clone()).collect()
    }
}

/// The name a loaded ref gets: a full reference names the image itself; a bare one is a tag of the
/// repository named after the source (`gzip` in `oci/debian` is `debian:gzip`).
pub(crate) fn tag_for_ref(ref_name: &str, default_repository: &str) -> Result<String> {
    let name = if ref_name.contains(':') || ref_name.contains('/') {
        ref_name.to_string()
    } else {
        format!("{default_repository}:{ref_name}")
    };
    store::normalize_tag(&name).map_err(|e| EngineError::Invalid(format!("ref {ref_name:?}: {e}")))
}

/// One layer's progress through the pipeline.
pub(super) enum Slot {
    /// In the store (found, or committed by us).
    Stored(LayerRecord),
    /// Unpacked into staging, waiting for its parents to be fixed up; the chain lock is held until
    /// it is committed, so that another load waits for it instead of unpacking it again.
    Staged(Staging, Box<LayerReport>, LayerRecord, Option<FileLock>),
}

impl Engine {
    /// Loads the `index`th image of `loader`, named `tag` if given (else by its ref name).
    pub fn load(
        &mut self,
        loader: &Loader,
        index: usize,
        tag: Option<&str>,
        platform: &Platform,
        observer: &dyn Observer,
    ) -> Result<LoadedImage> {
        let r = &loader.refs[index];
        let image = source::resolve(&*loader.source, r, platform)?;
        super::pull::report_warnings(&image, &r.display_name(), platform, observer);
        let tags = match (tag, &r.name) {
            (Some(t), _) => vec![store::normalize_tag(t)?],
            (None, Some(n)) => vec![tag_for_ref(n, &loader.source.default_repository())?],
            (None, None) => vec![],
        };
        let repo = tags.first().map(|t| store::repository_of(t));
        let repo_digest = match (&repo, &image.manifest_digest) {
            (Some(repo), Some(d)) => Some((repo.as_str(), d)),
            _ => None,
        };
        self.ingest(&*loader.source, &image, &tags, repo_digest, observer)
    }

    /// Loads one resolved image from `source` and tags it with `tags` (full reference names).
    pub(crate) fn ingest(
        &mut self,
        source: &dyn ImageSource,
        image: &ResolvedImage,
        tags: &[String],
        repo_digest: Option<(&str, &Digest)>,
        observer: &dyn Observer,
    ) -> Result<LoadedImage> {
        let id = image.manifest.config.digest.clone();
        let diff_ids: Vec<Digest> = image.layers.iter().map(|(_, d)| d.clone()).collect();
        let chain_ids: Vec<Digest> = (1..=diff_ids.len())
            .filter_map(|n| Digest::chain_id(&diff_ids[..n]))
            .collect();
        let opts: UnpackOptions = self.unpack.clone();
        let keep_blobs = self.keep_blobs;

        let slots: Vec<Mutex<Option<Slot>>> = diff_ids.iter().map(|_| Mutex::new(None)).collect();
        // The layers' use locks, held until the image is recorded (see the module's comment).
        let in_use: Mutex<Vec<FileLock>> = Mutex::new(Vec::new());
        let staged_top = AtomicUsize::new(0);
        let next = AtomicUsize::new(0);
        let first_error: Mutex<Option<EngineError>> = Mutex::new(None);
        let order = &largest_first(image);
        let workers = layer_workers().min(diff_ids.len().max(1));
        let layout: &Layout = self.store.layout();
        let batch = LayerBatch::default();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    // SQLite connections are not shared between threads: each worker has its own.
                    let store = match Store::connect(layout) {
                        Ok(s) => s,
                        Err(e) => {
                            if let Ok(mut first) = first_error.lock() {
                                first.get_or_insert(e.into());
                            }
                            return;
                        }
                    };
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let i = order.get(n).copied().unwrap_or(usize::MAX);
                        if i >= diff_ids.len()
                            || first_error.lock().map(|e| e.is_some()).unwrap_or(true)
                        {
                            break;
                        }
                        let (desc, diff_id) = &image.layers[i];
                        let layer = LayerJob {
                            desc,
                            diff_id,
                            chain_id: &chain_ids[i],
                            index: i,
                            staged_top: &staged_top,
                            keep_blob: keep_blobs,
                            batch: Some(&batch),
                        };
                        let fetched = store.lock_layer_use(diff_id).map(|lock| {
                            if let Ok(mut held) = in_use.lock() {
                                held.push(lock);
                            }
                        });
                        let fetched = fetched
                            .map_err(EngineError::from)
                            .and_then(|()| fetch_layer(&store, source, &layer, &opts, observer));
                        match fetched {
                            Ok(slot) => {
                                if let Ok(mut s) = slots[i].lock() {
                                    *s = Some(slot);
                                }
                            }
                            Err(e) => {
                                if let Ok(mut first) = first_error.lock() {
                                    first.get_or_insert(e);
                                }
                                break;
                            }
                        }
                    }
                });
            }
        });
        let stored = match first_error.into_inner().ok().flatten() {
            Some(e) => Err(e),
            None => self.commit_bottom_up(slots, &batch, &opts, &id, observer),
        };
        let records = match stored.and_then(|records| {
            batch.make_durable(&self.store)?;
            Ok(records)
        }) {
            Ok(records) => records,
            Err(e) => {
                if let Err(not_recorded) = batch.record_placed(&self.store) {
                    tracing::warn!(error = %not_recorded, "layers stored by a failed load not recorded; fsck --repair removes them");
                }
                return Err(e);
            }
        };

        self.store.put_blob(&id, &image.config_bytes)?;
        if let Some(d) = &image.manifest_digest {
            self.store.put_blob(d, &image.manifest_bytes)?;
        }
        let row = ImageRow {
            id: id.clone(),
            created: image.config.file().created.clone(),
            loaded: store::now(),
            size: records.iter().map(|r| r.size).sum(),
        };
        let layers: Vec<_> = records.iter().map(LayerRecord::row).collect();
        let untagged_from = match self.store.record_image(&row, &layers, tags, repo_digest) {
            Ok(untagged) => untagged,
            Err(e) => {
                let _ = batch.record_placed(&self.store);
                return Err(e.into());
            }
        };
        // A removal of these blobs (rmi of an image with the same config, fsck --repair) that ran
        // between writing them and recording the image deleted them: written again, now that the
        // record keeps them (see `store::gc`).
        self.store.put_blob(&id, &image.config_bytes)?;
        if let Some(d) = &image.manifest_digest {
            self.store.put_blob(d, &image.manifest_bytes)?;
        }
        drop(in_use);
        Ok(LoadedImage {
            id,
            tags: tags.to_vec(),
            untagged_from,
        })
    }
}

impl Engine {
    /// Bottom-up: fixes up the parent-dependent layers against the ones below (kept open in one
    /// view, each layer stacked on it once), then stores them together (`LayerBatch::commit_all`)
    /// and releases their chain locks. Returns every layer's record, bottom first.
    fn commit_bottom_up(
        &self,
        slots: Vec<Mutex<Option<Slot>>>,
        batch: &LayerBatch,
        opts: &UnpackOptions,
        id: &Digest,
        observer: &dyn Observer,
    ) -> Result<Vec<LayerRecord>> {
        let view_err = |e: crate::layerfs::ViewError| {
            EngineError::from(store::StoreError::Io {
                path: e.path,
                source: e.source,
            })
        };
        let mut records: Vec<LayerRecord> = Vec::with_capacity(slots.len());
        let mut lowers = LowerView::open(&[]).map_err(view_err)?;
        let mut staged: Vec<(usize, Staging, LayerRecord, Option<FileLock>)> = Vec::new();
        for (index, slot) in slots.into_iter().enumerate() {
            let slot = slot
                .into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| EngineError::WorkerLost {
                    image: id.to_string(),
                })?;
            match slot {
                Slot::Stored(record) => {
                    lowers
                        .push_top(&self.store.layout().layer(&record.key()).diff())
                        .map_err(view_err)?;
                    records.push(record);
                }
                Slot::Staged(staging, report, record, chain_lock) => {
                    let diff = LayerPaths::staged(staging.path()).diff();
                    unpack::fix_up_layer_over(&diff, &report, &lowers, opts)?;
                    // The view keeps the dir's fd, which still names it after the rename.
                    lowers.push_top(&diff).map_err(view_err)?;
                    records.push(record.clone());
                    staged.push((index, staging, record, chain_lock));
                }
            }
        }
        let mut locks = Vec::with_capacity(staged.len());
        let mut done = Vec::with_capacity(staged.len());
        let mut to_commit = Vec::with_capacity(staged.len());
        for (index, staging, record, chain_lock) in staged {
            locks.push(chain_lock);
            done.push((index, record.diff_id.clone(), record.compressed_size));
            to_commit.push((staging, record));
        }
        batch.commit_all(&self.store, to_commit)?;
        drop(locks);
        for (index, diff_id, size) in done {
            observer.layer(&LayerEvent {
                index,
                diff_id,
                status: LayerStatus::Loaded,
                size: Some(size),
            });
        }
        Ok(records)
    }
}

/// Layers are taken largest first: the biggest one is the longest job, and starting it last would
/// leave one core idle at the end.
fn largest_first(image: &ResolvedImage) -> Vec<usize> {
    let mut order: Vec<usize> = (0..image.layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(image.layers[i].0.size));
    order
}

/// Layers in flight at once: two more than the cores, since a layer also waits (for the source,
/// the lock, its `syncfs`), and each one's unpacking keeps its own threads busy meanwhile. Memory
/// per layer is a few buffers, so this does not grow with the layers' sizes.
pub(super) fn layer_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 2
}

/// One layer of the image being loaded, and where it sits.
pub(super) struct LayerJob<'a> {
    pub(super) desc: &'a crate::image::Descriptor,
    pub(super) diff_id: &'a Digest,
    pub(super) chain_id: &'a Digest,
    pub(super) index: usize,
    /// 1 + the highest position this load holds a staged layer (and its chain lock) at; 0 if none.
    pub(super) staged_top: &'a AtomicUsize,
    /// Whether its compressed blob is kept (`--keep-blobs`).
    pub(super) keep_blob: bool,
    /// The load's batch, which stores the layer (durable, not yet recorded) and records it with
    /// the image; without one the layer is committed and recorded on its own (`commit_layer`).
    pub(super) batch: Option<&'a LayerBatch>,
}

/// Finds the layer in the store, or unpacks it into staging (committing it at once when it does
/// not depend on its parents).
pub(super) fn fetch_layer(
    store: &Store,
    source: &dyn ImageSource,
    layer: &LayerJob,
    opts: &UnpackOptions,
    observer: &dyn Observer,
) -> Result<Slot> {
    let LayerJob {
        desc,
        diff_id,
        chain_id,
        index,
        staged_top,
        keep_blob,
        batch,
    } = *layer;
    let event = |status| LayerEvent {
        index,
        diff_id: diff_id.clone(),
        status,
        size: Some(desc.size),
    };
    let chain_lock = wait_for_chain(store, layer)?;
    let unpack_lock = store.lock_unpack(diff_id)?;
    if let Some(record) = store.find_layer(diff_id, chain_id, (&desc.digest, desc.size))? {
        observer.layer(&event(LayerStatus::Exists));
        if keep_blob {
            keep_blobs::keep_for_stored(store, source, desc, diff_id, &record.key())?;
        }
        return Ok(Slot::Stored(record));
    }
    observer.layer(&event(LayerStatus::Loading));
    let staging = store.stage("layer")?;
    let diff = LayerPaths::staged(staging.path()).diff();
    fs::create_dir(&diff).map_err(|source| store::StoreError::Io {
        path: diff.clone(),
        source,
    })?;
    let paths = LayerPaths::staged(staging.path());
    let mut blob = source.open_blob(desc)?;
    if keep_blob {
        blob = keep_blobs::tee_into_staged(store, &paths, &desc.digest, blob)?;
    }
    let expected = ExpectedBlob {
        digest: &desc.digest,
        size: Some(desc.size),
        diff_id,
    };
    let started = std::time::Instant::now();
    let report =
        unpack::unpack_layer_recorded(blob, &expected, &paths.diff(), &paths.tar_split(), opts)?;
    tracing::debug!(layer = %diff_id, elapsed = ?started.elapsed(), "unpacked and verified");
    let record = LayerRecord {
        diff_id: diff_id.clone(),
        chain_id: chain_id.clone(),
        parent_dependent: report.needs_parents(),
        blob_digest: desc.digest.clone(),
        compressed_size: desc.size,
        size: report.files_size,
        entries: report.entries,
    };
    if record.parent_dependent {
        staged_top.fetch_max(index + 1, Ordering::SeqCst);
        return Ok(Slot::Staged(staging, Box::new(report), record, chain_lock));
    }
    match batch {
        Some(batch) => batch.commit(store, staging, &record)?,
        None => commit_layer(store, staging, &record)?,
    }
    drop(unpack_lock);
    observer.layer(&event(LayerStatus::Loaded));
    Ok(Slot::Stored(record))
}

/// Takes the layer's chain lock; `None` when the layer was stored meanwhile (it is then found) or
/// when waiting could deadlock. It is polled, not waited on: a load that holds a staged layer above
/// this position stops waiting (and may unpack the layer a second time; the rename into `layers/`
/// keeps one copy). In any cycle of loads waiting for each other's chain locks, the one waiting for
/// the lowest position holds a staged layer above it, so no cycle lasts; a chain lock is otherwise
/// held only while unpacking, which waits for nothing.
fn wait_for_chain(store: &Store, layer: &LayerJob) -> Result<Option<FileLock>> {
    loop {
        if let Some(lock) = store.try_lock_chain(layer.chain_id)? {
            return Ok(Some(lock));
        }
        if layer.staged_top.load(Ordering::SeqCst) > layer.index + 1 {
            return Ok(None);
        }
        let blob = (&layer.desc.digest, layer.desc.size);
        if store
            .find_layer(layer.diff_id, layer.chain_id, blob)?
            .is_some()
        {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Finishes the staged layer's records and moves it into `layers/`.
pub(super) fn commit_layer(store: &Store, staging: Staging, record: &LayerRecord) -> Result<()> {
    let started = std::time::Instant::now();
    super::load_batch::finish_records_flushing(&staging)?;
    tracing::debug!(layer = %record.diff_id, elapsed = ?started.elapsed(), "file list written, data flushed");
    let started = std::time::Instant::now();
    store.commit_layer(staging, record)?;
    tracing::debug!(layer = %record.diff_id, elapsed = ?started.elapsed(), "flushed and stored");
    Ok(())
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
