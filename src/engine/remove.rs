//! `rmi` and `prune`: which images go, by docker's rules. The store deletes them (and the layers only
//! they used); a mounted image is never deleted, so what a mount shows never changes under it.

use super::{Engine, EngineError, Result};
use crate::store::{self, RemoveReport};

impl Engine {
    /// `rmi`: docker's rules. A name untags; the last name, or an ID, deletes the image. An ID with
    /// several names, or an image a mount uses, needs `force` (and a mounted image is then only
    /// untagged: its layers stay until it is unmounted and pruned).
    pub fn remove_image(&mut self, name: &str, force: bool) -> Result<RemoveReport> {
        let id = self.store.resolve_image(name)?;
        let tags = self.store.tags_of(&id)?;
        let by_name = store::normalize_tag(name)
            .ok()
            .filter(|t| tags.contains(t) && !store::names_id_of(name, &id));
        let mounts = self.store.mounts_of_image(&id)?;
        let mut report = RemoveReport::default();

        if let Some(tag) = by_name {
            if tags.len() > 1 || (!mounts.is_empty() && force) {
                self.store.untag(&tag)?;
                report.untagged.push(store::familiar(&tag));
                return Ok(report);
            }
        } else if tags.len() > 1 && !force {
            return Err(EngineError::MultipleRepositories {
                image: id.short().to_string(),
            });
        }
        if let Some(m) = mounts.first() {
            if !force {
                return Err(EngineError::ImageInUse {
                    image: name.to_string(),
                    mount: m.id.to_string(),
                    target: m.target.clone(),
                });
            }
            for t in &tags {
                self.store.untag(t)?;
                report.untagged.push(store::familiar(t));
            }
            return Ok(report);
        }
        for t in &tags {
            report.untagged.push(store::familiar(t));
        }
        self.store.delete_image(&id, &mut report)?;
        Ok(report)
    }

    /// Deletes dangling images (with `all`: every image no mount uses) and the layers only they used.
    pub fn prune(&mut self, all: bool) -> Result<RemoveReport> {
        let mut report = RemoveReport::default();
        let mounted: Vec<_> = self
            .store
            .mounts()?
            .into_iter()
            .map(|m| m.image_id)
            .collect();
        for img in self.store.images()? {
            if mounted.contains(&img.id) {
                continue;
            }
            let tags = self.store.tags_of(&img.id)?;
            if !tags.is_empty() && !all {
                continue;
            }
            report
                .untagged
                .extend(tags.iter().map(|t| store::familiar(t)));
            self.store.delete_image(&img.id, &mut report)?;
        }
        Ok(report)
    }

    /// `tag`: points TARGET (a name) at the image SOURCE names.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<()> {
        let id = self.store.resolve_image(source)?;
        let target = store::normalize_tag(target)?;
        self.store.tag(&id, &target)?;
        Ok(())
    }
}
