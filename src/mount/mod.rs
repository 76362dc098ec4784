//! Mounting stacked layer directories.
//!
//! This module owns every mount lamina makes: overlay mounts of layer dirs (read-only or with an
//! upper/work pair), read-only bind mounts (a one-layer view, or the copy driver's tree bound over
//! itself), unmounting, and the kernel feature probe that decides which route is taken.
//!
//! Invariants:
//! - Lowers are always given top (nearest) first, as overlayfs orders them.
//! - Overlay mounts always carry `index=off` (layer dirs are shared between images; an index would tie a
//!   layer to one upper dir).
//! - The new mount API is preferred: one `fsconfig` `lowerdir+` per layer, so no option string limits
//!   the stack. Where it is missing, the legacy `mount(2)` route names layers by `/proc/self/fd/N` (or by
//!   short names relative to their common parent, resolved in a thread with its own cwd), never with a
//!   process-wide `chdir`.
//! - A target is opened once, without following any symlink on its path, and the mount is attached
//!   to that open directory (see `target`), never to a path resolved again.
//! - A mount that should be read-only is read-only from the moment it becomes visible: attributes are
//!   set on the detached mount before `move_mount` attaches it.

mod bind;
mod overlay;
mod probe;
mod runtime;
mod target;

#[cfg(test)]
mod mount_tests;
#[cfg(test)]
mod stack_tests;
#[cfg(test)]
pub(crate) mod support_tests;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use bind::{bind, bind_readonly, is_mountpoint, mounts_below, unmount};
pub use overlay::{mount_overlay, mount_overlay_legacy};
pub use probe::probe;
pub use runtime::runtime_mounts;
pub use target::Target;

/// The overlayfs stacking limit (`OVL_MAX_STACK`) of every kernel so far; the probe measures the real one.
pub const DEFAULT_MAX_LOWERS: usize = 500;

/// Longest `fsconfig` string value: the kernel copies it with `strndup_user(value, 256)`. Longer layer
/// paths are passed as an open fd (6.13+) or as `/proc/self/fd/N`.
pub const MAX_LOWERDIR_PLUS_LEN: usize = 255;

/// What the running kernel can do, found once by [`probe`] and cached by the store as JSON. Fields
/// missing from an older cache read as [`Features::conservative`]'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Features {
    /// `uname -r`.
    pub kernel: String,
    /// An overlay filesystem could be mounted at all (by either route).
    pub overlay: bool,
    /// `fsopen`/`fsconfig`/`fsmount`/`move_mount` work.
    pub new_mount_api: bool,
    /// overlay accepts `lowerdir+` through `fsconfig` (Linux 6.8+).
    pub lowerdir_plus: bool,
    /// overlay accepts `lowerdir+` as an open directory fd (`FSCONFIG_SET_FD`, Linux 6.13+).
    pub lowerdir_fd: bool,
    /// `mount(2)` with a `lowerdir=` option string works.
    pub legacy_mount: bool,
    /// How many lowers the kernel stacks (measured: count of `lowerdir+` values it accepts).
    pub max_lowers: usize,
    /// Longest mount data string `mount(2)` takes (one page, less the terminating NUL).
    pub legacy_options_max: usize,
    /// The scratch filesystem supports `FICLONE` reflinks (the copier's fast path).
    pub reflink: bool,
}

impl Features {
    /// What to assume when nothing is known: the legacy route, the historic limits.
    pub fn conservative() -> Features {
        Features {
            kernel: String::new(),
            overlay: true,
            new_mount_api: false,
            lowerdir_plus: false,
            lowerdir_fd: false,
            legacy_mount: true,
            max_lowers: DEFAULT_MAX_LOWERS,
            legacy_options_max: crate::sys::mount_api::page_size().saturating_sub(1),
            reflink: false,
        }
    }
}

impl Default for Features {
    fn default() -> Features {
        Features::conservative()
    }
}

/// How many lowers one overlay mount can stack with these features; the store flattens the bottom
/// layers of an image that has more.
pub fn max_lowers(features: &Features) -> usize {
    if features.max_lowers == 0 {
        DEFAULT_MAX_LOWERS
    } else {
        features.max_lowers
    }
}

/// One overlay (or single-layer) view of layer dirs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlaySpec {
    /// Layer dirs, top (nearest) first.
    pub lowers: Vec<PathBuf>,
    /// `(upperdir, workdir)` for a writable mount; both on the same filesystem.
    pub upper: Option<(PathBuf, PathBuf)>,
}

/// A mount a runtime (runc, crun, containerd) can perform itself, as in an OCI `config.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeMount {
    /// `overlay` or `bind`.
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Why a mount operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("overlay mount needs at least one lower layer dir")]
    NoLowers,
    #[error("{count} lower layers exceed the kernel's overlay stacking limit of {max}; flatten the bottom layers")]
    TooManyLowers { count: usize, max: usize },
    #[error("layer path {path:?} is {len} bytes; fsconfig lowerdir+ takes at most {max}")]
    LowerPathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },
    #[error(
        "legacy overlay option string for {target:?} is {len} bytes; mount(2) takes at most {max}"
    )]
    OptionsTooLong {
        target: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("path {path:?} contains a character ({ch:?}) an overlay option string cannot carry")]
    UnsafeOptionPath { path: PathBuf, ch: char },
    #[error("{op} {path:?}: {source}{}", kernel_log_suffix(.log))]
    Syscall {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        /// Messages the kernel left in the `fsopen` context log, if any.
        log: String,
    },
    #[error("{target:?} is busy (open files or a process cwd inside it); nothing was unmounted")]
    Busy { target: PathBuf },
    #[error("{target:?} is not a mount point")]
    NotMounted { target: PathBuf },
    #[error("mount target {path:?}: {reason}")]
    UnsafeTarget { path: PathBuf, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

impl MountError {
    /// True for the outcome an idempotent `umount` may ignore.
    pub fn is_not_mounted(&self) -> bool {
        matches!(self, MountError::NotMounted { .. })
    }

    fn syscall(op: &'static str, path: impl Into<PathBuf>, err: rustix::io::Errno) -> MountError {
        MountError::Syscall {
            op,
            path: path.into(),
            source: err.into(),
            log: String::new(),
        }
    }

    /// The errno behind a failed syscall, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            MountError::Syscall { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn kernel_log_suffix(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (kernel: {log})")
    }
}
