//! `df`: what the store holds on disk, as `docker system df` accounts it.
//!
//! Sizes are the bytes of regular files, as recorded when each layer was stored (block rounding and
//! directory entries are not counted, as docker does not). A layer is counted once however many
//! images use it: that is the sharing this store is built for. An image's *shared* size is the part
//! of its layers that other images use too; its *unique* size is what deleting it alone would free.

use super::layout::{LayerKey, MountId};
use super::{IoContext, Result, Store};
use crate::digest::Digest;
use std::collections::HashMap;
use std::path::Path;

use rustix::fd::AsFd;
use rustix::fs::FileType;

use crate::sys::open::{file_type, open_root, DirAccess};
use crate::sys::walk::{walk, Entry, Visitor};

#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub id: Digest,
    pub created: Option<String>,
    pub size: u64,
    pub shared: u64,
    pub unique: u64,
    pub mounts: usize,
}

#[derive(Debug, Clone)]
pub struct LayerUsage {
    pub key: LayerKey,
    pub diff_id: Digest,
    pub size: u64,
    /// Images that use the layer.
    pub images: usize,
    /// Whether an image that uses it is mounted, or containerd holds it as a snapshot.
    pub active: bool,
    /// Its compressed blobs kept for push (`--keep-blobs`): how many, and their bytes.
    pub kept_blobs: usize,
    pub kept_size: u64,
}

#[derive(Debug, Clone)]
pub struct MountUsage {
    pub id: MountId,
    pub image_id: Digest,
    pub driver: String,
    pub target: String,
    pub created: i64,
    /// Bytes written into the mount's own dirs (its upper dir, or the copy driver's tree).
    pub size: u64,
    pub mounted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    pub layers: Vec<LayerUsage>,
    pub mounts: Vec<MountUsage>,
}

impl DiskUsage {
    /// Bytes of all stored layers, each counted once.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Kept layer blobs: how many, and their bytes.
    pub fn kept_blobs(&self) -> (usize, u64) {
        let count = self.layers.iter().map(|l| l.kept_blobs).sum();
        (count, self.layers.iter().map(|l| l.kept_size).sum())
    }

    /// Bytes that deleting every image no mount uses would free.
    pub fn reclaimable(&self) -> u64 {
        self.layers
            .iter()
            .filter(|l| !l.active)
            .map(|l| l.size)
            .sum()
    }
}

impl Store {
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let mounts = self.db.mounts()?;
        let images = self.db.images()?;
        let mut users: HashMap<LayerKey, usize> = HashMap::new();
        let mut active: HashMap<LayerKey, bool> = HashMap::new();
        let mut per_image = Vec::with_capacity(images.len());
        for img in &images {
            let layers = self.db.image_layers(&img.id)?;
            let is_mounted = mounts.iter().any(|m| m.image_id == img.id);
            let mut seen: Vec<&str> = vec![];
            for l in &layers {
                if seen.contains(&l.key.as_str()) {
                    continue;
                }
                seen.push(l.key.as_str());
                *users.entry(l.key.clone()).or_default() += 1;
                *active.entry(l.key.clone()).or_default() |= is_mounted;
            }
            per_image.push((img, layers, is_mounted));
        }
        let mut usage = DiskUsage::default();
        for (img, layers, _) in &per_image {
            let (mut size, mut shared) = (0, 0);
            let mut seen: Vec<&str> = vec![];
            for l in layers {
                if seen.contains(&l.key.as_str()) {
                    continue;
                }
                seen.push(l.key.as_str());
                size += l.size;
                if users.get(&l.key).copied().unwrap_or(0) > 1 {
                    shared += l.size;
                }
            }
            usage.images.push(ImageUsage {
                id: img.id.clone(),
                created: img.created.clone(),
                size,
                shared,
                unique: size - shared,
                mounts: mounts.iter().filter(|m| m.image_id == img.id).count(),
            });
        }
        // A layer one of containerd's snapshots is stays while containerd holds it.
        for s in self.db.snapshots()? {
            if let Some(key) = s.layer {
                active.insert(key, true);
            }
        }
        for l in self.db.layers()? {
            let kept = self.kept_blobs(&l.key)?;
            usage.layers.push(LayerUsage {
                kept_blobs: kept.len(),
                kept_size: kept.iter().map(|b| b.size).sum(),
                images: users.get(&l.key).copied().unwrap_or(0),
                active: active.get(&l.key).copied().unwrap_or(false),
                key: l.key,
                diff_id: l.diff_id,
                size: l.size,
            });
        }
        for m in mounts {
            let size = tree_size(&self.layout.mount_upper(&m.id))?
                + tree_size(&self.layout.mount_copy(&m.id))?;
            usage.mounts.push(MountUsage {
                mounted: crate::mount::is_mountpoint(Path::new(&m.target)),
                id: m.id,
                image_id: m.image_id,
                driver: m.driver,
                target: m.target,
                created: m.created,
                size,
            });
        }
        Ok(usage)
    }
}

/// Bytes of the regular files under `dir` (0 if it does not exist); never follows symlinks, and
/// walks a container's tree of any depth with a bounded number of fds (`sys::walk`).
pub(crate) fn tree_size(dir: &Path) -> Result<u64> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at(dir),
    };
    if !meta.is_dir() {
        return Ok(if meta.is_file() { meta.len() } else { 0 });
    }
    let root = open_root(dir, DirAccess::Read)
        .map_err(std::io::Error::from)
        .at(dir)?;
    let mut sum = SumSizes(0);
    walk(root.as_fd(), &mut sum).at(dir)?;
    Ok(sum.0)
}

struct SumSizes(u64);

impl Visitor for SumSizes {
    type Error = std::io::Error;

    fn entry(&mut self, e: &Entry<'_>) -> std::io::Result<bool> {
        match file_type(e.stat) {
            FileType::RegularFile => self.0 += e.stat.st_size as u64,
            FileType::Directory => return Ok(true),
            _ => {}
        }
        Ok(false)
    }

    fn io_error(&self, path: &[u8], e: std::io::Error) -> std::io::Error {
        let path = String::from_utf8_lossy(path);
        std::io::Error::new(e.kind(), format!("{path}: {e}"))
    }
}
