//! From a ref to an image: manifest, config and ordered layers, for one platform.
//!
//! Manifests, indexes and configs are read whole (they are small; bigger ones are refused
//! before reading) and verified against their descriptor's size and digest before a byte of
//! them is parsed. Layers are not read here.

use super::{ImageSource, SourceError, SourceRef};
use crate::digest::Digest;
use crate::image::manifest::layer_compression;
use crate::image::media_types as mt;
use crate::image::{parse_manifest, Descriptor, ImageConfig, Manifest, ManifestKind, Platform};
use std::io::Read;

/// Registries refuse manifests over 4 MiB (distribution's limit); so do we.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Configs of images with hundreds of layers carry long histories; still small.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;
/// Indexes inside indexes are legal; a chain this deep is not an image.
const MAX_INDEX_DEPTH: usize = 8;

#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub name: Option<String>,
    /// The manifest's digest, `None` when the source made the manifest up (docker-archive).
    pub manifest_digest: Option<Digest>,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
    /// Each layer's blob descriptor and its diffID, bottom first.
    pub layers: Vec<(Descriptor, Digest)>,
    /// The platform the config says the image is for.
    pub platform: Platform,
    /// Things a person should hear about (an index that misdescribes a manifest's platform).
    pub warnings: Vec<String>,
    /// The indexes walked to reach the manifest, outermost first, with their bytes (a pull keeps
    /// them: its repository digest names the outermost).
    pub indexes: Vec<(Digest, Vec<u8>)>,
}

impl ResolvedImage {
    /// The image ID, as docker shows it: the digest of the config.
    pub fn id(&self) -> Digest {
        self.config.digest()
    }
}

/// Resolves `r` for `platform`: descends indexes (choosing the best manifest for the platform,
/// as containerd does), then reads and checks the manifest and config.
pub fn resolve(
    source: &dyn ImageSource,
    r: &SourceRef,
    platform: &Platform,
) -> Result<ResolvedImage, SourceError> {
    let name = r.display_name();
    let mut desc = r.descriptor.clone();
    let mut indexes = Vec::new();
    for _ in 0..MAX_INDEX_DEPTH {
        let what = if mt::is_index(&desc.media_type) {
            "index"
        } else {
            "manifest"
        };
        let bytes = read_verified(source, &desc, what, MAX_MANIFEST_SIZE)?;
        let parsed =
            parse_manifest(&bytes, Some(&desc.media_type)).map_err(|e| SourceError::Image {
                what: what.into(),
                digest: desc.digest.clone(),
                source: e,
            })?;
        match parsed {
            ManifestKind::Index(index) => {
                let chosen = choose(source, &name, &index.manifests, platform)?.clone();
                indexes.push((std::mem::replace(&mut desc, chosen).digest, bytes));
            }
            ManifestKind::Manifest(manifest) => {
                let via_index = !indexes.is_empty();
                let mut image = finish(source, r, desc, bytes, manifest, platform, via_index)?;
                image.indexes = indexes;
                return Ok(image);
            }
        }
    }
    Err(SourceError::Invalid {
        file: format!("{} in {}", name, source.describe()),
        reason: format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
    })
}

/// The best entry of an index for `platform`. Entries without a platform are judged by what
/// they hold (a manifest by its config, a nested index by its entries), as containerd does,
/// but only when no entry declares a matching platform.
fn choose<'a>(
    source: &dyn ImageSource,
    name: &str,
    manifests: &'a [Descriptor],
    platform: &Platform,
) -> Result<&'a Descriptor, SourceError> {
    if let Some(d) = platform.select(manifests) {
        return Ok(d);
    }
    let mut best: Option<(usize, &Descriptor)> = None;
    let mut seen = Vec::new();
    for d in manifests {
        if let Some(p) = &d.platform {
            seen.push(p.to_string());
            continue;
        }
        let held = undeclared_platforms(source, d, MAX_INDEX_DEPTH);
        if held.is_empty() {
            seen.push(format!("unknown ({})", d.digest.short()));
        }
        seen.extend(held.iter().map(Platform::to_string));
        if let Some(rank) = held.iter().filter_map(|p| platform.rank(p)).min() {
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, d));
            }
        }
    }
    best.map(|(_, d)| d)
        .ok_or_else(|| SourceError::NoMatchingPlatform {
            name: name.to_string(),
            want: platform.to_string(),
            available: seen,
        })
}

/// The platforms an index entry without a platform holds; unreadable entries hold none.
fn undeclared_platforms(
    source: &dyn ImageSource,
    desc: &Descriptor,
    depth: usize,
) -> Vec<Platform> {
    if depth == 0 {
        return Vec::new();
    }
    let Ok(bytes) = read_verified(source, desc, "manifest", MAX_MANIFEST_SIZE) else {
        return Vec::new();
    };
    match parse_manifest(&bytes, Some(&desc.media_type)) {
        Ok(ManifestKind::Manifest(m)) => {
            read_verified(source, &m.config, "config", MAX_CONFIG_SIZE)
                .ok()
                .and_then(|c| ImageConfig::parse(c).ok())
                .map(|c| vec![c.platform()])
                .unwrap_or_default()
        }
        Ok(ManifestKind::Index(i)) => i
            .manifests
            .iter()
            .flat_map(|d| match &d.platform {
                Some(p) => vec![p.clone()],
                None => undeclared_platforms(source, d, depth - 1),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn finish(
    source: &dyn ImageSource,
    r: &SourceRef,
    desc: Descriptor,
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    platform: &Platform,
    via_index: bool,
) -> Result<ResolvedImage, SourceError> {
    let config_desc = &manifest.config;
    if !mt::is_config(&config_desc.media_type) {
        return Err(SourceError::Invalid {
            file: format!("manifest {}", desc.digest),
            reason: format!(
                "config media type {:?} is not an image config: not a container image",
                config_desc.media_type
            ),
        });
    }
    let config_bytes = read_verified(source, config_desc, "config", MAX_CONFIG_SIZE)?;
    let image_err = |what: &str, digest: &Digest, e| SourceError::Image {
        what: what.into(),
        digest: digest.clone(),
        source: e,
    };
    let config = ImageConfig::parse(config_bytes.clone())
        .map_err(|e| image_err("config", &config_desc.digest, e))?;
    config
        .check_layers(&manifest)
        .map_err(|e| image_err("manifest", &desc.digest, e))?;
    for layer in &manifest.layers {
        layer_compression(&layer.media_type).map_err(|e| image_err("layer", &layer.digest, e))?;
    }
    let layers = manifest
        .layers
        .iter()
        .cloned()
        .zip(config.diff_ids().iter().cloned())
        .collect();

    let image_platform = config.platform();
    let mut warnings = Vec::new();
    // An index that misdescribes its manifest is worth a word; an image that is not for the
    // platform asked for is the caller's to report (it knows whether a platform was asked for, or
    // the host's assumed), by comparing `platform` with its request.
    if let (Some(listed), true) = (&desc.platform, via_index) {
        if !platform.matches(&image_platform) {
            warnings.push(format!(
                "{}: the index lists manifest {} for {listed}, but its config says {image_platform}",
                r.display_name(),
                desc.digest.short()
            ));
        }
    }
    Ok(ResolvedImage {
        name: r.name.clone(),
        manifest_digest: (!source.synthesized_manifests()).then_some(desc.digest),
        manifest_bytes,
        manifest,
        config_bytes,
        config,
        layers,
        platform: image_platform,
        warnings,
        indexes: Vec::new(),
    })
}

/// Reads a small blob whole and checks it against its descriptor before anyone parses it.
pub(crate) fn read_verified(
    source: &dyn ImageSource,
    desc: &Descriptor,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, SourceError> {
    if desc.size > limit {
        return Err(SourceError::TooLarge {
            what: what.into(),
            digest: desc.digest.clone(),
            size: desc.size,
            limit,
        });
    }
    let reader = source.open_blob(desc)?;
    let mut buf = Vec::with_capacity(desc.size as usize);
    // One byte more than promised is enough to tell a longer blob, and bounds memory.
    reader
        .take(desc.size + 1)
        .read_to_end(&mut buf)
        .map_err(|error| SourceError::BlobRead {
            source_name: source.describe(),
            what: what.into(),
            digest: desc.digest.clone(),
            error,
        })?;
    let got = buf.len() as u64;
    if got != desc.size {
        return Err(SourceError::SizeMismatch {
            what: what.into(),
            digest: desc.digest.clone(),
            expected: desc.size,
            got: if got > desc.size {
                format!("more than {}", desc.size)
            } else {
                got.to_string()
            },
        });
    }
    let digest = Digest::of_bytes(&buf);
    if digest != desc.digest {
        return Err(SourceError::DigestMismatch {
            what: what.into(),
            expected: desc.digest.clone(),
            got: digest,
        });
    }
    Ok(buf)
}
