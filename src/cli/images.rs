//! `lamina images`, `tag`, `inspect`, `rmi`.

use super::args::{ImagesArgs, InspectArgs, RmiArgs, TagArgs};
use super::output::{human_size, parse_rfc3339, print_table, time_ago};
use super::{CliError, CliResult, Context};
use crate::store::{self, Store};
use serde_json::json;
use std::path::Path;

pub fn images(root: &Path, a: ImagesArgs) -> CliResult {
    if !a.filter.is_empty() || a.format.is_some() {
        return Err(CliError(
            "images: --filter and --format are not supported yet".to_string(),
        ));
    }
    let store = Store::open(root).context(|| "images".to_string())?;
    let want = match &a.reference {
        Some(r) => Some(store::normalize_tag(r).context(|| format!("images {r}"))?),
        None => None,
    };
    let mut rows = vec![];
    let mut ids = vec![];
    for img in store.db().images()? {
        let tags = store.db().tags_of(&img.id)?;
        let digests = store.db().repo_digests_of(&img.id)?;
        let created = img
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map(time_ago)
            .unwrap_or_else(|| "N/A".into());
        let id = if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
        let names: Vec<Option<String>> = if tags.is_empty() {
            vec![None]
        } else {
            tags.into_iter().map(Some).collect()
        };
        // As docker lists an image pulled only by digest: its repository, tag <none>, the digest.
        if names == [None] && !digests.is_empty() && want.is_none() {
            for (repo, d) in &digests {
                let mut row = vec![store::familiar(repo), "<none>".to_string()];
                if a.digests {
                    row.push(d.to_string());
                }
                row.extend([id.clone(), created.clone(), human_size(img.size)]);
                rows.push(row);
            }
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
            continue;
        }
        for t in names {
            if let Some(w) = &want {
                if t.as_deref() != Some(w.as_str()) {
                    continue;
                }
            }
            let (repo, tag) = match &t {
                Some(full) => split_familiar(&store::familiar(full)),
                None => ("<none>".to_string(), "<none>".to_string()),
            };
            let digest = t
                .as_deref()
                .map(super::load::repository_of)
                .and_then(|r| digests.iter().find(|(dr, _)| *dr == r))
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "<none>".into());
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(digest);
            }
            row.extend([id.clone(), created.clone(), human_size(img.size)]);
            rows.push(row);
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
        return Ok(());
    }
    let mut header: Vec<String> = vec!["REPOSITORY".into(), "TAG".into()];
    if a.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    rows.insert(0, header);
    print_table(&rows);
    Ok(())
}

/// "debian:gzip" -> ("debian", "gzip"); the tag is after the last ':' that follows the last '/'.
fn split_familiar(name: &str) -> (String, String) {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (name[..i].to_string(), name[i + 1..].to_string()),
        _ => (name.to_string(), "<none>".to_string()),
    }
}

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
