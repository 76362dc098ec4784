//! Local manifest lists (`manifest create`, `annotate`, `push`, `rm`): what docker keeps as files
//! under `~/.docker/manifests/<list>/<member>`, kept here in the metadata database, one row per
//! member, so that creating, amending, annotating or removing a list is one transaction (a
//! process killed halfway leaves the list as it was, never half a list).
//!
//! A list exists while it has a member; members come back in docker's order, which is the order
//! of its file names (`:` written `-`, `/` written `_`).

use super::db::DbError;
use super::{Result, Store};
use crate::image::Descriptor;

/// One image of a local manifest list, as `manifest create` fetched it (docker's `ImageManifest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListMember {
    /// The image's full reference, as given (`127.0.0.1:5000/app:amd64`).
    pub reference: String,
    /// Its manifest's descriptor, with the platform its config states (or `annotate` set).
    pub descriptor: Descriptor,
    /// Its manifest, as the registry served it.
    pub raw: Vec<u8>,
}

/// The name docker gives a member's file, which decides the order of a list.
fn file_safe_name(reference: &str) -> String {
    reference.replace(':', "-").replace('/', "_")
}

impl Store {
    /// The members of the local list `list` (a full reference); empty when there is no such list.
    pub fn manifest_list(&self, list: &str) -> Result<Vec<ListMember>> {
        let mut members = self
            .db
            .list_members(list)?
            .into_iter()
            .map(|(reference, descriptor, raw)| {
                let descriptor =
                    serde_json::from_str(&descriptor).map_err(|_| DbError::Corrupt {
                        column: "manifest_list_members.descriptor",
                        value: descriptor,
                    })?;
                Ok(ListMember {
                    reference,
                    descriptor,
                    raw,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        members.sort_by_cached_key(|m| file_safe_name(&m.reference));
        Ok(members)
    }

    /// Adds `members` to the list (creating it), replacing members of the same reference; all in
    /// one transaction.
    pub fn save_manifest_list(&mut self, list: &str, members: &[ListMember]) -> Result<()> {
        let rows = members
            .iter()
            .map(|m| {
                let descriptor = serde_json::to_string(&m.descriptor).map_err(|e| {
                    super::StoreError::BadName {
                        name: m.reference.clone(),
                        reason: format!("cannot encode its descriptor: {e}"),
                    }
                })?;
                Ok((m.reference.clone(), descriptor, m.raw.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.db.save_list_members(list, &rows)?)
    }

    /// Removes the local list `list`; false when there was none.
    pub fn remove_manifest_list(&mut self, list: &str) -> Result<bool> {
        Ok(self.db.delete_list(list)?)
    }
}

#[cfg(test)]
#[path = "manifest_lists_tests.rs"]
mod tests;
