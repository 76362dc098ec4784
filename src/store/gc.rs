//! Untagging and deleting images, with layers removed only when their last user goes.
//!
//! The database transaction decides what goes; directories are removed after it commits, by renaming
//! them into `tmp/` first so that a layer dir is either whole in `layers/` or gone. A process killed in
//! between leaves a staging dir that the next command clears.

use super::db::DbError;
use super::staging::{self, Staging};
use super::{names, IoContext, Result, Store, StoreError};
use crate::digest::Digest;
use rusqlite::params;
use std::fs;

#[derive(Debug, Default)]
pub struct RemoveReport {
    /// Familiar names removed.
    pub untagged: Vec<String>,
    /// Image IDs deleted.
    pub deleted_images: Vec<Digest>,
    /// Layers deleted: (diffID, layer key, bytes).
    pub deleted_layers: Vec<(Digest, String, u64)>,
}

impl Store {
    /// `rmi`: docker's rules. A name untags; the last name, or an ID, deletes the image. An ID with
    /// several names, or an image a mount uses, needs `force` (and a mounted image is then only
    /// untagged: its layers stay until it is unmounted and pruned).
    pub fn remove_image(&mut self, name: &str, force: bool) -> Result<RemoveReport> {
        let id = self.resolve_image(name)?;
        let tags = self.db.tags_of(&id)?;
        let by_name = names::normalize_tag(name)
            .ok()
            .filter(|t| tags.contains(t) && !is_id_like(name, &id));
        let mounts = self.db.mounts_of_image(&id)?;
        let mut report = RemoveReport::default();

        if let Some(tag) = by_name {
            if tags.len() > 1 || (!mounts.is_empty() && force) {
                self.untag(&tag)?;
                report.untagged.push(names::familiar(&tag));
                return Ok(report);
            }
        } else if tags.len() > 1 && !force {
            return Err(StoreError::Image {
                image: id.short().to_string(),
                reason: "unable to delete (must be forced): image is referenced in multiple repositories"
                    .into(),
            });
        }
        if let Some(m) = mounts.first() {
            if !force {
                return Err(StoreError::Image {
                    image: name.to_string(),
                    reason: format!(
                        "unable to remove (must force): image is being used by mount {} at {}",
                        m.id, m.target
                    ),
                });
            }
            for t in &tags {
                self.untag(t)?;
                report.untagged.push(names::familiar(t));
            }
            return Ok(report);
        }
        for t in &tags {
            report.untagged.push(names::familiar(t));
        }
        self.delete_image(&id, &mut report)?;
        Ok(report)
    }

    pub fn untag(&mut self, full_name: &str) -> Result<()> {
        self.db.write(|tx| {
            tx.execute("DELETE FROM tags WHERE name = ?1", params![full_name])?;
            Ok(())
        })?;
        Ok(())
    }

    /// Points `full_name` at image `id`.
    pub fn tag(&mut self, id: &Digest, full_name: &str) -> Result<()> {
        self.db
            .write(|tx| super::db::set_tag(tx, full_name, id).map(|_| ()))?;
        Ok(())
    }

    /// Deletes an image (which must have no mounts) and every layer no other image uses.
    pub(crate) fn delete_image(&mut self, id: &Digest, report: &mut RemoveReport) -> Result<()> {
        let layers = self.db.image_layers(id)?;
        let manifests = self.db.repo_digests_of(id)?;
        let idstr = id.to_string();
        let gone: Vec<super::LayerRow> = self.db.write(|tx| {
            let busy: i64 = tx.query_row(
                "SELECT COUNT(*) FROM mounts WHERE image_id = ?1",
                params![idstr],
                |r| r.get(0),
            )?;
            if busy > 0 {
                return Err(DbError::Corrupt {
                    column: "mounts.image_id",
                    value: format!("{idstr} gained a mount while being deleted"),
                });
            }
            tx.execute("DELETE FROM tags WHERE image_id = ?1", params![idstr])?;
            tx.execute(
                "DELETE FROM repo_digests WHERE image_id = ?1",
                params![idstr],
            )?;
            tx.execute(
                "DELETE FROM image_layers WHERE image_id = ?1",
                params![idstr],
            )?;
            tx.execute("DELETE FROM images WHERE id = ?1", params![idstr])?;
            let mut gone = Vec::new();
            for l in &layers {
                let users: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM image_layers WHERE layer_key = ?1",
                    params![l.key],
                    |r| r.get(0),
                )?;
                if users == 0 && !gone.iter().any(|g: &super::LayerRow| g.key == l.key) {
                    tx.execute("DELETE FROM layers WHERE key = ?1", params![l.key])?;
                    gone.push(l.clone());
                }
            }
            Ok(gone)
        })?;
        report.deleted_images.push(id.clone());
        for l in gone {
            self.remove_layer_dir(&l.key)?;
            report.deleted_layers.push((l.diff_id, l.key, l.size));
        }
        let blob = self.layout.blob(id);
        let _ = fs::remove_file(blob);
        // The manifests it was loaded with, unless another image came with the same one.
        for (_, digest) in manifests {
            let users: i64 = self
                .db
                .conn()
                .query_row(
                    "SELECT COUNT(*) FROM repo_digests WHERE digest = ?1",
                    params![digest.to_string()],
                    |r| r.get(0),
                )
                .map_err(DbError::from)?;
            if users == 0 {
                let _ = fs::remove_file(self.layout.blob(&digest));
            }
        }
        Ok(())
    }

    /// Takes a layer dir out of `layers/` atomically (rename into tmp/), then deletes it.
    pub(crate) fn remove_layer_dir(&self, key: &str) -> Result<()> {
        let dir = self.layout.layer(key);
        if !dir.exists() {
            return Ok(());
        }
        let trash = Staging::new(&self.layout.tmp_dir(), "delete").at(&self.layout.tmp_dir())?;
        let dest = trash.path().join("layer");
        fs::rename(&dir, &dest).at(&dir)?;
        staging::fsync_dir(&self.layout.layers_dir()).at(&self.layout.layers_dir())?;
        drop(trash); // removes the tree
        Ok(())
    }
}

/// True when `name` denotes the image by ID (full or prefix) rather than by a tag.
fn is_id_like(name: &str, id: &Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty() && id.hex().starts_with(hex)
}
