//! Manifests, indexes and image configs: the JSON documents a source hands to `resolve`.
#![no_main]
use lamina::image::{media_types as mt, parse_manifest, ImageConfig, ManifestKind};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for hint in [
        None,
        Some(mt::OCI_INDEX),
        Some(mt::OCI_MANIFEST),
        Some(mt::DOCKER_MANIFEST),
    ] {
        if let Ok(ManifestKind::Manifest(m)) = parse_manifest(data, hint) {
            for l in &m.layers {
                let _ = lamina::image::manifest::layer_compression(&l.media_type);
            }
        }
    }
    if let Ok(c) = ImageConfig::parse(data.to_vec()) {
        let _ = c.platform();
        let _ = c.diff_ids();
    }
});
