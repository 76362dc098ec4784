//! Descriptors, image manifests and indexes (OCI and Docker schema 2), and telling them apart.
//!
//! The OCI and Docker schema-2 formats share one JSON shape, so one set of types covers both;
//! `media_type` says which. Docker schema 1 is refused with a message that says what to do.

use super::media_types as mt;
use super::platform::Platform;
use super::{null_as_default, ImageError};
use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Required by the spec, but old tools omit it; then the document's own fields decide.
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
            artifact_type: None,
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(mt::ANNOTATION_REF_NAME)
            .map(String::as_str)
    }
}

/// An image manifest: a config and its layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(deserialize_with = "null_as_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker): manifests for several platforms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

// Both variants are short-lived parse results; boxing would only add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    Manifest(Manifest),
    Index(Index),
}

/// Just enough of a manifest-shaped document to decide what it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
    manifests: Option<serde::de::IgnoredAny>,
    fs_layers: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest or index. The document's own `mediaType` decides; without one, the
/// descriptor's media type (`hint`); without either, the fields present (`manifests` makes an
/// index, `config` + `layers` a manifest), as containerd does.
pub fn parse_manifest(bytes: &[u8], hint: Option<&str>) -> Result<ManifestKind, ImageError> {
    let malformed = |e: serde_json::Error| ImageError::MalformedJson {
        reason: e.to_string(),
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(malformed)?;
    let hint = hint.filter(|h| !h.is_empty());
    for found in [probe.media_type.as_deref(), hint].into_iter().flatten() {
        if mt::is_schema1(found) {
            return Err(ImageError::Schema1 {
                found: format!("media type {found}"),
            });
        }
    }
    if probe.schema_version == Some(1) || probe.fs_layers.is_some() {
        return Err(ImageError::Schema1 {
            found: "schemaVersion 1".into(),
        });
    }
    match probe.schema_version {
        Some(2) => {}
        Some(version) => return Err(ImageError::UnsupportedSchemaVersion { version }),
        None => {
            return Err(ImageError::Invalid {
                reason: "schemaVersion is missing".into(),
            })
        }
    }
    let is_index = match probe.media_type.as_deref().or(hint) {
        Some(m) if mt::is_index(m) => true,
        Some(m) if mt::is_manifest(m) => false,
        Some(m) => {
            return Err(ImageError::UnsupportedMediaType {
                media_type: m.to_string(),
                expected: "an OCI or Docker schema 2 image manifest or index",
            })
        }
        None => match (
            probe.manifests.is_some(),
            probe.config.is_some() || probe.layers.is_some(),
        ) {
            (true, false) => true,
            (false, true) => false,
            (true, true) => {
                return Err(ImageError::Invalid {
                    reason: "has both manifests and config/layers and no mediaType: \
                             cannot tell an index from a manifest"
                        .into(),
                })
            }
            (false, false) => {
                return Err(ImageError::Invalid {
                    reason: "has neither manifests nor config/layers".into(),
                })
            }
        },
    };
    if is_index && (probe.config.is_some() || probe.layers.is_some()) {
        return Err(ImageError::Invalid {
            reason: "an index must not have config or layers".into(),
        });
    }
    if !is_index && probe.manifests.is_some() {
        return Err(ImageError::Invalid {
            reason: "an image manifest must not have manifests".into(),
        });
    }
    if is_index {
        Ok(ManifestKind::Index(
            serde_json::from_slice(bytes).map_err(malformed)?,
        ))
    } else {
        Ok(ManifestKind::Manifest(
            serde_json::from_slice(bytes).map_err(malformed)?,
        ))
    }
}

/// How a layer blob is compressed, according to its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// Classifies a layer media type. Foreign and non-distributable layers are accepted (the
/// restriction is on distributing them, and the source only resolves if it holds the blob);
/// encrypted layers and anything that is not a layer tar are refused.
pub fn layer_compression(media_type: &str) -> Result<LayerCompression, ImageError> {
    use LayerCompression::*;
    Ok(match media_type {
        mt::OCI_LAYER_TAR | mt::OCI_LAYER_NONDIST_TAR | mt::DOCKER_LAYER_TAR => None,
        mt::OCI_LAYER_TAR_GZIP
        | mt::OCI_LAYER_NONDIST_TAR_GZIP
        | mt::DOCKER_LAYER_TAR_GZIP
        | mt::DOCKER_FOREIGN_LAYER => Gzip,
        mt::OCI_LAYER_TAR_ZSTD | mt::OCI_LAYER_NONDIST_TAR_ZSTD | mt::DOCKER_LAYER_TAR_ZSTD => Zstd,
        m if m.ends_with("+encrypted") => {
            return Err(ImageError::UnsupportedMediaType {
                media_type: m.into(),
                expected: "an unencrypted layer (encrypted layers are not supported)",
            })
        }
        m => {
            return Err(ImageError::UnsupportedMediaType {
                media_type: m.into(),
                expected: "an OCI or Docker layer tar (plain, gzip or zstd)",
            })
        }
    })
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
