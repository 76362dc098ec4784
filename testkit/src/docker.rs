//! `docker save` archives of an [`Image`] in the three forms docker has written, with the knobs
//! the tests turn (no tags, a config named by another digest, layers left out).

use crate::compress::{hex_of, sha256, sha256_hex};
use crate::oci::Image;
use crate::tarw::{Header, TarWriter, SYMLINK};
use serde_json::json;
use std::fs;
use std::path::Path;

/// `docker save` format: manifest.json, <config hex>.json, <diffID hex>/layer.tar. The layer
/// blobs are written as they are (docker writes plain tars; compressed ones are legal too).
pub fn write_docker_archive(image: &Image, repo_tags: &[&str], file: &Path) {
    DockerArchive::new(image)
        .repo_tags(Some(repo_tags))
        .write(file);
}

/// How a `docker save` archive lays out its layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DockerForm {
    /// `<digest hex>/layer.tar` as a file (what [`write_docker_archive`] writes)
    LayerDirs,
    /// docker before 25: `<diffID hex>.tar` files, `<id>/layer.tar` symlinks to them, `<id>/VERSION`
    Symlinked,
    /// docker 25 and later: `blobs/sha256/<hex>` for layers and config
    Blobs,
}

/// A docker-archive of one image, with the knobs the source tests turn.
pub struct DockerArchive<'a> {
    image: &'a Image,
    form: DockerForm,
    repo_tags: Option<Vec<String>>,
    config_hex: Option<String>,
}

impl<'a> DockerArchive<'a> {
    pub fn new(image: &'a Image) -> DockerArchive<'a> {
        DockerArchive {
            image,
            form: DockerForm::LayerDirs,
            repo_tags: Some(Vec::new()),
            config_hex: None,
        }
    }

    pub fn form(mut self, form: DockerForm) -> Self {
        self.form = form;
        self
    }

    /// `RepoTags`; None writes `null` (an image saved by ID).
    pub fn repo_tags(mut self, tags: Option<&[&str]>) -> Self {
        self.repo_tags = tags.map(|t| t.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Names the config file by this hex instead of its digest.
    pub fn config_hex(mut self, hex: &str) -> Self {
        self.config_hex = Some(hex.to_string());
        self
    }

    pub fn write(&self, file: &Path) {
        let mut ar = TarWriter::new();
        let config = self.image.config_bytes();
        let config_hex = self
            .config_hex
            .clone()
            .unwrap_or_else(|| hex_of(&sha256(&config)).to_string());
        let mut layer_names = Vec::new();
        for (i, l) in self.image.layers.iter().enumerate() {
            let name = match self.form {
                DockerForm::LayerDirs => {
                    let dir = hex_of(&l.digest).to_string();
                    let name = format!("{dir}/layer.tar");
                    if !l.omit {
                        ar.dir(format!("{dir}/"), 0o755).file(&name, 0o644, &l.blob);
                    }
                    name
                }
                DockerForm::Symlinked => {
                    let file = format!("{}.tar", hex_of(&l.digest));
                    let id = sha256_hex(format!("layer {i}").as_bytes());
                    let link = format!("{id}/layer.tar");
                    if !l.omit {
                        ar.file(&file, 0o644, &l.blob);
                    }
                    let mut h = Header::new(&link, SYMLINK);
                    h.link = format!("../{file}").into_bytes();
                    ar.entry(h, b"")
                        .file(format!("{id}/VERSION"), 0o644, b"1.0");
                    link
                }
                DockerForm::Blobs => {
                    let name = format!("blobs/sha256/{}", hex_of(&l.digest));
                    if !l.omit {
                        ar.file(&name, 0o644, &l.blob);
                    }
                    name
                }
            };
            layer_names.push(name);
        }
        let config_name = match self.form {
            DockerForm::Blobs => format!("blobs/sha256/{config_hex}"),
            _ => format!("{config_hex}.json"),
        };
        ar.file(&config_name, 0o644, &config);
        let manifest =
            json!([{"Config": config_name, "RepoTags": self.repo_tags, "Layers": layer_names}]);
        ar.file(
            "manifest.json",
            0o644,
            &serde_json::to_vec(&manifest).expect("json"),
        );
        fs::write(file, ar.finish()).expect("write docker-archive");
    }
}

/// A tar of plain files, named exactly as given (hand-made archives: a manifest.json alone).
pub fn write_tar_of_files(file: &Path, files: &[(&str, &[u8])]) {
    let mut ar = TarWriter::new();
    for (name, bytes) in files {
        ar.file(name, 0o644, bytes);
    }
    fs::write(file, ar.finish()).expect("write tar");
}
