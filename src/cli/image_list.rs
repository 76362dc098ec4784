//! `lamina images`: docker's listing, rows and rules.
//!
//! One row per (repository, tag); with `--digests`, one per (repository, tag, digest of that
//! repository), and repositories known only by digest get `<none>` tag rows, as docker shows them.
//! Untagged images are dangling and show `<none>`. Images are listed newest first (by the config's
//! creation time). `-a` is accepted: lamina has no intermediate build images to hide. A `--format`
//! that names `.Digest` implies `--digests`.

use super::args::ImagesArgs;
use super::filter::ImageFilter;
use super::format::{utc_time, Record, Template};
use super::output::{human_size, parse_rfc3339, time_ago};
use super::{CliError, CliResult, Context};
use crate::engine::{Digest, Engine};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const FIELDS: &[&str] = &[
    "Repository",
    "Tag",
    "Digest",
    "ID",
    "CreatedSince",
    "CreatedAt",
    "Size",
    "VirtualSize",
    "SharedSize",
    "UniqueSize",
    "Containers",
];

fn headers() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("VirtualSize", "VIRTUAL SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("Containers", "CONTAINERS"),
    ])
}

struct Listed {
    id: Digest,
    created: Option<i64>,
    size: u64,
    mounts: usize,
    /// Familiar `name:tag`s.
    tags: Vec<String>,
    /// (familiar repository, manifest digest).
    digests: Vec<(String, Digest)>,
}

pub fn images(root: &Path, a: ImagesArgs) -> CliResult {
    let mut filter = ImageFilter::parse(&a.filter).context(|| "images --filter".to_string())?;
    if let Some(r) = &a.reference {
        filter.references.push(r.clone());
    }
    let template = match &a.format {
        Some(f) if !a.quiet => {
            Some(Template::parse(f, FIELDS).context(|| "images --format".to_string())?)
        }
        _ => None,
    };
    let engine = Engine::open(root).context(|| "images".to_string())?;
    let created_of = |name: &str| -> Result<i64, CliError> {
        let id = engine
            .resolve(name)
            .context(|| format!("images --filter {name}"))?;
        let row = engine
            .image(&id)?
            .ok_or_else(|| CliError(format!("no such image: {name}")))?;
        Ok(row
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(row.loaded))
    };
    let before: Vec<i64> = filter
        .before
        .iter()
        .map(|n| created_of(n))
        .collect::<Result<_, _>>()?;
    let since: Vec<i64> = filter
        .since
        .iter()
        .map(|n| created_of(n))
        .collect::<Result<_, _>>()?;

    let mut listed: Vec<Listed> = vec![];
    for summary in engine.images()? {
        let img = summary.row;
        let created = img.created.as_deref().and_then(parse_rfc3339);
        let when = created.unwrap_or(img.loaded);
        if before.iter().any(|t| when >= *t) || since.iter().any(|t| when <= *t) {
            continue;
        }
        let mut tags = summary.tags;
        let mut digests = summary.digests;
        match filter.dangling {
            Some(true) if !tags.is_empty() => continue,
            Some(false) if tags.is_empty() => continue,
            _ => {}
        }
        if !filter.select_references(&mut tags, &mut digests) {
            continue;
        }
        if !filter.labels.is_empty() {
            let config = engine
                .config(&img.id)
                .context(|| format!("image {}", img.id))?;
            if !filter.labels_match(&config.container_config().labels) {
                continue;
            }
        }
        listed.push(Listed {
            mounts: summary.mounts,
            id: img.id,
            created,
            size: img.size,
            tags,
            digests,
        });
    }
    listed.sort_by_key(|l| std::cmp::Reverse(l.created));

    if a.quiet {
        let mut seen = BTreeSet::new();
        for l in &listed {
            let id = show_id(&l.id, a.no_trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    // A format that shows the digest asks for the digest rows, as --digests does.
    let with_digests = a.digests || a.format.as_deref().is_some_and(|f| f.contains(".Digest"));
    let records: Vec<Record> = listed
        .iter()
        .flat_map(|l| records_of(l, with_digests, a.no_trunc))
        .collect();
    let template = match template {
        Some(t) => t,
        None => {
            let default = if a.digests {
                "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
            } else {
                "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
            };
            Template::parse(default, FIELDS).context(|| "images".to_string())?
        }
    };
    print!("{}", template.render(&records, &headers()));
    Ok(())
}

fn show_id(id: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

/// Splits a familiar `name:tag` (the tag follows the last `:` after the last `/`).
pub fn split_tag(name: &str) -> (String, String) {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (name[..i].to_string(), name[i + 1..].to_string()),
        _ => (name.to_string(), "<none>".to_string()),
    }
}

/// docker's imageFormatTaggedAndDigest: the rows an image shows as.
fn records_of(l: &Listed, with_digests: bool, no_trunc: bool) -> Vec<Record> {
    let mut repo_tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &l.tags {
        let (repo, tag) = split_tag(t);
        repo_tags.entry(repo).or_default().push(tag);
    }
    let mut repo_digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (repo, d) in &l.digests {
        repo_digests
            .entry(repo.clone())
            .or_default()
            .push(d.to_string());
    }
    let mut rows: Vec<(String, String, String)> = vec![];
    if l.tags.is_empty() && l.digests.is_empty() {
        rows.push(("<none>".into(), "<none>".into(), "<none>".into()));
    }
    for (repo, tags) in &repo_tags {
        let digests = repo_digests.remove(repo).unwrap_or_default();
        for tag in tags {
            if digests.is_empty() || !with_digests {
                rows.push((repo.clone(), tag.clone(), "<none>".into()));
            } else {
                for d in &digests {
                    rows.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
    }
    if l.tags.is_empty() || with_digests {
        for (repo, digests) in repo_digests {
            if with_digests {
                for d in digests {
                    rows.push((repo.clone(), "<none>".into(), d));
                }
            } else {
                rows.push((repo, "<none>".into(), "<none>".into()));
            }
        }
    }
    let since = l.created.map(time_ago).unwrap_or_else(|| "N/A".into());
    let at = l.created.map(utc_time).unwrap_or_else(|| "N/A".into());
    rows.into_iter()
        .map(|(repo, tag, digest)| {
            vec![
                ("Repository", repo),
                ("Tag", tag),
                ("Digest", digest),
                ("ID", show_id(&l.id, no_trunc)),
                ("CreatedSince", since.clone()),
                ("CreatedAt", at.clone()),
                ("Size", human_size(l.size)),
                ("VirtualSize", human_size(l.size)),
                ("SharedSize", "N/A".into()),
                ("UniqueSize", "N/A".into()),
                ("Containers", l.mounts.to_string()),
            ]
        })
        .collect()
}
