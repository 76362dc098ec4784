//! OCI image layouts (image-spec `image-layout.md`), as a directory or as an oci-archive tar.
//!
//! Both have `oci-layout`, `index.json` and `blobs/<alg>/<hex>`; only the way files are read
//! differs, so one type serves both. Every entry of index.json is a ref, named or not.

use super::tar_index::TarIndex;
use super::{repository_from_path, ImageSource, SourceError, SourceRef};
use crate::image::media_types as mt;
use crate::image::{parse_manifest, Descriptor, Index, ManifestKind};
use crate::sys::regular::open_regular;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// index.json lists every tag of a layout; big layouts have many, so it gets more room than
/// a manifest.
const MAX_INDEX_JSON_SIZE: u64 = 16 << 20;
const MAX_OCI_LAYOUT_SIZE: u64 = 64 << 10;

enum Files {
    Dir(PathBuf),
    Archive(TarIndex),
}

impl Files {
    fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send + '_>>, SourceError> {
        match self {
            Files::Dir(root) => {
                // A FIFO planted as a blob would block open() forever, a symlink could point
                // anywhere on the host: blobs are regular files or refused (see sys::regular).
                let path = root.join(rel);
                match open_regular(&path) {
                    Ok(f) => Ok(Some(Box::new(BufReader::with_capacity(256 * 1024, f)))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(SourceError::io(&path, e)),
                }
            }
            Files::Archive(index) => Ok(index.open(rel)?.map(|r| Box::new(r) as Box<_>)),
        }
    }

    fn root(&self) -> &Path {
        match self {
            Files::Dir(root) => root,
            Files::Archive(index) => index.path(),
        }
    }
}

pub struct OciLayout {
    files: Files,
    index: Index,
}

impl OciLayout {
    pub fn open_dir(dir: &Path) -> Result<Self, SourceError> {
        let has = |name: &str| dir.join(name).is_file();
        if !has("oci-layout") || !has("index.json") {
            return Err(SourceError::NotRecognised {
                path: dir.to_path_buf(),
                looked_for: "an OCI image layout directory (oci-layout and index.json)".into(),
            });
        }
        Self::open(Files::Dir(dir.to_path_buf()))
    }

    pub(crate) fn open_archive(index: TarIndex) -> Result<Self, SourceError> {
        Self::open(Files::Archive(index))
    }

    fn open(files: Files) -> Result<Self, SourceError> {
        let mut layout = OciLayout {
            files,
            index: Index {
                schema_version: 2,
                media_type: None,
                artifact_type: None,
                manifests: Vec::new(),
                subject: None,
                annotations: Default::default(),
            },
        };
        let version = layout.read_small("oci-layout", MAX_OCI_LAYOUT_SIZE)?;
        layout.check_version(&version)?;
        let index = layout.read_small("index.json", MAX_INDEX_JSON_SIZE)?;
        layout.index = match parse_manifest(&index, Some(mt::OCI_INDEX)) {
            Ok(ManifestKind::Index(i)) => i,
            Ok(ManifestKind::Manifest(_)) => {
                return Err(SourceError::Invalid {
                    file: layout.file_name("index.json"),
                    reason: "is an image manifest, not an index".into(),
                })
            }
            Err(e) => {
                return Err(SourceError::Invalid {
                    file: layout.file_name("index.json"),
                    reason: e.to_string(),
                })
            }
        };
        Ok(layout)
    }

    fn check_version(&self, bytes: &[u8]) -> Result<(), SourceError> {
        #[derive(serde::Deserialize)]
        struct OciLayoutFile {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let file: OciLayoutFile =
            serde_json::from_slice(bytes).map_err(|e| SourceError::Malformed {
                file: self.file_name("oci-layout"),
                reason: e.to_string(),
            })?;
        if !file.version.starts_with("1.") {
            return Err(SourceError::Invalid {
                file: self.file_name("oci-layout"),
                reason: format!(
                    "imageLayoutVersion {:?} is not supported (expected 1.x)",
                    file.version
                ),
            });
        }
        Ok(())
    }

    /// Reads a whole small file of the layout, refusing one larger than `limit`.
    fn read_small(&self, rel: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let mut r = self
            .files
            .open(rel)?
            .ok_or_else(|| SourceError::NotRecognised {
                path: self.files.root().to_path_buf(),
                looked_for: format!("{rel} of an OCI image layout"),
            })?;
        let mut buf = Vec::new();
        (&mut r)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| SourceError::io(&self.files.root().join(rel), e))?;
        if buf.len() as u64 > limit {
            return Err(SourceError::Invalid {
                file: self.file_name(rel),
                reason: format!("larger than {limit} bytes"),
            });
        }
        Ok(buf)
    }

    fn file_name(&self, rel: &str) -> String {
        match &self.files {
            Files::Dir(root) => root.join(rel).display().to_string(),
            Files::Archive(index) => format!("{} in oci-archive {}", rel, index.path().display()),
        }
    }
}

impl ImageSource for OciLayout {
    fn describe(&self) -> String {
        match &self.files {
            Files::Dir(root) => format!("oci layout {}", root.display()),
            Files::Archive(index) => format!("oci-archive {}", index.path().display()),
        }
    }

    fn default_repository(&self) -> String {
        repository_from_path(self.files.root())
    }

    fn refs(&self) -> Result<Vec<SourceRef>, SourceError> {
        Ok(self
            .index
            .manifests
            .iter()
            .map(|d| SourceRef {
                name: d
                    .annotations
                    .get(mt::ANNOTATION_CONTAINERD_IMAGE_NAME)
                    .or_else(|| d.annotations.get(mt::ANNOTATION_REF_NAME))
                    .cloned(),
                descriptor: d.clone(),
            })
            .collect())
    }

    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        // The hex part of a Digest is 64 chars of [0-9a-f]: this path stays inside blobs/.
        let rel = format!("blobs/sha256/{}", desc.digest.hex());
        self.files
            .open(&rel)?
            .ok_or_else(|| SourceError::MissingBlob {
                source_name: self.describe(),
                digest: desc.digest.clone(),
                location: format!("expected at {rel}"),
                hint: missing_hint(desc),
            })
    }
}

/// Foreign layers are the one case where a missing blob is expected: say where it lives.
pub(crate) fn missing_hint(desc: &Descriptor) -> String {
    if desc.urls.is_empty() {
        String::new()
    } else {
        format!(
            "; it is a foreign layer to be fetched from {} (not supported)",
            desc.urls.join(", ")
        )
    }
}
