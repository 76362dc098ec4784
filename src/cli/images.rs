//! `lamina tag`, `inspect`, `rmi` (`images` is in `image_list`).

use super::args::{InspectArgs, RmiArgs, TagArgs};
use super::{CliError, CliResult, Context};
use crate::engine::Engine;
use serde_json::json;
use std::path::Path;

pub fn tag(root: &Path, a: TagArgs) -> CliResult {
    let what = || format!("tag {} {}", a.source, a.target);
    let mut engine = Engine::open(root).context(what)?;
    engine.tag(&a.source, &a.target).context(what)?;
    Ok(())
}

pub fn inspect(root: &Path, a: InspectArgs) -> CliResult {
    let engine = Engine::open(root).context(|| "inspect".to_string())?;
    let mut out = vec![];
    for name in &a.images {
        let what = || format!("inspect {name}");
        let d = engine.inspect(name).context(what)?;
        let config = &d.config;
        out.push(json!({
            "Id": d.row.id.to_string(),
            "RepoTags": d.tags,
            "RepoDigests": d.repo_digests,
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
            "Size": d.row.size,
            "Mounts": d.mounts.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn rmi(root: &Path, a: RmiArgs) -> CliResult {
    let mut engine = Engine::open(root).context(|| "rmi".to_string())?;
    let mut failed = None;
    for name in &a.images {
        match engine.remove_image(name, a.force) {
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
                eprintln!(
                    "lamina: rmi {}",
                    super::output::escape_controls(&format!("{name}: {e}"))
                );
                failed = Some(name.clone());
            }
        }
    }
    match failed {
        Some(_) => Err(CliError("rmi: some images could not be removed".into())),
        None => Ok(()),
    }
}
