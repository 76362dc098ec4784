//! `fsck`: checks the database against the directories, and repairs what is safe to repair.
//!
//! What is checked: the database's own integrity; staging dirs dead processes left in `tmp/`; mount
//! rows whose target is no longer mounted (but for `--no-mount` ones), and mount dirs without a row; layer rows without a complete
//! dir, layer dirs without a row, layers no image uses; images whose config is missing or does not
//! match their layers; blobs nothing refers to. With `verify`, every layer's tree is hashed again and
//! compared with the file list recorded when it was stored.
//!
//! What repair does, and why it is safe: leftovers (staging dirs, orphaned layer and mount dirs,
//! unreferenced blobs) are garbage by the store's invariants and are removed. A stale mount is
//! forgotten (nothing is mounted there any more). A layer that is missing or changed cannot be
//! restored without its blob, so the images that need it are removed (with their tags, reported, so
//! they can be loaded again) unless a mount uses them; then the layer goes with its last user.
//! Nothing that a live mount uses is ever touched, and nothing a running command holds (a layer
//! whose `locks/layer-<diffID>` is held, a staging dir whose lock is held) is reported or removed:
//! `fsck --repair` beside a running load leaves the load's layers alone (see `store::locks`).
//! The layer checks are in `fsck_layers`.

use super::layout::{LayerKey, MountId};
use super::{staging, IoContext, RemoveReport, Result, Store};
use crate::digest::Digest;
use rustix::fs::{flock, FlockOperation};
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    pub repair: bool,
    pub verify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Database,
    /// A removal a killed `rmi` or `prune` recorded and did not finish.
    UnfinishedRemoval,
    StagingLeftover,
    StaleMount,
    OrphanMountDir,
    MissingLayer,
    ChangedLayer,
    LayerRecord,
    UnusedLayer,
    OrphanLayer,
    BrokenImage,
    OrphanBlob,
    /// A layer's kept blob (`--keep-blobs`) that changed, or a file in its `blobs/` that is not one.
    KeptBlob,
    /// A dir or file of the store that others than its owner may read (see `perms`).
    Permissions,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemKind,
    /// What it is about: `layer sha256:…`, `image debian:gzip`, `tmp/layer-123-…`.
    pub subject: String,
    pub detail: String,
    /// What repair did, if it did something.
    pub repaired: Option<String>,
}

#[derive(Debug, Default)]
pub struct FsckReport {
    pub problems: Vec<Problem>,
    pub layers_checked: usize,
    pub files_verified: u64,
}

impl FsckReport {
    pub(super) fn add(
        &mut self,
        kind: ProblemKind,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> usize {
        self.problems.push(Problem {
            kind,
            subject: subject.into(),
            detail: detail.into(),
            repaired: None,
        });
        self.problems.len() - 1
    }

    pub(super) fn repaired(&mut self, i: usize, what: impl Into<String>) {
        self.problems[i].repaired = Some(what.into());
    }

    /// Problems left as they were.
    pub fn unrepaired(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.repaired.is_none())
            .count()
    }
}

impl Store {
    pub fn fsck(&mut self, opts: FsckOptions) -> Result<FsckReport> {
        let mut r = FsckReport::default();
        self.check_database(&mut r)?;
        self.check_staging(&mut r, opts)?;
        self.check_mounts(&mut r, opts)?;
        self.check_removals(&mut r, opts)?;
        let damaged = self.check_layers(&mut r, opts)?;
        self.check_images(&mut r, opts, &damaged)?;
        self.check_layer_dirs(&mut r, opts)?;
        self.check_blobs(&mut r, opts)?;
        self.check_modes(&mut r, opts)?;
        Ok(r)
    }

    fn check_database(&self, r: &mut FsckReport) -> Result<()> {
        for problem in self.db.integrity_problems()? {
            r.add(ProblemKind::Database, "meta.db", problem);
        }
        Ok(())
    }

    fn check_staging(&self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        let tmp = self.layout.tmp_dir();
        let mut found = vec![];
        for entry in fs::read_dir(&tmp).at(&tmp)? {
            let entry = entry.at(&tmp)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") {
                continue;
            }
            let lock = tmp.join(format!("{name}.lock"));
            let abandoned = match OpenOptions::new().write(true).open(&lock) {
                Ok(f) => flock(f.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok(),
                Err(_) => true,
            };
            if abandoned {
                found.push(r.add(
                    ProblemKind::StagingLeftover,
                    format!("tmp/{name}"),
                    "staging dir left by a process that died",
                ));
            }
        }
        if opts.repair && !found.is_empty() {
            staging::clear_abandoned(&tmp).at(&tmp)?;
            for i in found {
                r.repaired(i, "removed");
            }
        }
        Ok(())
    }

    fn check_mounts(&mut self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        let rows = self.db.mounts()?;
        for m in &rows {
            // A prepared mount is the runtime's to mount, often where this process cannot see it;
            // it lives until `lamina umount`, as a containerd snapshot lives until it is removed.
            if m.prepared || crate::mount::is_mountpoint(Path::new(&m.target)) {
                continue;
            }
            let i = r.add(
                ProblemKind::StaleMount,
                format!("mount {}", m.id),
                format!("nothing is mounted at {} any more", m.target),
            );
            if opts.repair {
                self.forget_mount(&m.id)?;
                r.repaired(i, "forgotten, its dirs removed");
            }
        }
        let dir = self.layout.mounts_dir();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if rows.iter().any(|m| m.id.as_str() == name) {
                continue;
            }
            let busy = MountId::parse(&name)
                .is_some_and(|id| crate::mount::is_mountpoint(&self.layout.mount_merged(&id)));
            let i = r.add(
                ProblemKind::OrphanMountDir,
                format!("mounts/{name}"),
                if busy {
                    "no mount row, but something is mounted on it"
                } else {
                    "no mount row"
                },
            );
            if opts.repair && !busy {
                staging::remove_tree(&entry.path()).at(&entry.path())?;
                r.repaired(i, "removed");
            }
        }
        Ok(())
    }

    fn check_images(
        &mut self,
        r: &mut FsckReport,
        opts: FsckOptions,
        damaged: &HashSet<LayerKey>,
    ) -> Result<()> {
        for img in self.db.images()? {
            let layers = self.db.image_layers(&img.id)?;
            let mut why = vec![];
            if let Some(l) = layers.iter().find(|l| damaged.contains(&l.key)) {
                why.push(format!("its layer {} is damaged", l.diff_id));
            }
            match self.config_bytes(&img.id) {
                Err(_) => why.push("its config blob is missing".to_string()),
                Ok(bytes) if Digest::of_bytes(&bytes) != img.id => {
                    why.push("its config blob is corrupt".to_string())
                }
                Ok(_) => match self.config(&img.id) {
                    Err(e) => why.push(format!("its config does not parse: {e}")),
                    Ok(c) => {
                        let stored: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
                        if c.diff_ids().iter().collect::<Vec<_>>() != stored {
                            why.push("its layers do not match its config's diff_ids".to_string());
                        }
                    }
                },
            }
            if why.is_empty() {
                continue;
            }
            let tags = self.familiar_tags(&img.id)?;
            let subject = match tags.first() {
                Some(t) => format!("image {} ({t})", img.id.short()),
                None => format!("image {}", img.id.short()),
            };
            let i = r.add(ProblemKind::BrokenImage, subject, why.join("; "));
            if !opts.repair {
                continue;
            }
            if !self.mounts_of_image(&img.id)?.is_empty() {
                continue;
            }
            let mut report = RemoveReport::default();
            self.delete_image(&img.id, &mut report)?;
            let names = if tags.is_empty() {
                String::new()
            } else {
                format!(" ({})", tags.join(", "))
            };
            r.repaired(
                i,
                format!(
                    "removed{names}, with {} layers only it used; load it again to restore it",
                    report.deleted_layers.len()
                ),
            );
            for p in r.problems.iter_mut() {
                let fixed = report
                    .deleted_layers
                    .iter()
                    .any(|(d, _, _)| p.subject == format!("layer {d}"));
                if fixed && p.repaired.is_none() {
                    p.repaired = Some("removed with the images that used it".into());
                }
            }
        }
        Ok(())
    }

    fn check_modes(&self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        let root = self.layout.root();
        for w in super::perms::wrong_modes(&self.layout).at(root)? {
            let shown = w
                .path
                .strip_prefix(root)
                .unwrap_or(&w.path)
                .display()
                .to_string();
            let i = r.add(
                ProblemKind::Permissions,
                if shown.is_empty() {
                    ".".to_string()
                } else {
                    shown
                },
                format!("mode {:04o}, the store allows {:04o}", w.mode, w.want),
            );
            if opts.repair {
                let perm = fs::Permissions::from_mode(w.want);
                fs::set_permissions(&w.path, perm).at(&w.path)?;
                r.repaired(i, format!("set to {:04o}", w.want));
            }
        }
        Ok(())
    }

    fn check_blobs(&mut self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        // Configs, the manifests or indexes names came with, and the manifests those indexes
        // list (a multi-platform pull keeps the index and the platform's manifest).
        let wanted: BTreeSet<String> = self
            .referenced_blobs()?
            .iter()
            .map(|d| d.hex().to_string())
            .collect();
        let dir = self.layout.blobs_dir();
        let mut orphans = vec![];
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if wanted.contains(&name) {
                continue;
            }
            let digest = Digest::from_hex(&name).ok();
            if digest.is_none() && name.starts_with('.') && is_recent(&entry.path()) {
                continue; // a blob being written (see `staging::write_atomic`)
            }
            let i = r.add(
                ProblemKind::OrphanBlob,
                format!("blobs/sha256/{name}"),
                "no image, repository digest or index refers to it",
            );
            match digest.filter(|_| opts.repair) {
                Some(d) => orphans.push((i, name, d)),
                None if opts.repair => {
                    // Not a blob: a killed writer's temp file, or something put there by hand.
                    fs::remove_file(entry.path()).at(&entry.path())?;
                    r.repaired(i, "removed");
                }
                None => {}
            }
        }
        if !orphans.is_empty() {
            // Deleted the way `rmi` deletes blobs: only while nothing refers to them, checked
            // under the database's write lock (a load may be about to record one).
            for (_, _, d) in &orphans {
                self.db.mark_blob_removal(d)?;
            }
            self.finish_blob_removals()?;
            for (i, name, _) in orphans {
                r.repaired(
                    i,
                    if dir.join(&name).exists() {
                        "kept: an image recorded meanwhile refers to it"
                    } else {
                        "removed"
                    },
                );
            }
        }
        Ok(())
    }
}

/// Modified within the last minute: a temp file some running command is writing.
fn is_recent(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(60))
}
