//! Mounting stored images: overlay over the layer dirs (with the mount's own upper dir when writable),
//! a read-only bind for one-layer read-only views, or the copy driver's materialised tree.
//!
//! A mount's row is written before anything is mounted, so an image with a mount can never be deleted
//! underneath it (the pin); a row whose mount failed is removed again.

use super::db::{self, MountRow};
use super::layout::valid_mount_id;
use super::staging::{self, Staging};
use super::{IoContext, Result, Store, StoreError};
use crate::copier::{self, CopyOptions};
use crate::digest::Digest;
use crate::mount::{self, Features, OverlaySpec, RuntimeMount};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    Copy,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
        }
    }

    pub fn parse(s: &str) -> Option<Driver> {
        match s {
            "overlay" => Some(Driver::Overlay),
            "copy" => Some(Driver::Copy),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MountOptions {
    pub name: Option<String>,
    pub target: Option<PathBuf>,
    pub readonly: bool,
    pub driver: Driver,
    /// Prepare the dirs and record the mount, but leave the mounting to the caller (a runtime).
    pub no_mount: bool,
}

#[derive(Debug, Clone)]
pub struct MountedImage {
    pub id: String,
    pub image_id: Digest,
    pub mountpoint: PathBuf,
    pub driver: Driver,
    pub readonly: bool,
    pub mounts: Vec<RuntimeMount>,
}

impl Store {
    /// The kernel's overlay features, probed once per store and cached in features.json.
    pub fn features(&self) -> Result<Features> {
        let path = self.layout.features();
        if let Ok(bytes) = fs::read(&path) {
            if let Ok(f) = serde_json::from_slice::<Features>(&bytes) {
                return Ok(f);
            }
        }
        let scratch = Staging::new(&self.layout.tmp_dir(), "probe").at(&self.layout.tmp_dir())?;
        let features = mount::probe(scratch.path());
        drop(scratch);
        if let Ok(json) = serde_json::to_vec_pretty(&features) {
            staging::write_atomic(&path, &json).at(&path)?;
        }
        Ok(features)
    }

    pub fn mount_image(&mut self, image: &str, opts: &MountOptions) -> Result<MountedImage> {
        let image_id = self.resolve_image(image)?;
        let id = match &opts.name {
            Some(n) if !valid_mount_id(n) => return Err(StoreError::BadMountId(n.clone())),
            Some(n) => n.clone(),
            None => format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
        };
        if self.db.mount(&id)?.is_some() || self.layout.mount(&id).exists() {
            return Err(StoreError::MountExists(id));
        }
        let lowers = self.lower_dirs(&image_id)?;
        let target = match &opts.target {
            Some(t) => {
                fs::create_dir_all(t).at(t)?;
                t.canonicalize().at(t)?
            }
            None => self.layout.mount_merged(&id),
        };
        let dir = self.layout.mount(&id);
        fs::create_dir_all(self.layout.mount_merged(&id)).at(&dir)?;
        let row = MountRow {
            id: id.clone(),
            image_id: image_id.clone(),
            target: target.to_string_lossy().into_owned(),
            driver: opts.driver.name().to_string(),
            readonly: opts.readonly,
            created: db::now(),
            prepared: opts.no_mount,
        };
        self.db.write(|tx| db::insert_mount(tx, &row))?;
        match self.attach(&id, lowers, &target, opts) {
            Ok(mounts) => Ok(MountedImage {
                id,
                image_id,
                mountpoint: target,
                driver: opts.driver,
                readonly: opts.readonly,
                mounts,
            }),
            Err(e) => {
                let _ = self.db.write(|tx| db::delete_mount(tx, &id));
                let _ = staging::remove_tree(&dir);
                Err(e)
            }
        }
    }

    /// Builds the mount's tree (or mount list) and, unless `no_mount`, mounts it at `target`.
    fn attach(
        &self,
        id: &str,
        mut lowers: Vec<PathBuf>,
        target: &Path,
        opts: &MountOptions,
    ) -> Result<Vec<RuntimeMount>> {
        match opts.driver {
            Driver::Copy => {
                let copy = self.layout.mount_copy(id);
                fs::create_dir(&copy).at(&copy)?;
                let copy_opts = CopyOptions {
                    userxattr: false,
                    keep_whiteouts: false,
                };
                copier::materialize(&lowers, &copy, &copy_opts)?;
                let bind = RuntimeMount::bind(&copy, opts.readonly);
                if !opts.no_mount {
                    if opts.readonly {
                        mount::bind_readonly(&copy, target)?;
                    } else {
                        mount::bind(&copy, target)?;
                    }
                }
                Ok(vec![bind])
            }
            Driver::Overlay => {
                let features = self.features()?;
                if lowers.len() > features.max_lowers {
                    lowers = self.flatten_bottom(lowers, features.max_lowers)?;
                }
                if opts.readonly && lowers.len() == 1 {
                    if !opts.no_mount {
                        mount::bind_readonly(&lowers[0], target)?;
                    }
                    return Ok(vec![RuntimeMount::bind(&lowers[0], true)]);
                }
                let upper = if opts.readonly {
                    None
                } else {
                    let (u, w) = (self.layout.mount_upper(id), self.layout.mount_work(id));
                    fs::create_dir(&u).at(&u)?;
                    fs::create_dir(&w).at(&w)?;
                    Some((u, w))
                };
                let spec = OverlaySpec {
                    lowers,
                    upper,
                    userxattr: false,
                };
                if !opts.no_mount {
                    mount::mount_overlay(&spec, target, &features)?;
                }
                Ok(mount::runtime_mounts(&spec))
            }
        }
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
        let key = format!(
            "flat-{}",
            Digest::of_bytes(names.join("\n").as_bytes()).hex()
        );
        let diff = self.layout.layer_diff(&key);
        if !diff.is_dir() {
            let staging =
                Staging::new(&self.layout.tmp_dir(), "flatten").at(&self.layout.tmp_dir())?;
            let staged = staging.path().join("diff");
            fs::create_dir(&staged).at(&staged)?;
            copier::materialize(
                bottom,
                &staged,
                &CopyOptions {
                    userxattr: false,
                    keep_whiteouts: true,
                },
            )?;
            let dest = self.layout.layer(&key);
            staging.commit_to(&dest).at(&dest)?;
        }
        let mut out = top.to_vec();
        out.push(diff);
        Ok(out)
    }

    /// Finds a mount by id, unique id prefix, or mount target.
    pub fn find_mount(&self, id_or_dir: &str) -> Result<MountRow> {
        if let Some(m) = self.db.mount(id_or_dir)? {
            return Ok(m);
        }
        let all = self.db.mounts()?;
        let as_path = Path::new(id_or_dir).canonicalize().ok();
        if let Some(p) = as_path {
            if let Some(m) = all.iter().find(|m| Path::new(&m.target) == p) {
                return Ok(m.clone());
            }
        }
        let by_prefix: Vec<&MountRow> =
            all.iter().filter(|m| m.id.starts_with(id_or_dir)).collect();
        match by_prefix.as_slice() {
            [one] if !id_or_dir.is_empty() => Ok((*one).clone()),
            _ => Err(StoreError::NoSuchMount(id_or_dir.to_string())),
        }
    }

    /// Unmounts and forgets a mount; its writable layer is discarded.
    pub fn unmount(&mut self, id_or_dir: &str) -> Result<MountRow> {
        let m = self.find_mount(id_or_dir)?;
        let target = PathBuf::from(&m.target);
        if mount::is_mountpoint(&target) {
            mount::unmount(&target)?;
        }
        let dir = self.layout.mount(&m.id);
        staging::remove_tree(&dir).at(&dir)?;
        self.db.write(|tx| db::delete_mount(tx, &m.id))?;
        Ok(m)
    }
}
