//! `GET /v1/search?q=TERM&n=LIMIT`: the search API of Docker Hub's index (the v1 API that docker
//! still uses for `docker search`; the distribution registry does not serve it). When the registry
//! does not, `search` falls back to the catalog (see `catalog`), as podman does; which one answered
//! is part of the outcome, and when neither does the error says what each answered.

use super::catalog::list_repositories;
use super::client::{redact, Client};
use super::{RegistryError, RegistryOptions};
use std::io::Read;

/// A search answer is a small JSON document (100 results at most); more is not one.
const MAX_ANSWER: u64 = 8 << 20;

/// One repository found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    /// As the index names it (`nginx`, `bitnami/nginx`); from the catalog, `REGISTRY/REPO`.
    pub name: String,
    pub description: String,
    /// None when the registry keeps no stars (the catalog).
    pub stars: Option<u64>,
    pub official: bool,
    pub automated: bool,
}

/// Where the results came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOutcome {
    /// `/v1/search`
    Index,
    /// `/v2/_catalog`, names matched by substring
    Catalog,
}

/// Searches `registry` for `term`: the search API when it answers, else the catalog. `limit` is
/// passed to the search API (`n`) and caps what the catalog walk collects. Docker Hub is searched
/// at index.docker.io, where its search API lives.
pub fn search(
    registry: &str,
    term: &str,
    limit: usize,
    opts: &RegistryOptions,
) -> Result<(SearchOutcome, Vec<SearchResult>), RegistryError> {
    let api_host = if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    // a search index need not be a v2 registry: any answer to `/v2/` shows it was reached
    let client = Client::connect_to(registry, api_host, opts, false)?;
    let client = &client;
    // an empty term is no search (podman goes to the catalog directly: it lists everything)
    let index_said = if term.is_empty() {
        "not asked for an empty term".to_string()
    } else {
        match index_search(client, term, limit)? {
            Ok(results) => return Ok((SearchOutcome::Index, results)),
            Err(said) => said,
        }
    };
    tracing::debug!(
        "{}: /v1/search: {index_said}; trying the catalog",
        client.registry()
    );
    match list_repositories(client, term, limit) {
        Ok(names) => Ok((
            SearchOutcome::Catalog,
            names
                .into_iter()
                .map(|n| SearchResult {
                    name: format!("{}/{n}", client.registry()),
                    description: String::new(),
                    stars: None,
                    official: false,
                    automated: false,
                })
                .collect(),
        )),
        Err(e @ (RegistryError::Transport { .. } | RegistryError::Unreachable { .. })) => Err(e),
        Err(e) => Err(RegistryError::NoSearch {
            registry: client.registry().to_string(),
            index: index_said,
            catalog: said(e),
        }),
    }
}

/// What a registry answered, without the request the message around it names.
fn said(e: RegistryError) -> String {
    match e {
        RegistryError::NotFound { message, .. } => format!("HTTP 404, {message}"),
        RegistryError::Status {
            status, message, ..
        } => format!("HTTP {status}, {message}"),
        RegistryError::Denied { message, .. } => format!("HTTP 403, {message}"),
        RegistryError::Unauthorized { detail, .. } => format!("unauthorized: {detail}"),
        e => e.to_string(),
    }
}

/// `Ok(Err(what it answered))` when the registry does not serve the search API; `Err` when it
/// could not be asked at all (a transport failure is not "no search API").
fn index_search(
    client: &Client,
    term: &str,
    limit: usize,
) -> Result<Result<Vec<SearchResult>, String>, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        results: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        star_count: u64,
        #[serde(default)]
        is_official: bool,
        #[serde(default)]
        is_automated: bool,
    }
    let mut url = url::Url::parse(&format!("{}/v1/search", client.base())).map_err(|e| {
        RegistryError::Malformed {
            what: client.base().to_string(),
            reason: e.to_string(),
        }
    })?;
    url.query_pairs_mut()
        .append_pair("q", term)
        .append_pair("n", &limit.to_string());
    let resp = match client.get(url.as_str(), "", &[("Accept", "application/json")]) {
        Ok(r) => r,
        Err(r) => {
            return match client.refusal_error(r, "GET /v1/search") {
                e @ (RegistryError::Transport { .. } | RegistryError::Request { .. }) => Err(e),
                e => Ok(Err(said(e))),
            }
        }
    };
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut body)
        .map_err(|e| RegistryError::Transport {
            url: redact(url.as_str()),
            reason: e.to_string(),
        })?;
    if body.len() as u64 > MAX_ANSWER {
        return Ok(Err(format!("an answer larger than {MAX_ANSWER} bytes")));
    }
    // a 200 that is not the API's JSON (a web page served for any path) is no search API either
    let answer: Answer = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return Ok(Err(format!("GET /v1/search: not a search answer: {e}"))),
    };
    Ok(Ok(answer
        .results
        .into_iter()
        .map(|e| SearchResult {
            name: e.name,
            description: e.description.unwrap_or_default(),
            stars: Some(e.star_count),
            official: e.is_official,
            automated: e.is_automated,
        })
        .collect()))
}
