//! How a load makes the layers it stores durable together instead of one at a time.
//!
//! Per layer the order is the same as `load::commit_layer`'s: its records finished and its
//! `layer.json` written in staging, the staged tree on disk (`syncfs`), then the rename into
//! `layers/`. What is shared: the flush (`SyncGroup`: layers that finish close together wait for one
//! `syncfs`; the layers fixed up bottom-up all wait for one), the durability of the renames (one
//! fsync of `layers/`, before the image's record), and the record itself: the layers' rows are
//! written in the image's one transaction (`record_image`) instead of one transaction each.
//!
//! A crash between a rename and the image's record leaves a complete layer dir with its
//! `layer.json` and no row, which `find_layer` adopts and `fsck --repair` removes when no load holds
//! it, as before. A load that fails (not killed) records the layers it renamed, as layers no image
//! uses, so that `df` counts them and `prune` removes them.

use super::Result;
use crate::store::group_sync::SyncGroup;
use crate::store::recorded;
use crate::store::staging::{self, Staging};
use crate::store::{prepare_staged_layer, IoContext, LayerRecord, Store};
use std::sync::Mutex;

/// A layer with this much file data starts its flush while its file list is made (it would
/// otherwise wait for all of it at once); a small one joins the group's next flush instead.
const EARLY_FLUSH_BYTES: u64 = 64 << 20;

#[derive(Default)]
pub(super) struct LayerBatch {
    sync: SyncGroup,
    /// Renamed into `layers/` by this load, not yet recorded.
    placed: Mutex<Vec<LayerRecord>>,
}

impl LayerBatch {
    /// One layer a worker has unpacked and verified (it does not depend on its parents).
    pub(super) fn commit(
        &self,
        store: &Store,
        staging: Staging,
        record: &LayerRecord,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        if record.size >= EARLY_FLUSH_BYTES {
            finish_records_flushing(&staging)?;
        } else {
            recorded::finish_records(staging.path())?;
        }
        prepare_staged_layer(&staging, record)?;
        self.sync.sync(staging.path()).at(staging.path())?;
        store.rename_layer(staging, record)?;
        self.placed_now(std::slice::from_ref(record));
        tracing::debug!(layer = %record.diff_id, elapsed = ?started.elapsed(), "flushed and renamed into place");
        Ok(())
    }

    /// The staged layers the load fixed up bottom-up: one flush for all of them.
    pub(super) fn commit_all(
        &self,
        store: &Store,
        staged: Vec<(Staging, LayerRecord)>,
    ) -> Result<()> {
        let Some((first, _)) = staged.first() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let at = first.path().to_path_buf();
        // Each layer's file list is a walk of its tree: spread over the cores.
        let threads = super::load::layer_workers().min(staged.len());
        std::thread::scope(|s| {
            let parts: Vec<_> = staged
                .chunks(staged.len().div_ceil(threads))
                .map(|part| {
                    s.spawn(move || -> Result<()> {
                        for (staging, record) in part {
                            recorded::finish_records(staging.path())?;
                            prepare_staged_layer(staging, record)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            parts.into_iter().try_for_each(|p| {
                p.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })?;
        self.sync.sync(&at).at(&at)?;
        let count = staged.len();
        for (staging, record) in staged {
            store.rename_layer(staging, &record)?;
            self.placed_now(std::slice::from_ref(&record));
        }
        tracing::debug!(count, elapsed = ?started.elapsed(), "fixed-up layers flushed and renamed into place");
        Ok(())
    }

    /// Before the image is recorded: the renames on disk.
    pub(super) fn make_durable(&self, store: &Store) -> Result<()> {
        if !self.placed().is_empty() {
            store.sync_layers_dir()?;
        }
        Ok(())
    }

    /// After a failure: what was renamed into place, recorded as layers no image uses.
    pub(super) fn record_placed(&self, store: &Store) -> Result<()> {
        let placed = self.placed();
        if !placed.is_empty() {
            store.sync_layers_dir()?;
            store.record_layers(&placed)?;
        }
        Ok(())
    }

    fn placed_now(&self, records: &[LayerRecord]) {
        let mut placed = self
            .placed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        placed.extend_from_slice(records);
    }

    fn placed(&self) -> Vec<LayerRecord> {
        self.placed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Makes the staged layer's file list while its data goes to disk (`syncfs` on a helper thread),
/// so that the flush that follows has little left to wait for. The helper's errors are that
/// flush's to report; without a thread (none could be started) the list is just made first.
pub(super) fn finish_records_flushing(staging: &Staging) -> Result<()> {
    std::thread::scope(|s| {
        let _ = std::thread::Builder::new()
            .name("lamina-flush".into())
            .spawn_scoped(s, || staging::sync_filesystem(staging.path()));
        recorded::finish_records(staging.path())
    })?;
    Ok(())
}

#[cfg(test)]
#[path = "load_batch_tests.rs"]
mod tests;
