//! `lamina search [--filter K=V]... [--limit N] [--format T] [--no-trunc] [REGISTRY/]TERM`, as
//! `docker search` prints it: NAME DESCRIPTION STARS OFFICIAL AUTOMATED, the description on one
//! line and cut to 45 characters (`…`) unless `--no-trunc`, `[OK]` for official and automated
//! (`true`/`false` with `--format json`). Results from a registry's catalog (no search API) are
//! named `REGISTRY/REPO` and have no description or stars, as podman shows them.

use super::args::SearchArgs;
use super::format::{choose, emit, records, Listing, Record};
use super::history::ellipsis;
use super::{CliError, CliResult, Context};
use crate::engine::{self, SearchFilter, SearchResult};

const DEFAULT_TABLE: &str =
    "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}";
const TITLES: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
    ("IsAutomated", "AUTOMATED"),
];
/// docker's cut of a description (formatter_search.go).
const DESCRIPTION_WIDTH: usize = 45;

pub fn search(a: SearchArgs) -> CliResult {
    let what = || format!("search {}", a.term);
    let filter = parse_filter(&a.filter).context(what)?;
    let format = choose(a.format.as_deref(), false, DEFAULT_TABLE);
    let listing = Listing::parse(&format)?;
    let opts = super::pull::registry_options(&a.registry);
    let report = engine::search(&a.term, a.limit, &filter, &opts).context(what)?;
    let json = format == "json";
    let rows: Vec<Record> = report
        .results
        .iter()
        .map(|r| record(r, !a.no_trunc, json))
        .collect();
    emit(&listing.render(&records("search", &rows), TITLES)?);
    Ok(())
}

fn record(r: &SearchResult, trunc: bool, json: bool) -> Record {
    let description = r.description.replace(['\n', '\r'], " ");
    let description = if trunc {
        ellipsis(&description, DESCRIPTION_WIDTH)
    } else {
        description
    };
    let flag = |b: bool| match (b, json) {
        (true, true) => "true",
        (true, false) => "[OK]",
        (false, true) => "false",
        (false, false) => "",
    };
    vec![
        ("Name", r.name.clone()),
        ("Description", description),
        (
            "StarCount",
            r.stars.map(|s| s.to_string()).unwrap_or_default(),
        ),
        ("IsOfficial", flag(r.official).to_string()),
        ("IsAutomated", flag(r.automated).to_string()),
    ]
}

/// docker's search filters; its daemon's messages for bad ones.
pub fn parse_filter(args: &[String]) -> Result<SearchFilter, CliError> {
    let mut f = SearchFilter::default();
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or_else(|| {
            CliError(format!(
                "bad format of filter {arg:?} (expected name=value)"
            ))
        })?;
        let invalid = || CliError(format!("invalid filter '{key}={value}'"));
        let boolean = || match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(invalid()),
        };
        match key {
            "is-official" => f.official = Some(boolean()?),
            "is-automated" => f.automated = Some(boolean()?),
            "stars" => f.min_stars = value.parse().map_err(|_| invalid())?,
            _ => {
                return Err(CliError(format!(
                    "invalid filter '{key}' (filters: is-official, is-automated, stars)"
                )))
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
