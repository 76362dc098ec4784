//! `import` and `commit`: making new images inside the store: `import` (a root filesystem becomes a one-layer image) and
//! `commit` (what a writable mount's container changed becomes a layer on top of its image). Both produce an
//! uncompressed layer tar in staging, hashing it as it is written (its digest is the diffID), and then
//! go through the same ingest path as `load`, so the new layer is verified and unpacked like any other.

use super::load::LoadedImage;
use super::mount::WritableTree;
use super::{Engine, EngineError, Observer, Result};
use crate::digest::{Digest, HashingWriter};
use crate::image::change::ConfigChange;
use crate::image::{
    media_types as mt, Descriptor, History, ImageConfig, Manifest, Platform, UtcTime,
};
use crate::runtime;
use crate::source::{ImageSource, ResolvedImage, SourceError, SourceRef};
use crate::store::{self, IoContext};
use crate::unpack::{self, TreeKind};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

type SourceResult<T> = std::result::Result<T, SourceError>;

/// Blobs that exist as files in staging (new layers): the source `ingest` reads them from.
struct StagedBlobs {
    files: HashMap<Digest, PathBuf>,
}

impl ImageSource for StagedBlobs {
    fn describe(&self) -> String {
        "staged layer".into()
    }
    fn default_repository(&self) -> String {
        String::new()
    }
    fn refs(&self) -> SourceResult<Vec<SourceRef>> {
        Ok(vec![])
    }
    fn open_blob(&self, desc: &Descriptor) -> SourceResult<Box<dyn Read + Send + '_>> {
        let path = self
            .files
            .get(&desc.digest)
            .ok_or_else(|| SourceError::MissingBlob {
                source_name: self.describe(),
                digest: desc.digest.clone(),
                location: "not staged".into(),
                hint: String::new(),
            })?;
        let f = File::open(path).map_err(|e| SourceError::Io {
            path: path.clone(),
            source: e,
        })?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
    }
}

fn now_rfc3339() -> String {
    UtcTime::from_unix(store::now()).rfc3339()
}

fn image_err(image: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Build {
        image: image.to_string(),
        reason: e.to_string(),
    }
}

impl Engine {
    /// `lamina import`: a directory or a tar (plain, gzip or zstd) becomes a one-layer image.
    pub fn import_rootfs(
        &mut self,
        rootfs: &Path,
        tag: &str,
        changes: &[ConfigChange],
        message: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<LoadedImage> {
        let staging = self.store.stage("import")?;
        let tar_path = staging.path().join("layer.tar");
        let out = BufWriter::with_capacity(1 << 20, File::create(&tar_path).at(&tar_path)?);
        let mut hashing = HashingWriter::new(out);
        let meta = fs::metadata(rootfs).at(rootfs)?;
        if meta.is_dir() {
            unpack::write_layer_tar(rootfs, &mut hashing, TreeKind::Rootfs)?;
        } else {
            let f = File::open(rootfs).at(rootfs)?;
            let mut plain = unpack::decompress(io::BufReader::with_capacity(1 << 20, f))
                .map_err(|e| image_err(&rootfs.display().to_string(), e))?;
            io::copy(&mut plain, &mut hashing).at(rootfs)?;
        }
        let (mut out, diff_id, size) = hashing.finish();
        out.flush().at(&tar_path)?;
        drop(out);

        let platform = Platform::host();
        let created = now_rfc3339();
        let mut config = json!({
            "created": created,
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{
                "created": created,
                "created_by": format!("lamina import {}", rootfs.display()),
                "comment": message.unwrap_or("Imported from a root filesystem"),
            }],
        });
        if let Some(v) = &platform.variant {
            config["variant"] = Value::from(v.clone());
        }
        apply_changes(&mut config, changes);
        let config = ImageConfig::from_value(&config).map_err(|e| image_err(tag, e))?;
        let layer = Descriptor::new(mt::OCI_LAYER_TAR, diff_id.clone(), size);
        let image = resolved(config, vec![(layer, diff_id.clone())], tag)?;
        let source = StagedBlobs {
            files: HashMap::from([(diff_id, tar_path)]),
        };
        let loaded = self.ingest(&source, &image, &[tag.to_string()], None, observer)?;
        drop(staging);
        Ok(loaded)
    }

    /// `lamina commit`: the mount's upper dir becomes a new top layer of its image.
    pub fn commit_mount(
        &mut self,
        id_or_dir: &str,
        tag: &str,
        changes: &[ConfigChange],
        message: Option<&str>,
        author: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<LoadedImage> {
        let m = self.store.find_mount(id_or_dir)?;
        // Held until the new image is recorded: an `umount` meanwhile would delete the upper dir
        // being read, and a walk of a deleted dir ends early without an error (see `store::locks`).
        let lock_path = self.store.layout().mount_lock(&m.id);
        let _lock = crate::store::FileLock::acquire(&lock_path, crate::store::LockMode::Exclusive)
            .at(&lock_path)?;
        let m = self.store.find_mount(m.id.as_str())?;
        let base = self.store.config(&m.image_id)?;
        let staging = self.store.stage("commit")?;
        let upper = match self.writable_tree(&m)? {
            WritableTree::Upper(upper) => upper,
            WritableTree::Copy(tree) => {
                // Laid out as an upper dir, so both drivers' layers are written the same way.
                let changes = runtime::tree_changes(&tree, &self.store.lower_dirs(&m.image_id)?)?;
                let staged = staging.path().join("upper");
                fs::create_dir(&staged).at(&staged)?;
                runtime::stage_changes(&tree, &changes, &staged)?;
                staged
            }
        };
        let tar_path = staging.path().join("layer.tar");
        let out = BufWriter::with_capacity(1 << 20, File::create(&tar_path).at(&tar_path)?);
        let mut hashing = HashingWriter::new(out);
        unpack::write_layer_tar_with(&upper, &mut hashing, TreeKind::OverlayUpper, &self.unpack)
            .map_err(|e| {
                EngineError::writing(e, &tar_path, || {
                    format!(
                        "writing the new layer of mount {} ({})",
                        m.id,
                        tar_path.display()
                    )
                })
            })?;
        let (mut out, diff_id, size) = hashing.finish();
        out.flush().at(&tar_path)?;
        drop(out);

        let history = History {
            created: Some(now_rfc3339()),
            created_by: Some(format!("lamina commit {}", m.id)),
            author: author.map(str::to_string),
            comment: message.map(str::to_string),
            empty_layer: false,
        };
        let with_layer = base
            .with_layer(&diff_id, &history)
            .map_err(|e| image_err(tag, e))?;
        let mut value = with_layer.to_value().map_err(|e| image_err(tag, e))?;
        if let Some(a) = author {
            value["author"] = Value::from(a);
        }
        apply_changes(&mut value, changes);
        let config = ImageConfig::from_value(&value).map_err(|e| image_err(tag, e))?;

        // The base layers are in the store already: ingest finds them and never opens their blobs.
        let mut layers: Vec<(Descriptor, Digest)> = self
            .store
            .image_layers(&m.image_id)?
            .into_iter()
            .map(|l| {
                (
                    Descriptor::new(mt::OCI_LAYER_TAR, l.diff_id.clone(), 0),
                    l.diff_id,
                )
            })
            .collect();
        layers.push((
            Descriptor::new(mt::OCI_LAYER_TAR, diff_id.clone(), size),
            diff_id.clone(),
        ));
        let image = resolved(config, layers, tag)?;
        let source = StagedBlobs {
            files: HashMap::from([(diff_id, tar_path)]),
        };
        let loaded = self.ingest(&source, &image, &[tag.to_string()], None, observer)?;
        drop(staging);
        Ok(loaded)
    }
}

fn apply_changes(config: &mut Value, changes: &[ConfigChange]) {
    if changes.is_empty() {
        return;
    }
    if !config.get("config").is_some_and(Value::is_object) {
        config["config"] = json!({});
    }
    if let Some(c) = config.get_mut("config").and_then(Value::as_object_mut) {
        for ch in changes {
            ch.apply(c);
        }
    }
}

/// A resolved image made here: an OCI manifest over `layers` with `config`.
fn resolved(
    config: ImageConfig,
    layers: Vec<(Descriptor, Digest)>,
    name: &str,
) -> Result<ResolvedImage> {
    let config_bytes = config.bytes().to_vec();
    let config_desc = Descriptor::new(mt::OCI_CONFIG, config.digest(), config_bytes.len() as u64);
    let manifest_json = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config_desc,
        "layers": layers.iter().map(|(d, _)| d).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest_json).map_err(|e| image_err(name, e))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| image_err(name, e))?;
    Ok(ResolvedImage {
        name: Some(name.to_string()),
        manifest_digest: None,
        manifest_bytes,
        manifest,
        platform: config.platform(),
        config_bytes,
        config,
        layers,
        warnings: vec![],
        indexes: Vec::new(),
    })
}
