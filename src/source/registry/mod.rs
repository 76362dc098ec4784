//! Images from a registry that speaks the Registry HTTP API v2 (the OCI distribution spec).
//!
//! `RegistrySource` is an `ImageSource` like a layout or an archive: `resolve` walks its manifests
//! and picks the platform, the store streams its layer blobs into the unpacker. What is particular
//! to a registry lives here: manifest negotiation (every schema-2 type is listed in `Accept`,
//! because the distribution registry neither honours wildcards nor converts between OCI and Docker
//! types, and answers a Docker-only client with schema 1), authorization, TLS, retries.
//!
//! Invariants:
//! - a manifest is verified before anyone parses it: fetched by digest, its bytes must hash to that
//!   digest; fetched by tag, to the `Docker-Content-Digest` the registry announces (when it does);
//!   its digest is always the hash of the bytes we hold;
//! - schema 1 is refused before its digest is checked (its signed form never hashes to the
//!   announced digest, and "digest mismatch" would be the wrong thing to tell a person);
//! - layer blobs are handed out raw: the unpacker verifies them as they stream.

mod auth;
mod blob;
mod catalog;
mod client;
mod client_cert;
mod error;
mod insecure;
mod redirect;
mod search;
mod tags;
mod tls;
mod upload;

pub use auth::{docker_config_dir, parse_challenges, Challenge, Credentials};
pub use catalog::list_repositories;
pub use client::{Client, CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, STALL_TIMEOUT};
pub use error::RegistryError;
pub use insecure::is_insecure_registry;
pub use search::{search as search_registry, SearchOutcome, SearchResult};
pub use tags::next_link;
pub use upload::{BlobUpload, MountOutcome, Uploader};

use super::{ImageSource, SourceError, SourceRef};
use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::{Descriptor, Reference};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Registries refuse manifests over 4 MiB (distribution's limit); so do we.
const MAX_MANIFEST_SIZE: u64 = super::MAX_MANIFEST_SIZE;

/// The manifest types we accept, in the order we prefer them.
pub const MANIFEST_ACCEPT: [&str; 4] = [
    mt::OCI_INDEX,
    mt::DOCKER_MANIFEST_LIST,
    mt::OCI_MANIFEST,
    mt::DOCKER_MANIFEST,
];

/// Called as a blob streams: (blob digest, bytes so far, blob size).
pub type Progress = dyn Fn(&Digest, u64, u64) + Send + Sync;

/// How to talk to registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Allow plain HTTP and unverified HTTPS for this registry (docker's insecure registries).
    pub insecure: bool,
    /// Extra CAs (`*.crt`, as podman's `--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// Credentials to use instead of those in config.json (`lamina login` checks these).
    pub credentials: Option<Credentials>,
    /// Where config.json is; default `$DOCKER_CONFIG` or `~/.docker`.
    pub docker_config: Option<PathBuf>,
    /// Retries of a request that failed transiently, and of a blob whose connection dropped.
    pub retries: u32,
    /// Where a retry is said (the CLI: stderr); without one, the debug log.
    pub notices: Notices,
}

/// Something a person should hear while a command goes on (a retry, a resume).
#[derive(Clone, Default)]
pub struct Notices(Option<Arc<Say>>);

type Say = dyn Fn(&str) + Send + Sync;

impl Notices {
    pub fn new(say: impl Fn(&str) + Send + Sync + 'static) -> Notices {
        Notices(Some(Arc::new(say)))
    }

    pub fn say(&self, message: &str) {
        match &self.0 {
            Some(f) => f(message),
            None => tracing::info!("{message}"),
        }
    }
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notices(..)"
        } else {
            "Notices(log)"
        })
    }
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            cert_dir: None,
            credentials: None,
            docker_config: None,
            retries: std::env::var("LAMINA_RETRIES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(4),
            notices: Notices::default(),
        }
    }
}

impl RegistryOptions {
    pub fn docker_config_dir(&self) -> PathBuf {
        self.docker_config.clone().unwrap_or_else(docker_config_dir)
    }
}

/// A manifest or index as the registry served it, verified.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    /// The Content-Type, without parameters.
    pub media_type: String,
    pub digest: Digest,
}

/// One repository of one registry.
pub struct RegistrySource {
    client: Client,
    reference: Reference,
    scope: String,
    /// Manifests already fetched (by tag), so `resolve` does not fetch them again.
    manifests: Mutex<HashMap<Digest, Vec<u8>>>,
    progress: Option<Arc<Progress>>,
}

impl RegistrySource {
    /// Connects to the registry of `reference` for its repository.
    pub fn open(reference: &Reference, opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let client = Client::connect(&reference.domain, opts)?;
        Ok(RegistrySource {
            client,
            scope: format!("repository:{}:pull", reference.path),
            reference: reference.clone(),
            manifests: Mutex::new(HashMap::new()),
            progress: None,
        })
    }

    /// Reports the progress of every blob streamed from now on.
    pub fn set_progress(&mut self, progress: Arc<Progress>) {
        self.progress = Some(progress);
    }

    /// `GET /v2/NAME/manifests/TAG_OR_DIGEST`, negotiated and verified.
    pub fn fetch_manifest(&self, tag_or_digest: &str) -> Result<FetchedManifest, RegistryError> {
        let reference = format!(
            "{}{}{tag_or_digest}",
            self.reference.repository(),
            if tag_or_digest.starts_with("sha256:") {
                "@"
            } else {
                ":"
            }
        );
        let path = format!("/v2/{}/manifests/{tag_or_digest}", self.reference.path);
        let accept = MANIFEST_ACCEPT.join(", ");
        let what = format!("manifest for {reference}");
        let resp = self
            .client
            .get(&path, &self.scope, &[("Accept", &accept)])
            .map_err(|r| self.client.refusal_error(r, &what))?;
        let media_type = resp
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
            .unwrap_or_default();
        let announced = resp.header("docker-content-digest").map(str::to_string);
        if mt::is_schema1(&media_type) {
            return Err(RegistryError::Schema1 {
                reference,
                media_type,
            });
        }
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Transport {
                url: path.clone(),
                reason: e.to_string(),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                reference,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let digest = Digest::of_bytes(&bytes);
        let expected = match tag_or_digest.parse::<Digest>() {
            Ok(d) => Some(d),
            // A digest header we cannot parse (another algorithm) checks nothing.
            Err(_) => announced.as_deref().and_then(|a| a.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    reference,
                    expected,
                    got: digest,
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The image a tag or digest names, as a source ref `resolve` can walk (the manifest is
    /// fetched now and kept).
    pub fn source_ref(&self, tag_or_digest: &str) -> Result<SourceRef, RegistryError> {
        let m = self.fetch_manifest(tag_or_digest)?;
        let named = match tag_or_digest.parse::<Digest>() {
            Ok(d) => format!("{}@{d}", self.reference.repository_familiar()),
            Err(_) => format!("{}:{tag_or_digest}", self.reference.repository_familiar()),
        };
        // An unknown or generic Content-Type leaves the decision to the document's mediaType.
        let media_type = if mt::is_manifest(&m.media_type) || mt::is_index(&m.media_type) {
            m.media_type.clone()
        } else {
            String::new()
        };
        let desc = Descriptor::new(&media_type, m.digest.clone(), m.bytes.len() as u64);
        if let Ok(mut cache) = self.manifests.lock() {
            cache.insert(m.digest, m.bytes);
        }
        Ok(SourceRef {
            name: Some(named),
            descriptor: desc,
        })
    }

    /// Every tag of the repository (all pages).
    pub fn tags(&self) -> Result<Vec<String>, RegistryError> {
        tags::list_tags(&self.client, &self.reference.path, &self.scope)
    }

    /// The tag or digest this source was opened for (`latest` when the reference names neither).
    fn wanted(&self) -> String {
        match (&self.reference.digest, &self.reference.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => crate::image::reference::DEFAULT_TAG.to_string(),
        }
    }
}

impl ImageSource for RegistrySource {
    fn describe(&self) -> String {
        format!("registry {}", self.reference.domain)
    }

    fn default_repository(&self) -> String {
        self.reference.repository()
    }

    fn refs(&self) -> Result<Vec<SourceRef>, SourceError> {
        Ok(vec![self.source_ref(&self.wanted())?])
    }

    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let cached = self
            .manifests
            .lock()
            .ok()
            .and_then(|c| c.get(&desc.digest).cloned());
        if let Some(bytes) = cached {
            return Ok(Box::new(Cursor::new(bytes)));
        }
        let t = desc.media_type.as_str();
        if mt::is_manifest(t) || mt::is_index(t) || mt::is_schema1(t) {
            let m = self.fetch_manifest(&desc.digest.to_string())?;
            return Ok(Box::new(Cursor::new(m.bytes)));
        }
        let reader = blob::BlobReader::open(
            &self.client,
            &self.reference.path,
            &self.scope,
            &desc.digest,
            desc.size,
            self.progress.clone(),
        )?;
        Ok(Box::new(reader))
    }
}

/// Checks `credentials` against `registry` (as `docker login` does: `GET /v2/` with them) and
/// stores them in the docker config.json of `opts`. Returns the file written.
pub fn login(
    registry: &str,
    credentials: Credentials,
    opts: &RegistryOptions,
) -> Result<PathBuf, RegistryError> {
    let opts = RegistryOptions {
        credentials: Some(credentials.clone()),
        ..opts.clone()
    };
    let client = Client::connect(registry, &opts)?;
    client.check_login()?;
    auth::store(&opts.docker_config_dir(), registry, &credentials)
}

/// Removes the stored credentials for `registry` (`docker logout`): false when there were none.
pub fn logout(registry: &str, opts: &RegistryOptions) -> Result<bool, RegistryError> {
    auth::erase(&opts.docker_config_dir(), registry)
}

/// How docker names a registry in its logout messages: Docker Hub as its config key.
pub fn logout_name(registry: &str) -> String {
    auth::auth_key(registry)
}

/// The registry a `login` argument names: `host[:port]` with any scheme or path dropped, and
/// Docker Hub's aliases as `docker.io`.
pub fn login_registry(arg: &str) -> String {
    let rest = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
        .unwrap_or(arg);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".into(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod login_tests;
