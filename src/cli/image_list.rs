//! `lamina images`: docker's listing, rows and rules.
//!
//! One row per (repository, tag); with `--digests`, one per (repository, tag, digest of that
//! repository), and repositories known only by digest get `<none>` tag rows, as docker shows them.
//! Untagged images are dangling and show `<none>`. Images are listed newest first (by the config's
//! creation time). `-a` is accepted: lamina has no intermediate build images to hide. A `--format`
//! that shows `{{.Digest}}` gets the digest rows; `-q` prints the ID of every row, as docker does
//! (an image with two tags twice).

use super::args::ImagesArgs;
use super::filter::ImageFilter;
use super::format::{emit, records, utc_time, Listing, Record};
use super::output::{human_size, parse_rfc3339, time_ago};
use super::{CliError, CliResult, Context};
use crate::engine::{Digest, Engine};
use std::collections::BTreeMap;
use std::path::Path;

/// docker's default tables (formatter/image.go).
const TABLE: &str = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}";
const TABLE_WITH_DIGEST: &str = "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}";

pub const TITLES: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

/// docker's NewImageFormat: `table` (or no format) is the default table, `{{.ID}}` with `-q`, the
/// digest table with `--digests`; a format of one's own is used as given, `-q` or not, and a
/// `table` one gets a DIGEST column appended with `--digests` unless it shows `{{.Digest}}`.
pub fn image_format(format: Option<&str>, quiet: bool, digests: bool) -> String {
    match format.filter(|f| !f.is_empty()).unwrap_or("table") {
        "table" if quiet => "{{.ID}}".to_string(),
        "table" if digests => TABLE_WITH_DIGEST.to_string(),
        "table" => TABLE.to_string(),
        f => {
            let mut f = f.to_string();
            if f.starts_with("table") && digests && !f.contains("{{.Digest}}") {
                f.push_str("\t{{.Digest}}");
            }
            f
        }
    }
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
    let format = image_format(a.format.as_deref(), a.quiet, a.digests);
    let listing = Listing::parse(&format)?;
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

    // docker's needDigest: digest rows when asked for, or when the format shows them.
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let rows: Vec<Record> = listed
        .iter()
        .flat_map(|l| records_of(l, need_digest, a.digests, a.no_trunc))
        .collect();
    emit(&listing.render(&records("image", &rows), TITLES)?);
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

/// docker's imageFormatTaggedAndDigest: the rows an image shows as. `need_digest` expands tags
/// into one row per digest of their repository; `digest_rows` (`--digests`) gives repositories
/// known only by digest a row per digest instead of one row with an empty digest.
fn records_of(l: &Listed, need_digest: bool, digest_rows: bool, no_trunc: bool) -> Vec<Record> {
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
            if digests.is_empty() || !need_digest {
                rows.push((repo.clone(), tag.clone(), "<none>".into()));
            } else {
                for d in &digests {
                    rows.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
    }
    for (repo, digests) in repo_digests {
        if digest_rows {
            for d in digests {
                rows.push((repo.clone(), "<none>".into(), d));
            }
        } else {
            rows.push((repo, "<none>".into(), String::new()));
        }
    }
    // docker leaves CreatedSince empty for an unknown time (its table then shows N/A).
    let since = l.created.map(time_ago).unwrap_or_default();
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

#[cfg(test)]
#[path = "image_list_tests.rs"]
mod tests;
