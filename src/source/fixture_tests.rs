//! Tiny images written as layouts and archives, for the source tests.

use crate::digest::Digest;
use crate::image::media_types as mt;
use crate::image::{Descriptor, Platform};
use crate::source::ResolvedImage;
use std::fs;
use std::io::Write;
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

pub fn layer_tar(content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_file(&mut b, "etc/file", content);
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
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
        let diff_ids: Vec<Digest> = layer_tars.iter().map(|t| Digest::of_bytes(t)).collect();
        let layer_blobs: Vec<Vec<u8>> = layer_tars
            .iter()
            .map(|t| if compress { gzip(t) } else { t.clone() })
            .collect();
        let media_type = if compress {
            mt::OCI_LAYER_TAR_GZIP
        } else {
            mt::OCI_LAYER_TAR
        };
        let layer_descs = layer_blobs
            .iter()
            .map(|b| Blob::new(media_type, b).desc)
            .collect::<Vec<_>>();
        let config_bytes = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "variant": platform.variant,
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": contents.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
        })
        .to_string()
        .into_bytes();
        let config_desc = Blob::new(mt::OCI_CONFIG, &config_bytes).desc;
        let manifest_bytes = manifest_json(&config_desc, &layer_descs).into_bytes();
        let manifest_desc = Blob::new(mt::OCI_MANIFEST, &manifest_bytes).desc;
        TinyImage {
            layer_tars,
            layer_blobs,
            layer_descs,
            diff_ids,
            config_bytes,
            config_desc,
            manifest_bytes,
            manifest_desc,
            platform,
        }
    }

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

fn write_blobs(dir: &Path, blobs: &[&Blob]) {
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for b in blobs {
        fs::write(blob_dir.join(b.desc.digest.hex()), &b.bytes).unwrap();
    }
}

fn write_index_json(dir: &Path, entries: &[Descriptor]) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": entries,
    });
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// A layout with each image under its name (or none).
pub fn write_layout(dir: &Path, images: &[(&TinyImage, Option<&str>)]) {
    let mut entries = Vec::new();
    for (img, name) in images {
        let blobs = img.blobs();
        write_blobs(dir, &blobs.iter().collect::<Vec<_>>());
        entries.push(img.manifest_desc_for_index(*name));
    }
    write_index_json(dir, &entries);
}

/// A layout of hand-made blobs; `entries` name the refs of index.json.
pub fn write_raw_layout(dir: &Path, blobs: &[&Blob], entries: &[(&Descriptor, &str)]) {
    write_blobs(dir, blobs);
    let entries: Vec<Descriptor> = entries
        .iter()
        .map(|(d, name)| {
            let mut d = (*d).clone();
            d.annotations
                .insert(mt::ANNOTATION_REF_NAME.into(), name.to_string());
            d
        })
        .collect();
    write_index_json(dir, &entries);
}

/// A layout whose one ref `tag` is an image index of `images`; returns the index descriptor.
pub fn write_layout_with_index(
    dir: &Path,
    images: &[&TinyImage],
    tag: &str,
    with_platform: bool,
) -> Descriptor {
    let mut manifests = Vec::new();
    for img in images {
        let blobs = img.blobs();
        write_blobs(dir, &blobs.iter().collect::<Vec<_>>());
        let mut d = img.manifest_desc.clone();
        if with_platform {
            d.platform = Some(img.platform.clone());
        }
        manifests.push(d);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": manifests,
    })
    .to_string();
    let blob = Blob::new(mt::OCI_INDEX, index.as_bytes());
    write_blobs(dir, &[&blob]);
    let mut entry = blob.desc.clone();
    entry
        .annotations
        .insert(mt::ANNOTATION_REF_NAME.into(), tag.into());
    write_index_json(dir, &[entry]);
    blob.desc
}

/// Sets a member name byte for byte (the tar crate drops a leading `./`, real tars keep it).
fn header_for(name: &str, size: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    let field = &mut h.as_old_mut().name;
    assert!(name.len() < field.len(), "test names are short");
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    h
}

pub fn append_file<W: Write>(b: &mut tar::Builder<W>, name: &str, bytes: &[u8]) {
    let h = header_for(name, bytes.len() as u64, tar::EntryType::Regular);
    b.append(&h, bytes).unwrap();
}

pub fn append_link<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    target: &str,
    kind: tar::EntryType,
) {
    let mut h = header_for(name, 0, kind);
    h.set_link_name(target).unwrap();
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
}

pub fn tar_files(path: &Path, files: &[(&str, &[u8])]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, bytes) in files {
        append_file(&mut b, name, bytes);
    }
    b.into_inner().unwrap().sync_all().unwrap();
}

/// Tars a layout directory as an oci-archive, optionally with `./` before every name.
pub fn tar_dir(dir: &Path, path: &Path, dot_prefix: bool) {
    let prefix = if dot_prefix { "./" } else { "" };
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let dir_header = |name: &str| {
        let mut h = header_for(name, 0, tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_cksum();
        h
    };
    append_file(
        &mut b,
        &format!("{prefix}oci-layout"),
        &fs::read(dir.join("oci-layout")).unwrap(),
    );
    b.append(&dir_header(&format!("{prefix}blobs/")), std::io::empty())
        .unwrap();
    b.append(
        &dir_header(&format!("{prefix}blobs/sha256/")),
        std::io::empty(),
    )
    .unwrap();
    for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = format!("{prefix}blobs/sha256/{}", e.file_name().to_str().unwrap());
        append_file(&mut b, &name, &fs::read(e.path()).unwrap());
    }
    // index.json last, as skopeo writes it.
    append_file(
        &mut b,
        &format!("{prefix}index.json"),
        &fs::read(dir.join("index.json")).unwrap(),
    );
    b.into_inner().unwrap().sync_all().unwrap();
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
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut layers = Vec::new();
    for (i, (tar_bytes, diff_id)) in img.layer_tars.iter().zip(&img.diff_ids).enumerate() {
        if legacy {
            let file = format!("{}.tar", diff_id.hex());
            append_file(&mut b, &file, tar_bytes);
            let id = Digest::of_bytes(format!("layer {i}").as_bytes());
            let link = format!("{}/layer.tar", id.hex());
            append_link(
                &mut b,
                &link,
                &format!("../{file}"),
                tar::EntryType::Symlink,
            );
            append_file(&mut b, &format!("{}/VERSION", id.hex()), b"1.0");
            layers.push(link);
        } else {
            let file = format!("blobs/sha256/{}", diff_id.hex());
            append_file(&mut b, &file, tar_bytes);
            layers.push(file);
        }
    }
    let config = if legacy {
        format!("{}.json", config_name.hex())
    } else {
        format!("blobs/sha256/{}", config_name.hex())
    };
    append_file(&mut b, &config, &img.config_bytes);
    let manifest = serde_json::json!([{
        "Config": config,
        "RepoTags": tags,
        "Layers": layers,
    }]);
    append_file(&mut b, "manifest.json", manifest.to_string().as_bytes());
    b.into_inner().unwrap().sync_all().unwrap();
}
