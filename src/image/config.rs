//! Image configs (OCI `application/vnd.oci.image.config.v1+json` and Docker's
//! `application/vnd.docker.container.image.v1+json`, which share one shape).
//!
//! An `ImageConfig` keeps the exact bytes it was parsed from: the image ID is their sha256, so
//! they are never re-serialised on the way into the store. Edits (`commit`) go through a
//! `serde_json::Value` of the whole document, so fields this module does not model (Docker's
//! `container_config`, `Healthcheck`, vendor extensions) survive.
//!
//! Own serde types rather than oci-spec's: Docker configs write `null` for empty lists and maps
//! and sometimes a string for `Cmd`, which a strict OCI parser refuses.

use super::manifest::Manifest;
use super::platform::Platform;
use super::{null_as_default, ImageError};
use crate::digest::Digest;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageConfig {
    bytes: Vec<u8>,
    parsed: ConfigFile,
}

/// The parsed view of a config document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, deserialize_with = "null_as_default")]
    pub history: Vec<History>,
}

/// The runtime defaults of a container made from the image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// `None` (absent or null) and `Some([])` differ: an empty entrypoint resets a base's.
    #[serde(default, deserialize_with = "string_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub stop_signal: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Docker's strslice: a list of strings, or one string meaning a one-element list.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

impl ImageConfig {
    /// Parses config bytes, keeping them. `rootfs.type` must be `layers`.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, ImageError> {
        let parsed: ConfigFile =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::MalformedJson {
                reason: e.to_string(),
            })?;
        if parsed.rootfs.kind != "layers" {
            return Err(ImageError::Invalid {
                reason: format!(
                    "rootfs.type is {:?}, expected \"layers\"",
                    parsed.rootfs.kind
                ),
            });
        }
        Ok(ImageConfig { bytes, parsed })
    }

    /// The exact bytes (their digest is the image ID).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn digest(&self) -> Digest {
        Digest::of_bytes(&self.bytes)
    }

    pub fn file(&self) -> &ConfigFile {
        &self.parsed
    }

    pub fn diff_ids(&self) -> &[Digest] {
        &self.parsed.rootfs.diff_ids
    }

    /// The container defaults (an empty set when the config has none).
    pub fn container_config(&self) -> ContainerConfig {
        self.parsed.config.clone().unwrap_or_default()
    }

    /// The platform the image was built for.
    pub fn platform(&self) -> Platform {
        let mut p = Platform::new(
            &self.parsed.os,
            &self.parsed.architecture,
            self.parsed.variant.as_deref(),
        );
        p.os_version = self.parsed.os_version.clone();
        p
    }

    /// Every layer of the manifest needs one diffID (OCI manifests have no empty layers; the
    /// history's `empty_layer` entries have no manifest layer and no diffID).
    pub fn check_layers(&self, manifest: &Manifest) -> Result<(), ImageError> {
        let (diff_ids, layers) = (self.diff_ids().len(), manifest.layers.len());
        if diff_ids != layers {
            return Err(ImageError::DiffIdCount { diff_ids, layers });
        }
        Ok(())
    }

    /// The whole document as JSON, for editing; every field is kept, modelled or not.
    pub fn to_value(&self) -> Result<serde_json::Value, ImageError> {
        serde_json::from_slice(&self.bytes).map_err(|e| ImageError::MalformedJson {
            reason: e.to_string(),
        })
    }

    /// Builds a config from an edited document (serialised compactly, as docker does).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ImageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| ImageError::MalformedJson {
            reason: e.to_string(),
        })?;
        ImageConfig::parse(bytes)
    }

    /// A new config with one more layer on top: its diffID appended to `rootfs.diff_ids`, a
    /// history entry appended, and `created` set to the entry's time. Unmodelled fields stay.
    pub fn with_layer(&self, diff_id: &Digest, history: &History) -> Result<Self, ImageError> {
        let invalid = |reason: &str| ImageError::Invalid {
            reason: reason.into(),
        };
        let mut v = self.to_value()?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| invalid("not a JSON object"))?;
        let rootfs = obj
            .get_mut("rootfs")
            .and_then(|r| r.as_object_mut())
            .ok_or_else(|| invalid("rootfs is missing"))?;
        let ids = rootfs
            .entry("diff_ids")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if ids.is_null() {
            *ids = serde_json::Value::Array(Vec::new());
        }
        ids.as_array_mut()
            .ok_or_else(|| invalid("rootfs.diff_ids is not a list"))?
            .push(serde_json::Value::String(diff_id.to_string()));
        let entry = serde_json::to_value(history).map_err(|e| invalid(&e.to_string()))?;
        let hist = obj
            .entry("history")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if hist.is_null() {
            *hist = serde_json::Value::Array(Vec::new());
        }
        hist.as_array_mut()
            .ok_or_else(|| invalid("history is not a list"))?
            .push(entry);
        if let Some(created) = &history.created {
            obj.insert("created".into(), serde_json::Value::String(created.clone()));
        }
        ImageConfig::from_value(&v)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
