//! The merged view of a stack of layer directories, as overlayfs would show it, without mounting it.
//!
//! Layers are in the overlay whiteout format (a 0/0 character device hides a name of the layers below, an
//! opaque xattr hides a whole directory of the layers below). Lookups follow overlayfs' own rules: the
//! topmost entry of a name wins; a directory merges with the directories of the same name below it until
//! one of them is opaque, or a layer holds a whiteout or a non-directory there.
//!
//! Layer dirs belong to the store and never change while mounted, so plain `lstat` by path is enough; no
//! lookup ever follows a symlink, because only names that are real directories in a layer are descended.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::RuntimeError;

pub(crate) const TRUSTED_OPAQUE: &str = "trusted.overlay.opaque";
pub(crate) const USER_OPAQUE: &str = "user.overlay.opaque";

/// A directory of the merged view: its path relative to every layer, and the layers (indices into the
/// view's list, top first) whose directory at that path takes part in the merge.
#[derive(Debug, Clone)]
pub(crate) struct MergedDir {
    pub rel: PathBuf,
    layers: Vec<usize>,
}

/// What the merged view holds at one name.
#[derive(Debug)]
pub(crate) enum Lookup {
    Absent,
    /// The topmost layer's entry, which is what the view shows.
    NonDir(PathBuf),
    Dir(MergedDir),
}

impl Lookup {
    pub fn exists(&self) -> bool {
        !matches!(self, Lookup::Absent)
    }
}

pub(crate) struct LowerView<'a> {
    layers: &'a [PathBuf],
    opaque_xattr: &'static str,
}

impl<'a> LowerView<'a> {
    /// `layers` top first, like overlay's `lowerdir=top:...:bottom`.
    pub fn new(layers: &'a [PathBuf], userxattr: bool) -> Self {
        let opaque_xattr = if userxattr {
            USER_OPAQUE
        } else {
            TRUSTED_OPAQUE
        };
        LowerView {
            layers,
            opaque_xattr,
        }
    }

    pub fn opaque_xattr(&self) -> &'static str {
        self.opaque_xattr
    }

    /// The merged root. An opaque xattr on a layer's root is ignored, as overlayfs ignores it.
    pub fn root(&self) -> Result<MergedDir, RuntimeError> {
        let mut layers = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            match lstat(layer)? {
                Some(meta) if meta.is_dir() => layers.push(i),
                _ => {
                    return Err(RuntimeError::Diff {
                        path: layer.clone(),
                        source: io::Error::new(io::ErrorKind::NotFound, "layer is not a directory"),
                    })
                }
            }
        }
        Ok(MergedDir {
            rel: PathBuf::new(),
            layers,
        })
    }

    /// The merged view's entry `name` inside `dir`.
    pub fn lookup(&self, dir: &MergedDir, name: &OsStr) -> Result<Lookup, RuntimeError> {
        let rel = dir.rel.join(name);
        let mut found: Option<Vec<usize>> = None;
        for &i in &dir.layers {
            let path = self.layers[i].join(&rel);
            let Some(meta) = lstat(&path)? else { continue };
            let is_dir = meta.is_dir();
            match found.as_mut() {
                None if is_whiteout(&meta) => return Ok(Lookup::Absent),
                None if !is_dir => return Ok(Lookup::NonDir(path)),
                None => found = Some(vec![i]),
                // Below a directory, a whiteout or a non-directory ends the merge.
                Some(_) if !is_dir => break,
                Some(stack) => stack.push(i),
            }
            if self.is_opaque(&path)? {
                break;
            }
        }
        Ok(match found {
            None => Lookup::Absent,
            Some(layers) => Lookup::Dir(MergedDir { rel, layers }),
        })
    }

    /// The topmost layer's directory of a merged dir, whose metadata the view shows.
    pub fn top_path(&self, dir: &MergedDir) -> PathBuf {
        self.layers[dir.layers[0]].join(&dir.rel)
    }

    /// The names the merged directory shows, sorted.
    pub fn children(&self, dir: &MergedDir) -> Result<BTreeSet<OsString>, RuntimeError> {
        let mut seen = BTreeSet::new();
        let mut visible = BTreeSet::new();
        for &i in &dir.layers {
            let path = self.layers[i].join(&dir.rel);
            let entries = fs::read_dir(&path).map_err(|source| RuntimeError::Diff {
                path: path.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| RuntimeError::Diff {
                    path: path.clone(),
                    source,
                })?;
                let name = entry.file_name();
                if !seen.insert(name.clone()) {
                    continue;
                }
                let meta = entry.metadata().map_err(|source| RuntimeError::Diff {
                    path: entry.path(),
                    source,
                })?;
                if !is_whiteout(&meta) {
                    visible.insert(name);
                }
            }
        }
        Ok(visible)
    }

    fn is_opaque(&self, path: &Path) -> Result<bool, RuntimeError> {
        let mut value = [0u8; 8];
        match rustix::fs::lgetxattr(path, self.opaque_xattr, &mut value[..]) {
            Ok(len) => Ok(&value[..len] == b"y"),
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::RANGE) => Ok(false),
            Err(rustix::io::Errno::OPNOTSUPP) => Ok(false),
            Err(e) => Err(RuntimeError::Diff {
                path: path.to_path_buf(),
                source: e.into(),
            }),
        }
    }
}

/// overlayfs' whiteout: a character device with device number 0/0.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn lstat(path: &Path) -> Result<Option<fs::Metadata>, RuntimeError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(source) => Err(RuntimeError::Diff {
            path: path.to_path_buf(),
            source,
        }),
    }
}
