//! `GET /v2/NAME/tags/list`, following the `Link: <…>; rel="next"` pages (distribution spec,
//! "Listing Tags"), and the page walk itself, which the catalog shares. `$LAMINA_TAGS_PAGE_SIZE`
//! asks for pages of that many tags.

use super::client::Client;
use super::RegistryError;
use std::io::Read;

/// A page of tags is a small JSON document; a registry sending more is broken.
const MAX_PAGE: u64 = 8 << 20;
/// Pages to follow at most: a registry that serves endless pages must not keep us forever.
/// (Docker Hub's largest repositories have a few thousand tags, 100 to a page.)
pub(crate) const MAX_PAGES: usize = 1_000;
/// Bytes of all pages together: the tags are held in memory until the list is complete.
pub(crate) const MAX_TOTAL: u64 = 32 << 20;

/// Every tag of `repository`, in the registry's order.
pub fn list_tags(
    client: &Client,
    repository: &str,
    scope: &str,
) -> Result<Vec<String>, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    // Absolute from the start, so that a Link back to the first page is seen as a revisit.
    let mut url = format!("{}/v2/{repository}/tags/list", client.base());
    // A page size makes the registry paginate (distribution 2.8 sends Link only when asked to).
    if let Some(n) = page_size("LAMINA_TAGS_PAGE_SIZE") {
        url.push_str(&format!("?n={n}"));
    }
    let mut tags = Vec::new();
    let what = format!("tag list of {repository}");
    for_each_page(client, url, scope, &what, |body| {
        let page: Page = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        tags.extend(page.tags.unwrap_or_default());
        Ok(true)
    })?;
    Ok(tags)
}

/// A page size asked for in `$VAR` (tests use it to see pagination with few entries).
pub(crate) fn page_size(var: &str) -> Option<u32> {
    std::env::var(var).ok().and_then(|n| n.parse::<u32>().ok())
}

/// Reads the pages of a listing from `url` on, following `Link: <…>; rel="next"`, handing each
/// body to `page` (which says whether more pages are wanted, or why the body is malformed).
/// Loops, huge pages and endless pages are refused (`what` names the listing in the error).
pub(crate) fn for_each_page(
    client: &Client,
    mut url: String,
    scope: &str,
    what: &str,
    mut page: impl FnMut(&[u8]) -> Result<bool, String>,
) -> Result<(), RegistryError> {
    let mut total = 0u64;
    // Every page URL read so far: a Link back to one of them is a loop, not more entries.
    let mut visited = std::collections::HashSet::new();
    let malformed = |reason: String| RegistryError::Malformed {
        what: what.to_string(),
        reason,
    };
    for _ in 0..MAX_PAGES {
        if !visited.insert(url.clone()) {
            return Err(malformed(format!(
                "the Link header leads back to {}, a page already read",
                super::client::redact(&url)
            )));
        }
        let resp = client
            .get(&url, scope, &[("Accept", "application/json")])
            .map_err(|r| client.refusal_error(r, what))?;
        let next = resp.header("link").and_then(next_link);
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_PAGE.min(MAX_TOTAL - total) + 1)
            .read_to_end(&mut body)
            .map_err(|e| RegistryError::Transport {
                url: super::client::redact(&url),
                reason: e.to_string(),
            })?;
        if body.len() as u64 > MAX_PAGE {
            return Err(malformed(format!("a page larger than {MAX_PAGE} bytes")));
        }
        total += body.len() as u64;
        if total > MAX_TOTAL {
            return Err(malformed(format!(
                "pages larger than {MAX_TOTAL} bytes in all"
            )));
        }
        let more = page(&body).map_err(malformed)?;
        match next {
            Some(n) if more => url = resolve_link(client.base(), &n),
            _ => return Ok(()),
        }
    }
    Err(malformed(format!("more than {MAX_PAGES} pages")))
}

/// The target of the `rel="next"` entry of a Link header (RFC 8288), if any.
pub fn next_link(header: &str) -> Option<String> {
    for entry in split_links(header) {
        let entry = entry.trim();
        let Some(rest) = entry.strip_prefix('<') else {
            continue;
        };
        let Some((target, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("rel") => v
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next")),
                _ => false,
            }
        });
        if is_next {
            return Some(target.to_string());
        }
    }
    None
}

/// Link entries are comma-separated, but a URL may itself hold commas: split only outside `<>`.
fn split_links(header: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in header.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&header[start..]);
    out
}

/// A link target as a URL: absolute as given, or a path on the registry's base.
pub fn resolve_link(base: &str, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else if target.starts_with('/') {
        format!("{base}{target}")
    } else {
        format!("{base}/{target}")
    }
}

#[cfg(test)]
#[path = "tags_tests.rs"]
mod tests;
