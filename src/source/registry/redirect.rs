//! Redirects, followed by us rather than by the HTTP client: ureq 2 unwraps the host of every
//! URL it is given, so a `Location: file:///etc/passwd` (or `data:`, `unix:`) from a hostile
//! registry would panic inside it. Each target is checked here first: only `http` and `https`
//! URLs that name a host are followed, and a chain longer than [`MAX_REDIRECTS`] is refused.

use super::RegistryError;

/// Blob downloads are redirected once or twice (to a CDN, to a signed URL); more is a loop.
pub(crate) const MAX_REDIRECTS: usize = 8;

/// Whether `status` asks to repeat a GET elsewhere (RFC 9110 15.4).
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where a redirect from `current` to `location` (absolute or relative) leads, if that is an
/// http(s) URL with a host; the error names both and says why not.
pub(crate) fn redirect_target(current: &str, location: &str) -> Result<String, RegistryError> {
    let refuse = |reason: &str| RegistryError::BadRedirect {
        from: super::client::redact(current),
        to: super::client::redact(location),
        reason: reason.to_string(),
    };
    let base = url::Url::parse(current).map_err(|e| refuse(&e.to_string()))?;
    let next = base.join(location).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(refuse(&format!(
            "scheme {:?} is not http or https",
            next.scheme()
        )));
    }
    if next.host_str().is_none_or(str::is_empty) {
        return Err(refuse("the URL names no host"));
    }
    Ok(next.into())
}

#[cfg(test)]
#[path = "redirect_tests.rs"]
mod tests;
