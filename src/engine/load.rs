//! Bringing an image into the store: layers unpacked concurrently, each verified, staged and renamed
//! into place; then one transaction records the image.
//!
//! Two processes loading images that share a layer never unpack it twice: a worker takes the layer's
//! `flock` (locks/<diffID>) before looking for it, and holds it until the layer is in place. Layers whose
//! tree depends on their parents (implied directories, hardlinks into lower layers) are fixed up once
//! the layers below are known, and stored under their chainID.

use super::db::{self, Db, ImageRow, LayerRow};
use super::layout::Layout;
use super::staging::Staging;
use super::{IoContext, Result, Store, StoreError};
use crate::digest::Digest;
use crate::source::{ImageSource, ResolvedImage};
use crate::unpack::{self, ExpectedBlob, LayerReport, UnpackOptions};
use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::path::PathBuf;
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

/// The record kept beside each layer's `diff/`, written before the layer is renamed into place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    pub diff_id: Digest,
    pub chain_id: Digest,
    pub parent_dependent: bool,
    pub blob_digest: Digest,
    pub compressed_size: u64,
    pub size: u64,
    pub entries: u64,
}

impl LayerRecord {
    fn key(&self) -> String {
        if self.parent_dependent {
            self.chain_id.hex().to_string()
        } else {
            self.diff_id.hex().to_string()
        }
    }

    fn row(&self) -> LayerRow {
        LayerRow {
            key: self.key(),
            diff_id: self.diff_id.clone(),
            chain_id: self.chain_id.clone(),
            parent_dependent: self.parent_dependent,
            size: self.size,
            entries: self.entries,
        }
    }
}

/// One layer's progress through the pipeline.
enum Slot {
    /// In the store (found, or committed by us).
    Stored(LayerRecord),
    /// Unpacked into staging, waiting for its parents to be fixed up.
    Staged(Staging, LayerReport, LayerRecord),
}

impl Store {
    /// Loads one resolved image from `source` and tags it with `tags` (full reference names).
    pub fn ingest(
        &mut self,
        source: &dyn ImageSource,
        image: &ResolvedImage,
        tags: &[String],
        repo_digest: Option<(&str, &Digest)>,
        on_layer: &(dyn Fn(&LayerEvent) + Sync),
    ) -> Result<LoadedImage> {
        let id = image.manifest.config.digest.clone();
        let diff_ids: Vec<Digest> = image.layers.iter().map(|(_, d)| d.clone()).collect();
        let chain_ids: Vec<Digest> = (1..=diff_ids.len())
            .filter_map(|n| Digest::chain_id(&diff_ids[..n]))
            .collect();
        let opts = UnpackOptions { userxattr: false };

        let slots: Vec<Mutex<Option<Slot>>> = diff_ids.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
        let order = &largest_first(image);
        let workers = layer_workers().min(diff_ids.len().max(1));
        let layout = &self.layout;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    // SQLite connections are not shared between threads: each worker has its own.
                    let db = match Db::open(&layout.meta_db()) {
                        Ok(db) => db,
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
                        match fetch_layer(
                            layout,
                            &db,
                            source,
                            desc,
                            diff_id,
                            &chain_ids[i],
                            i,
                            &opts,
                            on_layer,
                        ) {
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
        if let Some(e) = first_error.into_inner().ok().flatten() {
            return Err(e);
        }

        // Bottom-up: fix up parent-dependent layers against the ones below, then commit them.
        let mut records: Vec<LayerRecord> = Vec::with_capacity(slots.len());
        let mut lower_dirs: Vec<PathBuf> = Vec::new(); // nearest first
        for (index, slot) in slots.into_iter().enumerate() {
            let slot = slot
                .into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| StoreError::Image {
                    image: id.to_string(),
                    reason: "a layer worker stopped without a result".into(),
                })?;
            let record = match slot {
                Slot::Stored(record) => record,
                Slot::Staged(staging, report, record) => {
                    let diff = staging.path().join("diff");
                    unpack::fix_up_layer(&diff, &report, &lower_dirs, &opts)?;
                    commit_layer(&self.layout, staging, &record)?;
                    on_layer(&LayerEvent {
                        index,
                        diff_id: record.diff_id.clone(),
                        status: LayerStatus::Loaded,
                        size: Some(record.compressed_size),
                    });
                    record
                }
            };
            lower_dirs.insert(0, self.layout.layer_diff(&record.key()));
            records.push(record);
        }

        self.put_blob(&id, &image.config_bytes)?;
        if let Some(d) = &image.manifest_digest {
            self.put_blob(d, &image.manifest_bytes)?;
        }
        let row = ImageRow {
            id: id.clone(),
            created: image.config.file().created.clone(),
            loaded: db::now(),
            size: records.iter().map(|r| r.size).sum(),
        };
        let keys: Vec<String> = records.iter().map(LayerRecord::key).collect();
        let untagged_from = self.db.write(|tx| {
            for r in &records {
                db::insert_layer(tx, &r.row())?;
            }
            db::insert_image(tx, &row, &keys)?;
            let mut untagged = Vec::new();
            for t in tags {
                if let Some(old) = db::set_tag(tx, t, &id)? {
                    untagged.push(old);
                }
            }
            if let Some((repo, digest)) = repo_digest {
                db::add_repo_digest(tx, repo, digest, &id)?;
            }
            Ok(untagged)
        })?;
        Ok(LoadedImage {
            id,
            tags: tags.to_vec(),
            untagged_from,
        })
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
fn layer_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 2
}

/// Finds layer `diff_id` in the store, or unpacks it into staging (committing it at once when it
/// does not depend on its parents).
#[allow(clippy::too_many_arguments)]
fn fetch_layer(
    layout: &Layout,
    db: &Db,
    source: &dyn ImageSource,
    desc: &crate::image::Descriptor,
    diff_id: &Digest,
    chain_id: &Digest,
    index: usize,
    opts: &UnpackOptions,
    on_layer: &(dyn Fn(&LayerEvent) + Sync),
) -> Result<Slot> {
    let _lock = lock_layer(layout, diff_id)?;
    if let Some(record) = find_stored(layout, db, diff_id, chain_id)? {
        on_layer(&LayerEvent {
            index,
            diff_id: diff_id.clone(),
            status: LayerStatus::Exists,
            size: Some(desc.size),
        });
        return Ok(Slot::Stored(record));
    }
    on_layer(&LayerEvent {
        index,
        diff_id: diff_id.clone(),
        status: LayerStatus::Loading,
        size: Some(desc.size),
    });
    let staging = Staging::new(&layout.tmp_dir(), "layer").at(&layout.tmp_dir())?;
    let diff = staging.path().join("diff");
    fs::create_dir(&diff).at(&diff)?;
    let blob = source.open_blob(desc)?;
    let expected = ExpectedBlob {
        digest: &desc.digest,
        size: Some(desc.size),
        diff_id,
    };
    let started = std::time::Instant::now();
    let report = super::recorded::unpack_recorded(blob, &expected, staging.path(), opts)?;
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
        return Ok(Slot::Staged(staging, report, record));
    }
    commit_layer(layout, staging, &record)?;
    on_layer(&LayerEvent {
        index,
        diff_id: diff_id.clone(),
        status: LayerStatus::Loaded,
        size: Some(desc.size),
    });
    Ok(Slot::Stored(record))
}

/// Writes the layer record into the staged dir and renames it into `layers/`. If another process
/// stored the same layer meanwhile, ours is discarded and theirs is used.
fn commit_layer(layout: &Layout, staging: Staging, record: &LayerRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| StoreError::Image {
        image: record.diff_id.to_string(),
        reason: format!("cannot encode layer record: {e}"),
    })?;
    let started = std::time::Instant::now();
    // The layer's data goes to disk while the file list is made: the syncfs in `commit_to` then
    // has little left to wait for. Its errors are the final syncfs's to report; without a thread
    // (none could be started) the list is just made first.
    std::thread::scope(|s| {
        let _ = std::thread::Builder::new()
            .name("lamina-flush".into())
            .spawn_scoped(s, || super::staging::sync_filesystem(staging.path()));
        super::recorded::finish_records(staging.path())
    })?;
    tracing::debug!(layer = %record.diff_id, elapsed = ?started.elapsed(), "file list written, data flushed");
    let rec_path = staging.path().join("layer.json");
    fs::write(&rec_path, json).at(&rec_path)?;
    let dest = layout.layer(&record.key());
    let started = std::time::Instant::now();
    staging.commit_to(&dest).at(&dest)?;
    tracing::debug!(layer = %record.diff_id, elapsed = ?started.elapsed(), "flushed and stored");
    Ok(())
}

/// A stored layer for this position: from the database, or a complete layer dir whose row was
/// never written (the process that stored it was killed before recording it).
fn find_stored(
    layout: &Layout,
    db: &Db,
    diff_id: &Digest,
    chain_id: &Digest,
) -> Result<Option<LayerRecord>> {
    if let Some(row) = db.find_layer(diff_id, chain_id)? {
        if layout.layer_diff(&row.key).is_dir() {
            return read_record(layout, &row.key);
        }
    }
    for key in [diff_id.hex(), chain_id.hex()] {
        if let Some(rec) = read_record(layout, key)? {
            if &rec.diff_id == diff_id && (!rec.parent_dependent || &rec.chain_id == chain_id) {
                return Ok(Some(rec));
            }
        }
    }
    Ok(None)
}

pub(crate) fn read_record(layout: &Layout, key: &str) -> Result<Option<LayerRecord>> {
    let path = layout.layer_record(key);
    match fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io { path, source: e }),
    }
}

/// Holds `locks/<diffID>` while a layer is looked for and unpacked. The file is unlinked when the
/// holder is done, so a failed or finished load leaves no trace. (A process that opened the file just
/// before the unlink may lock the orphaned inode and unpack the layer a second time; the rename into
/// `layers/` then keeps exactly one copy. The lock saves work; it is not what keeps the store right.)
struct LayerLock {
    path: PathBuf,
    _file: File,
}

impl Drop for LayerLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_layer(layout: &Layout, diff_id: &Digest) -> Result<LayerLock> {
    let path = layout.layer_lock(diff_id);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    flock(f.as_fd(), FlockOperation::LockExclusive)
        .map_err(std::io::Error::from)
        .at(&path)?;
    Ok(LayerLock { path, _file: f })
}
