//! `GET /v2/_catalog`: the repositories of a registry, page by page (`Link` headers, as the tag
//! list), for `search` on a registry without a search API (podman does the same). The scope asked
//! for is `registry:catalog:*`, which token servers grant to whom they choose.
//! `$LAMINA_CATALOG_PAGE_SIZE` asks for pages of that many names (the registry's default is 100).

use super::client::Client;
use super::tags::{for_each_page, page_size};
use super::RegistryError;

pub const CATALOG_SCOPE: &str = "registry:catalog:*";

/// The repositories whose name contains `term` (every one for an empty term), in the registry's
/// order, at most `limit`: no page past the one that fills the limit is read.
pub fn list_repositories(
    client: &Client,
    term: &str,
    limit: usize,
) -> Result<Vec<String>, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        repositories: Option<Vec<String>>,
    }
    let mut url = format!("{}/v2/_catalog", client.base());
    if let Some(n) = page_size("LAMINA_CATALOG_PAGE_SIZE") {
        url.push_str(&format!("?n={n}"));
    }
    let mut found = Vec::new();
    let what = format!("catalog of {}", client.registry());
    for_each_page(client, url, CATALOG_SCOPE, &what, |body| {
        let page: Page = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        for name in page.repositories.unwrap_or_default() {
            if found.len() < limit && name.contains(term) {
                found.push(name);
            }
        }
        Ok(found.len() < limit)
    })?;
    Ok(found)
}
