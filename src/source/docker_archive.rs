//! docker-archives, the `docker save` format: `manifest.json` lists, per image, a config file,
//! its RepoTags and its layer files, bottom first.
//!
//! There are no manifests in such an archive, so one Docker schema-2 manifest is synthesised per
//! image and served from memory like any other blob; `resolve` then handles every source the
//! same way. Layer descriptors: a `blobs/sha256/<hex>` layer (docker 25+) has that digest; a
//! legacy `<id>/layer.tar` or `<diffID>.tar` layer is an uncompressed tar, so its blob digest is
//! its diffID, taken from the config by position.

use super::layout::missing_hint;
use super::tar_index::TarIndex;
use super::{repository_from_path, ImageSource, SourceError, SourceRef};
use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::{Descriptor, ImageConfig, Manifest};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

const MAX_MANIFEST_JSON_SIZE: u64 = 16 << 20;
/// Images one manifest.json may list: each costs a config read (up to 8 MiB) and, for a
/// compressed legacy layer, a hash of the layer; `docker save` of a whole host writes a few hundred.
const MAX_IMAGES: usize = 4096;

#[derive(serde::Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(
        rename = "RepoTags",
        default,
        deserialize_with = "crate::image::null_as_default"
    )]
    repo_tags: Vec<String>,
    #[serde(
        rename = "Layers",
        default,
        deserialize_with = "crate::image::null_as_default"
    )]
    layers: Vec<String>,
}

enum Blob {
    Member(String),
    Synthesized(Vec<u8>),
}

pub struct DockerArchive {
    tar: TarIndex,
    refs: Vec<SourceRef>,
    blobs: HashMap<Digest, Blob>,
    /// Blob digests of compressed legacy layers (None: not compressed), each member hashed
    /// once however many images list it.
    legacy_digests: HashMap<String, Option<Digest>>,
}

impl DockerArchive {
    pub(crate) fn open(tar: TarIndex) -> Result<Self, SourceError> {
        let bytes = read_member(&tar, "manifest.json", MAX_MANIFEST_JSON_SIZE)?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&bytes).map_err(|e| SourceError::Malformed {
                file: file_name(&tar, "manifest.json"),
                reason: e.to_string(),
            })?;
        if entries.len() > MAX_IMAGES {
            return Err(SourceError::Limit {
                file: file_name(&tar, "manifest.json"),
                reason: format!("lists {} images (limit {MAX_IMAGES})", entries.len()),
            });
        }
        let mut archive = DockerArchive {
            tar,
            refs: Vec::new(),
            blobs: HashMap::new(),
            legacy_digests: HashMap::new(),
        };
        for entry in entries {
            archive.add_image(entry)?;
        }
        Ok(archive)
    }

    fn add_image(&mut self, entry: Entry) -> Result<(), SourceError> {
        let config_bytes = read_member(&self.tar, &entry.config, super::MAX_CONFIG_SIZE)?;
        let config_digest = Digest::of_bytes(&config_bytes);
        if let Some(named) = digest_in_name(&entry.config, Some(".json")) {
            if named != config_digest {
                return Err(SourceError::DigestMismatch {
                    what: format!("config {}", file_name(&self.tar, &entry.config)),
                    expected: named,
                    got: config_digest,
                });
            }
        }
        let config_desc = Descriptor::new(
            mt::DOCKER_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        );
        self.blobs
            .insert(config_digest.clone(), Blob::Member(entry.config.clone()));

        let config = ImageConfig::parse(config_bytes).map_err(|e| SourceError::Image {
            what: "config".into(),
            digest: config_digest.clone(),
            source: e,
        })?;
        let diff_ids = config.diff_ids();
        if diff_ids.len() != entry.layers.len() {
            return Err(SourceError::Invalid {
                file: file_name(&self.tar, "manifest.json"),
                reason: format!(
                    "image {} lists {} layers but its config {} has {} diff_ids",
                    entry.config,
                    entry.layers.len(),
                    config_digest,
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::with_capacity(entry.layers.len());
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let digest = match digest_in_name(path, None) {
                Some(d) => d,
                None => {
                    let hashed = match self.legacy_digests.get(path) {
                        Some(known) => known.clone(),
                        None => {
                            let hashed = self.compressed_layer_digest(path)?;
                            self.legacy_digests.insert(path.clone(), hashed.clone());
                            hashed
                        }
                    };
                    hashed.unwrap_or_else(|| diff_id.clone())
                }
            };
            let size =
                self.tar
                    .member(path)
                    .map(|m| m.size)
                    .ok_or_else(|| SourceError::MissingBlob {
                        source_name: self.describe(),
                        digest: digest.clone(),
                        location: format!("layer file {path} of manifest.json is missing"),
                        hint: String::new(),
                    })?;
            self.blobs
                .insert(digest.clone(), Blob::Member(path.clone()));
            layers.push(Descriptor::new(mt::DOCKER_LAYER_TAR, digest, size));
        }

        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(mt::DOCKER_MANIFEST.into()),
            artifact_type: None,
            config: config_desc,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| SourceError::Invalid {
            file: file_name(&self.tar, "manifest.json"),
            reason: format!("cannot serialise a manifest for {}: {e}", entry.config),
        })?;
        let descriptor = Descriptor::new(
            mt::DOCKER_MANIFEST,
            Digest::of_bytes(&manifest_bytes),
            manifest_bytes.len() as u64,
        );
        self.blobs
            .insert(descriptor.digest.clone(), Blob::Synthesized(manifest_bytes));
        let names: Vec<Option<String>> = if entry.repo_tags.is_empty() {
            vec![None]
        } else {
            entry.repo_tags.into_iter().map(Some).collect()
        };
        for name in names {
            self.refs.push(SourceRef {
                name,
                descriptor: descriptor.clone(),
            });
        }
        Ok(())
    }
}

impl ImageSource for DockerArchive {
    fn describe(&self) -> String {
        format!("docker-archive {}", self.tar.path().display())
    }

    fn default_repository(&self) -> String {
        repository_from_path(self.tar.path())
    }

    fn refs(&self) -> Result<Vec<SourceRef>, SourceError> {
        Ok(self.refs.clone())
    }

    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let missing = |location: String| SourceError::MissingBlob {
            source_name: self.describe(),
            digest: desc.digest.clone(),
            location,
            hint: missing_hint(desc),
        };
        match self.blobs.get(&desc.digest) {
            Some(Blob::Synthesized(bytes)) => Ok(Box::new(&bytes[..])),
            Some(Blob::Member(path)) => match self.tar.open(path)? {
                Some(r) => Ok(Box::new(r)),
                None => Err(missing(format!("expected at {path}"))),
            },
            None => Err(missing("manifest.json lists no such file".into())),
        }
    }

    fn synthesized_manifests(&self) -> bool {
        true
    }
}

/// The digest a file name carries: `blobs/sha256/<hex>`, or `<hex><suffix>` when a suffix is
/// given (configs are `<hex>.json`). A layer's `<hex>.tar` is not read this way: it names the
/// diffID, which the config already gives, and legacy `<id>/layer.tar` names carry no digest.
fn digest_in_name(path: &str, suffix: Option<&str>) -> Option<Digest> {
    let path = path.trim_start_matches("./");
    if let Some(hex) = path.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex).ok();
    }
    let base = path.rsplit('/').next()?;
    Digest::from_hex(base.strip_suffix(suffix?)?).ok()
}

fn read_member(tar: &TarIndex, name: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
    let mut r = tar.open(name)?.ok_or_else(|| SourceError::Invalid {
        file: format!("docker-archive {}", tar.path().display()),
        reason: format!("{name} is missing"),
    })?;
    let mut buf = Vec::new();
    (&mut r)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SourceError::io(tar.path(), e))?;
    if buf.len() as u64 > limit {
        return Err(SourceError::Invalid {
            file: file_name(tar, name),
            reason: format!("larger than {limit} bytes"),
        });
    }
    Ok(buf)
}

fn file_name(tar: &TarIndex, name: &str) -> String {
    format!("{name} in docker-archive {}", tar.path().display())
}

impl DockerArchive {
    /// The blob digest of a legacy `<id>/layer.tar` when it is compressed: docker writes plain
    /// tars (blob digest = diffID, `None` here), but `docker load` also takes compressed ones,
    /// whose digest only hashing the member tells.
    fn compressed_layer_digest(&self, path: &str) -> Result<Option<Digest>, SourceError> {
        let io_err = |e: std::io::Error| SourceError::Io {
            path: self.tar.path().join(path),
            source: e,
        };
        let Some(mut member) = self.tar.open(path)? else {
            return Ok(None);
        };
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match std::io::Read::read(&mut member, &mut magic[got..]).map_err(io_err)? {
                0 => break,
                n => got += n,
            }
        }
        let compressed = matches!(magic, [0x1f, 0x8b, ..] | [0x28, 0xb5, 0x2f, 0xfd]);
        if !compressed {
            return Ok(None);
        }
        let Some(member) = self.tar.open(path)? else {
            return Ok(None);
        };
        let (digest, _) = crate::digest::HashingReader::new(member)
            .finish()
            .map_err(io_err)?;
        Ok(Some(digest))
    }
}
