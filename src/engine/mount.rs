//! Mounting stored images: overlay over the layer dirs (with the mount's own upper dir when writable),
//! a read-only bind for one-layer read-only views, or the copy driver's materialised tree; and an OCI
//! runtime bundle over the mount when asked.
//!
//! Planning a mount is separate from making it (containerd's `mounts()` only describes): the plan
//! (see `plan.rs`) is pure and says which dirs are stacked where, so it is tested without root;
//! [`Engine::mount`] then makes the dirs and mounts.
//!
//! A mount's row is written before anything is mounted, so an image with a mount can never be deleted
//! underneath it (the pin); a row whose mount failed is removed again.

use super::plan::{plan, Driver, MountPlan, PlannedMount};
use super::{Engine, EngineError, Result};
use crate::copier::{self, CopyOptions};
use crate::digest::Digest;
use crate::mount::{self, Features, RuntimeMount};
use crate::runtime::{self, Change};
use crate::store::staging::{self, Staging};
use crate::store::{
    self, perms, FileLock, IoContext, LayerKey, LockMode, MountId, MountRow, StoreError,
};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct MountOptions {
    pub name: Option<String>,
    pub target: Option<PathBuf>,
    pub readonly: bool,
    pub driver: Driver,
    /// Prepare the dirs and record the mount, but leave the mounting to the caller (a runtime).
    pub no_mount: bool,
    /// Also write an OCI runtime bundle here; the image is mounted at `bundle/rootfs`.
    pub bundle: Option<PathBuf>,
    /// The bundle's process args (replacing the image's Cmd); empty keeps the image's.
    pub command: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct MountedImage {
    pub id: MountId,
    pub image_id: Digest,
    pub mountpoint: PathBuf,
    pub driver: Driver,
    pub readonly: bool,
    pub mounts: Vec<RuntimeMount>,
}

impl Engine {
    /// The kernel's overlay features, probed once per store and cached in features.json.
    pub fn features(&self) -> Result<Features> {
        let path = self.store.layout().features();
        if let Ok(bytes) = fs::read(&path) {
            if let Ok(f) = serde_json::from_slice::<Features>(&bytes) {
                return Ok(f);
            }
        }
        let scratch = self.store.stage("probe")?;
        let features = mount::probe(scratch.path());
        drop(scratch);
        if let Ok(json) = serde_json::to_vec_pretty(&features) {
            staging::write_atomic(&path, &json).at(&path)?;
        }
        Ok(features)
    }

    /// `lamina mount`: mounts an image (and writes its bundle, if asked).
    pub fn mount(&mut self, image: &str, opts: &MountOptions) -> Result<MountedImage> {
        // A target outside the store is made (where missing) and checked here, walking its path
        // without following any symlink: a planted `BUNDLE/rootfs -> /etc` is refused, never
        // mounted over. The mount itself opens it the same way again (see `mount::Target`).
        let target = match (&opts.bundle, &opts.target) {
            (Some(_), Some(_)) => {
                return Err(EngineError::Invalid(
                    "--bundle mounts at BUNDLE/rootfs; do not give --target too".into(),
                ))
            }
            (Some(b), None) => {
                // A bundle lamina makes is 0700: its rootfs shows the image's setuid binaries.
                mount::Target::create(b, 0o700)?;
                Some(mount::Target::create(&b.join(runtime::ROOTFS_DIR), 0o755)?)
            }
            (None, Some(t)) => Some(mount::Target::create(t, 0o755)?),
            (None, None) => None,
        };
        let target = target.map(|t| t.path().to_path_buf());
        let mounted = self.mount_image(image, target, opts)?;
        if let Some(bundle) = &opts.bundle {
            if let Err(e) = self.write_bundle(&mounted, bundle, &opts.command) {
                let _ = self.unmount(mounted.id.as_str());
                return Err(EngineError::Bundle {
                    dir: bundle.clone(),
                    source: Box::new(e),
                });
            }
        }
        Ok(mounted)
    }

    pub(super) fn mount_image(
        &mut self,
        image: &str,
        target: Option<PathBuf>,
        opts: &MountOptions,
    ) -> Result<MountedImage> {
        let image_id = self.store.resolve_image(image)?;
        let id = match &opts.name {
            Some(n) => MountId::parse(n).ok_or_else(|| StoreError::BadMountId(n.clone()))?,
            None => MountId::random(),
        };
        let layout = self.store.layout().clone();
        // The mount's lock, held while it is made; its marker says so to the commands after a kill.
        let lock_path = layout.mount_lock(&id);
        let _lock = FileLock::acquire(&lock_path, LockMode::Exclusive).at(&lock_path)?;
        self.clear_leftover_mount(&id)?;
        if self.store.mount_exists(&id)? {
            return Err(StoreError::MountExists(id.to_string()).into());
        }
        let marker = layout.mount_marker(&id);
        staging::write_atomic(&marker, b"").at(&marker)?;
        let made = self.make_mount(&id, &image_id, target, opts);
        if made.is_err() {
            let _ = self.store.forget_mount(&id);
        }
        fs::remove_file(&marker).at(&marker)?;
        made
    }

    /// Mount `id`'s dirs, row and mount, in that order (the row pins the image before its layers
    /// are looked at, so no removal takes them from under the mount).
    fn make_mount(
        &mut self,
        id: &MountId,
        image_id: &Digest,
        target: Option<PathBuf>,
        opts: &MountOptions,
    ) -> Result<MountedImage> {
        let layout = self.store.layout().clone();
        let target = target.unwrap_or_else(|| layout.mount_merged(id));
        // mounts/<id>/ is 0700: nobody but root walks to its merged tree (see `store::perms`).
        let dir = layout.mount(id);
        perms::create_private_dir(&dir).at(&dir)?;
        let merged = layout.mount_merged(id);
        perms::create_private_dir(&merged).at(&merged)?;
        let row = MountRow {
            id: id.clone(),
            image_id: image_id.clone(),
            target: target.to_string_lossy().into_owned(),
            driver: opts.driver.name().to_string(),
            readonly: opts.readonly,
            created: store::now(),
            prepared: opts.no_mount,
        };
        self.store
            .add_mount(&row)
            .map_err(|e| match self.store.image(image_id) {
                Ok(None) => StoreError::NoSuchImage(image_id.to_string()),
                _ => e,
            })?;
        let lowers = self.store.lower_dirs(image_id)?;
        let mounts = self.attach(id, lowers, target.clone(), opts)?;
        Ok(MountedImage {
            id: id.clone(),
            image_id: image_id.clone(),
            mountpoint: target,
            driver: opts.driver,
            readonly: opts.readonly,
            mounts,
        })
    }

    /// With mount `id`'s lock held: what a killed `mount` of that id left (a row whose mount was
    /// never finished, or nothing is mounted any more, or dirs without a row) is cleared, so that the
    /// id can be used again. A live mount, or a prepared one (`--no-mount`), stays.
    fn clear_leftover_mount(&mut self, id: &MountId) -> Result<()> {
        let layout = self.store.layout().clone();
        let marker = layout.mount_marker(id);
        let killed = marker.exists();
        match self.store.mounts()?.into_iter().find(|m| &m.id == id) {
            Some(m) => {
                let target = PathBuf::from(&m.target);
                let mounted = mount::is_mountpoint(&target);
                if !killed && (m.prepared || mounted) {
                    return Ok(());
                }
                if mounted {
                    mount::unmount(&target)?;
                }
                self.store.forget_mount(id)?;
            }
            None => {
                let dir = layout.mount(id);
                for m in mount::mounts_below(&dir) {
                    mount::unmount(&m)?;
                }
                staging::remove_tree(&dir).at(&dir)?;
            }
        }
        if killed {
            fs::remove_file(&marker).at(&marker)?;
        }
        Ok(())
    }

    /// Undoes the mounts whose maker was killed (their marker is left and their lock free): run by
    /// every command that opens the store, so that a killed `mount` leaves nothing `fsck` reports.
    pub(super) fn clear_killed_mounts(&mut self) -> Result<()> {
        let layout = self.store.layout().clone();
        for id in layout.marked_mounts().at(&layout.locks_dir())? {
            let lock_path = layout.mount_lock(&id);
            let Some(_lock) =
                FileLock::try_acquire(&lock_path, LockMode::Exclusive).at(&lock_path)?
            else {
                continue; // being made right now
            };
            if layout.mount_marker(&id).exists() {
                self.clear_leftover_mount(&id)?;
            }
        }
        Ok(())
    }

    /// Plans the mount and makes its dirs (and tree) and, unless `no_mount`, mounts it at `target`.
    fn attach(
        &self,
        id: &MountId,
        mut lowers: Vec<PathBuf>,
        target: PathBuf,
        opts: &MountOptions,
    ) -> Result<Vec<RuntimeMount>> {
        let features = match opts.driver {
            Driver::Overlay => {
                let features = self.features()?;
                if lowers.len() > features.max_lowers {
                    lowers = self.flatten_bottom(lowers, features.max_lowers)?;
                }
                Some(features)
            }
            Driver::Copy => None,
        };
        let planned = plan(
            self.store.layout(),
            id,
            lowers,
            target,
            opts.driver,
            opts.readonly,
        );
        let mounts = planned.runtime_mounts();
        make(&planned, features.as_ref(), opts.no_mount)?;
        Ok(mounts)
    }

    /// Replaces the bottom layers of a too-deep stack by one flattened layer, cached in the store under
    /// the chainID-like digest of the dirs it merges, so the next mount reuses it.
    fn flatten_bottom(&self, lowers: Vec<PathBuf>, max: usize) -> Result<Vec<PathBuf>> {
        let keep = max.saturating_sub(1).max(1);
        let (top, bottom) = lowers.split_at(keep);
        let names: Vec<String> = bottom
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let key = LayerKey::flat(&Digest::of_bytes(names.join("\n").as_bytes()));
        let paths = self.store.layout().layer(&key);
        if !paths.diff().is_dir() {
            let staging: Staging = self.store.stage("flatten")?;
            let staged = staging.path().join("diff");
            fs::create_dir(&staged).at(&staged)?;
            copier::materialize(
                bottom,
                &staged,
                &CopyOptions {
                    keep_whiteouts: true,
                },
            )?;
            staging.commit_to(paths.dir()).at(paths.dir())?;
        }
        let mut out = top.to_vec();
        out.push(paths.diff());
        Ok(out)
    }

    /// Unmounts and forgets a mount; its writable layer is discarded.
    pub fn unmount(&mut self, id_or_dir: &str) -> Result<MountRow> {
        let m = self.store.find_mount(id_or_dir)?;
        // Not while it is being made: the maker finishes (or fails) first.
        let lock_path = self.store.layout().mount_lock(&m.id);
        let _lock = FileLock::acquire(&lock_path, LockMode::Exclusive).at(&lock_path)?;
        let m = self.store.find_mount(m.id.as_str())?;
        let target = PathBuf::from(&m.target);
        if mount::is_mountpoint(&target) {
            mount::unmount(&target)?;
        }
        self.store.forget_mount(&m.id)?;
        Ok(m)
    }

    /// Every mount, oldest first.
    pub fn mounts(&self) -> Result<Vec<MountRow>> {
        Ok(self.store.mounts()?)
    }

    /// `lamina diff`: what a writable mount changed, as docker diff lists it.
    pub fn mount_changes(&self, id_or_dir: &str) -> Result<Vec<Change>> {
        let m = self.store.find_mount(id_or_dir)?;
        let lowers = self.store.lower_dirs(&m.image_id)?;
        Ok(match self.writable_tree(&m)? {
            WritableTree::Upper(upper) => runtime::upper_changes(&upper, &lowers)?,
            WritableTree::Copy(tree) => runtime::tree_changes(&tree, &lowers)?,
        })
    }

    /// Where a writable mount keeps what its container wrote.
    pub(super) fn writable_tree(&self, m: &MountRow) -> Result<WritableTree> {
        let refuse = |why: &str| {
            Err(EngineError::NoChanges {
                mount: m.id.to_string(),
                reason: why.to_string(),
            })
        };
        if m.readonly {
            return refuse("a read-only mount has no changes");
        }
        let layout = self.store.layout();
        match Driver::parse(&m.driver) {
            Some(Driver::Overlay) => {
                let upper = layout.mount_upper(&m.id);
                if !upper.is_dir() {
                    return refuse("the mount's upper dir is gone (fsck reports it)");
                }
                Ok(WritableTree::Upper(upper))
            }
            Some(Driver::Copy) => {
                let tree = layout.mount_copy(&m.id);
                if !tree.is_dir() {
                    return refuse("the mount's copied tree is gone (fsck reports it)");
                }
                Ok(WritableTree::Copy(tree))
            }
            None => refuse("the mount's driver is unknown to this lamina"),
        }
    }

    /// Writes an OCI runtime bundle (config.json from the image's config) whose rootfs is the mount.
    fn write_bundle(
        &self,
        mounted: &MountedImage,
        bundle: &Path,
        command: &[String],
    ) -> Result<()> {
        let cfg = self.image_runtime_config(&mounted.image_id)?;
        let opts = runtime::BundleOptions {
            args_override: (!command.is_empty()).then(|| command.to_vec()),
            readonly_rootfs: mounted.readonly,
            terminal: false,
            hostname: mounted.id.as_str().chars().take(12).collect(),
            ..Default::default()
        };
        let spec = runtime::build_spec(&cfg, &mounted.mountpoint, &opts)?;
        runtime::write_bundle(bundle, &spec)?;
        Ok(())
    }

    /// What of the image's config shapes its container's process (Entrypoint, Cmd, Env, ...).
    pub(super) fn image_runtime_config(
        &self,
        image_id: &Digest,
    ) -> Result<runtime::ImageRuntimeConfig> {
        let config = self.store.config(image_id)?;
        let c = config.container_config();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(runtime::ImageRuntimeConfig {
            user: non_empty(&c.user),
            env: c.env.clone(),
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            working_dir: non_empty(&c.working_dir),
            hostname: None,
            stop_signal: non_empty(&c.stop_signal),
        })
    }
}

/// Makes the dirs a plan needs and, unless `no_mount`, mounts it.
fn make(plan: &MountPlan, features: Option<&Features>, no_mount: bool) -> Result<()> {
    let target = &plan.target;
    match &plan.mount {
        PlannedMount::Copy {
            lowers,
            tree,
            readonly,
        } => {
            fs::create_dir(tree).at(tree)?;
            let copy_opts = CopyOptions {
                keep_whiteouts: false,
            };
            copier::materialize(lowers, tree, &copy_opts)?;
            if !no_mount {
                if *readonly {
                    mount::bind_readonly(tree, target)?;
                } else {
                    mount::bind(tree, target)?;
                }
            }
        }
        PlannedMount::BindLayer(dir) => {
            if !no_mount {
                mount::bind_readonly(dir, target)?;
            }
        }
        PlannedMount::Overlay(spec) => {
            if let Some((u, w)) = &spec.upper {
                // The upper dir's mode is the mounted root's: 0755 as a root dir is, whatever the
                // umask (mounts/<id>/ above it keeps others out).
                fs::DirBuilder::new().mode(0o755).create(u).at(u)?;
                fs::set_permissions(u, fs::Permissions::from_mode(0o755)).at(u)?;
                perms::create_private_dir(w).at(w)?;
            }
            if !no_mount {
                let features = features.cloned().unwrap_or_else(Features::conservative);
                mount::mount_overlay(spec, target, &features)?;
            }
        }
    }
    Ok(())
}

/// A writable mount's record of its container's writes.
pub(super) enum WritableTree {
    /// An overlay upper dir: exactly the changes.
    Upper(PathBuf),
    /// A copy driver's whole tree: the changes are found by comparing it with the image.
    Copy(PathBuf),
}
