//! Compressed layer blobs kept beside their layer, `layers/<key>/blobs/<digest hex>`, when `load`
//! or `pull` was asked to keep them (`--keep-blobs`), so that `push` can send a layer as it came
//! instead of compressing it again.
//!
//! They live in the layer dir, not in `blobs/`, so that they share its life: a blob of a layer
//! being unpacked is staged with it and appears with the layer's one rename; a blob kept later for
//! a stored layer is written under a temporary name, flushed and renamed into place; removing the
//! layer (one rename out of `layers/`, see `gc`) takes its blobs along. No refcount is needed: a
//! blob is needed exactly as long as its layer is. A temporary name (`.<hex>.<random>`) left by a
//! killed command is ignored here and removed by `fsck --repair`.

use super::fsck::{FsckOptions, FsckReport, ProblemKind};
use super::layout::{LayerKey, LayerPaths};
use super::{IoContext, Result, Store, StoreError};
use crate::digest::Digest;
use std::fs::{self, File};
use std::path::PathBuf;

/// One kept blob.
#[derive(Debug, Clone)]
pub struct KeptBlob {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
}

/// What is in a layer's `blobs/`: the blobs, and names that are not (temporaries of a killed
/// command, anything else).
#[derive(Debug, Default)]
pub(crate) struct KeptBlobsDir {
    pub blobs: Vec<KeptBlob>,
    pub strays: Vec<PathBuf>,
}

/// Reads a layer's `blobs/` (empty when it has none).
pub(crate) fn read_kept(paths: &LayerPaths) -> Result<KeptBlobsDir> {
    let dir = paths.kept_blobs();
    let mut out = KeptBlobsDir::default();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).at(&dir),
    };
    for entry in entries {
        let entry = entry.at(&dir)?;
        let path = entry.path();
        // `file_type` does not follow a symlink: one planted here is a stray, never read.
        let meta = entry.metadata().at(&path)?;
        let name = entry.file_name();
        match name.to_str().map(Digest::from_hex) {
            Some(Ok(digest)) if meta.file_type().is_file() => out.blobs.push(KeptBlob {
                digest,
                size: meta.len(),
                path,
            }),
            _ => out.strays.push(path),
        }
    }
    out.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(out)
}

impl Store {
    /// The blobs kept for the stored layer `key`.
    pub fn kept_blobs(&self, key: &LayerKey) -> Result<Vec<KeptBlob>> {
        Ok(read_kept(&self.layout.layer(key))?.blobs)
    }

    /// A new file for blob `digest` of the layer being unpacked in `staged`: it is staged with the
    /// layer, so the layer's flush and rename make it durable and visible.
    pub fn stage_kept_blob(&self, staged: &LayerPaths, digest: &Digest) -> Result<File> {
        let dir = staged.kept_blobs();
        super::perms::create_private_dir(&dir).at(&dir)?;
        let dir_fd = File::open(&dir).at(&dir)?;
        let mode = rustix::fs::Mode::from_raw_mode(super::perms::FILE_MODE);
        let path = staged.kept_blob(digest);
        let file =
            crate::sys::create::create_exclusive(&dir_fd, digest.hex().as_ref(), mode).at(&path)?;
        crate::sys::create::set_mode(&file, mode).at(&path)?;
        Ok(file)
    }

    /// Keeps blob `digest` for the stored layer `key`: `write` fills a temporary file (and checks
    /// what it wrote), which is then flushed and renamed into place. The caller holds the layer's
    /// use lock, so that no removal takes the layer meanwhile.
    pub fn keep_blob_with<E: From<StoreError>>(
        &self,
        key: &LayerKey,
        digest: &Digest,
        write: impl FnOnce(&mut File) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let paths = self.layout.layer(key);
        let dir = paths.kept_blobs();
        super::perms::create_private_dir(&dir).at(&dir)?;
        let dir_fd = File::open(&dir).at(&dir)?;
        let mode = rustix::fs::Mode::from_raw_mode(super::perms::FILE_MODE);
        let (mut file, tmp) =
            crate::sys::create::create_temp(&dir_fd, digest.hex(), mode).at(&dir)?;
        let unlink = || {
            let _ = rustix::fs::unlinkat(&dir_fd, &tmp, rustix::fs::AtFlags::empty());
        };
        let written = write(&mut file).and_then(|()| {
            let path = paths.kept_blob(digest);
            crate::sys::create::set_mode(&file, mode).at(&path)?;
            file.sync_all().at(&path)?;
            rustix::fs::renameat(&dir_fd, &tmp, &dir_fd, digest.hex())
                .map_err(std::io::Error::from)
                .at(&path)?;
            dir_fd.sync_all().at(&dir)?;
            Ok(())
        });
        if written.is_err() {
            unlink();
        }
        written
    }
}

impl Store {
    /// `fsck`: files in the layer's `blobs/` that are not kept blobs (a killed command's
    /// temporaries) and, with `verify`, kept blobs whose bytes no longer hash to their name.
    /// Repair removes both: push then compresses the layer again.
    pub(super) fn check_kept_blobs(
        &self,
        r: &mut FsckReport,
        opts: FsckOptions,
        key: &LayerKey,
        subject: &str,
    ) -> Result<()> {
        let dir = read_kept(&self.layout.layer(key))?;
        let mut bad: Vec<(PathBuf, String)> = dir
            .strays
            .into_iter()
            .map(|p| (p, "not a kept blob (left by a killed command?)".to_string()))
            .collect();
        if opts.verify {
            for blob in dir.blobs {
                let got = hash_file(&blob.path).at(&blob.path)?;
                if got != blob.digest {
                    bad.push((blob.path, format!("its bytes hash to {got}")));
                }
            }
        }
        for (path, why) in bad {
            let i = r.add(
                ProblemKind::KeptBlob,
                subject,
                format!("{}: {why}", path.display()),
            );
            if opts.repair {
                fs::remove_file(&path).at(&path)?;
                r.repaired(i, "removed");
            }
        }
        Ok(())
    }
}

/// The sha256 of a file, read without following a symlink.
fn hash_file(path: &std::path::Path) -> std::io::Result<Digest> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    Ok(crate::digest::HashingReader::new(file).finish()?.0)
}

#[cfg(test)]
#[path = "kept_blobs_tests.rs"]
mod tests;
