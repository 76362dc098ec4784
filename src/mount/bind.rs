//! Read-only bind mounts, unmounting, and mount point detection.

use std::path::Path;

use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    mount_bind_recursive, mount_remount, move_mount, open_tree, MountFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use super::target::Target;
use super::MountError;
use crate::sys::mount_api::set_tree_readonly;

/// Bind `source` (recursively) at `target`, read-only.
///
/// With the new mount API the clone is made read-only while still detached, so the tree is never
/// writable through `target`; older kernels get a bind mount followed by a read-only remount.
pub fn bind_readonly(source: &Path, target: &Path) -> Result<(), MountError> {
    bind_readonly_at(source, &Target::open(target)?)
}

/// [`bind_readonly`] onto an opened target.
pub fn bind_readonly_at(source: &Path, target: &Target) -> Result<(), MountError> {
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    let tree = match open_tree(CWD, source, flags) {
        Ok(tree) => tree,
        Err(Errno::NOSYS) => return bind_then_remount(source, target),
        Err(e) => return Err(MountError::syscall("open_tree (clone)", source, e)),
    };
    set_tree_readonly(rustix::fd::AsFd::as_fd(&tree))
        .map_err(|e| MountError::syscall("mount_setattr read-only", source, e))?;
    attach(&tree, target)
}

/// `move_mount` of a detached tree onto the opened target itself.
fn attach(tree: &rustix::fd::OwnedFd, target: &Target) -> Result<(), MountError> {
    move_mount(
        tree,
        "",
        target.fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| MountError::syscall("move_mount bind to", target.path(), e))
}

fn bind_then_remount(source: &Path, target: &Target) -> Result<(), MountError> {
    mount_bind_recursive(source, target.proc_path())
        .map_err(|e| MountError::syscall("bind mount to", target.path(), e))?;
    // The remount must name the new mount: open its root the same no-follow way.
    let remount = || -> Result<(), MountError> {
        let mounted = Target::open(target.path())?;
        let ro = MountFlags::BIND | MountFlags::RDONLY;
        mount_remount(mounted.proc_path(), ro, "")
            .map_err(|e| MountError::syscall("remount read-only", target.path(), e))
    };
    remount().inspect_err(|_| {
        // Never leave a writable view behind.
        let _ =
            rustix::mount::unmount(target.path(), UnmountFlags::DETACH | UnmountFlags::NOFOLLOW);
    })
}

/// Bind `source` (recursively) at `target`, writable: the copy driver's writable view.
pub fn bind(source: &Path, target: &Path) -> Result<(), MountError> {
    let target = Target::open(target)?;
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    match open_tree(CWD, source, flags) {
        Ok(tree) => attach(&tree, &target),
        Err(Errno::NOSYS) => mount_bind_recursive(source, target.proc_path())
            .map_err(|e| MountError::syscall("bind mount to", target.path(), e)),
        Err(e) => Err(MountError::syscall("open_tree (clone)", source, e)),
    }
}

/// Unmount the topmost mount at `target`.
///
/// `Busy` means open files or a cwd keep it in use (nothing changed); `NotMounted` means there was no
/// mount at `target` (or no `target`), which an idempotent caller may ignore.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(Errno::BUSY) => Err(MountError::Busy {
            target: target.to_path_buf(),
        }),
        Err(Errno::INVAL) | Err(Errno::NOENT) => Err(MountError::NotMounted {
            target: target.to_path_buf(),
        }),
        Err(e) => Err(MountError::syscall("umount", target, e)),
    }
}

/// Whether `path` is the root of a mount (false when it does not exist).
pub fn is_mountpoint(path: &Path) -> bool {
    match statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        }
        Ok(_) => listed_in_mountinfo(path),
        Err(_) => false,
    }
}

/// Fallback for kernels before 5.8 (no `STATX_ATTR_MOUNT_ROOT`): look for the path in mountinfo.
fn listed_in_mountinfo(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mnt| Path::new(&unescape_mountinfo(mnt)) == real)
}

/// The mounts at or below `dir` (as given, e.g. canonical) in this mount namespace, deepest first:
/// what a killed process mounted in a dir that is to be removed (the kernel feature probe's mount in
/// its staging dir).
pub fn mounts_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<std::path::PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|mnt| std::path::PathBuf::from(unescape_mountinfo(mnt)))
        .filter(|mnt| mnt.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(o)) => {
                out.push(
                    o.iter()
                        .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
                );
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "bind_tests.rs"]
mod tests;
