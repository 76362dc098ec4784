//! Writes OCI image layouts, oci-archives and docker-archives from layer bytes, for tests
//! that need images no tool would make: wrong digests, wrong diffIDs, missing blobs, broken
//! JSON. By default everything it writes is valid (umoci reads it, see the unit checks).

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::Write;
use std::path::Path;

pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `sha256:<hex>` -> `<hex>`
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// One layer blob as it will be written, and what its descriptor and the config say about it.
#[derive(Clone, Debug)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    /// the descriptor's digest; the blob file is written under this name
    pub digest: String,
    pub size: u64,
    /// the config's diff_id for it
    pub diff_id: String,
    /// leave the blob file out of the layout
    pub omit: bool,
}

impl Layer {
    pub fn new(tar: &[u8], c: Compression) -> Layer {
        let (blob, media_type) = match c {
            Compression::None => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
            Compression::Gzip => (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::Zstd => (zstd(tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
        };
        Layer::from_blob(blob, media_type, sha256(tar))
    }

    /// A blob whose bytes were already made (or spoiled) by the caller; its digest is of `blob`.
    pub fn from_blob(blob: Vec<u8>, media_type: &str, diff_id: String) -> Layer {
        Layer {
            digest: sha256(&blob),
            size: blob.len() as u64,
            blob,
            media_type: media_type.to_string(),
            diff_id,
            omit: false,
        }
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd to memory")
}

/// An image: layers plus the config around them.
#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Layer>,
    /// `config` section of the image config (Cmd, Env, ...)
    pub runtime: Value,
    pub architecture: String,
    pub variant: Option<String>,
    /// replaces the config JSON entirely (to write broken JSON)
    pub raw_config: Option<Vec<u8>>,
    /// replaces the manifest JSON entirely
    pub raw_manifest: Option<Vec<u8>>,
}

impl Image {
    pub fn new(layers: Vec<Layer>) -> Image {
        Image {
            layers,
            runtime: json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}),
            architecture: "amd64".into(),
            variant: None,
            raw_config: None,
            raw_manifest: None,
        }
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw_config {
            return raw.clone();
        }
        let diff_ids: Vec<&str> = self.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|_| json!({"created_by": "OciBuilder"}))
            .collect();
        let mut config = json!({
            "architecture": self.architecture,
            "os": "linux",
            "config": self.runtime,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(v) = &self.variant {
            config["variant"] = json!(v);
        }
        serde_json::to_vec(&config).expect("json")
    }

    pub fn manifest_bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw_manifest {
            return raw.clone();
        }
        let config = self.config_bytes();
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": layers,
        }))
        .expect("json")
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest_bytes())
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config_bytes())
    }

    fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.architecture, "os": "linux"});
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

enum Entry {
    Image(Image),
    Index(Vec<Image>),
}

/// index.json entries, each with an optional ref name.
#[derive(Default)]
pub struct OciBuilder {
    entries: Vec<(Option<String>, Entry)>,
    /// replaces index.json entirely
    pub raw_index: Option<Vec<u8>>,
}

impl OciBuilder {
    pub fn new() -> OciBuilder {
        OciBuilder::default()
    }

    pub fn image(&mut self, ref_name: Option<&str>, image: Image) -> &mut Self {
        self.entries
            .push((ref_name.map(str::to_string), Entry::Image(image)));
        self
    }

    /// An image index (one manifest per image, with its platform) under one ref.
    pub fn index(&mut self, ref_name: Option<&str>, images: Vec<Image>) -> &mut Self {
        self.entries
            .push((ref_name.map(str::to_string), Entry::Index(images)));
        self
    }

    fn index_bytes(images: &[Image]) -> Vec<u8> {
        let manifests: Vec<Value> = images
            .iter()
            .map(|img| {
                let m = img.manifest_bytes();
                json!({"mediaType": MT_MANIFEST, "digest": sha256(&m), "size": m.len(), "platform": img.platform()})
            })
            .collect();
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}),
        )
        .expect("json")
    }

    /// All files of the layout as (relative path, bytes).
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![(
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )];
        let mut blob = |bytes: Vec<u8>, digest: &str| {
            let path = format!("blobs/sha256/{}", hex_of(digest));
            if !files.iter().any(|(p, _)| *p == path) {
                files.push((path, bytes));
            }
        };
        let put_image = |img: &Image, blob: &mut dyn FnMut(Vec<u8>, &str)| {
            for l in img.layers.iter().filter(|l| !l.omit) {
                blob(l.blob.clone(), &l.digest);
            }
            let config = img.config_bytes();
            blob(config.clone(), &sha256(&config));
            let m = img.manifest_bytes();
            blob(m.clone(), &sha256(&m));
        };
        let mut index_manifests = Vec::new();
        for (name, entry) in &self.entries {
            let mut desc = match entry {
                Entry::Image(img) => {
                    put_image(img, &mut blob);
                    let m = img.manifest_bytes();
                    json!({"mediaType": MT_MANIFEST, "digest": sha256(&m), "size": m.len()})
                }
                Entry::Index(images) => {
                    for img in images {
                        put_image(img, &mut blob);
                    }
                    let idx = Self::index_bytes(images);
                    blob(idx.clone(), &sha256(&idx));
                    json!({"mediaType": MT_INDEX, "digest": sha256(&idx), "size": idx.len()})
                }
            };
            if let Some(name) = name {
                desc["annotations"] = json!({ REF_NAME: name });
            }
            index_manifests.push(desc);
        }
        let index = self.raw_index.clone().unwrap_or_else(|| {
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index_manifests}),
            )
            .expect("json")
        });
        files.push(("index.json".to_string(), index));
        files
    }

    pub fn write_layout(&self, dir: &Path) {
        for (rel, bytes) in self.files() {
            let path = dir.join(rel);
            fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir layout");
            fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }

    /// The layout as one tar (what skopeo's oci-archive transport writes).
    pub fn write_oci_archive(&self, file: &Path) {
        let mut ar = tar::Builder::new(Vec::new());
        let mut dirs_done = std::collections::BTreeSet::new();
        for (rel, bytes) in self.files() {
            for dir in ["blobs/", "blobs/sha256/"] {
                if rel.starts_with(dir) && dirs_done.insert(dir) {
                    append(&mut ar, dir, tar::EntryType::Directory, &[]);
                }
            }
            append(&mut ar, &rel, tar::EntryType::Regular, &bytes);
        }
        fs::write(file, ar.into_inner().expect("tar to memory")).expect("write oci-archive");
    }
}

fn append(ar: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, bytes: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(bytes.len() as u64);
    h.set_mtime(1_600_000_000);
    ar.append_data(&mut h, path, bytes).expect("tar to memory");
}

/// `docker save` format: manifest.json, <config hex>.json, <diffID hex>/layer.tar. The layer
/// blobs are written as they are (docker writes plain tars; compressed ones are legal too).
pub fn write_docker_archive(image: &Image, repo_tags: &[&str], file: &Path) {
    let mut ar = tar::Builder::new(Vec::new());
    let config = image.config_bytes();
    let config_name = format!("{}.json", hex_of(&sha256(&config)));
    let mut layer_names = Vec::new();
    for l in &image.layers {
        let dir = hex_of(&l.digest).to_string();
        let name = format!("{dir}/layer.tar");
        if !l.omit {
            append(&mut ar, &format!("{dir}/"), tar::EntryType::Directory, &[]);
            append(&mut ar, &name, tar::EntryType::Regular, &l.blob);
        }
        layer_names.push(name);
    }
    append(&mut ar, &config_name, tar::EntryType::Regular, &config);
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]);
    let manifest = serde_json::to_vec(&manifest).expect("json");
    append(&mut ar, "manifest.json", tar::EntryType::Regular, &manifest);
    fs::write(file, ar.into_inner().expect("tar to memory")).expect("write docker-archive");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common;
    use crate::tarw::TarWriter;

    fn small_image() -> Image {
        let mut base = TarWriter::new();
        base.dir("etc/", 0o755).file("etc/hello", 0o644, b"hello\n");
        let mut top = TarWriter::new();
        top.dir("etc/", 0o755)
            .file("etc/.wh.hello", 0o644, b"")
            .file("etc/top", 0o600, b"top\n");
        Image::new(vec![
            Layer::new(&base.finish(), Compression::Gzip),
            Layer::new(&top.finish(), Compression::None),
        ])
    }

    #[test]
    fn layout_is_self_consistent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = small_image();
        let mut b = OciBuilder::new();
        b.image(Some("t1"), img.clone());
        b.write_layout(dir.path());
        let index: Value =
            serde_json::from_slice(&fs::read(dir.path().join("index.json")).expect("index"))
                .expect("json");
        let desc = &index["manifests"][0];
        assert_eq!(desc["annotations"][REF_NAME], "t1");
        let mdigest = desc["digest"].as_str().expect("digest");
        let mbytes =
            fs::read(dir.path().join("blobs/sha256").join(hex_of(mdigest))).expect("manifest blob");
        assert_eq!(sha256(&mbytes), mdigest);
        let manifest: Value = serde_json::from_slice(&mbytes).expect("json");
        for l in manifest["layers"].as_array().expect("layers") {
            let d = l["digest"].as_str().expect("digest");
            let bytes =
                fs::read(dir.path().join("blobs/sha256").join(hex_of(d))).expect("layer blob");
            assert_eq!(sha256(&bytes), d);
            assert_eq!(bytes.len() as u64, l["size"].as_u64().expect("size"));
        }
        let config = fs::read(
            dir.path()
                .join("blobs/sha256")
                .join(hex_of(&img.config_digest())),
        )
        .expect("config");
        let config: Value = serde_json::from_slice(&config).expect("json");
        assert_eq!(
            config["rootfs"]["diff_ids"][0].as_str(),
            Some(img.layers[0].diff_id.as_str())
        );
    }

    /// umoci, an independent implementation, unpacks what the builder writes.
    #[test]
    fn umoci_reads_builder_layouts() {
        if !common::require_root() || !common::have_tool("umoci") {
            return;
        }
        let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let mut b = OciBuilder::new();
        b.image(Some("t1"), small_image());
        b.write_layout(&dir.path().join("oci"));
        let rootfs =
            crate::oracle::umoci_unpack(&dir.path().join("oci"), "t1", &dir.path().join("bundle"));
        assert_eq!(fs::read(rootfs.join("etc/top")).expect("etc/top"), b"top\n");
        assert!(
            !rootfs.join("etc/hello").exists(),
            "whiteout of the lower file must apply"
        );
    }

    #[test]
    fn archives_list_the_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = small_image();
        let mut b = OciBuilder::new();
        b.image(Some("x:1"), img.clone());
        b.write_oci_archive(&dir.path().join("a.tar"));
        write_docker_archive(&img, &["x:1"], &dir.path().join("d.tar"));
        let names = |p: &Path| -> Vec<String> {
            let bytes = fs::read(p).expect("archive");
            let mut ar = tar::Archive::new(&bytes[..]);
            ar.entries()
                .expect("entries")
                .map(|e| {
                    e.expect("entry")
                        .path()
                        .expect("path")
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        };
        let oci = names(&dir.path().join("a.tar"));
        assert!(oci.contains(&"index.json".to_string()) && oci.contains(&"oci-layout".to_string()));
        assert!(oci.contains(&format!("blobs/sha256/{}", hex_of(&img.layers[0].digest))));
        let docker = names(&dir.path().join("d.tar"));
        assert!(docker.contains(&"manifest.json".to_string()));
        assert!(docker.contains(&format!("{}.json", hex_of(&img.config_digest()))));
    }
}
