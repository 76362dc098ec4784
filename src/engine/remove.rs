//! `prune`: deleting images nobody needs. Dangling images (no tag) go; with `all`, every image that no
//! mount uses goes. A mounted image is never touched, so what a mount shows never changes under it.

use super::{names, RemoveReport, Result, Store};

impl Store {
    /// Deletes dangling images (with `all`: every image no mount uses) and the layers only they used.
    pub fn prune(&mut self, all: bool) -> Result<RemoveReport> {
        let mut report = RemoveReport::default();
        let mounted: Vec<_> = self.db.mounts()?.into_iter().map(|m| m.image_id).collect();
        for img in self.db.images()? {
            if mounted.contains(&img.id) {
                continue;
            }
            let tags = self.db.tags_of(&img.id)?;
            if !tags.is_empty() && !all {
                continue;
            }
            report
                .untagged
                .extend(tags.iter().map(|t| names::familiar(t)));
            self.delete_image(&img.id, &mut report)?;
        }
        Ok(report)
    }
}

impl RemoveReport {
    /// Bytes freed: the sizes of the layers removed.
    pub fn reclaimed(&self) -> u64 {
        self.deleted_layers.iter().map(|(_, _, size)| size).sum()
    }
}
