//! What the listing commands show: images, history, inspect, info, df, fsck. The engine gathers the
//! data; the caller formats it.

use super::{Engine, Result};
use crate::digest::Digest;
use crate::image::{History, ImageConfig};
use crate::mount::Features;
use crate::store::{familiar_repository, DiskUsage, FsckOptions, FsckReport, ImageRow, MountId};

/// One image as `images` lists it.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub row: ImageRow,
    /// Familiar `name:tag`s, sorted.
    pub tags: Vec<String>,
    /// (familiar repository, manifest digest) pairs it came with.
    pub digests: Vec<(String, Digest)>,
    /// How many mounts use it.
    pub mounts: usize,
}

/// One image as `inspect` shows it.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub row: ImageRow,
    /// The config as stored (the caller picks the fields it shows).
    pub config: serde_json::Value,
    pub tags: Vec<String>,
    /// `repository@digest`, familiar.
    pub repo_digests: Vec<String>,
    pub mounts: Vec<MountId>,
}

/// One line of `history`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// RFC 3339, as the config has it.
    pub created: Option<String>,
    pub created_by: String,
    /// Bytes of the layer this step made (0 for an empty layer).
    pub size: u64,
    pub comment: String,
}

/// What `info` shows.
#[derive(Debug, Clone)]
pub struct Info {
    pub images: usize,
    pub layers: usize,
    pub mounts: usize,
    pub features: Features,
}

impl Engine {
    /// Resolves IMAGE (name, name@digest, ID or unique ID prefix) to an image ID.
    pub fn resolve(&self, name: &str) -> Result<Digest> {
        Ok(self.store.resolve_image(name)?)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRow>> {
        Ok(self.store.image(id)?)
    }

    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        Ok(self.store.config(id)?)
    }

    /// Familiar names of an image's tags, sorted.
    pub fn familiar_tags(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self.store.familiar_tags(id)?)
    }

    /// Every image, most recently loaded first.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let mounts = self.store.mounts()?;
        let mut out = vec![];
        for row in self.store.images()? {
            let tags = self.store.familiar_tags(&row.id)?;
            let digests = self
                .store
                .repo_digests_of(&row.id)?
                .into_iter()
                .map(|(repo, d)| (familiar_repository(&repo), d))
                .collect();
            out.push(ImageSummary {
                mounts: mounts.iter().filter(|m| m.image_id == row.id).count(),
                row,
                tags,
                digests,
            });
        }
        Ok(out)
    }

    pub fn inspect(&self, name: &str) -> Result<ImageDetails> {
        let id = self.store.resolve_image(name)?;
        let row = self
            .store
            .image(&id)?
            .ok_or_else(|| crate::store::StoreError::NoSuchImage(name.to_string()))?;
        let bytes = self.store.config_bytes(&id)?;
        let config = serde_json::from_slice(&bytes)
            .map_err(|e| super::EngineError::Invalid(e.to_string()))?;
        let repo_digests = self
            .store
            .repo_digests_of(&id)?
            .iter()
            .map(|(r, d)| format!("{}@{d}", familiar_repository(r)))
            .collect();
        Ok(ImageDetails {
            tags: self.store.familiar_tags(&id)?,
            repo_digests,
            mounts: self
                .store
                .mounts_of_image(&id)?
                .into_iter()
                .map(|m| m.id)
                .collect(),
            config,
            row,
        })
    }

    /// The image ID and its history, oldest first; each non-empty step takes the next layer's size.
    pub fn history(&self, name: &str) -> Result<(Digest, Vec<HistoryRow>)> {
        let id = self.store.resolve_image(name)?;
        let config = self.store.config(&id)?;
        let sizes: Vec<u64> = self
            .store
            .image_layers(&id)?
            .iter()
            .map(|l| l.size)
            .collect();
        Ok((id, history_rows(&config.file().history, &sizes)))
    }

    pub fn info(&self) -> Result<Info> {
        Ok(Info {
            features: self.features()?,
            images: self.store.images()?.len(),
            layers: self.store.layers()?.len(),
            mounts: self.store.mounts()?.len(),
        })
    }

    pub fn disk_usage(&self) -> Result<DiskUsage> {
        Ok(self.store.disk_usage()?)
    }

    pub fn fsck(&mut self, opts: FsckOptions) -> Result<FsckReport> {
        Ok(self.store.fsck(opts)?)
    }
}

/// docker's history rows: one per history entry, sized by the layers in order (an image without
/// history gets one row per layer).
fn history_rows(history: &[History], sizes: &[u64]) -> Vec<HistoryRow> {
    let mut rows = vec![];
    if history.is_empty() {
        for &size in sizes {
            rows.push(HistoryRow {
                created: None,
                created_by: String::new(),
                size,
                comment: String::new(),
            });
        }
    }
    let mut next_layer = sizes.iter();
    for h in history {
        let size = if h.empty_layer {
            0
        } else {
            next_layer.next().copied().unwrap_or(0)
        };
        rows.push(HistoryRow {
            created: h.created.clone(),
            created_by: h.created_by.clone().unwrap_or_default(),
            size,
            comment: h.comment.clone().unwrap_or_default(),
        });
    }
    rows
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
