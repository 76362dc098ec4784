//! Where images come from: OCI image layout directories, oci-archive tars and docker-archive
//! ("docker save") tars. Every source lists its images (`refs`) and hands out blobs by
//! descriptor (`open_blob`); `resolve` turns one ref into a manifest, a config and the ordered
//! layers, choosing a platform from indexes on the way.
//!
//! Invariants:
//! - blob bytes are served raw and unverified; `resolve` verifies the small blobs it reads
//!   (manifests, indexes, configs) against their descriptor before parsing them, and the caller
//!   verifies layers as it streams them;
//! - a blob's location is derived only from a validated `Digest` (never from a raw string), so
//!   a hostile descriptor cannot name a path outside the layout;
//! - archives are never extracted: members are read in place, one file handle per reader.

mod docker_archive;
mod layout;
pub mod registry;
mod resolve;
mod tar_index;

pub use docker_archive::DockerArchive;
pub use layout::OciLayout;
pub(crate) use resolve::read_verified;
pub use resolve::{
    resolve, ResolvedImage, MAX_BLOBS_VISITED, MAX_CONFIG_SIZE, MAX_INDEX_DEPTH, MAX_INDEX_ENTRIES,
    MAX_MANIFEST_SIZE,
};

use crate::digest::Digest;
use crate::image::{Descriptor, ImageError, Reference};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{spec}: no such file or directory (nor is any prefix of it before a ':' one)")]
    NotFound { spec: String },
    #[error("{}: not a recognised image source: looked for {looked_for}", path.display())]
    NotRecognised { path: PathBuf, looked_for: String },
    #[error("{}: not a readable tar archive: {reason}", path.display())]
    Tar { path: PathBuf, reason: String },
    #[error("{source_name}: blob {digest} not found ({location}){hint}")]
    MissingBlob {
        source_name: String,
        digest: Digest,
        /// Where it was looked for: `expected at blobs/sha256/…`.
        location: String,
        hint: String,
    },
    #[error("{source_name}: reading {what} {digest}: {error}")]
    BlobRead {
        source_name: String,
        what: String,
        digest: Digest,
        error: io::Error,
    },
    #[error("{what} {digest}: {size} bytes is more than the {limit} bytes allowed for a {what}")]
    TooLarge {
        what: String,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("{what} {digest}: size mismatch (expected {expected} bytes, got {got})")]
    SizeMismatch {
        what: String,
        digest: Digest,
        expected: u64,
        got: String,
    },
    #[error("{what} {expected}: digest mismatch (expected {expected}, got {got})")]
    DigestMismatch {
        what: String,
        expected: Digest,
        got: Digest,
    },
    #[error("{file}: malformed JSON: {reason}")]
    Malformed { file: String, reason: String },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    /// A bound on how much of an input is read was reached (index depth, fan-out, blobs visited).
    #[error("{file}: {reason}")]
    Limit { file: String, reason: String },
    #[error("{what} {digest}: {source}")]
    Image {
        what: String,
        digest: Digest,
        source: ImageError,
    },
    #[error(
        "{source_name}: no image named {want:?}; available: {}",
        list_or_none(available)
    )]
    UnknownRef {
        source_name: String,
        want: String,
        available: Vec<String>,
    },
    #[error(transparent)]
    Registry(Box<registry::RegistryError>),
    #[error(
        // Not the name: whoever asked for the image says which (`pull NAME: …`).
        "no manifest for platform {want}; the image has: {}",
        list_or_none(available)
    )]
    NoMatchingPlatform {
        name: String,
        /// The requested platform, as shown (`linux/arm64/v8`).
        want: String,
        available: Vec<String>,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

impl SourceError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        SourceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One image a source offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRef {
    /// The name as the source writes it: an OCI `ref.name` annotation (a tag such as `gzip`, or
    /// a full reference), containerd's `io.containerd.image.name`, or a docker-archive RepoTag.
    pub name: Option<String>,
    /// A manifest or index.
    pub descriptor: Descriptor,
}

impl SourceRef {
    /// The image name this ref stands for. A bare word (`gzip`, `latest`) is a tag of
    /// `default_repository`, as `ctr import` and `podman load` read OCI layouts; anything with
    /// `/`, `:` or `@` is a reference of its own.
    pub fn reference(&self, default_repository: &str) -> Result<Option<Reference>, ImageError> {
        let Some(name) = &self.name else {
            return Ok(None);
        };
        if name.contains(['/', ':', '@']) {
            return Reference::parse(name).map(|r| Some(r.with_default_tag()));
        }
        Reference::parse(default_repository)?
            .with_tag(name)
            .map(Some)
    }

    /// For messages: the name, or the digest when there is none.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("<unnamed {}>", self.descriptor.digest),
        }
    }
}

pub trait ImageSource: Send + Sync {
    /// What this is, for messages: `oci layout /tmp/x`.
    fn describe(&self) -> String;
    /// The repository images without a full name get: the layout directory's name, or the
    /// archive's file name without `.tar`, `.oci`, `.docker` (`busybox-oci.tar` -> `busybox-oci`).
    fn default_repository(&self) -> String;
    fn refs(&self) -> Result<Vec<SourceRef>, SourceError>;
    /// The raw bytes of a blob, NOT verified: the caller hashes what it reads.
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError>;
    /// True when the manifests were made up by the source (docker-archives have none): their
    /// digests mean nothing outside it, so they are not recorded as repository digests.
    fn synthesized_manifests(&self) -> bool {
        false
    }
}

/// Opens `PATH` or `PATH:REF` (skopeo's `oci:` syntax). The whole string is a path when it
/// exists; otherwise it is split at a `:` whose left side exists, trying the last `:` first,
/// so both `x.tar:latest` and `x.tar:debian:gzip` work.
pub fn open_source(spec: &str) -> Result<(Box<dyn ImageSource>, Option<String>), SourceError> {
    let (path, reference) = split_spec(spec)?;
    Ok((open_path(&path)?, reference))
}

fn split_spec(spec: &str) -> Result<(PathBuf, Option<String>), SourceError> {
    if !spec.is_empty() && Path::new(spec).exists() {
        return Ok((PathBuf::from(spec), None));
    }
    for (i, _) in spec.rmatch_indices(':') {
        let (path, reference) = (&spec[..i], &spec[i + 1..]);
        if !path.is_empty() && Path::new(path).exists() {
            let reference = Some(reference.to_string()).filter(|r| !r.is_empty());
            return Ok((PathBuf::from(path), reference));
        }
    }
    Err(SourceError::NotFound {
        spec: spec.to_string(),
    })
}

/// Recognises a layout directory, an oci-archive or a docker-archive by what it contains.
pub fn open_path(path: &Path) -> Result<Box<dyn ImageSource>, SourceError> {
    let meta = std::fs::metadata(path).map_err(|e| SourceError::io(path, e))?;
    if meta.is_dir() {
        return Ok(Box::new(OciLayout::open_dir(path)?));
    }
    check_not_compressed(path)?;
    let index = tar_index::TarIndex::build(path).map_err(|e| match e {
        SourceError::Tar { path, reason } => SourceError::NotRecognised {
            path,
            looked_for: format!("an oci-archive or docker-archive tar ({reason})"),
        },
        e => e,
    })?;
    if index.contains("oci-layout") && index.contains("index.json") {
        Ok(Box::new(OciLayout::open_archive(index)?))
    } else if index.contains("manifest.json") {
        Ok(Box::new(DockerArchive::open(index)?))
    } else {
        Err(SourceError::NotRecognised {
            path: path.to_path_buf(),
            looked_for: "oci-layout and index.json (oci-archive) or manifest.json \
                         (docker-archive) in the tar"
                .into(),
        })
    }
}

/// Archives are read in place by seeking, which a compressed stream does not allow.
fn check_not_compressed(path: &Path) -> Result<(), SourceError> {
    let mut magic = [0u8; 6];
    let mut f =
        crate::sys::regular::open_regular_following(path).map_err(|e| SourceError::io(path, e))?;
    let n = read_up_to(&mut f, &mut magic).map_err(|e| SourceError::io(path, e))?;
    let kind = match &magic[..n] {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some("xz"),
        [b'B', b'Z', b'h', ..] => Some("bzip2"),
        _ => None,
    };
    match kind {
        Some(kind) => Err(SourceError::NotRecognised {
            path: path.to_path_buf(),
            looked_for: format!(
                "an uncompressed tar, found {kind} data: decompress it first \
                 (archives are read in place, which needs seeking)"
            ),
        }),
        None => Ok(()),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Finds the image `want` names among a source's refs: by name as written, then as an image
/// reference (`debian:gzip` finds the tag `gzip` of a layout named `debian`), then as the tag
/// of exactly one image (`latest` finds `docker.io/library/busybox:latest`), then by the
/// manifest digest (`sha256:…`).
pub fn find_ref(source: &dyn ImageSource, want: &str) -> Result<SourceRef, SourceError> {
    let refs = source.refs()?;
    if let Some(r) = refs.iter().find(|r| r.name.as_deref() == Some(want)) {
        return Ok(r.clone());
    }
    let default_repo = source.default_repository();
    if let Ok(wanted) = Reference::parse(want).map(Reference::with_default_tag) {
        let found = refs
            .iter()
            .find(|r| matches!(r.reference(&default_repo), Ok(Some(named)) if named == wanted));
        if let Some(r) = found {
            return Ok(r.clone());
        }
    }
    // A bare tag finds the one image with that tag (docker 25 archives name images in full).
    if crate::image::reference::is_valid_tag(want) {
        let mut tagged = refs.iter().filter(|r| {
            matches!(r.reference(&default_repo), Ok(Some(named)) if named.tag.as_deref() == Some(want))
        });
        if let (Some(r), None) = (tagged.next(), tagged.next()) {
            return Ok(r.clone());
        }
    }
    let digest = want.strip_prefix('@').unwrap_or(want);
    if let Ok(d) = digest.parse::<Digest>() {
        if let Some(r) = refs.iter().find(|r| r.descriptor.digest == d) {
            return Ok(r.clone());
        }
    }
    Err(SourceError::UnknownRef {
        source_name: source.describe(),
        want: want.to_string(),
        available: refs.iter().map(SourceRef::display_name).collect(),
    })
}

/// `debian` for `oci/debian`, `busybox-oci` for `busybox-oci.tar`, `debian-gzip` for
/// `debian-gzip.oci.tar`.
fn repository_from_path(path: &Path) -> String {
    let name = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut stem = name.as_str();
    for suffix in [".tar", ".oci", ".docker"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    stem.to_lowercase()
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod errors_tests;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod resolve_tests;
