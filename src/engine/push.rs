//! `push`: an image of the store to a registry, as docker pushes it. Each layer is, in order of
//! preference: already in the repository (`HEAD`: "Layer already exists"), mounted from another
//! repository of the same registry that the image was pulled from or pushed to ("Mounted from"),
//! or uploaded ("Pushed"): its kept blob as it came, when `load`/`pull --keep-blobs` kept one that
//! matches the compression asked for (see `keep_blobs`), else compressed from the stored layer as
//! it streams. Then the config and the manifest, by tag.
//!
//! What the registry holds is known from the store: every pull and push records the repository and
//! the manifest digest (`repo_digests`), and keeps the manifest, whose layers are the compressed
//! blobs of the image's diffIDs. An image pushed back to where it came from therefore sends no
//! layer and the same manifest bytes (same digest); the image ID (the config digest) never changes.
//!
//! Invariant: the store changes only when the registry has confirmed the manifest (the manifest
//! is kept and the repository digest recorded, as docker records it after a push).

use super::push_layer::{compress_layer, send_kept_blob, Compression, LayerCompression};
use super::{Engine, EngineError, Result};
use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::{parse_manifest, Descriptor, Manifest, ManifestKind, Reference};
use crate::source::registry::{MountOutcome, RegistryError, RegistryOptions, Uploader};
use crate::store::{KeptBlob, LayerRow};
use crate::unpack::{self, BlobCompression};
use serde_json::json;

/// A connection to one repository of a registry, with push rights.
pub struct Pusher {
    up: Uploader,
    reference: Reference,
}

impl Pusher {
    pub fn open(reference: &Reference, opts: &RegistryOptions) -> Result<Pusher> {
        Ok(Pusher {
            up: Uploader::open(reference, opts)?,
            reference: reference.clone(),
        })
    }
}

/// What happened to one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStatus {
    Pushed,
    AlreadyExists,
    /// Mounted from this repository (its path in the registry).
    MountedFrom(String),
}

/// Hears of a push as it goes.
pub trait PushObserver: Sync {
    /// A layer (by its blob digest in the registry) is done.
    fn layer(&self, _blob: &Digest, _status: &PushStatus) {}
    /// Something a person should know (a resumed or restarted upload).
    fn notice(&self, _message: &str) {}
}

/// What one pushed tag became.
#[derive(Debug, Clone)]
pub struct PushedTag {
    pub tag: String,
    /// The manifest digest the registry confirmed.
    pub digest: Digest,
    pub size: u64,
}

/// A manifest of this image the store holds, and the repository it came from or went to.
struct Known {
    repository: Reference,
    manifest: Manifest,
    media_type: String,
    bytes: Vec<u8>,
}

impl Engine {
    /// The tags to push for `reference`: its tag (default `latest`), or with `all_tags` every tag
    /// of its repository in the store; each with its image. Fails when there is none.
    pub fn push_targets(
        &self,
        reference: &Reference,
        all_tags: bool,
    ) -> Result<Vec<(String, Digest)>> {
        if reference.digest.is_some() {
            return Err(EngineError::Invalid(
                "cannot push a digest reference: name a tag".into(),
            ));
        }
        if !all_tags {
            let r = reference.clone().with_default_tag();
            let tag = r.tag.clone().unwrap_or_default();
            let id = self.store.tag_target(&r.to_string())?.ok_or_else(|| {
                EngineError::Invalid(format!(
                    "an image does not exist locally with the tag: {}",
                    r.familiar()
                ))
            })?;
            return Ok(vec![(tag, id)]);
        }
        let repository = reference.repository();
        let mut out = vec![];
        for row in self.store.images()? {
            for t in self.store.familiar_tags(&row.id)? {
                if let Ok(r) = Reference::parse(&t) {
                    if r.repository() == repository {
                        out.push((r.tag.unwrap_or_default(), row.id.clone()));
                    }
                }
            }
        }
        out.sort();
        if out.is_empty() {
            return Err(EngineError::Invalid(format!(
                "an image does not exist locally with the repository: {}",
                reference.repository_familiar()
            )));
        }
        Ok(out)
    }

    /// Pushes image `id` as `tag` of the pusher's repository.
    pub fn push(
        &mut self,
        pusher: &Pusher,
        tag: &str,
        id: &Digest,
        compression: LayerCompression,
        observer: &dyn PushObserver,
    ) -> Result<PushedTag> {
        let layers = self.store.image_layers(id)?;
        let known = self.known_manifests(id, layers.len())?;
        let target = &pusher.reference;
        // Blobs of the registry are reused unless they are of another format than was asked for.
        let same_registry: Vec<&Known> = known
            .iter()
            .filter(|k| k.repository.domain == target.domain)
            .filter(|k| {
                k.manifest
                    .layers
                    .iter()
                    .all(|l| compression.takes_format(media_type_format(&l.media_type)))
            })
            .collect();
        let kept = layers
            .iter()
            .map(|l| self.kept_for_push(l, compression))
            .collect::<Result<Vec<_>>>()?;
        let kept_zstd = kept
            .iter()
            .flatten()
            .any(|(_, f)| *f == Some(Compression::Zstd));
        let oci = compression.format == Compression::Zstd
            || kept_zstd
            || same_registry
                .first()
                .is_some_and(|k| k.media_type == mt::OCI_MANIFEST);
        let mut descriptors = Vec::with_capacity(layers.len());
        // Which known manifest every layer came from, if all came from the same one.
        let mut reused_from: Option<Option<usize>> = None;
        for (i, layer) in layers.iter().enumerate() {
            let (desc, source) = self.push_layer(
                pusher,
                layer,
                i,
                &same_registry,
                kept[i].as_ref(),
                (compression, oci),
                observer,
            )?;
            reused_from = Some(match reused_from {
                None => source,
                Some(prev) if prev == source => prev,
                Some(_) => None,
            });
            descriptors.push(desc);
        }
        let config = self.store.config_bytes(id)?;
        if !pusher.up.has_blob(id)? {
            pusher.up.upload_whole(id, &config)?;
        }
        let whole = reused_from.flatten().map(|k| same_registry[k]);
        let (media_type, bytes) = match whole {
            Some(k) => (k.media_type.clone(), k.bytes.clone()),
            None => build_manifest(oci, id, config.len() as u64, &descriptors)?,
        };
        let digest = pusher.up.put_manifest(tag, &media_type, &bytes)?;
        self.store.put_blob(&digest, &bytes)?;
        if let Some(row) = self.store.image(id)? {
            let rows = self.store.image_layers(id)?;
            self.store
                .record_image(&row, &rows, &[], Some((&target.repository(), &digest)))?;
        }
        Ok(PushedTag {
            tag: tag.to_string(),
            digest,
            size: bytes.len() as u64,
        })
    }

    /// One layer: its descriptor in the pushed manifest, and the index of the known manifest whose
    /// blob it reused (None when it was compressed anew).
    #[allow(clippy::too_many_arguments)]
    fn push_layer(
        &self,
        pusher: &Pusher,
        layer: &LayerRow,
        index: usize,
        known: &[&Known],
        kept: Option<&(KeptBlob, Option<Compression>)>,
        (compression, oci): (LayerCompression, bool),
        observer: &dyn PushObserver,
    ) -> Result<(Descriptor, Option<usize>)> {
        let up = &pusher.up;
        let target = &pusher.reference;
        for (k, m) in known.iter().enumerate() {
            let desc = &m.manifest.layers[index];
            if up.has_blob(&desc.digest)? {
                observer.layer(&desc.digest, &PushStatus::AlreadyExists);
                return Ok((desc.clone(), Some(k)));
            }
        }
        for (k, m) in known.iter().enumerate() {
            if m.repository.path == target.path {
                continue;
            }
            let desc = &m.manifest.layers[index];
            if up.mount(&desc.digest, &m.repository.path)? == MountOutcome::Mounted {
                observer.layer(
                    &desc.digest,
                    &PushStatus::MountedFrom(m.repository.path.clone()),
                );
                return Ok((desc.clone(), Some(k)));
            }
        }
        if let Some((blob, format)) = kept {
            if up.has_blob(&blob.digest)? {
                observer.layer(&blob.digest, &PushStatus::AlreadyExists);
                let media_type = layer_media_type(*format, oci);
                return Ok((
                    Descriptor::new(media_type, blob.digest.clone(), blob.size),
                    None,
                ));
            }
        }
        let what = format!("layer {}", layer.diff_id);
        let paths = self.store.layout().layer(&layer.key);
        let mut attempt = 0;
        let compressed = loop {
            let mut session = Some(up.start(&what)?);
            let send = |chunk: &[u8]| {
                let s = session
                    .as_mut()
                    .ok_or_else(|| EngineError::Invalid(what.clone()))?;
                s.send_chunk(chunk, &|m| observer.notice(m))?;
                Ok(())
            };
            let sent = match kept {
                Some((blob, _)) => send_kept_blob(blob, &what, send),
                None => compress_layer(&paths, &layer.diff_id, compression, &what, send),
            };
            let result = sent.and_then(|(c, last)| {
                let s = session
                    .take()
                    .ok_or_else(|| EngineError::Invalid(what.clone()))?;
                s.finish_with(&c.digest, &last)?;
                Ok(c)
            });
            match result {
                Ok(c) => break c,
                Err(EngineError::Source(e)) if attempt < RESTARTS && is_broken(&e) => {
                    attempt += 1;
                    observer.notice(&format!("{what}: {e}; restarting its upload"));
                }
                Err(e) => return Err(e),
            }
        };
        let format = kept.map_or(Some(compression.format), |(_, f)| *f);
        observer.layer(&compressed.digest, &PushStatus::Pushed);
        Ok((
            Descriptor::new(
                layer_media_type(format, oci),
                compressed.digest,
                compressed.size,
            ),
            None,
        ))
    }

    /// The kept blob of `layer` (see `keep_blobs`) that `compression` lets push send as it is, with
    /// its format (None: a plain tar); the asked (or default) format is preferred.
    fn kept_for_push(
        &self,
        layer: &LayerRow,
        compression: LayerCompression,
    ) -> Result<Option<(KeptBlob, Option<Compression>)>> {
        let mut taken = vec![];
        for blob in self.store.kept_blobs(&layer.key)? {
            let Some(format) = kept_format(&blob) else {
                continue;
            };
            if compression.takes_kept(format) {
                taken.push((blob, format));
            }
        }
        taken.sort_by_key(|(_, f)| *f != Some(compression.format));
        Ok(taken.into_iter().next())
    }

    /// The manifests of image `id` (with `layers` layers) the store holds, with the repository each
    /// was pulled from or pushed to.
    fn known_manifests(&self, id: &Digest, layers: usize) -> Result<Vec<Known>> {
        let mut out = vec![];
        for (repo, digest) in self.store.repo_digests_of(id)? {
            let Ok(repository) = Reference::parse(&repo) else {
                continue;
            };
            let mut candidates = vec![digest];
            while let Some(d) = candidates.pop() {
                let Ok(bytes) = std::fs::read(self.store.layout().blob(&d)) else {
                    continue;
                };
                match parse_manifest(&bytes, None) {
                    Ok(ManifestKind::Index(i)) => {
                        candidates.extend(i.manifests.into_iter().map(|m| m.digest));
                    }
                    Ok(ManifestKind::Manifest(m))
                        if &m.config.digest == id && m.layers.len() == layers =>
                    {
                        out.push(Known {
                            repository: repository.clone(),
                            media_type: m
                                .media_type
                                .clone()
                                .unwrap_or_else(|| mt::OCI_MANIFEST.to_string()),
                            manifest: m,
                            bytes,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

/// The compression of a kept blob, by its first bytes; None when it cannot be read or is not a
/// layer format push sends (the blob is then not used, and the layer is compressed again).
fn kept_format(blob: &KeptBlob) -> Option<Option<Compression>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&blob.path)
        .ok()?;
    let mut magic = Vec::with_capacity(16);
    file.by_ref().take(16).read_to_end(&mut magic).ok()?;
    match unpack::detect(&magic).ok()? {
        BlobCompression::Gzip => Some(Some(Compression::Gzip)),
        BlobCompression::Zstd => Some(Some(Compression::Zstd)),
        BlobCompression::Plain => Some(None),
    }
}

/// The format a layer media type names (None: a plain tar or a type push does not know).
fn media_type_format(media_type: &str) -> Option<Compression> {
    match crate::image::manifest::layer_compression(media_type) {
        Ok(crate::image::LayerCompression::Gzip) => Some(Compression::Gzip),
        Ok(crate::image::LayerCompression::Zstd) => Some(Compression::Zstd),
        _ => None,
    }
}

/// A layer's media type in a manifest of the OCI (`oci`) or the Docker family; zstd is OCI's only.
fn layer_media_type(format: Option<Compression>, oci: bool) -> &'static str {
    match (format, oci) {
        (Some(Compression::Zstd), _) => mt::OCI_LAYER_TAR_ZSTD,
        (Some(Compression::Gzip), true) => mt::OCI_LAYER_TAR_GZIP,
        (Some(Compression::Gzip), false) => mt::DOCKER_LAYER_TAR_GZIP,
        (None, true) => mt::OCI_LAYER_TAR,
        (None, false) => mt::DOCKER_LAYER_TAR,
    }
}

/// Times a layer whose upload broke is started again from its first byte.
const RESTARTS: u32 = 2;

/// A connection that broke (worth restarting the blob), not a refusal.
fn is_broken(e: &crate::source::SourceError) -> bool {
    matches!(
        e,
        crate::source::SourceError::Registry(r)
            if matches!(**r, RegistryError::Request { .. } | RegistryError::Transport { .. })
    )
}

/// A schema-2 manifest (Docker's types, as docker pushes; OCI's for zstd or an OCI image).
fn build_manifest(
    oci: bool,
    id: &Digest,
    config_size: u64,
    layers: &[Descriptor],
) -> Result<(String, Vec<u8>)> {
    let (manifest_type, config_type) = if oci {
        (mt::OCI_MANIFEST, mt::OCI_CONFIG)
    } else {
        (mt::DOCKER_MANIFEST, mt::DOCKER_CONFIG)
    };
    let layers: Vec<Descriptor> = layers
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.media_type = match (oci, d.media_type.as_str()) {
                (true, mt::DOCKER_LAYER_TAR_GZIP) => mt::OCI_LAYER_TAR_GZIP.into(),
                (false, mt::OCI_LAYER_TAR_GZIP) => mt::DOCKER_LAYER_TAR_GZIP.into(),
                (_, t) => t.to_string(),
            };
            d
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": Descriptor::new(config_type, id.clone(), config_size),
        "layers": layers,
    });
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| EngineError::Invalid(format!("manifest of {id}: {e}")))?;
    Ok((manifest_type.to_string(), bytes))
}
