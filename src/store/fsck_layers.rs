//! `fsck`'s layer checks: recorded removals left half-done, layer rows against their dirs (and,
//! with `verify`, their trees), and dirs under `layers/` that no row names. A layer some running
//! command holds (`locks/layer-<diffID>`, see `locks`) is that command's business: a load's layer
//! between its rename and its image's record is neither reported nor removed.

use super::db::LayerRow;
use super::filelist::{self, KnownHashes};
use super::fsck::{FsckOptions, FsckReport, ProblemKind};
use super::gc::LayerRemoval;
use super::layers::record_of_row;
use super::layout::LayerKey;
use super::locks::{FileLock, LockMode};
use super::{IoContext, Result, Store};
use crate::digest::Digest;
use std::collections::HashSet;
use std::fs;

impl Store {
    /// Whether a running command holds layers with this diffID (the probe lock is dropped at once).
    fn layer_held(&self, diff_id: &Digest) -> Result<bool> {
        let path = self.layout.layer_lock(diff_id);
        Ok(FileLock::try_acquire(&path, LockMode::Exclusive)
            .at(&path)?
            .is_none())
    }

    /// Removals recorded by an `rmi` or `prune` that was killed before it finished them.
    pub(super) fn check_removals(&mut self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        for name in self.db.removals("layer")? {
            let row = match LayerKey::parse(&name) {
                Some(key) => self.db.layer(&key)?,
                None => None,
            };
            if let Some(row) = &row {
                if self.layer_held(&row.diff_id)? {
                    continue;
                }
                if self.db.layer_users(&row.key)? > 0 {
                    // A load used the layer after its removal was recorded: nothing to remove,
                    // and the next command forgets the removal.
                    if opts.repair {
                        self.db.drop_removal("layer", &name)?;
                    }
                    continue;
                }
            }
            let subject = match &row {
                Some(row) => format!("layer {}", row.diff_id),
                None => format!("layers/{name}"),
            };
            let i = r.add(
                ProblemKind::UnfinishedRemoval,
                subject,
                "its removal was recorded and not finished (a command was killed)",
            );
            if opts.repair {
                if let Some(key) = LayerKey::parse(&name) {
                    match self.finish_layer_removal(&key)? {
                        LayerRemoval::Busy => continue,
                        LayerRemoval::Kept => r.repaired(i, "kept: an image uses it"),
                        LayerRemoval::Removed(_) | LayerRemoval::Gone => r.repaired(i, "removed"),
                    }
                } else {
                    self.db.drop_removal("layer", &name)?;
                    r.repaired(i, "forgotten");
                }
            }
        }
        let blobs = self.db.removals("blob")?;
        if !blobs.is_empty() {
            let ids: Vec<usize> = blobs
                .iter()
                .map(|b| {
                    r.add(
                        ProblemKind::UnfinishedRemoval,
                        format!("blob {b}"),
                        "its removal was recorded and not finished (a command was killed)",
                    )
                })
                .collect();
            if opts.repair {
                self.finish_blob_removals()?;
                for i in ids {
                    r.repaired(i, "removed unless something refers to it");
                }
            }
        }
        Ok(())
    }

    /// Layer rows against their dirs (and, with `verify`, their trees). Returns the damaged keys.
    pub(super) fn check_layers(
        &mut self,
        r: &mut FsckReport,
        opts: FsckOptions,
    ) -> Result<HashSet<LayerKey>> {
        let mut damaged = HashSet::new();
        let pending: HashSet<String> = self.db.removals("layer")?.into_iter().collect();
        for l in self.db.layers()? {
            if pending.contains(l.key.as_str()) {
                continue; // reported by check_removals
            }
            r.layers_checked += 1;
            let subject = format!("layer {}", l.diff_id);
            let paths = self.layout.layer(&l.key);
            let diff = paths.diff();
            if !diff.is_dir() {
                // A remover holds the layer's lock while it takes the dir out and deletes the
                // row; one done since the rows were read has released it, and the row is gone.
                if self.layer_held(&l.diff_id)? || self.db.layer(&l.key)?.is_none() {
                    continue;
                }
                r.add(
                    ProblemKind::MissingLayer,
                    subject,
                    format!("{} is missing", diff.display()),
                );
                damaged.insert(l.key.clone());
                continue;
            }
            self.check_layer_record(r, opts, &l, &subject)?;
            self.check_kept_blobs(r, opts, &l.key, &subject)?;
            if self.db.layer_users(&l.key)? == 0 && !self.layer_held(&l.diff_id)? {
                let i = r.add(ProblemKind::UnusedLayer, &subject, "no image uses it");
                if opts.repair {
                    match self.delete_unused_layer(&l.key)? {
                        LayerRemoval::Removed(_) | LayerRemoval::Gone => {
                            r.repaired(i, "removed");
                            continue;
                        }
                        LayerRemoval::Kept => r.repaired(i, "kept: an image uses it now"),
                        LayerRemoval::Busy => r.repaired(i, "kept: a running command uses it"),
                    }
                }
            }
            if opts.verify && self.verify_layer(r, &l, &subject)? {
                damaged.insert(l.key.clone());
            }
        }
        Ok(damaged)
    }

    /// `layer.json` against the row; a missing or unreadable one is written again from the row.
    fn check_layer_record(
        &self,
        r: &mut FsckReport,
        opts: FsckOptions,
        l: &LayerRow,
        subject: &str,
    ) -> Result<()> {
        let i = match self.layer_record(&l.key)? {
            Some(rec) if rec.diff_id == l.diff_id => return Ok(()),
            Some(rec) => r.add(
                ProblemKind::LayerRecord,
                subject,
                format!("layer.json names {}", rec.diff_id),
            ),
            None => r.add(
                ProblemKind::LayerRecord,
                subject,
                "layer.json is missing or unreadable",
            ),
        };
        if opts.repair {
            // The row holds all of it but the blob the layer came from: the uncompressed tar's
            // digest (the diffID) stands for it.
            let rec = record_of_row(l, (&l.diff_id, 0));
            self.write_layer_record(&l.key, &rec)?;
            r.repaired(i, "written again from the database");
        }
        Ok(())
    }

    /// The tree against the file list recorded when the layer was stored; true when it changed.
    fn verify_layer(&self, r: &mut FsckReport, l: &LayerRow, subject: &str) -> Result<bool> {
        let paths = self.layout.layer(&l.key);
        let diff = paths.diff();
        let list = paths.files();
        if !list.exists() {
            let why = if paths.tar_split().exists() {
                // This lamina writes both; only a damaged layer has one without the other.
                "its file list (files) is missing: nothing to verify against"
            } else {
                "no file list to verify against (stored by an older lamina)"
            };
            r.add(ProblemKind::LayerRecord, subject, why);
            return Ok(false);
        }
        let (sums, want) = filelist::read_list(&list).at(&list)?;
        let got = filelist::walk(&diff, &KnownHashes::new(), sums).at(&diff)?;
        r.files_verified += got.len() as u64;
        let changes = filelist::compare(&want, &got);
        if changes.is_empty() {
            return Ok(false);
        }
        let lines: Vec<String> = changes
            .iter()
            .map(|c| format!("{}: {}", c.shown_path(), c.what))
            .collect();
        r.add(ProblemKind::ChangedLayer, subject, lines.join("; "));
        Ok(true)
    }

    /// Dirs under `layers/` that no row names.
    pub(super) fn check_layer_dirs(&self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        let keys: HashSet<LayerKey> = self.db.layers()?.into_iter().map(|l| l.key).collect();
        let any_mount = !self.db.mounts()?.is_empty();
        let dir = self.layout.layers_dir();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = LayerKey::parse(&name);
            if key.as_ref().is_some_and(|k| keys.contains(k)) {
                continue;
            }
            if let Some(key) = key.as_ref().filter(|k| k.is_flat()) {
                // A cache of flattened bottom layers for deep images; a live mount may stack it.
                if !any_mount && opts.repair {
                    let i = r.add(
                        ProblemKind::OrphanLayer,
                        format!("layers/{name}"),
                        "flattened-layer cache no mount uses",
                    );
                    self.remove_layer_dir(key)?;
                    r.repaired(i, "removed");
                }
                continue;
            }
            // A load renames a layer dir (with its layer.json) into place before it records it,
            // holding the layer's lock: such a dir is the load's.
            let lock = match key
                .as_ref()
                .and_then(|k| self.layer_record(k).ok().flatten())
            {
                Some(rec) => {
                    let path = self.layout.layer_lock(&rec.diff_id);
                    match FileLock::try_acquire(&path, LockMode::Exclusive).at(&path)? {
                        Some(lock) => Some(lock),
                        None => continue,
                    }
                }
                None => None,
            };
            if let Some(k) = key.as_ref() {
                if self.db.layer(k)?.is_some() {
                    continue; // recorded meanwhile
                }
            }
            let i = r.add(
                ProblemKind::OrphanLayer,
                format!("layers/{name}"),
                if key.is_some() {
                    "a layer dir no row names"
                } else {
                    "not a layer dir"
                },
            );
            if let Some(key) = key.filter(|_| opts.repair) {
                self.remove_layer_dir(&key)?;
                r.repaired(i, "removed");
            }
            drop(lock);
        }
        Ok(())
    }
}
