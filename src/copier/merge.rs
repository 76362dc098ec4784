//! Planning the merged tree: which layer supplies each name, following overlayfs's lookup rules.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{statat, AtFlags, Dir, FileType, Mode, OFlags, Stat};

use super::{node::open_beneath, xattr, CopyError, Tree};

/// One entry of the merged tree and the layer it is copied from.
#[derive(Debug)]
pub(super) struct Entry {
    /// Path below the tree root; empty for the root itself.
    pub rel: PathBuf,
    pub layer: usize,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Symlink,
    /// Fifo, socket, character or block device.
    Special,
}

/// The merged tree: dirs parents first, leaves to copy, extra hardlink names `(name, first name)`.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub dirs: Vec<Entry>,
    pub leaves: Vec<Entry>,
    pub links: Vec<(PathBuf, PathBuf)>,
    pub whiteouts: u64,
}

/// What the topmost layers say about one name in a merged dir.
enum Resolved {
    /// A whiteout: nothing of this name is shown.
    Hidden,
    Leaf {
        layer: usize,
        kind: Kind,
        inode: Option<(u64, u64)>,
    },
    /// A dir from `layers` (top first); `open` while lower layers may still add to it, i.e. until an
    /// opaque dir, a whiteout or a non-dir of the same name is met.
    Dir { layers: Vec<usize>, open: bool },
}

pub(super) fn plan(tree: &Tree<'_>) -> Result<Plan, CopyError> {
    let mut plan = Plan::default();
    plan.dirs.push(Entry {
        rel: PathBuf::new(),
        layer: 0,
        kind: Kind::Dir,
    });
    // The root of an overlay always merges every lower, whatever xattrs the layer roots carry.
    let all: Vec<usize> = (0..tree.roots.len()).collect();
    let mut inodes = HashMap::new();
    visit(tree, Path::new(""), &all, &mut plan, &mut inodes)?;
    Ok(plan)
}

/// Merge the dir `rel` of `layers` (top first) into the plan, then its merged subdirs.
fn visit(
    tree: &Tree<'_>,
    rel: &Path,
    layers: &[usize],
    plan: &mut Plan,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), CopyError> {
    let mut names: BTreeMap<OsString, Resolved> = BTreeMap::new();
    for &layer in layers {
        let where_ = || tree.lowers[layer].join(rel);
        let dir = open_beneath(&tree.roots[layer], rel, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| CopyError::io("open layer dir", where_(), e))?;
        let mut reader =
            Dir::read_from(&dir).map_err(|e| CopyError::io("read layer dir", where_(), e))?;
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(|e| CopyError::io("read layer dir", where_(), e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let lstat = || {
                statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| CopyError::io("stat", where_().join(name), e))
            };
            match names.get_mut(name) {
                Some(Resolved::Dir {
                    layers: below,
                    open,
                }) if *open => {
                    if FileType::from_raw_mode(lstat()?.st_mode as _) == FileType::Directory {
                        below.push(layer);
                        *open = !is_opaque(tree, &dir, name)
                            .map_err(|e| CopyError::io("read xattrs of", where_().join(name), e))?;
                    } else {
                        *open = false;
                    }
                }
                Some(_) => {}
                None => {
                    let resolved = resolve(tree, &dir, name, layer, &lstat()?)
                        .map_err(|e| CopyError::io("read xattrs of", where_().join(name), e))?;
                    names.insert(name.to_os_string(), resolved);
                }
            }
        }
    }
    for (name, resolved) in names {
        let child = rel.join(&name);
        match resolved {
            Resolved::Hidden => plan.whiteouts += 1,
            Resolved::Leaf { layer, kind, inode } => {
                match inode.and_then(|key| inodes.get(&key).map(|first| (key, first))) {
                    Some((_, first)) => plan.links.push((child, first.clone())),
                    None => {
                        if let Some(key) = inode {
                            inodes.insert(key, child.clone());
                        }
                        plan.leaves.push(Entry {
                            rel: child,
                            layer,
                            kind,
                        });
                    }
                }
            }
            Resolved::Dir { layers, .. } => {
                plan.dirs.push(Entry {
                    rel: child.clone(),
                    layer: layers[0],
                    kind: Kind::Dir,
                });
                visit(tree, &child, &layers, plan, inodes)?;
            }
        }
    }
    Ok(())
}

/// The first (topmost) sighting of a name.
fn resolve(
    tree: &Tree<'_>,
    dir: &OwnedFd,
    name: &OsStr,
    layer: usize,
    st: &Stat,
) -> rustix::io::Result<Resolved> {
    let kind = match FileType::from_raw_mode(st.st_mode as _) {
        FileType::Directory => {
            return Ok(Resolved::Dir {
                layers: vec![layer],
                open: !is_opaque(tree, dir, name)?,
            })
        }
        FileType::CharacterDevice if st.st_rdev == 0 => return Ok(Resolved::Hidden),
        FileType::RegularFile => Kind::File,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Special,
    };
    // Names sharing an inode (within a layer, or across layers deduplicated by hardlinks) are one
    // file in the overlay view too; copy it once and link the other names to it.
    // `Stat` field widths differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    let inode = (st.st_nlink > 1).then_some((st.st_dev, st.st_ino));
    Ok(Resolved::Leaf { layer, kind, inode })
}

/// Whether the subdir `name` of `dir` carries the overlay opaque marker (value `y`).
fn is_opaque(tree: &Tree<'_>, dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<bool> {
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut value = [0u8; 4];
    match rustix::fs::fgetxattr(&sub, xattr::opaque_name(tree.opts.userxattr), &mut value) {
        Ok(len) => Ok(&value[..len] == b"y"),
        Err(rustix::io::Errno::NODATA)
        | Err(rustix::io::Errno::RANGE)
        | Err(rustix::io::Errno::NOTSUP) => Ok(false),
        Err(e) => Err(e),
    }
}
