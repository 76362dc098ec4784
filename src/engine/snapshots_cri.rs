//! The labels containerd puts on a layer's extraction snapshot when it pulls with remote
//! snapshotters in mind (CRI with `disable_snapshot_annotations = false`; containerd 1.6
//! `pkg/snapshotters/annotations.go`): which image, which manifest, which layer blob, and the
//! blobs of the layers from this one up. With them the snapshotter can fetch the layer itself
//! (see `snapshots_fetch`). Parsing only: nothing here touches the store or the network.

use super::snapshots::{Labels, LABEL_SNAPSHOT_REF};
use crate::digest::Digest;
use crate::image::Reference;

/// The image reference the layer belongs to, as the puller named it (`docker.io/library/x:1`).
pub const LABEL_CRI_IMAGE_REF: &str = "containerd.io/snapshot/cri.image-ref";
/// The digest of the image's manifest (the platform's, not an index's).
pub const LABEL_CRI_MANIFEST_DIGEST: &str = "containerd.io/snapshot/cri.manifest-digest";
/// The digest of the layer's blob (compressed, as the registry stores it).
pub const LABEL_CRI_LAYER_DIGEST: &str = "containerd.io/snapshot/cri.layer-digest";
/// Comma-separated blob digests of this layer and those above it; containerd cuts the list short
/// to keep the label under its size limit ("skipping some layers only affects performance").
pub const LABEL_CRI_IMAGE_LAYERS: &str = "containerd.io/snapshot/cri.image-layers";

/// One layer of a pulled image, as its Prepare's labels describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CriLayer {
    /// The label as given (the key fetches of one image share).
    pub image_ref: String,
    pub reference: Reference,
    pub manifest: Option<Digest>,
    pub blob: Digest,
    /// Blobs to fetch with it: this one first, then the layers above it that the list names.
    pub blobs: Vec<Digest>,
    /// The chainID containerd will name the committed snapshot by.
    pub target: Digest,
}

impl CriLayer {
    /// `Ok(None)` when the Prepare is not one of a labelled pull (no layer-digest label): nothing
    /// to say. `Err` says why labels that are there cannot be used.
    pub fn from_labels(labels: &Labels) -> Result<Option<CriLayer>, String> {
        let Some(blob) = labels.get(LABEL_CRI_LAYER_DIGEST) else {
            return Ok(None);
        };
        let digest = |label: &str, value: &str| {
            value
                .parse::<Digest>()
                .map_err(|e| format!("label {label}={value:?}: {e}"))
        };
        let blob = digest(LABEL_CRI_LAYER_DIGEST, blob)?;
        let need = |label: &str| {
            labels
                .get(label)
                .ok_or_else(|| format!("no {label} label beside {LABEL_CRI_LAYER_DIGEST}"))
        };
        let image_ref = need(LABEL_CRI_IMAGE_REF)?.clone();
        let reference = Reference::parse(&image_ref)
            .map_err(|e| format!("label {LABEL_CRI_IMAGE_REF}={image_ref:?}: {e}"))?;
        let target = digest(LABEL_SNAPSHOT_REF, need(LABEL_SNAPSHOT_REF)?)?;
        let manifest = labels
            .get(LABEL_CRI_MANIFEST_DIGEST)
            .map(|m| digest(LABEL_CRI_MANIFEST_DIGEST, m))
            .transpose()?;
        let mut blobs = vec![blob.clone()];
        if let Some(list) = labels.get(LABEL_CRI_IMAGE_LAYERS) {
            for item in list.split(',').filter(|i| !i.is_empty()) {
                let d = digest(LABEL_CRI_IMAGE_LAYERS, item)?;
                if !blobs.contains(&d) {
                    blobs.push(d);
                }
            }
        }
        Ok(Some(CriLayer {
            image_ref,
            reference,
            manifest,
            blob,
            blobs,
            target,
        }))
    }

    /// What to ask the registry for: the manifest by digest when containerd named it (the exact
    /// platform manifest it unpacks), else the reference's tag or digest.
    pub fn manifest_ref(&self) -> String {
        match &self.manifest {
            Some(d) => d.to_string(),
            None => super::pull::wanted(&self.reference),
        }
    }
}

#[cfg(test)]
#[path = "snapshots_cri_tests.rs"]
mod tests;
