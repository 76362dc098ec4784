//! Image formats: references, platforms, manifests, indexes and configs.
//!
//! Pure logic, no I/O: everything here parses or formats bytes and strings that came from
//! somewhere else (a source, the store, the command line). The invariants it keeps:
//! - a `Reference` is always in docker's normalised form (`docker.io/library/alpine`), with
//!   lowercase path components and a valid tag;
//! - `parse_manifest` only ever yields schema-2 documents (OCI or Docker); schema 1 is refused;
//! - an `ImageConfig` keeps its exact bytes (the image ID is their digest) next to a parsed view.

pub mod change;
pub mod config;
pub mod manifest;
pub mod manifest_list;
pub mod media_types;
pub mod platform;
pub mod reference;
pub mod time;

pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use manifest::{parse_manifest, Descriptor, Index, LayerCompression, Manifest, ManifestKind};
pub use platform::Platform;
pub use reference::Reference;
pub use time::UtcTime;

/// Errors about one document or string. Messages do not repeat which blob they concern: the
/// caller knows (`manifest sha256:…: malformed JSON: …`) and adds it.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },
    #[error(
        "a Docker schema 1 manifest ({found}): schema 1 is deprecated and not supported; \
         convert the image to schema 2 / OCI (e.g. with skopeo copy) or push it again"
    )]
    Schema1 { found: String },
    #[error("malformed JSON: {reason}")]
    MalformedJson { reason: String },
    #[error("unsupported media type {media_type:?} (expected {expected})")]
    UnsupportedMediaType {
        media_type: String,
        expected: &'static str,
    },
    #[error("unsupported schemaVersion {version} (expected 2)")]
    UnsupportedSchemaVersion { version: i64 },
    #[error("{reason}")]
    Invalid { reason: String },
    #[error(
        "image config lists {diff_ids} diff_ids but the manifest has {layers} layers; \
         each layer needs exactly one diffID"
    )]
    DiffIdCount { diff_ids: usize, layers: usize },
}

/// Deserialises `null` as the type's default, as Go's encoding/json does for slices and maps:
/// Docker writes `"Env": null`, `"annotations": null` and so on.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod hostile_tests;
