//! `search`: repositories of a registry whose names match a term, from the registry's search API
//! (Docker Hub's `/v1/search`) or, when it has none, its catalog (as podman does).
//!
//! docker's rules: `[REGISTRY/]TERM` names the registry only when its first component looks like a
//! host (has a `.` or `:`, or is `localhost`), otherwise Docker Hub is searched (at
//! index.docker.io) and a `library/` prefix dropped; the limit is 1..=100 (default 25); the
//! filters are applied to what the registry answered, which is then sorted by stars, most first.

use super::{EngineError, Result};
use crate::source::registry::{self, RegistryOptions, SearchOutcome, SearchResult};
use crate::source::SourceError;

pub const DEFAULT_SEARCH_LIMIT: usize = 25;
pub const MAX_SEARCH_LIMIT: usize = 100;

/// `--filter is-official=BOOL`, `is-automated=BOOL`, `stars=N`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SearchFilter {
    pub official: Option<bool>,
    pub automated: Option<bool>,
    /// At least this many stars (results without stars have none).
    pub min_stars: u64,
}

impl SearchFilter {
    pub fn matches(&self, r: &SearchResult) -> bool {
        self.official.is_none_or(|o| o == r.official)
            && self.automated.is_none_or(|a| a == r.automated)
            && r.stars.unwrap_or(0) >= self.min_stars
    }
}

/// What a search found, and where.
#[derive(Debug, Clone)]
pub struct SearchReport {
    /// The registry searched (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    pub outcome: SearchOutcome,
    pub results: Vec<SearchResult>,
}

/// The registry a search term names, and the term to send it (docker's splitReposSearchTerm).
pub fn split_search_term(term: &str) -> (String, String) {
    let (index, rest) = match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), term.to_string()),
    };
    let index = registry::login_registry(&index);
    if index == "docker.io" {
        // Docker Hub stores `library/foo` as `foo`, and its search does not find the long form
        return (index, rest.trim_start_matches("library/").to_string());
    }
    (index, rest)
}

/// Searches the registry `term` names for at most `limit` repositories passing `filter`.
pub fn search(
    term: &str,
    limit: usize,
    filter: &SearchFilter,
    opts: &RegistryOptions,
) -> Result<SearchReport> {
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(EngineError::Invalid(format!(
            "limit {limit} is outside the range of [1, {MAX_SEARCH_LIMIT}]"
        )));
    }
    let (index, remote) = split_search_term(term);
    let (outcome, found) =
        registry::search_registry(&index, &remote, limit, opts).map_err(SourceError::from)?;
    let mut results: Vec<SearchResult> = found.into_iter().filter(|r| filter.matches(r)).collect();
    results.truncate(limit);
    // stable: equal stars keep the registry's order
    results.sort_by_key(|r| std::cmp::Reverse(r.stars.unwrap_or(0)));
    Ok(SearchReport {
        registry: index,
        outcome,
        results,
    })
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
