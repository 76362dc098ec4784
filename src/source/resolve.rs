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
pub const MAX_INDEX_DEPTH: usize = 8;
/// Entries of one index reached while resolving: real ones list a few platforms and their
/// attestations. (A layout's own index.json, which lists its tags, is not held to this.)
pub const MAX_INDEX_ENTRIES: usize = 1024;
/// Manifests, indexes and configs read to resolve one ref. Entries without a platform are opened
/// to see what they hold; a small layout whose indexes list the same nested index many times over
/// would otherwise make that walk take exponential time.
pub const MAX_BLOBS_VISITED: usize = 256;

/// What one resolve has spent: every small blob read counts, so no input makes it read more than
/// [`MAX_BLOBS_VISITED`] of them.
struct Walk<'a> {
    source: &'a dyn ImageSource,
    name: String,
    visited: usize,
}

impl Walk<'_> {
    /// Reads a manifest, index or config, counting it against the budget.
    fn read(&mut self, desc: &Descriptor, what: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        self.visited += 1;
        if self.visited > MAX_BLOBS_VISITED {
            return Err(self.refuse(format!(
                "choosing a platform would read more than {MAX_BLOBS_VISITED} manifests, \
                 indexes and configs (indexes that fan out into each other)"
            )));
        }
        read_verified(self.source, desc, what, limit)
    }

    fn refuse(&self, reason: String) -> SourceError {
        SourceError::Limit {
            file: format!("{} in {}", self.name, self.source.describe()),
            reason,
        }
    }

    /// Refuses an index with more entries than any image has platforms.
    fn check_fan_out(&self, digest: &Digest, entries: usize) -> Result<(), SourceError> {
        if entries > MAX_INDEX_ENTRIES {
            return Err(self.refuse(format!(
                "index {digest} has {entries} entries (limit {MAX_INDEX_ENTRIES})"
            )));
        }
        Ok(())
    }

    fn too_deep(&self) -> SourceError {
        self.refuse(format!("indexes nested more than {MAX_INDEX_DEPTH} deep"))
    }
}

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
/// as containerd does), then reads and checks the manifest and config. Bounded by
/// [`MAX_INDEX_DEPTH`], [`MAX_INDEX_ENTRIES`] and [`MAX_BLOBS_VISITED`].
pub fn resolve(
    source: &dyn ImageSource,
    r: &SourceRef,
    platform: &Platform,
) -> Result<ResolvedImage, SourceError> {
    let mut walk = Walk {
        source,
        name: r.display_name(),
        visited: 0,
    };
    let mut desc = r.descriptor.clone();
    let mut indexes = Vec::new();
    for depth in 0..MAX_INDEX_DEPTH {
        let what = if mt::is_index(&desc.media_type) {
            "index"
        } else {
            "manifest"
        };
        let bytes = walk.read(&desc, what, MAX_MANIFEST_SIZE)?;
        let parsed =
            parse_manifest(&bytes, Some(&desc.media_type)).map_err(|e| SourceError::Image {
                what: what.into(),
                digest: desc.digest.clone(),
                source: e,
            })?;
        match parsed {
            ManifestKind::Index(index) => {
                walk.check_fan_out(&desc.digest, index.manifests.len())?;
                let levels_left = MAX_INDEX_DEPTH - depth - 1;
                let chosen = choose(&mut walk, &index.manifests, platform, levels_left)?.clone();
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
    Err(walk.too_deep())
}

/// The best entry of an index for `platform`. Entries without a platform are judged by what
/// they hold (a manifest by its config, a nested index by its entries), as containerd does,
/// but only when no entry declares a matching platform. `levels_left`: how many more indexes
/// may lie below this one.
fn choose<'a>(
    walk: &mut Walk,
    manifests: &'a [Descriptor],
    platform: &Platform,
    levels_left: usize,
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
        let held = undeclared_platforms(walk, d, levels_left)?;
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
            name: walk.name.clone(),
            want: platform.to_string(),
            available: seen,
        })
}

/// The platforms an index entry without a platform holds; unreadable entries hold none. Only
/// the walk's limits (depth, fan-out, blobs read) are errors.
fn undeclared_platforms(
    walk: &mut Walk,
    desc: &Descriptor,
    levels_left: usize,
) -> Result<Vec<Platform>, SourceError> {
    let bytes = match walk.read(desc, "manifest", MAX_MANIFEST_SIZE) {
        Ok(b) => b,
        Err(e @ SourceError::Limit { .. }) => return Err(e),
        Err(_) => return Ok(Vec::new()),
    };
    Ok(match parse_manifest(&bytes, Some(&desc.media_type)) {
        Ok(ManifestKind::Manifest(m)) => match walk.read(&m.config, "config", MAX_CONFIG_SIZE) {
            Ok(c) => ImageConfig::parse(c)
                .map(|c| vec![c.platform()])
                .unwrap_or_default(),
            Err(e @ SourceError::Limit { .. }) => return Err(e),
            Err(_) => Vec::new(),
        },
        Ok(ManifestKind::Index(i)) => {
            if levels_left == 0 {
                return Err(walk.too_deep());
            }
            walk.check_fan_out(&desc.digest, i.manifests.len())?;
            let mut held = Vec::new();
            for d in &i.manifests {
                match &d.platform {
                    Some(p) => held.push(p.clone()),
                    None => held.extend(undeclared_platforms(walk, d, levels_left - 1)?),
                }
            }
            held
        }
        Err(_) => Vec::new(),
    })
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
