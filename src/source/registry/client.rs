//! One registry's HTTP endpoint: scheme choice (HTTPS, or plain HTTP only for insecure
//! registries), authorization (answering 401 challenges with basic credentials or a bearer token,
//! cached per scope), and retries with backoff on transient failures.
//!
//! Invariant: a request is retried only when nothing of its answer has been handed to the caller:
//! a transport failure or a 429/5xx status. Every other status reaches the caller as a
//! `RegistryError` that carries the registry's own error codes and message. Each retry is said
//! through `RegistryOptions::notices`.
//!
//! Timeouts (docker's transport has the first two): a connect gives up after `CONNECT_TIMEOUT`,
//! a TLS handshake after `HANDSHAKE_TIMEOUT`, and a registry silent for `STALL_TIMEOUT` while we
//! wait for (or send) any part of a request has stalled. A stall before the registry ever answered
//! (the `/v2/` ping) is final; later, a timed-out request is retried once. So a registry that
//! accepts connections and never answers is given up on in `HANDSHAKE_TIMEOUT` (+ `STALL_TIMEOUT`
//! for the plain-HTTP try of an insecure registry), and a request that stalls later within two
//! `STALL_TIMEOUT`s.

use super::auth::{self, Challenge, Credentials};
use super::error::{
    is_transient, looks_like_plain_http, parse_error_body, timed_out, transport_reason,
    without_code,
};
use super::redirect::{is_redirect, redirect_target, MAX_REDIRECTS};
use super::{tls, Notices, RegistryError, RegistryOptions};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A TCP connect that gets no answer (docker's dialer: 30 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A TLS handshake that does not finish (docker's `TLSHandshakeTimeout`: 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A registry that sends nothing (or reads nothing of what we send) for this long has stalled.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

const USER_AGENT: &str = concat!("lamina/", env!("CARGO_PKG_VERSION"));
/// Error bodies are small JSON documents; more than this is not worth reading.
const MAX_ERROR_BODY: u64 = 64 << 10;
const MAX_TOKEN_BODY: u64 = 1 << 20;

pub struct Client {
    /// The registry as references name it: `docker.io`, `127.0.0.1:5000`.
    registry: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    base: String,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    /// Authorization header values by scope ("" for requests without one).
    authorizations: Mutex<HashMap<String, String>>,
    retries: u32,
    notices: Notices,
    /// Set once the registry has answered: until then a timeout is not retried.
    answered: AtomicBool,
}

/// A 4xx/5xx answer, with what the registry said about it.
pub(crate) struct Refusal {
    pub status: u16,
    pub message: String,
    pub challenges: Vec<Challenge>,
    /// Set when the failure was not an HTTP status at all.
    pub error: Option<Box<RegistryError>>,
}

impl Client {
    /// Connects to `registry`: HTTPS with verification, or for an insecure registry HTTPS without
    /// verification and then plain HTTP, as docker does. Fails when no endpoint answers `/v2/`.
    pub fn connect(registry: &str, opts: &RegistryOptions) -> Result<Client, RegistryError> {
        let api_host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        Self::connect_to(registry, api_host, opts, true)
    }

    /// Connects to `api_host` on behalf of `registry` (Docker Hub searches at index.docker.io).
    /// With `v2_only` false, any HTTP answer to `/v2/` will do: the server was reached over that
    /// scheme, even if it is no v2 registry (a search index).
    pub(crate) fn connect_to(
        registry: &str,
        api_host: &str,
        opts: &RegistryOptions,
        v2_only: bool,
    ) -> Result<Client, RegistryError> {
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => auth::lookup(&opts.docker_config_dir(), registry)?,
        };
        let insecure = opts.insecure || super::is_insecure_registry(registry);
        let https = if insecure {
            tls::unverified_config(api_host, opts.cert_dir.as_deref())?
        } else {
            tls::verifying_config(api_host, opts.cert_dir.as_deref())?
        };
        let mut client = Client {
            registry: registry.to_string(),
            base: format!("https://{api_host}"),
            agent: agent(Some(https)),
            credentials,
            authorizations: Mutex::new(HashMap::new()),
            retries: opts.retries,
            notices: opts.notices.clone(),
            answered: AtomicBool::new(false),
        };
        let reached = |r: Result<(), RegistryError>| match r {
            Err(RegistryError::NotARegistry { .. }) if !v2_only => Ok(()),
            r => r,
        };
        // An insecure registry's HTTPS is only a first try (docker goes on to plain HTTP at once):
        // it is not retried.
        if insecure {
            client.retries = 0;
        }
        let https_err = match reached(client.ping()) {
            Ok(()) => {
                client.retries = opts.retries;
                return Ok(client);
            }
            Err(e) => e,
        };
        client.retries = opts.retries;
        if !insecure {
            return Err(match https_err {
                RegistryError::Transport { reason, .. } if looks_like_plain_http(&reason) => {
                    RegistryError::PlainHttpRefused {
                        registry: registry.to_string(),
                    }
                }
                e => e,
            });
        }
        tracing::debug!("{registry}: HTTPS failed ({https_err}); trying plain HTTP");
        client.base = format!("http://{api_host}");
        client.agent = agent(None);
        match reached(client.ping()) {
            Ok(()) => Ok(client),
            Err(http_err) => Err(RegistryError::Unreachable {
                registry: registry.to_string(),
                https: https_err.to_string(),
                http: http_err.to_string(),
            }),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v2/`: any answer from a v2 registry (200, or 401 asking for credentials) will do.
    fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let answer = self.call(&url, &[], None)?;
        self.answered.store(true, Ordering::Relaxed);
        match answer {
            Ok(_) => Ok(()),
            Err(r) if r.status == 401 => Ok(()),
            Err(r) => Err(RegistryError::NotARegistry {
                registry: self.registry.clone(),
                status: r.status,
            }),
        }
    }

    /// `GET /v2/` with the credentials, as `docker login` checks them.
    pub fn check_login(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        self.get(&url, "", &[])
            .map(drop)
            .map_err(|r| self.refusal_error(r, "/v2/"))
    }

    /// `url` as given when absolute, else a path below the registry's base.
    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        }
    }

    /// An authorized GET of `url` (absolute, or a path below the base) for `scope`
    /// (`repository:NAME:pull`). A 401 is answered once with fresh authorization.
    pub(crate) fn get(
        &self,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::Response, Refusal> {
        let url = self.absolute(url);
        let mut authorization = self.cached_authorization(scope);
        for attempt in 0..2 {
            let answer = self
                .call(&url, headers, authorization.as_deref())
                .map_err(Refusal::from_error)?;
            match answer {
                Ok(r) => return Ok(r),
                Err(refusal) if refusal.status == 401 && attempt == 0 => {
                    let value = self
                        .authorize(&refusal.challenges, scope)
                        .map_err(Refusal::from_error)?;
                    authorization = Some(value);
                }
                Err(refusal) => return Err(refusal),
            }
        }
        Err(Refusal::from_error(RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail: if self.credentials.is_some() {
                "the registry refused the credentials".into()
            } else {
                format!(
                    "authentication required (run `lamina login {}`)",
                    self.registry
                )
            },
        }))
    }

    fn cached_authorization(&self, scope: &str) -> Option<String> {
        self.authorizations.lock().ok()?.get(scope).cloned()
    }

    /// Answers a 401: a bearer token from the challenge's realm (with our credentials when we have
    /// them, anonymously otherwise), or basic credentials.
    fn authorize(&self, challenges: &[Challenge], scope: &str) -> Result<String, RegistryError> {
        let value = if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            format!("Bearer {}", self.fetch_token(bearer, scope)?)
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            match &self.credentials {
                Some(c) => c.basic_header(),
                None => {
                    return Err(RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        detail: format!(
                            "authentication required (run `lamina login {}`)",
                            self.registry
                        ),
                    })
                }
            }
        } else {
            return Err(RegistryError::Unauthorized {
                registry: self.registry.clone(),
                detail: "401 without a Basic or Bearer challenge".into(),
            });
        };
        if let Ok(mut cache) = self.authorizations.lock() {
            cache.insert(scope.to_string(), value.clone());
        }
        Ok(value)
    }

    /// The token flow of the distribution spec: `GET realm?service=…&scope=…`.
    fn fetch_token(&self, challenge: &Challenge, scope: &str) -> Result<String, RegistryError> {
        let token_err = |reason: String| RegistryError::Token {
            registry: self.registry.clone(),
            reason,
        };
        let realm = challenge
            .param("realm")
            .ok_or_else(|| token_err("the Bearer challenge names no realm".into()))?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(token_err(format!("realm {realm:?} is not an http(s) URL")));
        }
        let mut url = url::Url::parse(realm)
            .map_err(|e| token_err(format!("realm {realm:?} is not a URL: {e}")))?;
        if let Some(service) = challenge.param("service") {
            url.query_pairs_mut().append_pair("service", service);
        }
        let scope = if scope.is_empty() {
            challenge.param("scope").unwrap_or("")
        } else {
            scope
        };
        // A push with a mount asks for two scopes at once (`repository:A:pull,push
        // repository:B:pull`): one `scope` parameter each, as docker sends them.
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            url.query_pairs_mut().append_pair("scope", s);
        }
        let basic = self.credentials.as_ref().map(Credentials::basic_header);
        let resp = match self.call(url.as_str(), &[], basic.as_deref())? {
            Ok(r) => r,
            Err(refusal) if matches!(refusal.status, 401 | 403) => {
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    detail: if self.credentials.is_some() {
                        "unable to retrieve auth token: invalid username/password".into()
                    } else {
                        format!(
                            "unable to retrieve auth token: authentication required (run `lamina login {}`)",
                            self.registry
                        )
                    },
                })
            }
            Err(refusal) => return Err(token_err(format!("{realm}: {}", refusal.message))),
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_TOKEN_BODY)
            .read_to_end(&mut body)
            .map_err(|e| token_err(format!("{realm}: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| token_err(format!("{realm}: malformed answer: {e}")))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
            .map(str::to_string)
            .ok_or_else(|| token_err(format!("{realm}: the answer holds no token")))
    }

    /// One GET and the redirects it leads to, each target checked before it is requested (see
    /// `redirect`). Authorization is never sent on to where a redirect points (a blob store's
    /// signed URL must not see the registry's token), as ureq's own redirects did.
    fn call(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> Result<Result<ureq::Response, Refusal>, RegistryError> {
        let mut url = url.to_string();
        let mut authorization = authorization;
        for _ in 0..=MAX_REDIRECTS {
            let r = match self.call_once("GET", &url, headers, authorization, None)? {
                Ok(r) if is_redirect(r.status()) => r,
                answer => return Ok(answer),
            };
            let Some(location) = r.header("location") else {
                return Err(RegistryError::BadRedirect {
                    from: redact(&url),
                    to: String::new(),
                    reason: format!("HTTP {} without a Location", r.status()),
                });
            };
            url = redirect_target(&url, location)?;
            authorization = None;
        }
        Err(RegistryError::BadRedirect {
            from: redact(&url),
            to: String::new(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// An authorized request of any method (push: HEAD, POST, PATCH, PUT, DELETE), with `body`
    /// sent whole. Redirects are not followed (the upload API answers with Location headers the
    /// caller reads). A PATCH is not retried here: a chunk the registry half took must be resumed
    /// from where the registry says it is, which only the caller knows how to do.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<ureq::Response, Refusal> {
        let url = self.absolute(url);
        let mut authorization = self.cached_authorization(scope);
        let mut attempt = 0;
        loop {
            let answer = self
                .call_once(method, &url, headers, authorization.as_deref(), body)
                .map_err(Refusal::from_error)?;
            match answer {
                Err(refusal) if refusal.status == 401 && attempt == 0 => {
                    let value = self
                        .authorize(&refusal.challenges, scope)
                        .map_err(Refusal::from_error)?;
                    authorization = Some(value);
                    attempt += 1;
                }
                a => return a,
            }
        }
    }

    /// The registry as references name it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// One request, retried with backoff while the failure is transient (never a PATCH, see
    /// `send`). `Ok(Err(_))` is a final refusal status; `Err` a transport failure that retries did
    /// not cure.
    fn call_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Result<ureq::Response, Refusal>, RegistryError> {
        let retries = if method == "PATCH" { 0 } else { self.retries };
        let mut attempt = 0;
        loop {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = authorization {
                req = req.set("Authorization", a);
            }
            let sent = match body {
                Some(b) => req.send_bytes(b),
                None => req.call(),
            };
            let transient = match sent {
                Ok(r) => return Ok(Ok(r)),
                Err(ureq::Error::Status(status, r)) => {
                    if !(status == 429 || status >= 500) || attempt >= retries {
                        return Ok(Err(Refusal::read(status, r)));
                    }
                    format!("HTTP {status}")
                }
                Err(ureq::Error::Transport(t)) => {
                    let reason = transport_reason(&t);
                    // a stall is waited out once more at most, and not at all before the
                    // registry ever answered (see the module's comment)
                    let retries = if !timed_out(&t) {
                        retries
                    } else if self.answered.load(Ordering::Relaxed) {
                        retries.min(1)
                    } else {
                        0
                    };
                    if !is_transient(&t) || attempt >= retries {
                        return Err(if method == "GET" {
                            RegistryError::Transport {
                                url: redact(url),
                                reason,
                            }
                        } else {
                            RegistryError::Request {
                                method: method.to_string(),
                                url: redact(url),
                                reason,
                            }
                        });
                    }
                    reason
                }
            };
            let wait = backoff(attempt);
            self.notices.say(&format!(
                "{method} {}: {transient}; retrying in {wait:?} (retry {} of {retries})",
                redact(url),
                attempt + 1
            ));
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Says `message` where the options said retries go.
    pub(crate) fn notice(&self, message: &str) {
        self.notices.say(message);
    }

    /// A refusal as an error for `what` (a path, or a reference), mapping the codes the
    /// distribution spec defines to messages a person can act on.
    pub(crate) fn refusal_error(&self, r: Refusal, what: &str) -> RegistryError {
        if let Some(e) = r.error {
            return *e;
        }
        match r.status {
            401 => RegistryError::Unauthorized {
                registry: self.registry.clone(),
                detail: without_code(r.message, "unauthorized"),
            },
            403 => RegistryError::Denied {
                what: what.to_string(),
                message: without_code(r.message, "denied"),
            },
            404 => RegistryError::NotFound {
                what: what.to_string(),
                message: r.message,
            },
            // distribution answers every write so in read-only (maintenance) mode
            405 => RegistryError::Status {
                what: what.to_string(),
                status: 405,
                message: format!(
                    "{} (the registry does not allow this request: is it read-only?)",
                    r.message
                ),
            },
            status => RegistryError::Status {
                what: what.to_string(),
                status,
                message: r.message,
            },
        }
    }
}

impl Refusal {
    /// Reads what the registry said: the challenges of a 401, the error codes and message of the
    /// body (`{"errors":[{"code","message"}]}`).
    fn read(status: u16, response: ureq::Response) -> Refusal {
        let challenges = response
            .all("www-authenticate")
            .iter()
            .flat_map(|h| auth::parse_challenges(h))
            .collect();
        let mut body = Vec::new();
        let _ = response
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_end(&mut body);
        let message = parse_error_body(status, &body);
        Refusal {
            status,
            message,
            challenges,
            error: None,
        }
    }

    /// A failure that is not an HTTP status (transport, auth), carried through the same path.
    fn from_error(e: RegistryError) -> Refusal {
        Refusal {
            status: 0,
            message: e.to_string(),
            challenges: Vec::new(),
            error: Some(Box::new(e)),
        }
    }
}

fn agent(tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> ureq::Agent {
    let mut b = ureq::AgentBuilder::new()
        .user_agent(USER_AGENT)
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout_read(STALL_TIMEOUT)
        .timeout_write(STALL_TIMEOUT)
        // Redirects are followed by `call`, which checks each target first.
        .redirects(0)
        .max_idle_connections_per_host(8);
    if let Some(config) = tls {
        b = b.tls_connector(std::sync::Arc::new(tls::HandshakeLimited {
            config,
            handshake: HANDSHAKE_TIMEOUT,
            stall: STALL_TIMEOUT,
        }));
    }
    b.build()
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.min(4))
}

/// URLs are shown without their query (token requests carry scopes, blob redirects signatures).
pub(crate) fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}
