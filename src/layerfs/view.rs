//! The merged view of a stack of layer dirs, as an overlay mount of them would show it, read
//! through fds without mounting anything.
//!
//! overlayfs's lookup rules: the topmost layer that has a name decides what it is; a whiteout
//! there hides the name; a non-directory is shown as it is in that layer; a directory merges with
//! the directories of the same name below it until one of them is opaque (it still takes part),
//! or a lower layer holds a whiteout or a non-directory there (it does not). The root merges every
//! layer, whatever xattrs the layer roots carry.
//!
//! The view holds one fd per layer root; a [`MergedDir`] is only a path and layer indices, so a
//! caller may keep many of them (a walk's pending list) without holding descriptors. Every dir is
//! opened beneath its layer's root with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, and only names
//! that are real directories in a layer are descended, so no lookup ever follows a symlink.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Dir, FileType, Stat};
use rustix::io::Errno;

use super::format::{is_opaque, is_whiteout};
use super::ViewError;
use crate::sys::open::{file_type, lstat_at, open_beneath, open_child_dir, open_root, DirAccess};

/// Layer dirs stacked top first, like overlay's `lowerdir=top:...:bottom`.
pub struct LowerView {
    roots: Vec<OwnedFd>,
    paths: Vec<PathBuf>,
}

/// A directory of the merged view: its path relative to every layer root, and the layers (top
/// first) whose directory at that path takes part in the merge.
#[derive(Debug, Clone)]
pub struct MergedDir {
    pub rel: PathBuf,
    pub layers: Vec<usize>,
}

impl MergedDir {
    /// The topmost layer, whose directory's metadata the view shows.
    pub fn top(&self) -> usize {
        self.layers[0]
    }
}

/// What the view shows at one name that some layer has.
#[derive(Debug)]
pub enum Shown {
    /// The topmost layer that has the name holds a whiteout: nothing is shown.
    WhitedOut,
    /// A non-directory, as `layer` holds it (`stat` without following it).
    NonDir { layer: usize, stat: Stat },
    /// A merged directory; `stat` is its topmost layer's.
    Dir { dir: MergedDir, stat: Stat },
}

/// A name's merge so far, while lower layers are read.
struct Fold {
    shown: Shown,
    /// Lower layers may still add to this directory.
    open: bool,
}

impl LowerView {
    /// Opens the layer dirs (top first). Their paths come from the store, not from an image.
    pub fn open(layers: &[PathBuf]) -> Result<LowerView, ViewError> {
        let mut roots = Vec::with_capacity(layers.len());
        for layer in layers {
            let fd = open_root(layer, DirAccess::Read)
                .map_err(|e| err("open layer dir", layer.clone(), e.into()))?;
            roots.push(fd);
        }
        Ok(LowerView {
            roots,
            paths: layers.to_vec(),
        })
    }

    /// Puts one more layer dir on top (a load stacks each layer it stores on the ones below, and
    /// reuses the fds it already holds instead of opening every lower again).
    pub fn push_top(&mut self, layer: &Path) -> Result<(), ViewError> {
        let fd = open_root(layer, DirAccess::Read)
            .map_err(|e| err("open layer dir", layer.to_path_buf(), e.into()))?;
        self.roots.insert(0, fd);
        self.paths.insert(0, layer.to_path_buf());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The path of a layer dir, for messages.
    pub fn path(&self, layer: usize) -> &Path {
        &self.paths[layer]
    }

    /// The merged root: every layer.
    pub fn root(&self) -> MergedDir {
        MergedDir {
            rel: PathBuf::new(),
            layers: (0..self.roots.len()).collect(),
        }
    }

    /// The root fd of one layer.
    pub fn layer_root(&self, layer: usize) -> rustix::fd::BorrowedFd<'_> {
        self.roots[layer].as_fd()
    }

    /// Opens the directory `rel` of one layer, beneath its root.
    pub fn open_dir(
        &self,
        layer: usize,
        rel: &Path,
        access: DirAccess,
    ) -> Result<OwnedFd, ViewError> {
        open_beneath(&self.roots[layer], rel.as_os_str(), access)
            .map_err(|e| err("open layer dir", self.paths[layer].join(rel), e))
    }

    /// Everything the merged directory holds, by name, whiteouts included (as `WhitedOut`).
    pub fn read_dir(&self, dir: &MergedDir) -> Result<BTreeMap<OsString, Shown>, ViewError> {
        let mut names: BTreeMap<OsString, Fold> = BTreeMap::new();
        for &layer in &dir.layers {
            let at = || self.paths[layer].join(&dir.rel);
            let fd = self.open_dir(layer, &dir.rel, DirAccess::Read)?;
            let mut reader =
                Dir::read_from(&fd).map_err(|e| err("read layer dir", at(), e.into()))?;
            while let Some(entry) = reader.read() {
                let entry = entry.map_err(|e| err("read layer dir", at(), e.into()))?;
                let name = OsStr::from_bytes(entry.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                match names.get_mut(name) {
                    Some(fold) => self.fold_below(fold, &fd, dir, layer, name)?,
                    None => {
                        let fold = self.fold_first(&fd, dir, layer, name)?;
                        names.insert(name.to_os_string(), fold);
                    }
                }
            }
        }
        Ok(names.into_iter().map(|(n, f)| (n, f.shown)).collect())
    }

    /// What the merged directory shows at `name`; `None` if no layer has it.
    pub fn lookup(&self, dir: &MergedDir, name: &OsStr) -> Result<Option<Shown>, ViewError> {
        let mut fold: Option<Fold> = None;
        for &layer in &dir.layers {
            let fd = self.open_dir(layer, &dir.rel, DirAccess::Read)?;
            match fold.as_mut() {
                Some(f) if !f.open => break,
                Some(f) => self.fold_below(f, &fd, dir, layer, name)?,
                None => match self.fold_first(&fd, dir, layer, name) {
                    Ok(f) => fold = Some(f),
                    Err(e) if e.source.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(fold.map(|f| f.shown))
    }

    /// The entry the view shows at `path` (relative), dir or not: its layer, its parent dir in
    /// that layer (readable) and its stat. `None` if it is absent or hidden.
    ///
    /// The layers are tried top first, each one descended only as far as the merge lets it take
    /// part, and the search stops at the first layer that shows the name: the cost does not grow
    /// with the layers below that one (a deep image's fix-up asks this of each of its layers, so
    /// merging every layer's directories here made loading it quadratic).
    pub fn find(&self, path: &Path) -> Result<Option<(usize, OwnedFd, Stat)>, ViewError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(None);
        };
        let dirs: Vec<&OsStr> = parent.iter().collect();
        // Per ancestor: whether a layer above showed it (a directory, or the path is hidden), and
        // whether layers further down still merge into it (none did so far with a non-directory
        // there, and no one that took part was opaque).
        let mut seen = vec![false; dirs.len()];
        let mut open = vec![true; dirs.len()];
        'layers: for layer in 0..self.roots.len() {
            let mut fd: Option<OwnedFd> = None; // the layer's root until a dir is descended
            let mut rel = PathBuf::new();
            for (k, comp) in dirs.iter().enumerate() {
                if !open[k] {
                    continue 'layers;
                }
                let at = fd.as_ref().map_or(self.roots[layer].as_fd(), |f| f.as_fd());
                let Some(stat) = self.stat_if_any(at, layer, &rel, comp)? else {
                    continue 'layers;
                };
                let is_dir = file_type(&stat) == FileType::Directory;
                if !seen[k] {
                    if !is_dir {
                        return Ok(None); // a whiteout or a non-directory on the way hides it
                    }
                    seen[k] = true;
                } else if !is_dir {
                    open[k] = false; // ends the merge; this layer does not take part
                    continue 'layers;
                }
                let entry = || self.paths[layer].join(&rel).join(comp);
                let sub = open_child_dir(at, *comp, DirAccess::Read)
                    .map_err(|e| err("read xattrs of", entry(), e.into()))?;
                open[k] = !is_opaque(&sub).map_err(|e| err("read xattrs of", entry(), e.into()))?;
                fd = Some(sub);
                rel.push(comp);
            }
            let at = fd.as_ref().map_or(self.roots[layer].as_fd(), |f| f.as_fd());
            let Some(stat) = self.stat_if_any(at, layer, &rel, name)? else {
                continue;
            };
            if is_whiteout(&stat) {
                return Ok(None);
            }
            let fd = match fd {
                Some(fd) => fd,
                None => self.open_dir(layer, parent, DirAccess::Read)?,
            };
            return Ok(Some((layer, fd, stat)));
        }
        Ok(None)
    }

    /// `name`'s stat in one layer's dir `rel` (open as `at`); `None` if the layer has no such name.
    fn stat_if_any(
        &self,
        at: rustix::fd::BorrowedFd<'_>,
        layer: usize,
        rel: &Path,
        name: &OsStr,
    ) -> Result<Option<Stat>, ViewError> {
        match lstat_at(at, name) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(err(
                "stat",
                self.paths[layer].join(rel).join(name),
                e.into(),
            )),
        }
    }

    /// The topmost sighting of `name`, in `layer`'s directory `fd` of the merged `dir`.
    fn fold_first(
        &self,
        fd: &OwnedFd,
        dir: &MergedDir,
        layer: usize,
        name: &OsStr,
    ) -> Result<Fold, ViewError> {
        let stat = self.stat(fd, dir, layer, name)?;
        if is_whiteout(&stat) {
            return Ok(Fold {
                shown: Shown::WhitedOut,
                open: false,
            });
        }
        if file_type(&stat) != FileType::Directory {
            return Ok(Fold {
                shown: Shown::NonDir { layer, stat },
                open: false,
            });
        }
        let open = !self.opaque(fd, dir, layer, name)?;
        let sub = MergedDir {
            rel: dir.rel.join(name),
            layers: vec![layer],
        };
        Ok(Fold {
            shown: Shown::Dir { dir: sub, stat },
            open,
        })
    }

    /// A lower layer's `name`, below a sighting: it joins a directory that is still open if it
    /// is a directory itself, and ends the merge otherwise.
    fn fold_below(
        &self,
        fold: &mut Fold,
        fd: &OwnedFd,
        dir: &MergedDir,
        layer: usize,
        name: &OsStr,
    ) -> Result<(), ViewError> {
        if !fold.open {
            return Ok(());
        }
        let Shown::Dir { dir: merged, .. } = &mut fold.shown else {
            return Ok(());
        };
        let stat = match self.stat(fd, dir, layer, name) {
            Ok(stat) => stat,
            Err(e) if e.source.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => return Ok(()),
            Err(e) => return Err(e),
        };
        if file_type(&stat) == FileType::Directory {
            merged.layers.push(layer);
            fold.open = !self.opaque(fd, dir, layer, name)?;
        } else {
            fold.open = false;
        }
        Ok(())
    }

    fn stat(
        &self,
        fd: &OwnedFd,
        dir: &MergedDir,
        layer: usize,
        name: &OsStr,
    ) -> Result<Stat, ViewError> {
        lstat_at(fd, name).map_err(|e| err("stat", self.entry_path(dir, layer, name), e.into()))
    }

    /// Whether the subdirectory `name` is opaque in this layer.
    fn opaque(
        &self,
        fd: &OwnedFd,
        dir: &MergedDir,
        layer: usize,
        name: &OsStr,
    ) -> Result<bool, ViewError> {
        let at = || self.entry_path(dir, layer, name);
        let sub = open_child_dir(fd, name, DirAccess::Read)
            .map_err(|e| err("read xattrs of", at(), e.into()))?;
        is_opaque(&sub).map_err(|e| err("read xattrs of", at(), e.into()))
    }

    fn entry_path(&self, dir: &MergedDir, layer: usize, name: &OsStr) -> PathBuf {
        self.paths[layer].join(&dir.rel).join(name)
    }
}

fn err(op: &'static str, path: PathBuf, source: io::Error) -> ViewError {
    ViewError { op, path, source }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
