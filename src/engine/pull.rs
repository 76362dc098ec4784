//! `pull` (and `manifest inspect`, `login`): images from a registry into the store. The registry is a
//! source like any other; what pull adds is the up-to-date check (docker's "Image is up to date")
//! and the names a pulled image gets.

use super::{Engine, EngineError, Observer, Result};
use crate::digest::Digest;
use crate::image::reference::is_valid_tag;
use crate::image::{Platform, Reference};
use crate::source::registry::{self, Credentials, RegistryError, RegistryOptions, RegistrySource};
use crate::source::{self, SourceRef};
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes of a blob arrived: (blob digest, bytes so far, total).
pub type BlobProgress = registry::Progress;

impl From<RegistryError> for EngineError {
    fn from(e: RegistryError) -> Self {
        EngineError::Source(e.into())
    }
}

/// A connection to one repository of a registry.
pub struct Puller {
    source: RegistrySource,
    reference: Reference,
}

/// What one pulled tag or digest did.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub id: Digest,
    /// The manifest (or index) digest the registry served.
    pub digest: Digest,
    /// True when the store changed (a new image, or a tag that moved).
    pub new: bool,
}

impl Puller {
    /// Connects to the registry `reference` names; `progress` hears of every blob's bytes.
    pub fn open(
        reference: &Reference,
        opts: &RegistryOptions,
        progress: Option<Arc<BlobProgress>>,
    ) -> Result<Puller> {
        let mut source = RegistrySource::open(reference, opts)?;
        if let Some(p) = progress {
            source.set_progress(p);
        }
        Ok(Puller {
            source,
            reference: reference.clone(),
        })
    }

    /// Every tag of the repository, checked against the reference grammar: what a registry lists
    /// becomes part of a request path and a stored name, so `../x`, `-rf`, `.hidden`, 300 bytes or
    /// escape sequences are set aside (for the caller to warn about), never pulled.
    pub fn tags(&self) -> Result<TagList> {
        let (valid, refused) = self
            .source
            .tags()?
            .into_iter()
            .partition(|t| is_valid_tag(t));
        Ok(TagList { valid, refused })
    }

    /// A manifest or index exactly as the registry serves it.
    pub fn manifest(&self, tag_or_digest: &str) -> Result<Vec<u8>> {
        Ok(self.source.fetch_manifest(tag_or_digest)?.bytes)
    }
}

/// A repository's tag list, split by the reference grammar.
#[derive(Debug, Clone, Default)]
pub struct TagList {
    /// The tags that may be pulled, in the registry's order.
    pub valid: Vec<String>,
    /// What the registry listed that is not a tag (see [`TAG_RULE`]).
    pub refused: Vec<String>,
}

/// What a tag is, for messages.
pub const TAG_RULE: &str =
    "a tag is up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'";

/// `docker.io/library/debian:latest`, or `…/debian@sha256:…` for a digest.
pub fn full_name(reference: &Reference, tag_or_digest: &str) -> String {
    let sep = if tag_or_digest.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    format!("{}{sep}{tag_or_digest}", reference.repository())
}

/// The tag or digest a reference asks for (`latest` when it names neither).
pub fn wanted(reference: &Reference) -> String {
    match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => crate::image::reference::DEFAULT_TAG.to_string(),
    }
}

/// Checks `credentials` against `registry` and stores them as docker does; returns the file written.
pub fn login(registry: &str, credentials: Credentials, opts: &RegistryOptions) -> Result<PathBuf> {
    Ok(registry::login(registry, credentials, opts)?)
}

/// The registry a `login` argument names (`host[:port]`, Docker Hub's aliases as `docker.io`).
pub fn login_registry(arg: &str) -> String {
    registry::login_registry(arg)
}

impl Engine {
    /// Pulls one tag or digest of the puller's repository.
    pub fn pull(
        &mut self,
        puller: &Puller,
        tag_or_digest: &str,
        platform: &Platform,
        observer: &dyn Observer,
    ) -> Result<PulledImage> {
        // Checked before it reaches the registry as part of a URL, or the store as a name.
        if tag_or_digest.parse::<Digest>().is_err() && !is_valid_tag(tag_or_digest) {
            return Err(EngineError::Invalid(format!(
                "{tag_or_digest:?} is neither a tag nor a digest: {TAG_RULE}"
            )));
        }
        let sref: SourceRef = puller.source.source_ref(tag_or_digest)?;
        let image = source::resolve(&puller.source, &sref, platform)?;
        for w in &image.warnings {
            observer.warning(w);
        }
        let id = image.id();
        let repository = puller.reference.repository();
        let top_digest = sref.descriptor.digest.clone();
        let is_digest = tag_or_digest.parse::<Digest>().is_ok();
        let tags = if is_digest {
            vec![]
        } else {
            vec![full_name(&puller.reference, tag_or_digest)]
        };
        let up_to_date = self.store.is_current(
            &id,
            &repository,
            &top_digest,
            tags.first().map(String::as_str),
        )?;
        observer.image_started(&image.layers);
        let result = self.ingest(
            &puller.source,
            &image,
            &tags,
            Some((repository.as_str(), &top_digest)),
            observer,
        );
        observer.image_finished();
        result?;
        Ok(PulledImage {
            id,
            digest: top_digest,
            new: !up_to_date,
        })
    }
}
