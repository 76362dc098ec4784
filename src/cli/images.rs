//! `lamina tag`, `inspect`, `rmi` (`images` is in `image_list`).

use super::args::{InspectArgs, RmiArgs, TagArgs};
use super::{CliError, CliResult, Context};
use crate::store::{self, Store};
use serde_json::json;
use std::path::Path;

pub fn tag(root: &Path, a: TagArgs) -> CliResult {
    let what = || format!("tag {} {}", a.source, a.target);
    let mut store = Store::open(root).context(what)?;
    let id = store.resolve_image(&a.source).context(what)?;
    let target = store::normalize_tag(&a.target).context(what)?;
    store.tag(&id, &target).context(what)?;
    Ok(())
}

pub fn inspect(root: &Path, a: InspectArgs) -> CliResult {
    let store = Store::open(root).context(|| "inspect".to_string())?;
    let mut out = vec![];
    for name in &a.images {
        let what = || format!("inspect {name}");
        let id = store.resolve_image(name).context(what)?;
        let row = store
            .db()
            .image(&id)?
            .ok_or_else(|| CliError(format!("{}: no such image", what())))?;
        let config: serde_json::Value =
            serde_json::from_slice(&store.config_bytes(&id).context(what)?).context(what)?;
        let repo_digests: Vec<String> = store
            .db()
            .repo_digests_of(&id)?
            .iter()
            .map(|(r, d)| {
                format!(
                    "{}@{d}",
                    store::familiar(&format!("{r}:x")).trim_end_matches(":x")
                )
            })
            .collect();
        out.push(json!({
            "Id": id.to_string(),
            "RepoTags": store.familiar_tags(&id)?,
            "RepoDigests": repo_digests,
            "Created": config.get("created"),
            "Author": config.get("author"),
            "Architecture": config.get("architecture"),
            "Os": config.get("os"),
            "Variant": config.get("variant"),
            "Config": config.get("config"),
            "RootFS": {
                "Type": "layers",
                "Layers": config.pointer("/rootfs/diff_ids"),
            },
            "Size": row.size,
            "Mounts": store.db().mounts_of_image(&id)?.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn rmi(root: &Path, a: RmiArgs) -> CliResult {
    let mut store = Store::open(root).context(|| "rmi".to_string())?;
    let mut failed = None;
    for name in &a.images {
        match store.remove_image(name, a.force) {
            Ok(report) => {
                for t in &report.untagged {
                    println!("Untagged: {t}");
                }
                for id in &report.deleted_images {
                    println!("Deleted: {id}");
                }
                for (diff_id, _, _) in &report.deleted_layers {
                    println!("Deleted: {diff_id}");
                }
            }
            Err(e) => {
                eprintln!("lamina: rmi {name}: {e}");
                failed = Some(name.clone());
            }
        }
    }
    match failed {
        Some(_) => Err(CliError("rmi: some images could not be removed".into())),
        None => Ok(()),
    }
}
