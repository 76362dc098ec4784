//! `pull` (and `manifest inspect`, `login`): images from a registry into the store. The registry is a
//! source like any other; what pull adds is the up-to-date check (docker's "Image is up to date")
//! and the names a pulled image gets.

use super::{Engine, EngineError, Observer, Result};
use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::reference::is_valid_tag;
use crate::image::{parse_manifest, Descriptor, ManifestKind, Platform, Reference};
use crate::source::registry::{self, Credentials, RegistryError, RegistryOptions, RegistrySource};
use crate::source::{self, ResolvedImage, SourceRef};
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

    /// The registry repository, as an image source (the snapshotter's own fetches read from it).
    pub(super) fn source(&self) -> &RegistrySource {
        &self.source
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

/// A manifest or index as `manifest inspect` shows it.
#[derive(Debug, Clone)]
pub struct InspectedManifest {
    /// The document exactly as the registry serves it.
    pub bytes: Vec<u8>,
    /// Its media type (the document's own when the registry's Content-Type is generic).
    pub media_type: String,
    pub digest: Digest,
    /// For an index: each entry, with its manifest's bytes when they were asked for.
    pub members: Option<Vec<(Descriptor, Option<Vec<u8>>)>>,
    /// For one manifest, when asked for: the platform its config says.
    pub platform: Option<Platform>,
}

impl Puller {
    /// The manifest or index `tag_or_digest` names; with `verbose`, also each entry's manifest
    /// (for an index) or the platform of its config (for a manifest), as docker's `-v` shows them.
    pub fn inspect(&self, tag_or_digest: &str, verbose: bool) -> Result<InspectedManifest> {
        let fetched = self.source.fetch_manifest(tag_or_digest)?;
        // A generic Content-Type leaves the decision to the document's mediaType.
        let hint = (mt::is_manifest(&fetched.media_type) || mt::is_index(&fetched.media_type))
            .then_some(fetched.media_type.as_str());
        let kind = parse_manifest(&fetched.bytes, hint)
            .map_err(|e| EngineError::Invalid(format!("manifest {}: {e}", fetched.digest)))?;
        let mut out = InspectedManifest {
            media_type: String::new(),
            bytes: fetched.bytes.clone(),
            digest: fetched.digest.clone(),
            members: None,
            platform: None,
        };
        match kind {
            ManifestKind::Index(index) => {
                out.media_type = index.media_type.clone().unwrap_or(fetched.media_type);
                let mut members = Vec::with_capacity(index.manifests.len());
                for d in index.manifests {
                    let bytes = if verbose {
                        Some(self.source.fetch_manifest(&d.digest.to_string())?.bytes)
                    } else {
                        None
                    };
                    members.push((d, bytes));
                }
                out.members = Some(members);
            }
            ManifestKind::Manifest(m) => {
                out.media_type = m.media_type.clone().unwrap_or(fetched.media_type);
                if verbose {
                    let sref = self.source.source_ref(tag_or_digest)?;
                    let image = source::resolve(&self.source, &sref, &Platform::host())?;
                    out.platform = Some(image.platform);
                }
            }
        }
        Ok(out)
    }
}

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

/// Removes the stored credentials for `registry`; false when there were none.
pub fn logout(registry: &str, opts: &RegistryOptions) -> Result<bool> {
    Ok(registry::logout(registry, opts)?)
}

/// The registry as docker's logout messages name it (Docker Hub: `https://index.docker.io/v1/`).
pub fn logout_name(registry: &str) -> String {
    registry::logout_name(registry)
}

/// The registry a `login` argument names (`host[:port]`, Docker Hub's aliases as `docker.io`).
pub fn login_registry(arg: &str) -> String {
    registry::login_registry(arg)
}

/// What a tag or digest of the repository resolved to, before anything is fetched but the
/// manifests and the config (so that a caller prints nothing before a "manifest unknown").
pub struct ResolvedPull {
    tag_or_digest: String,
    name: String,
    top_digest: Digest,
    image: ResolvedImage,
}

impl ResolvedPull {
    /// The digest of what the tag names (the index for a multi-platform image), as docker shows it.
    pub fn digest(&self) -> &Digest {
        &self.top_digest
    }

    /// The manifest, config and layers it resolved to.
    pub(super) fn image(&self) -> &ResolvedImage {
        &self.image
    }
}

impl Puller {
    /// Fetches the manifest (and, through an index, the platform's manifest) and the config of
    /// one tag or digest.
    pub fn resolve(&self, tag_or_digest: &str, platform: &Platform) -> Result<ResolvedPull> {
        // Checked before it reaches the registry as part of a URL, or the store as a name.
        if tag_or_digest.parse::<Digest>().is_err() && !is_valid_tag(tag_or_digest) {
            return Err(EngineError::Invalid(format!(
                "{tag_or_digest:?} is neither a tag nor a digest: {TAG_RULE}"
            )));
        }
        let sref: SourceRef = self.source.source_ref(tag_or_digest)?;
        let image = source::resolve(&self.source, &sref, platform)?;
        Ok(ResolvedPull {
            tag_or_digest: tag_or_digest.to_string(),
            name: sref.display_name(),
            top_digest: sref.descriptor.digest.clone(),
            image,
        })
    }
}

/// Tells the observer what a person should hear about a resolved image: the source's warnings,
/// and an image that is not for the platform wanted.
pub(crate) fn report_warnings(
    image: &ResolvedImage,
    name: &str,
    platform: &Platform,
    observer: &dyn Observer,
) {
    for w in &image.warnings {
        observer.warning(w);
    }
    if !platform.matches(&image.platform) {
        observer.platform_mismatch(name, &image.platform, platform);
    }
}

impl Engine {
    /// Pulls what `resolved` names from the puller's repository. An image already in the store is
    /// not fetched again (docker: "Image is up to date", or only a new name for it): only its
    /// names are recorded, and the observer hears of no layer.
    pub fn pull(
        &mut self,
        puller: &Puller,
        resolved: &ResolvedPull,
        platform: &Platform,
        observer: &dyn Observer,
    ) -> Result<PulledImage> {
        let image = &resolved.image;
        report_warnings(image, &resolved.name, platform, observer);
        let id = image.id();
        let repository = puller.reference.repository();
        let top_digest = &resolved.top_digest;
        let tags = if resolved.tag_or_digest.parse::<Digest>().is_ok() {
            vec![]
        } else {
            vec![full_name(&puller.reference, &resolved.tag_or_digest)]
        };
        let up_to_date = self.store.is_current(
            &id,
            &repository,
            top_digest,
            tags.first().map(String::as_str),
        )?;
        // The indexes walked to the manifest: the repository digest names the outermost, and the
        // store keeps the manifest it chose because the index lists it.
        for (digest, bytes) in &image.indexes {
            self.store.put_blob(digest, bytes)?;
        }
        let repo_digest = Some((repository.as_str(), top_digest));
        // With --keep-blobs a stored image goes through the load below, which keeps the blobs
        // of its layers it does not have yet.
        let stored = match self.keep_blobs {
            true => None,
            false => self.store.image(&id)?,
        };
        if let Some(row) = stored {
            let layers = self.store.image_layers(&id)?;
            // Held until the names are recorded, so that an `rmi` of the image meanwhile cannot
            // take the layers the record names (see `store::locks`).
            let _in_use = layers
                .iter()
                .map(|l| self.store.lock_layer_use(&l.diff_id))
                .collect::<Result<Vec<_>, _>>()?;
            let layout = self.store.layout();
            if layers.iter().all(|l| layout.layer(&l.key).diff().is_dir()) {
                if let Some(d) = &image.manifest_digest {
                    self.store.put_blob(d, &image.manifest_bytes)?;
                }
                self.store.record_image(&row, &layers, &tags, repo_digest)?;
                return Ok(PulledImage {
                    id,
                    digest: top_digest.clone(),
                    new: !up_to_date,
                });
            }
        }
        observer.image_started(&image.layers);
        let result = self.ingest(&puller.source, image, &tags, repo_digest, observer);
        observer.image_finished();
        result?;
        Ok(PulledImage {
            id,
            digest: top_digest.clone(),
            new: !up_to_date,
        })
    }
}
