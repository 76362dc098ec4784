//! Describing a mount before making it, as containerd's `mounts()` only describes: which layer dirs
//! are stacked where, with which driver. Pure (no I/O), so every case is tested without root; the
//! engine's `mount` makes what the plan says.

use crate::mount::{self, OverlaySpec, RuntimeMount};
use crate::store::{Layout, MountId};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Driver {
    /// The default, as in docker and containerd: overlayfs stacks the layer dirs.
    #[default]
    Overlay,
    Copy,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
        }
    }

    pub fn parse(s: &str) -> Option<Driver> {
        match s {
            "overlay" => Some(Driver::Overlay),
            "copy" => Some(Driver::Copy),
            _ => None,
        }
    }
}

/// What a mount stacks, described before anything is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedMount {
    /// The copy driver: the layers materialised into `tree`, bound at the target.
    Copy {
        lowers: Vec<PathBuf>,
        tree: PathBuf,
        readonly: bool,
    },
    /// A read-only view of a one-layer image: its layer dir, bound read-only.
    BindLayer(PathBuf),
    /// An overlay (with the mount's own upper and work dirs when writable).
    Overlay(OverlaySpec),
}

/// A planned mount: what it stacks, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub id: MountId,
    pub target: PathBuf,
    pub mount: PlannedMount,
}

impl MountPlan {
    /// The mounts a runtime performs to get the same view (`mount --format json`).
    pub fn runtime_mounts(&self) -> Vec<RuntimeMount> {
        match &self.mount {
            PlannedMount::Copy { tree, readonly, .. } => vec![RuntimeMount::bind(tree, *readonly)],
            PlannedMount::BindLayer(dir) => vec![RuntimeMount::bind(dir, true)],
            PlannedMount::Overlay(spec) => mount::runtime_mounts(spec),
        }
    }
}

/// Describes mount `id` of the layer dirs `lowers` (top first, already within the kernel's limit).
pub fn plan(
    layout: &Layout,
    id: &MountId,
    lowers: Vec<PathBuf>,
    target: PathBuf,
    driver: Driver,
    readonly: bool,
) -> MountPlan {
    let mount = match driver {
        Driver::Copy => PlannedMount::Copy {
            lowers,
            tree: layout.mount_copy(id),
            readonly,
        },
        Driver::Overlay if readonly && lowers.len() == 1 => {
            PlannedMount::BindLayer(lowers[0].clone())
        }
        Driver::Overlay => PlannedMount::Overlay(OverlaySpec {
            lowers,
            upper: (!readonly).then(|| (layout.mount_upper(id), layout.mount_work(id))),
        }),
    };
    MountPlan {
        id: id.clone(),
        target,
        mount,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
