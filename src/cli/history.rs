//! `lamina history`: docker's listing of an image's steps, newest first (formatter/history.go).

use super::args::HistoryArgs;
use super::format::{choose, emit, records, rfc3339, Listing, Record};
use super::output::{human_size, parse_rfc3339, time_ago};
use super::{CliResult, Context};
use crate::engine::Engine;
use std::path::Path;

const TABLE: &str = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}";

pub const TITLES: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

pub fn history(root: &Path, a: HistoryArgs) -> CliResult {
    let what = || format!("history {}", a.image);
    let listing = Listing::parse(&choose(a.format.as_deref(), a.quiet, TABLE))?;
    let engine = Engine::open(root).context(what)?;
    let (id, steps) = engine.history(&a.image).context(what)?;
    let rows: Vec<Record> = steps
        .into_iter()
        .rev()
        .enumerate()
        .map(|(i, step)| {
            let created = step.created.as_deref().and_then(parse_rfc3339);
            // Only the top step is the image itself; docker shows the others as <missing>.
            let shown_id = match (i, a.no_trunc) {
                (0, true) => id.to_string(),
                (0, false) => id.short().to_string(),
                _ => "<missing>".to_string(),
            };
            let by = step.created_by.replace('\t', " ");
            let by = if a.no_trunc { by } else { ellipsis(&by, 45) };
            vec![
                ("ID", shown_id),
                (
                    "CreatedSince",
                    created.map(time_ago).unwrap_or_else(|| "N/A".into()),
                ),
                (
                    "CreatedAt",
                    created.map(rfc3339).unwrap_or_else(|| "N/A".into()),
                ),
                ("CreatedBy", by),
                ("Size", human_size(step.size)),
                ("Comment", step.comment),
            ]
        })
        .collect();
    emit(&listing.render(&records("history", &rows), TITLES)?);
    Ok(())
}

/// docker's Ellipsis: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
