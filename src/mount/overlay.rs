//! Overlay mounts: the new mount API route (one `lowerdir+` per layer) and the legacy `mount(2)` route.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags,
};

use super::bind::bind_readonly_at;
use super::target::Target;
use super::{max_lowers, Features, MountError, OverlaySpec, MAX_LOWERDIR_PLUS_LEN};
use crate::sys::mount_api::read_fs_log;
use crate::sys::open::{open_root, proc_fd_path, DirAccess};

/// Mount `spec` at `target`.
///
/// One lower and no upper is a read-only bind mount (overlayfs refuses a single lower without an
/// upper). Otherwise the new mount API is used when the kernel has `lowerdir+`, else `mount(2)`.
pub fn mount_overlay(
    spec: &OverlaySpec,
    target: &Path,
    features: &Features,
) -> Result<(), MountError> {
    check_lowers(spec, features)?;
    mount_overlay_at(spec, &Target::open(target)?, features)
}

/// [`mount_overlay`] onto an opened target.
pub fn mount_overlay_at(
    spec: &OverlaySpec,
    target: &Target,
    features: &Features,
) -> Result<(), MountError> {
    check_lowers(spec, features)?;
    if spec.lowers.len() == 1 && spec.upper.is_none() {
        return bind_readonly_at(&spec.lowers[0], target);
    }
    if features.new_mount_api && features.lowerdir_plus {
        match mount_new_api(spec, target, features.lowerdir_fd) {
            // A cached probe from another kernel: fall back rather than fail.
            Err(err) if err.errno() == Some(Errno::NOSYS.raw_os_error()) => {}
            other => return other,
        }
    }
    mount_overlay_legacy_at(spec, target, features)
}

fn check_lowers(spec: &OverlaySpec, features: &Features) -> Result<(), MountError> {
    let max = max_lowers(features);
    match spec.lowers.len() {
        0 => Err(MountError::NoLowers),
        count if count > max => Err(MountError::TooManyLowers { count, max }),
        _ => Ok(()),
    }
}

/// `fsopen("overlay")`, one `fsconfig` per parameter, `fsmount`, `move_mount`.
pub(super) fn mount_new_api(
    spec: &OverlaySpec,
    target: &Target,
    layers_as_fds: bool,
) -> Result<(), MountError> {
    let fd = target.fd();
    let target = target.path();
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| MountError::syscall("fsopen overlay for", target, e))?;
    let fail = |op: &'static str, path: &Path, err: Errno| MountError::Syscall {
        op,
        path: path.to_path_buf(),
        source: err.into(),
        log: read_fs_log(fs.as_fd()),
    };
    // Keeps the fds named by /proc/self/fd strings open until the superblock exists.
    let mut held = Vec::new();
    fsconfig_set_string(&fs, "source", "lamina")
        .map_err(|e| fail("fsconfig source for", target, e))?;
    for lower in &spec.lowers {
        add_layer(&fs, "lowerdir+", lower, layers_as_fds, &mut held)
            .map_err(|e| fail("fsconfig lowerdir+", lower, e))?;
    }
    if let Some((upper, work)) = &spec.upper {
        add_layer(&fs, "upperdir", upper, layers_as_fds, &mut held)
            .map_err(|e| fail("fsconfig upperdir", upper, e))?;
        add_layer(&fs, "workdir", work, layers_as_fds, &mut held)
            .map_err(|e| fail("fsconfig workdir", work, e))?;
    }
    fsconfig_set_string(&fs, "index", "off")
        .map_err(|e| fail("fsconfig index=off for", target, e))?;
    fsconfig_create(&fs).map_err(|e| fail("create overlay superblock for", target, e))?;
    let attrs = if spec.upper.is_none() {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| fail("fsmount overlay for", target, e))?;
    drop(held);
    move_mount(
        &mnt,
        "",
        fd,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| MountError::syscall("move_mount overlay to", target, e))
}

/// Pass one layer dir: as an fd where the kernel takes one (no length limit, no re-lookup), else as its
/// path, or as `/proc/self/fd/N` when the path is longer than an `fsconfig` string may be.
fn add_layer(
    fs: &OwnedFd,
    key: &str,
    dir: &Path,
    as_fd: bool,
    held: &mut Vec<OwnedFd>,
) -> Result<(), Errno> {
    if as_fd {
        let fd = open_root(dir, DirAccess::Read)?;
        return fsconfig_set_fd(fs, key, &fd);
    }
    if dir.as_os_str().len() <= MAX_LOWERDIR_PLUS_LEN {
        return fsconfig_set_string(fs, key, dir);
    }
    let fd = open_root(dir, DirAccess::Path)?;
    let name = proc_fd_path(&fd);
    held.push(fd);
    fsconfig_set_string(fs, key, name.as_str())
}

/// Mount with `mount(2)` and a `lowerdir=a:b:c` option string, which must fit in one page.
///
/// Layers are named `/proc/self/fd/N` (short, and free of the `:` `,` `\` the option parser splits
/// on). If even that is too long, they are named relative to their common parent (the store's `l/`
/// dir of short symlinks) from a thread that unshares its cwd, so no other thread sees the `chdir`.
pub fn mount_overlay_legacy(
    spec: &OverlaySpec,
    target: &Path,
    features: &Features,
) -> Result<(), MountError> {
    mount_overlay_legacy_at(spec, &Target::open(target)?, features)
}

fn mount_overlay_legacy_at(
    spec: &OverlaySpec,
    target: &Target,
    features: &Features,
) -> Result<(), MountError> {
    check_lowers(spec, features)?;
    let limit = features.legacy_options_max;
    let mut dirs: Vec<&Path> = spec.lowers.iter().map(PathBuf::as_path).collect();
    if let Some((upper, work)) = &spec.upper {
        dirs.push(upper);
        dirs.push(work);
    }
    let mut held = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        let fd = open_root(*dir, DirAccess::Path)
            .map_err(|e| MountError::syscall("open layer dir", *dir, e))?;
        held.push(fd);
    }
    let names: Vec<String> = held.iter().map(proc_fd_path).collect();
    let options = legacy_options(&names, spec);
    if options.len() <= limit {
        return legacy_mount(&options, target, spec.upper.is_none());
    }
    drop(held);
    mount_relative(spec, &dirs, target, limit)
}

/// `lowerdir=..,upperdir=..,workdir=..,index=off` from names already safe to embed.
fn legacy_options(names: &[String], spec: &OverlaySpec) -> String {
    let lowers = spec.lowers.len();
    let mut options = format!("lowerdir={}", names[..lowers].join(":"));
    if spec.upper.is_some() {
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            names[lowers],
            names[lowers + 1]
        ));
    }
    options.push_str(",index=off");
    options
}

/// `mount(2)` onto `/proc/self/fd/N` of the opened target: that inode, whatever its path now is.
fn legacy_mount(options: &str, target: &Target, read_only: bool) -> Result<(), MountError> {
    let data = CString::new(options).map_err(|_| {
        MountError::Unsupported(format!(
            "NUL byte in overlay options for {:?}",
            target.path()
        ))
    })?;
    let flags = if read_only {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    rustix::mount::mount(
        "lamina",
        target.proc_path(),
        "overlay",
        flags,
        data.as_c_str(),
    )
    .map_err(|e| MountError::syscall("mount(2) overlay at", target.path(), e))
}

/// The containers/storage trick: relative names from the layers' common parent.
fn mount_relative(
    spec: &OverlaySpec,
    dirs: &[&Path],
    target: &Target,
    limit: usize,
) -> Result<(), MountError> {
    let parent = common_parent(dirs).ok_or_else(|| {
        MountError::Unsupported(format!(
            "layer dirs for {:?} share no parent dir",
            target.path()
        ))
    })?;
    let mut names = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let rel = dir.strip_prefix(&parent).unwrap_or(dir);
        let name = rel
            .to_str()
            .ok_or_else(|| MountError::Unsupported(format!("layer path {dir:?} is not UTF-8")))?;
        if let Some(ch) = name.chars().find(|c| matches!(c, ':' | ',' | '\\')) {
            return Err(MountError::UnsafeOptionPath {
                path: dir.to_path_buf(),
                ch,
            });
        }
        names.push(name.to_string());
    }
    let options = legacy_options(&names, spec);
    if options.len() > limit {
        return Err(MountError::OptionsTooLong {
            target: target.path().to_path_buf(),
            len: options.len(),
            max: limit,
        });
    }
    let read_only = spec.upper.is_none();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: only CLONE_FS is unshared; it gives this thread its own cwd and umask and
                // touches no fd table, so no other thread can observe the chdir below.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
                    .map_err(|e| MountError::syscall("unshare(CLONE_FS) for", target.path(), e))?;
                rustix::process::chdir(&parent)
                    .map_err(|e| MountError::syscall("chdir", &parent, e))?;
                // The target is its absolute /proc/self/fd name: the chdir does not change it.
                legacy_mount(&options, target, read_only)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(MountError::Unsupported(
                    "legacy mount thread panicked".into(),
                ))
            })
    })
}

/// The deepest directory containing every path (by components).
fn common_parent(dirs: &[&Path]) -> Option<PathBuf> {
    let first = dirs.first()?.parent()?;
    let mut parent = first.to_path_buf();
    while !dirs.iter().all(|d| d.starts_with(&parent) && *d != parent) {
        parent = parent.parent()?.to_path_buf();
    }
    Some(parent)
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
