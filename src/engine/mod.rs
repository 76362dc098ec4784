//! The operations: load, pull, push, manifest lists, save, import, commit, mount (with a runtime
//! bundle), diff, history, inspect, rmi, prune, df, fsck. This is the only module that drives source, unpack, store, mount,
//! copier and runtime together; the CLI (and the coming snapshotter server) call it and nothing below
//! it, so each operation is written once. The `snapshot_*` methods are containerd's Snapshots API
//! (`snapshots*.rs`), served by the `snapshotter` module.
//!
//! An [`Engine`] is opened on a store root and has one method per operation, returning typed results
//! for the caller to print. Progress goes to an [`Observer`] the caller passes, never to the terminal.
//! Errors are [`EngineError`]s, whose [`kind`](EngineError::kind) a caller can branch on.

mod build;
pub mod compress;
mod error;
mod keep_blobs;
mod load;
mod load_batch;
mod manifest_list;
mod manifest_list_push;
mod mount;
mod plan;
mod pull;
mod push;
mod push_layer;
mod query;
mod remove;
mod run;
mod save;
mod search;
mod snapshots;
mod snapshots_commit;
mod snapshots_cri;
mod snapshots_fetch;
mod snapshots_fetch_jobs;
mod snapshots_filter;
mod snapshots_share;

#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod snapshots_rebase_tests;

pub use crate::unpack::DEFAULT_MAX_EXPANSION;
pub use error::EngineError;
pub use load::Loader;
pub use load::{LayerEvent, LayerStatus, LoadedImage};
pub use manifest_list::{ListMember, LocalList, PlatformAnnotation};
pub use manifest_list_push::PushedList;
pub use mount::{MountOptions, MountedImage};
pub use plan::{plan, Driver, MountPlan, PlannedMount};
pub use pull::{
    full_name, login, login_registry, logout, logout_name, wanted, BlobProgress, InspectedManifest,
    PulledImage, Puller, ResolvedPull, TagList, TAG_RULE,
};
pub use push::{PushObserver, PushStatus, PushedTag, Pusher};
pub use push_layer::{Compression, LayerCompression};
pub use query::{HistoryRow, ImageDetails, ImageSummary, Info};
pub use run::{RunOptions, RunOutcome};
pub use save::{ArchiveFormat, SavedImage};
pub use search::{
    search, split_search_term, SearchFilter, SearchReport, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT,
};
pub use snapshots::{Labels, SnapshotInfo, SnapshotUsage, LABEL_PARENT_CHAIN, LABEL_SNAPSHOT_REF};
pub use snapshots_cri::{
    LABEL_CRI_IMAGE_LAYERS, LABEL_CRI_IMAGE_REF, LABEL_CRI_LAYER_DIGEST, LABEL_CRI_MANIFEST_DIGEST,
};
pub use snapshots_fetch::{Fallback, FetchedPrepare, LayerWait, PrepareStep, UNCLAIMED_FOR};

/// Data types of the layers below that callers see in results; re-exported so that a caller needs
/// nothing but `engine`.
pub use crate::digest::Digest;
pub use crate::image::change::ConfigChange;
pub use crate::image::media_types;
pub use crate::image::{Descriptor, ImageConfig, Platform, Reference, UtcTime};
pub use crate::mount::{Features, RuntimeMount};
pub use crate::runtime::{format_changes, Change, ContainerStdio, NetworkMode};
pub use crate::source::registry::{
    Credentials, Notices, RegistryOptions, SearchOutcome, SearchResult,
};
pub use crate::store::{
    familiar, familiar_repository, normalize_tag, now, repository_of, DiskUsage, ErrorKind,
    FsckOptions, FsckReport, ImageRow, LayerRow, MountId, MountRow, Problem, ProblemKind,
    RemoveReport, SnapshotKind, SnapshotRefusal,
};

use crate::store::Store;
use std::path::{Path, PathBuf};

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What an operation reports while it works. Every method has a default that ignores the event, so
/// an observer implements only what it shows. Methods may be called from several threads at once.
pub trait Observer: Sync {
    /// A layer of the image being loaded changed state (see [`LayerStatus`]).
    fn layer(&self, _event: &LayerEvent) {}
    /// A pull resolved the image it is about to fetch: its layers (blob descriptor, diffID).
    fn image_started(&self, _layers: &[(Descriptor, Digest)]) {}
    /// The image's layers are all done (or failed).
    fn image_finished(&self) {}
    /// Something a person should know but that does not stop the operation.
    fn warning(&self, _message: &str) {}
    /// The image `name` resolved to is for `image`, not for the platform `wanted` (the one asked
    /// for, or the host's): the caller words it, knowing which of the two it was.
    fn platform_mismatch(&self, name: &str, image: &Platform, wanted: &Platform) {
        self.warning(&format!(
            "{name}: image platform {image} does not match platform {wanted}"
        ));
    }
}

/// An observer that shows nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// The store, opened for operations.
pub struct Engine {
    store: Store,
    unpack: crate::unpack::UnpackOptions,
    /// Whether loads and pulls keep the compressed layer blobs (see `keep_blobs`).
    keep_blobs: bool,
    /// Whether labelled Prepares fetch their layers (`snapshots_fetch`); off unless asked for.
    fetch_layers: bool,
    /// The layer fetches of those Prepares, shared with the threads that run them.
    fetches: std::sync::Arc<snapshots_fetch_jobs::Fetches>,
}

impl Engine {
    /// Opens (creating if needed) the store at `root`, clearing what dead processes left in `tmp/`.
    pub fn open(root: &Path) -> Result<Engine> {
        let mut engine = Engine {
            store: Store::open(root)?,
            unpack: Default::default(),
            keep_blobs: false,
            fetch_layers: false,
            fetches: Default::default(),
        };
        // Best effort, as `Store::open`'s own clean-up: a read-only command must still work.
        if let Err(e) = engine.clear_killed_mounts() {
            tracing::warn!(error = %e, "could not undo a mount a killed command left");
        }
        Ok(engine)
    }

    /// How many bytes of files a layer may claim per byte of its blob (holes of sparse files
    /// included; `unpack::DEFAULT_MAX_EXPANSION` unless set, 0 for no cap).
    pub fn set_max_layer_expansion(&mut self, ratio: u64) {
        self.unpack.max_expansion = ratio;
    }

    /// Opens the store leaving `tmp/` as it is, so that `fsck` can report what dead processes left.
    pub fn open_for_fsck(root: &Path) -> Result<Engine> {
        Ok(Engine {
            store: Store::open_for_fsck(root)?,
            unpack: Default::default(),
            keep_blobs: false,
            fetch_layers: false,
            fetches: Default::default(),
        })
    }

    /// The default root: /var/lib/lamina for root, $XDG_DATA_HOME/lamina otherwise.
    pub fn default_root() -> PathBuf {
        Store::default_root()
    }

    /// The (canonical) root the store was opened at.
    pub fn root(&self) -> &Path {
        self.store.layout().root()
    }

    /// The diff dirs of an image's layers, top first (what `inspect` shows as its GraphDriver).
    pub fn layer_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self.store.lower_dirs(id)?)
    }
}
