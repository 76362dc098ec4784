//! Tiny images for the source tests, as lamina's types see them. The testkit's OCI builder
//! (`lamina_testkit::oci`) writes the layouts and archives; a `TinyImage` adds the descriptors and
//! digests a resolved image must show, in lamina's own types.

use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::{Descriptor, Platform};
use crate::source::ResolvedImage;
use lamina_testkit::docker::{self, DockerArchive, DockerForm};
use lamina_testkit::oci::{self, Compression, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use std::path::Path;

/// A blob and its descriptor.
pub struct Blob {
    pub desc: Descriptor,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: &[u8]) -> Blob {
        Blob {
            desc: Descriptor::new(media_type, Digest::of_bytes(bytes), bytes.len() as u64),
            bytes: bytes.to_vec(),
        }
    }
}

#[derive(Clone)]
pub struct TinyImage {
    pub layer_tars: Vec<Vec<u8>>,
    pub layer_blobs: Vec<Vec<u8>>,
    pub layer_descs: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    pub config_bytes: Vec<u8>,
    pub config_desc: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub manifest_desc: Descriptor,
    pub platform: Platform,
}

/// One layer: `etc/file` holding `content`.
pub fn layer_tar(content: &[u8]) -> Vec<u8> {
    TarWriter::new().file("etc/file", 0o644, content).finish()
}

pub fn manifest_json(config: &Descriptor, layers: &[Descriptor]) -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config,
        "layers": layers,
    })
    .to_string()
}

impl TinyImage {
    pub fn new(platform: &str, contents: &[&[u8]], compress: bool) -> TinyImage {
        let platform = Platform::parse(platform).unwrap();
        let layer_tars: Vec<Vec<u8>> = contents.iter().map(|c| layer_tar(c)).collect();
        let how = if compress {
            Compression::Gzip
        } else {
            Compression::None
        };
        let mut image =
            oci::Image::new(layer_tars.iter().map(|t| oci::Layer::new(t, how)).collect());
        image.architecture = platform.architecture.clone();
        image.variant = platform.variant.clone();
        image.runtime = serde_json::json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]});
        image.history = Some(
            contents
                .iter()
                .map(|_| serde_json::json!({"created_by": "test"}))
                .collect(),
        );
        let config_bytes = image.config_bytes();
        let manifest_bytes = image.manifest_bytes();
        TinyImage {
            diff_ids: layer_tars.iter().map(|t| Digest::of_bytes(t)).collect(),
            layer_tars,
            layer_blobs: image.layers.iter().map(|l| l.blob.clone()).collect(),
            layer_descs: image
                .layers
                .iter()
                .map(|l| Blob::new(&l.media_type, &l.blob).desc)
                .collect(),
            config_desc: Blob::new(mt::OCI_CONFIG, &config_bytes).desc,
            config_bytes,
            manifest_desc: Blob::new(mt::OCI_MANIFEST, &manifest_bytes).desc,
            manifest_bytes,
            platform,
        }
    }

    /// The testkit image with this one's layers and config bytes as they are now (a test may
    /// have spoiled them): its layer blobs, or the uncompressed tars (as `docker save` has them).
    fn oci(&self, compressed: bool) -> oci::Image {
        let layers = if compressed {
            self.layer_blobs
                .iter()
                .zip(&self.layer_descs)
                .zip(&self.diff_ids)
                .map(|((b, d), id)| oci::Layer::from_blob(b.clone(), &d.media_type, id.to_string()))
                .collect()
        } else {
            self.layer_tars
                .iter()
                .map(|t| oci::Layer::new(t, Compression::None))
                .collect()
        };
        let mut image = oci::Image::new(layers);
        image.architecture = self.platform.architecture.clone();
        image.variant = self.platform.variant.clone();
        image.raw_config = Some(self.config_bytes.clone());
        if compressed {
            image.raw_manifest = Some(self.manifest_bytes.clone());
        }
        image
    }

    /// Config, manifest and layer blobs (for hand-made layouts).
    pub fn blobs(&self) -> Vec<Blob> {
        let mut out = vec![
            Blob::new(mt::OCI_CONFIG, &self.config_bytes),
            Blob::new(mt::OCI_MANIFEST, &self.manifest_bytes),
        ];
        out.extend(
            self.layer_blobs
                .iter()
                .map(|b| Blob::new(mt::OCI_LAYER_TAR, b)),
        );
        out
    }

    pub fn manifest_desc_for_index(&self, name: Option<&str>) -> Descriptor {
        let mut d = self.manifest_desc.clone();
        if let Some(n) = name {
            d.annotations
                .insert(mt::ANNOTATION_REF_NAME.into(), n.to_string());
        }
        d
    }

    /// The resolved image is this one.
    pub fn check(&self, res: &ResolvedImage) {
        assert_eq!(res.config.digest(), self.config_desc.digest);
        assert_eq!(res.config_bytes, self.config_bytes);
        assert_eq!(res.manifest_bytes, self.manifest_bytes);
        assert_eq!(res.manifest.config, self.config_desc);
        let descs: Vec<_> = res.layers.iter().map(|(d, _)| d.clone()).collect();
        let diff_ids: Vec<_> = res.layers.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(descs, self.layer_descs);
        assert_eq!(diff_ids, self.diff_ids);
        assert_eq!(res.platform.normalize(), self.platform.normalize());
    }
}

fn builder(images: &[(&TinyImage, Option<&str>)]) -> OciBuilder {
    let mut b = OciBuilder::new();
    for (img, name) in images {
        b.image(*name, img.oci(true));
    }
    b
}

/// A layout with each image under its name (or none).
pub fn write_layout(dir: &Path, images: &[(&TinyImage, Option<&str>)]) {
    builder(images).write_layout(dir);
}

/// An oci-archive with each image under its name, `prefix` (e.g. `./`) before every member name.
pub fn write_oci_archive(path: &Path, images: &[(&TinyImage, Option<&str>)], prefix: &str) {
    builder(images).write_oci_archive_prefixed(path, prefix);
}

/// A layout of hand-made blobs; `entries` name the refs of index.json. Blobs already in `dir`
/// stay; index.json is replaced.
pub fn write_raw_layout(dir: &Path, blobs: &[&Blob], entries: &[(&Descriptor, &str)]) {
    let mut b = OciBuilder::new();
    for blob in blobs {
        b.blob(&blob.bytes);
    }
    for (desc, name) in entries {
        b.descriptor(Some(name), serde_json::to_value(desc).unwrap());
    }
    b.write_layout(dir);
}

/// A layout whose one ref `tag` is an image index of `images`; returns the index descriptor.
pub fn write_layout_with_index(
    dir: &Path,
    images: &[&TinyImage],
    tag: &str,
    with_platform: bool,
) -> Descriptor {
    let images: Vec<oci::Image> = images.iter().map(|i| i.oci(true)).collect();
    let index = OciBuilder::index_bytes(&images, with_platform);
    let mut b = OciBuilder::new();
    if with_platform {
        b.index(Some(tag), images);
    } else {
        b.index_without_platforms(Some(tag), images);
    }
    b.write_layout(dir);
    Blob::new(mt::OCI_INDEX, &index).desc
}

/// A tar of plain files, named exactly as given.
pub fn tar_files(path: &Path, files: &[(&str, &[u8])]) {
    docker::write_tar_of_files(path, files);
}

/// A `docker save` archive of `img` (its uncompressed layers): legacy layout
/// (`<id>/layer.tar` -> `../<diffID>.tar`, `<hex>.json`) or docker 25's `blobs/sha256/`.
pub fn write_docker_archive(path: &Path, img: &TinyImage, tags: Option<&[&str]>, legacy: bool) {
    write_docker_archive_named(path, img, &img.config_desc.digest, tags, legacy)
}

pub fn write_docker_archive_named(
    path: &Path,
    img: &TinyImage,
    config_name: &Digest,
    tags: Option<&[&str]>,
    legacy: bool,
) {
    let image = img.oci(false);
    let form = if legacy {
        DockerForm::Symlinked
    } else {
        DockerForm::Blobs
    };
    DockerArchive::new(&image)
        .form(form)
        .repo_tags(tags)
        .config_hex(config_name.hex())
        .write(path);
}
