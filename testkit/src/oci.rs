//! Writes OCI image layouts, oci-archives and docker-archives from layer bytes, for tests
//! that need images no tool would make: wrong digests, wrong diffIDs, missing blobs, broken
//! JSON. By default everything it writes is valid (umoci reads it: driver-tests/testkit.rs).
//! Archives are written with [`crate::tarw`], so member names are exactly as given; the
//! `docker save` forms of an [`Image`] are in [`crate::docker`].

pub use crate::compress::{gzip, hex_of, sha256, zstd};
use crate::tarw::TarWriter;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MT_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

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
            Compression::None => (tar.to_vec(), MT_LAYER),
            Compression::Gzip => (gzip(tar), MT_LAYER_GZIP),
            Compression::Zstd => (zstd(tar), MT_LAYER_ZSTD),
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

/// An image: layers plus the config around them.
#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Layer>,
    /// `config` section of the image config (Cmd, Env, ...)
    pub runtime: Value,
    pub architecture: String,
    pub variant: Option<String>,
    /// the config's `created`, when set
    pub created: Option<String>,
    /// replaces the config's `history` (one `created_by: OciBuilder` entry per layer)
    pub history: Option<Vec<Value>>,
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
            created: None,
            history: None,
            raw_config: None,
            raw_manifest: None,
        }
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw_config {
            return raw.clone();
        }
        let diff_ids: Vec<&str> = self.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<Value> = self.history.clone().unwrap_or_else(|| {
            self.layers
                .iter()
                .map(|_| json!({"created_by": "OciBuilder"}))
                .collect()
        });
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
        if let Some(c) = &self.created {
            config["created"] = json!(c);
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

    /// The manifest's descriptor as an index lists it (without a platform).
    pub fn manifest_descriptor(&self) -> Value {
        let m = self.manifest_bytes();
        json!({"mediaType": MT_MANIFEST, "digest": sha256(&m), "size": m.len()})
    }

    pub fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.architecture, "os": "linux"});
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

enum Entry {
    Image(Image),
    /// an image index; whether its manifests carry their platforms
    Index(Vec<Image>, bool),
    /// a descriptor written as given; its blob comes from [`OciBuilder::blob`]
    Raw(Value),
}

/// index.json entries, each with an optional ref name, and extra blobs.
#[derive(Default)]
pub struct OciBuilder {
    entries: Vec<(Option<String>, Entry)>,
    blobs: Vec<Vec<u8>>,
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
            .push((ref_name.map(str::to_string), Entry::Index(images, true)));
        self
    }

    /// An image index whose manifests do not say their platforms (the reader must open them).
    pub fn index_without_platforms(
        &mut self,
        ref_name: Option<&str>,
        images: Vec<Image>,
    ) -> &mut Self {
        self.entries
            .push((ref_name.map(str::to_string), Entry::Index(images, false)));
        self
    }

    /// An index.json entry written as given (its ref name added when set).
    pub fn descriptor(&mut self, ref_name: Option<&str>, desc: Value) -> &mut Self {
        self.entries
            .push((ref_name.map(str::to_string), Entry::Raw(desc)));
        self
    }

    /// A blob of hand-made bytes, stored under its digest; returns the digest.
    pub fn blob(&mut self, bytes: &[u8]) -> String {
        self.blobs.push(bytes.to_vec());
        sha256(bytes)
    }

    /// The bytes of an image index of `images`, each manifest with its platform or not.
    pub fn index_bytes(images: &[Image], with_platforms: bool) -> Vec<u8> {
        let manifests: Vec<Value> = images
            .iter()
            .map(|img| {
                let mut d = img.manifest_descriptor();
                if with_platforms {
                    d["platform"] = img.platform();
                }
                d
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
        for b in &self.blobs {
            blob(b.clone(), &sha256(b));
        }
        let mut index_manifests = Vec::new();
        for (name, entry) in &self.entries {
            let mut desc = match entry {
                Entry::Image(img) => {
                    put_image(img, &mut blob);
                    img.manifest_descriptor()
                }
                Entry::Index(images, with_platforms) => {
                    for img in images {
                        put_image(img, &mut blob);
                    }
                    let idx = Self::index_bytes(images, *with_platforms);
                    blob(idx.clone(), &sha256(&idx));
                    json!({"mediaType": MT_INDEX, "digest": sha256(&idx), "size": idx.len()})
                }
                Entry::Raw(desc) => desc.clone(),
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

    /// The layout as one tar (what skopeo's oci-archive transport writes), index.json last.
    pub fn write_oci_archive(&self, file: &Path) {
        self.write_oci_archive_prefixed(file, "");
    }

    /// The same with `prefix` (e.g. `./`, as `tar -C dir .` writes) before every name.
    pub fn write_oci_archive_prefixed(&self, file: &Path, prefix: &str) {
        let mut ar = TarWriter::new();
        let mut dirs_done = std::collections::BTreeSet::new();
        for (rel, bytes) in self.files() {
            for dir in ["blobs/", "blobs/sha256/"] {
                if rel.starts_with(dir) && dirs_done.insert(dir) {
                    ar.dir(format!("{prefix}{dir}"), 0o755);
                }
            }
            ar.file(format!("{prefix}{rel}"), 0o644, &bytes);
        }
        fs::write(file, ar.finish()).expect("write oci-archive");
    }
}
