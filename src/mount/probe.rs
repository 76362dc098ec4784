//! The kernel feature probe: real mounts of tiny dirs, once; the store caches the answer.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::mount::{fsconfig_set_string, fsopen, FsOpenFlags};

use super::overlay::mount_new_api;
use super::{mount_overlay_legacy, unmount, Features, OverlaySpec, DEFAULT_MAX_LOWERS};
use crate::sys::mount_api::page_size;
use crate::sys::reflink::supports_reflink;

/// Stop counting accepted `lowerdir+` values here; no kernel is near it (500 since 2014).
const PROBE_LOWERS_CAP: usize = 4096;

/// Find out what this kernel supports by trying it in a fresh dir under `scratch`, which must be on
/// the filesystem the store uses (reflink support is a property of that filesystem). Everything the
/// probe creates or mounts is removed before it returns; a failure to probe reads as "unsupported".
pub fn probe(scratch: &Path) -> Features {
    let mut features = Features {
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
        overlay: false,
        new_mount_api: false,
        lowerdir_plus: false,
        lowerdir_fd: false,
        legacy_mount: false,
        max_lowers: DEFAULT_MAX_LOWERS,
        legacy_options_max: page_size().saturating_sub(1),
        reflink: false,
    };
    let Ok(dir) = ProbeDir::create(scratch) else {
        return features;
    };
    let spec = OverlaySpec {
        lowers: vec![dir.path("l1"), dir.path("l2")],
        upper: None,
    };
    let target = dir.path("m");

    features.new_mount_api = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).is_ok();
    if features.new_mount_api {
        features.lowerdir_plus = mounts(&target, || new_api_at(&spec, &target, false));
        features.lowerdir_fd =
            features.lowerdir_plus && mounts(&target, || new_api_at(&spec, &target, true));
        if features.lowerdir_plus {
            features.max_lowers =
                count_lowerdir_plus(&spec.lowers[0]).unwrap_or(DEFAULT_MAX_LOWERS);
        }
    }
    features.legacy_mount = mounts(&target, || {
        mount_overlay_legacy(&spec, &target, &features).is_ok()
    });
    features.overlay = features.lowerdir_plus || features.legacy_mount;
    features.reflink = supports_reflink(&dir.root);
    features
}

/// Run a mount attempt; if it succeeded, unmount again.
fn mounts(target: &Path, attempt: impl FnOnce() -> bool) -> bool {
    let ok = attempt();
    if ok {
        let _ = unmount(target);
    }
    ok
}

/// How many `lowerdir+` values one overlay context accepts: the kernel checks its stacking limit as
/// each one is parsed, so no mount (and no hundreds of dirs) is needed to find it.
fn count_lowerdir_plus(lower: &Path) -> Option<usize> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ok()?;
    (0..PROBE_LOWERS_CAP)
        .find(|_| fsconfig_set_string(&fs, "lowerdir+", lower).is_err())
        .or(Some(PROBE_LOWERS_CAP))
}

/// `scratch/.lamina-probe-<pid>/{l1,l2,m}`, removed (after a lazy unmount of `m`) on drop.
struct ProbeDir {
    root: PathBuf,
}

impl ProbeDir {
    fn create(scratch: &Path) -> std::io::Result<ProbeDir> {
        let root = scratch.join(format!(".lamina-probe-{}", std::process::id()));
        let probe = ProbeDir { root };
        let _ = crate::sys::walk::remove_tree(&probe.root);
        for sub in ["l1", "l2", "m"] {
            fs::create_dir_all(probe.path(sub))?;
        }
        fs::write(probe.path("l1").join("probe"), b"lamina")?;
        Ok(probe)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Drop for ProbeDir {
    fn drop(&mut self) {
        let target = self.path("m");
        if super::is_mountpoint(&target) {
            let _ = rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = crate::sys::walk::remove_tree(&self.root);
    }
}

/// One new-API overlay mount onto `target`; whether it worked.
fn new_api_at(spec: &super::OverlaySpec, target: &Path, layers_as_fds: bool) -> bool {
    super::Target::open(target).is_ok_and(|t| mount_new_api(spec, &t, layers_as_fds).is_ok())
}
