//! `lamina snapshotter --address SOCK [--no-fetch]`: containerd's proxy snapshotter, in the
//! foreground.

use super::args::SnapshotterArgs;
use super::{CliResult, Context};
use std::path::Path;

pub fn snapshotter(root: &Path, a: SnapshotterArgs) -> CliResult {
    crate::snapshotter::serve(root, &a.address, !a.no_fetch)
        .context(|| format!("snapshotter on {}", a.address.display()))
}
