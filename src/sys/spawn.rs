//! Preparing a child process between fork and exec (what `Command::pre_exec` runs).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::mount::{MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

/// Makes `cmd` start in a mount namespace of its own, with `/` made recursively private (so nothing
/// it does there reaches the host's mounts) and the mount at `detach` lazily unmounted in it.
///
/// crun 1.8 refuses hosts with hybrid cgroups ("cgroups in hybrid mode not supported, drop all
/// controllers from cgroupv2") whatever `--cgroup-manager` says; with the cgroup2 mount at
/// /sys/fs/cgroup/unified gone from its namespace it sees plain cgroup v1 and works. The host's mounts
/// are not changed.
///
/// # References
/// - [Linux `unshare(2)`](https://man7.org/linux/man-pages/man2/unshare.2.html),
///   [`mount_namespaces(7)`](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html)
pub fn unshare_mounts_detaching(cmd: &mut Command, detach: CString) {
    let hook = move || -> std::io::Result<()> {
        // SAFETY: this runs in the forked child before exec, where only this thread exists, so no
        // other thread can observe the new mount namespace (and FILES is not unshared). Only raw
        // system calls are made, no allocation, as a post-fork child requires.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)? };
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )?;
        rustix::mount::unmount(detach.as_c_str(), UnmountFlags::DETACH)?;
        Ok(())
    };
    // SAFETY: the hook only makes system calls that are async-signal-safe (see above); `detach` was
    // allocated before the fork and is only borrowed in the child.
    unsafe { cmd.pre_exec(hook) };
}
