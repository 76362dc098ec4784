//! Planning the merged tree: which layer supplies each name, following overlayfs's lookup rules.

use std::collections::HashMap;
use std::path::PathBuf;

use rustix::fs::{FileType, Stat};

use super::{CopyError, Tree};
use crate::layerfs::{MergedDir, Shown};

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

pub(super) fn plan(tree: &Tree<'_>) -> Result<Plan, CopyError> {
    let mut plan = Plan::default();
    plan.dirs.push(Entry {
        rel: PathBuf::new(),
        layer: 0,
        kind: Kind::Dir,
    });
    let mut inodes = HashMap::new();
    // An explicit stack, not recursion: a layer's depth is the image's choice. Dirs are still
    // planned parents first, since a dir is pushed only after its entry is planned.
    let mut pending = vec![tree.view.root()];
    while let Some(dir) = pending.pop() {
        visit(tree, &dir, &mut plan, &mut inodes, &mut pending)?;
    }
    Ok(plan)
}

/// Add the merged dir's entries to the plan, and its merged subdirs to `pending`.
fn visit(
    tree: &Tree<'_>,
    dir: &MergedDir,
    plan: &mut Plan,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
    pending: &mut Vec<MergedDir>,
) -> Result<(), CopyError> {
    for (name, shown) in tree.view.read_dir(dir)? {
        let child = dir.rel.join(&name);
        match shown {
            Shown::WhitedOut => plan.whiteouts += 1,
            Shown::NonDir { layer, stat } => {
                let (kind, inode) = leaf(&stat);
                match inode.and_then(|key| inodes.get(&key)) {
                    Some(first) => plan.links.push((child, first.clone())),
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
            Shown::Dir { dir: sub, .. } => {
                plan.dirs.push(Entry {
                    rel: child,
                    layer: sub.top(),
                    kind: Kind::Dir,
                });
                pending.push(sub);
            }
        }
    }
    Ok(())
}

/// What a non-directory is, and the inode it shares with other names, if any.
fn leaf(st: &Stat) -> (Kind, Option<(u64, u64)>) {
    let kind = match FileType::from_raw_mode(st.st_mode as _) {
        FileType::RegularFile => Kind::File,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Special,
    };
    // Names sharing an inode (within a layer, or across layers deduplicated by hardlinks) are one
    // file in the overlay view too; copy it once and link the other names to it.
    // `Stat` field widths differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    let inode = (st.st_nlink > 1).then_some((st.st_dev as u64, st.st_ino as u64));
    (kind, inode)
}
