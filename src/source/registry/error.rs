//! What can go wrong talking to a registry, in words a person can act on: the registry's own error
//! codes and messages, transport failures with a hint where one helps.

use super::SourceError;
use crate::digest::Digest;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("credentials {what}: {reason}")]
    Credentials { what: String, reason: String },
    #[error("--cert-dir {}: {reason}", path.display())]
    CertDir { path: PathBuf, reason: String },
    #[error("TLS for {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("GET {url}: {reason}")]
    Transport { url: String, reason: String },
    /// A transport failure of a request other than GET (push).
    #[error("{method} {url}: {reason}")]
    Request {
        method: String,
        url: String,
        reason: String,
    },
    #[error(
        "registry {registry} answers plain HTTP, not HTTPS: use --insecure, or list it in \
         LAMINA_INSECURE_REGISTRIES, to talk to it without TLS"
    )]
    PlainHttpRefused { registry: String },
    #[error("registry {registry} cannot be reached: HTTPS: {https}; HTTP: {http}")]
    Unreachable {
        registry: String,
        https: String,
        http: String,
    },
    #[error(
        "registry {registry} answers neither the search API (GET /v1/search: {index}) nor the \
         catalog (GET /v2/_catalog: {catalog})"
    )]
    NoSearch {
        registry: String,
        index: String,
        catalog: String,
    },
    #[error("{registry} is not a v2 registry: GET /v2/ answered HTTP {status}")]
    NotARegistry { registry: String, status: u16 },
    // Not the registry: whoever asked names it (`login R: …`, `pull R/x:1: …`).
    #[error("unauthorized: {detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("getting a token: {reason}")]
    Token { registry: String, reason: String },
    #[error("{what}: access denied: {message}")]
    Denied { what: String, message: String },
    #[error("{what} not found: {message}")]
    NotFound { what: String, message: String },
    #[error("{what}: the registry answered {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: {reason}")]
    Malformed { what: String, reason: String },
    #[error("manifest for {reference}: digest mismatch (expected {expected}, got {got})")]
    DigestMismatch {
        reference: String,
        expected: Digest,
        got: Digest,
    },
    #[error(
        "{reference} is a Docker schema 1 manifest ({media_type}); schema 1 is deprecated and not \
         supported: re-push the image as schema 2 or OCI (e.g. with skopeo copy)"
    )]
    Schema1 {
        reference: String,
        media_type: String,
    },
    #[error("manifest for {reference} is larger than {limit} bytes")]
    TooLarge { reference: String, limit: u64 },
    #[error("GET {from}: refusing the redirect to {to:?}: {reason}")]
    BadRedirect {
        from: String,
        to: String,
        reason: String,
    },
}

impl From<RegistryError> for SourceError {
    fn from(e: RegistryError) -> Self {
        SourceError::Registry(Box::new(e))
    }
}

/// The distribution spec's error body (`{"errors":[{"code","message"}]}`) as "code: message; …";
/// anything else becomes the HTTP status and a short body.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => {
                    let code = e.code.to_lowercase().replace('_', " ");
                    // distribution's messages often just repeat the code ("manifest unknown").
                    if e.message.eq_ignore_ascii_case(&code) {
                        code
                    } else {
                        format!("{code}: {}", e.message)
                    }
                }
                (true, false) => e.message.clone(),
                _ => e.code.to_lowercase().replace('_', " "),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || text.len() > 200 {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        }
    }
}

/// The registry's message without the code a variant already says (`Unauthorized` prints
/// "unauthorized: …" itself, so "unauthorized: authentication required" loses its first word).
pub(crate) fn without_code(message: String, code: &str) -> String {
    match message
        .strip_prefix(code)
        .and_then(|rest| rest.strip_prefix(": "))
    {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => message,
    }
}

/// Connection trouble worth another try; a TLS verification failure, a bad URL or too many
/// redirects are not.
pub(crate) fn is_transient(t: &ureq::Transport) -> bool {
    use ureq::ErrorKind as K;
    if find_rustls_error(t).is_some() {
        return false;
    }
    matches!(
        t.kind(),
        K::Dns | K::ConnectionFailed | K::Io | K::ProxyConnect
    )
}

fn find_rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// Whether `e` or one of its causes is a timeout: a socket read or write timeout (EAGAIN on
/// Linux, which ureq reports as TimedOut), a connect that got no answer, a TLS handshake that
/// did not finish in time.
pub(crate) fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    timeout_cause(e).is_some()
}

fn timeout_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                return Some(io);
            }
        }
        cur = err.source();
    }
    None
}

/// A timeout in words: what did not answer, and for how long we waited.
fn timeout_reason(t: &ureq::Transport, io: &std::io::Error) -> String {
    use super::client::{CONNECT_TIMEOUT, STALL_TIMEOUT};
    let said = io.to_string();
    if said.starts_with("TLS handshake") {
        said
    } else if t.kind() == ureq::ErrorKind::ConnectionFailed {
        format!("connect: no answer within {}s", CONNECT_TIMEOUT.as_secs())
    } else {
        format!(
            "no answer within {}s (the registry stalled)",
            STALL_TIMEOUT.as_secs()
        )
    }
}

/// The transport failure in words, with a hint for the one every private registry user meets.
pub(crate) fn transport_reason(t: &ureq::Transport) -> String {
    if let Some(io) = timeout_cause(t) {
        return timeout_reason(t, io);
    }
    // ureq's Display repeats the URL, which our messages already name
    let mut reason = t.kind().to_string();
    if let Some(m) = t.message() {
        reason = format!("{reason}: {m}");
    }
    if let Some(src) = std::error::Error::source(t) {
        reason = format!("{reason}: {src}");
    }
    if let Some(e) = find_rustls_error(t) {
        reason = format!("TLS: {e}");
        if matches!(e, rustls::Error::InvalidCertificate(_)) {
            reason.push_str(
                " (trust the registry's CA with --cert-dir DIR holding it as ca.crt, or \
                 /etc/docker/certs.d/HOST:PORT/ca.crt; or use --insecure)",
            );
        }
    }
    reason
}

/// What rustls says when a plain-HTTP server answers a TLS handshake.
pub(crate) fn looks_like_plain_http(reason: &str) -> bool {
    reason.contains("InvalidContentType")
        || reason.contains("corrupt message")
        || reason.contains("HTTP/")
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
