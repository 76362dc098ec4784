//! OCI runtime bundles for mounted images, and the changes a container made to its writable layer.
//!
//! This module owns two things:
//! - [`build_spec`] / [`write_bundle`]: a `config.json` for runc or crun from an image config's `config`
//!   object (Entrypoint, Cmd, Env, WorkingDir, User) on top of `runc spec`'s defaults, following docker's
//!   rules for each field. The image's /etc/passwd and /etc/group are read only through openat2
//!   `RESOLVE_IN_ROOT` under the mounted rootfs, so nothing the image contains can make us read a host file.
//! - [`upper_changes`]: `docker diff` for an overlay upper dir over the image's layer dirs, walked without
//!   following any symlink out of the upper dir; [`tree_changes`] the same for a copy-driver tree, and
//!   [`stage_changes`] lays those out as an upper dir so that commit treats both drivers alike.
//!
//! - [`run_container`]: the process side of `lamina run`: the runtime binary ([`OciRuntime`], crun or
//!   runc), create/start/wait as a subreaper, signal forwarding ([`SignalForwarder`]) and the
//!   container's terminal (`--console-socket`, see `pty.rs`).
//!
//! It takes plain data (no image or store types).

mod bundle;
mod diff;
mod oci_runtime;
mod process;
mod pty;
mod run_options;
mod signals;
mod spec;
mod tree_diff;
mod tree_stage;
mod user;

use std::path::PathBuf;

pub use bundle::{write_bundle, CONFIG_FILE, ROOTFS_DIR};
pub use diff::{format_changes, upper_changes, Change, ChangeKind};
pub use oci_runtime::{Flavor, OciRuntime};
pub use process::{run_container, ContainerStdio};
pub use run_options::{env_entry, env_file_entries, BindMount, NetworkMode};
pub use signals::SignalForwarder;
pub use spec::{
    build_spec, BundleOptions, ImageRuntimeConfig, DEFAULT_HOSTNAME, DEFAULT_PATH_ENV,
    DOCKER_DEFAULT_CAPS, STOP_SIGNAL_ANNOTATION,
};
pub use tree_diff::tree_changes;
pub use tree_stage::stage_changes;
pub use user::{resolve_user, ResolvedUser};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// docker's words for an image with neither Entrypoint nor Cmd and no arguments given.
    #[error("no command specified")]
    NoCommand,
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UnknownUser { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    UnknownGroup { group: String },
    #[error("user {spec:?}: uid or gid out of range (0..=2147483647)")]
    IdOutOfRange { spec: String },
    #[error("reading {path} in the image: {source}")]
    RootfsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} in the image is not a regular file")]
    NotRegularFile { path: PathBuf },
    #[error("{path} in the image is larger than {limit} bytes")]
    FileTooLarge { path: PathBuf, limit: u64 },
    #[error("writing bundle file {path}: {source}")]
    WriteBundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("building the runtime spec: {0}")]
    Spec(oci_spec::OciSpecError),
    #[error("encoding config.json: {0}")]
    Serialize(serde_json::Error),
    #[error("diff: {path}: {source}")]
    Diff {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no OCI runtime found: {wanted} is not installed")]
    NoRuntime { wanted: String },
    #[error("starting {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The runtime refused or failed; `message` is its own (one line).
    #[error("{runtime} {action}: {message}")]
    Runtime {
        runtime: &'static str,
        action: &'static str,
        message: String,
    },
    /// The container's command could not be run: docker's exit code (126, 127) and the runtime's words.
    #[error("{message}")]
    Exec { code: i32, message: String },
    /// A signal asked the run to stop before the container started.
    #[error("interrupted by signal {signal} before the container started")]
    Interrupted { signal: i32 },
    #[error("-v {spec:?}: {reason}")]
    BadVolume { spec: String, reason: String },
    #[error("-e {entry:?}: {reason}")]
    BadEnv { entry: String, reason: String },
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{what}: {source}")]
    Console {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the runtime's pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the runtime's state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for the container: {0}")]
    Wait(std::io::Error),
}

impl RuntimeError {
    /// The exit code `lamina run` ends with for this error: docker's 126/127 for a command that
    /// cannot be run, 128 + the signal for an interrupt, 125 for everything else (lamina's own).
    pub fn run_exit_code(&self) -> i32 {
        match self {
            RuntimeError::Exec { code, .. } => *code,
            RuntimeError::Interrupted { signal } => 128 + signal,
            _ => 125,
        }
    }
}
