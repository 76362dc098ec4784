//! `save`: images out of the store as an oci-archive or a docker-archive that `load` (ours, docker's,
//! podman's, skopeo's) reads back as the same images.
//!
//! The image ID is the digest of the config, and the config lists the diffIDs, so every layer must be
//! written as the very tar it was loaded from. Each layer's tar is reassembled from its tar-split
//! record and its `diff/` (see `tar::split`), hashed as it is written, and refused if the hash is not
//! the diffID. Layers go out uncompressed (as `docker save` writes them), so a saved image keeps its
//! image ID and diffIDs but gets a new manifest digest.
//!
//! The archive is written beside its destination and renamed into place when complete, so a failed
//! save leaves no partial file.

use super::{Engine, EngineError, Result};
use crate::digest::{Digest, HashingReader};
use crate::image::media_types as mt;
use crate::image::Descriptor;
use crate::store::{self as names, recorded, IoContext};
use crate::tar::reassemble::TarSplitReader;
use rustix::fs::Mode;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ArchiveFormat {
    #[cfg_attr(feature = "cli", value(alias = "oci"))]
    OciArchive,
    #[cfg_attr(feature = "cli", value(alias = "docker"))]
    DockerArchive,
}

impl ArchiveFormat {
    pub fn parse(s: &str) -> Option<ArchiveFormat> {
        match s {
            "oci-archive" | "oci" => Some(ArchiveFormat::OciArchive),
            "docker-archive" | "docker" => Some(ArchiveFormat::DockerArchive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SavedImage {
    pub id: Digest,
    /// Familiar names written with it (none when it was named by ID, as docker does).
    pub names: Vec<String>,
}

/// One image to save: its ID and the full names to record.
struct Entry {
    id: Digest,
    names: Vec<String>,
}

fn save_err(what: &str, reason: impl std::fmt::Display) -> EngineError {
    EngineError::Archive {
        image: what.to_string(),
        reason: reason.to_string(),
    }
}

impl Engine {
    /// Writes `images` (names or IDs) to `out`.
    pub fn save(
        &self,
        images: &[String],
        out: &Path,
        format: ArchiveFormat,
    ) -> Result<Vec<SavedImage>> {
        let mut entries: Vec<Entry> = vec![];
        for name in images {
            let id = self.store.resolve_image(name)?;
            let full = names::normalize_tag(name)
                .ok()
                .filter(|t| self.store.tag_target(t).ok().flatten().as_ref() == Some(&id));
            match entries.iter_mut().find(|e| e.id == id) {
                Some(e) => e.names.extend(full.filter(|f| !e.names.contains(f))),
                None => entries.push(Entry {
                    id,
                    names: full.into_iter().collect(),
                }),
            }
        }
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = out
            .file_name()
            .ok_or_else(|| save_err(&out.display().to_string(), "not a file name"))?;
        // The archive is made in the output's dir (opened once: everything after is relative to
        // it) under a random name created exclusively, never through a name someone planted
        // there, and renamed over `out` (a symlink at `out` is replaced, not written through).
        let dir_fd = File::open(dir).at(dir)?;
        let (file, tmp_name) = crate::sys::create::create_temp(
            &dir_fd,
            &format!("{}.lamina", name.to_string_lossy()),
            Mode::from_raw_mode(0o644),
        )
        .at(dir)?;
        let tmp = dir.join(&tmp_name);
        let result = (|| -> Result<()> {
            let mut ar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
            ar.mode(tar::HeaderMode::Deterministic);
            match format {
                ArchiveFormat::OciArchive => self.write_oci(&mut ar, &entries)?,
                ArchiveFormat::DockerArchive => self.write_docker(&mut ar, &entries)?,
            }
            let mut w = ar.into_inner().at(&tmp)?;
            w.flush().at(&tmp)?;
            w.get_ref().sync_all().at(&tmp)?;
            rustix::fs::renameat(&dir_fd, &tmp_name, &dir_fd, name)
                .map_err(std::io::Error::from)
                .at(out)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&dir_fd, &tmp_name, rustix::fs::AtFlags::empty());
        }
        result?;
        Ok(entries
            .into_iter()
            .map(|e| SavedImage {
                id: e.id,
                names: e.names.iter().map(|n| names::familiar(n)).collect(),
            })
            .collect())
    }

    fn write_oci<W: Write>(&self, ar: &mut tar::Builder<W>, entries: &[Entry]) -> Result<()> {
        add_bytes(ar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut written: Vec<Digest> = vec![];
        let mut index = vec![];
        for e in entries {
            let config = self.store.config_bytes(&e.id)?;
            add_blob(ar, &mut written, &e.id, &config)?;
            let mut layers = vec![];
            for (diff_id, size) in self.write_layers(ar, &mut written, &e.id, blob_path)? {
                layers.push(Descriptor::new(mt::OCI_LAYER_TAR, diff_id, size));
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": mt::OCI_MANIFEST,
                "config": Descriptor::new(mt::OCI_CONFIG, e.id.clone(), config.len() as u64),
                "layers": layers,
            });
            let bytes =
                serde_json::to_vec(&manifest).map_err(|err| save_err(&e.id.to_string(), err))?;
            let digest = Digest::of_bytes(&bytes);
            add_blob(ar, &mut written, &digest, &bytes)?;
            let desc = Descriptor::new(mt::OCI_MANIFEST, digest, bytes.len() as u64);
            if e.names.is_empty() {
                index.push(desc.clone());
            }
            for n in &e.names {
                let mut d = desc.clone();
                d.annotations = BTreeMap::from([
                    (mt::ANNOTATION_REF_NAME.to_string(), names::familiar(n)),
                    (mt::ANNOTATION_CONTAINERD_IMAGE_NAME.to_string(), n.clone()),
                ]);
                index.push(d);
            }
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": index,
        });
        let bytes = serde_json::to_vec(&index).map_err(|e| save_err("index.json", e))?;
        add_bytes(ar, "index.json", &bytes)
    }

    fn write_docker<W: Write>(&self, ar: &mut tar::Builder<W>, entries: &[Entry]) -> Result<()> {
        let mut written: Vec<Digest> = vec![];
        let mut manifest = vec![];
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for e in entries {
            let config = self.store.config_bytes(&e.id)?;
            let config_name = format!("{}.json", e.id.hex());
            if !written.contains(&e.id) {
                add_bytes(ar, &config_name, &config)?;
                written.push(e.id.clone());
            }
            let layers = self.write_layers(ar, &mut written, &e.id, |d| {
                format!("{}/layer.tar", d.hex())
            })?;
            let repo_tags: Vec<String> = e.names.iter().map(|n| names::familiar(n)).collect();
            if let Some((top, _)) = layers.last() {
                for t in &repo_tags {
                    if let Some((repo, tag)) =
                        t.rsplit_once(':').filter(|(_, tag)| !tag.contains('/'))
                    {
                        repositories
                            .entry(repo.to_string())
                            .or_default()
                            .insert(tag.to_string(), top.hex().to_string());
                    }
                }
            }
            manifest.push(json!({
                "Config": config_name,
                "RepoTags": if repo_tags.is_empty() { serde_json::Value::Null } else { json!(repo_tags) },
                "Layers": layers.iter().map(|(d, _)| format!("{}/layer.tar", d.hex())).collect::<Vec<_>>(),
            }));
        }
        let bytes = serde_json::to_vec(&manifest).map_err(|e| save_err("manifest.json", e))?;
        add_bytes(ar, "manifest.json", &bytes)?;
        if !repositories.is_empty() {
            let bytes =
                serde_json::to_vec(&repositories).map_err(|e| save_err("repositories", e))?;
            add_bytes(ar, "repositories", &bytes)?;
        }
        Ok(())
    }

    /// Writes the layers of image `id` not yet in the archive; returns (diffID, tar size), bottom first.
    fn write_layers<W: Write>(
        &self,
        ar: &mut tar::Builder<W>,
        written: &mut Vec<Digest>,
        id: &Digest,
        member: impl Fn(&Digest) -> String,
    ) -> Result<Vec<(Digest, u64)>> {
        let mut out = vec![];
        for l in self.store.image_layers(id)? {
            let what = format!("layer {} of image {}", l.diff_id, id.short());
            let paths = self.store.layout().layer(&l.key);
            let record = paths.tar_split();
            if !record.exists() {
                return Err(recorded::no_record(
                    l.key.as_str(),
                    "tar-split record, so its tar cannot be reproduced",
                )
                .into());
            }
            let diff = paths.diff();
            let (header, reader) =
                TarSplitReader::open(&record, &diff).map_err(|e| save_err(&what, e))?;
            if header.diff_id != l.diff_id {
                return Err(save_err(
                    &what,
                    format!("its tar-split record is for {}", header.diff_id),
                ));
            }
            if !written.contains(&l.diff_id) {
                let mut hashing = HashingReader::new(reader);
                let mut h = tar::Header::new_gnu();
                h.set_size(header.tar_size);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                ar.append_data(&mut h, member(&l.diff_id), &mut hashing)
                    .map_err(|e| save_err(&what, e))?;
                let (got, size) = hashing.finish().map_err(|e| save_err(&what, e))?;
                if got != l.diff_id || size != header.tar_size {
                    return Err(save_err(
                        &what,
                        format!("the reassembled tar has digest {got} ({size} bytes); the layer was changed"),
                    ));
                }
                written.push(l.diff_id.clone());
            }
            out.push((l.diff_id, header.tar_size));
        }
        Ok(out)
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn add_blob<W: Write>(
    ar: &mut tar::Builder<W>,
    written: &mut Vec<Digest>,
    d: &Digest,
    bytes: &[u8],
) -> Result<()> {
    if written.contains(d) {
        return Ok(());
    }
    written.push(d.clone());
    add_bytes(ar, &blob_path(d), bytes)
}

fn add_bytes<W: Write>(ar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    ar.append_data(&mut h, name, bytes)
        .map_err(|e| save_err(name, e))?;
    Ok(())
}
