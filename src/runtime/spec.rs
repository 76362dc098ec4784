//! config.json for an image: `runc spec`'s defaults plus what the image config asks for, by docker's rules.
//!
//! Choices, each one what a docker or runc user would expect:
//! - namespaces, mounts, maskedPaths, readonlyPaths, the NOFILE rlimit, and the
//!   deny-all device cgroup rule are `runc spec`'s (runc 1.1; `crun spec` prints the same). No cgroup
//!   namespace: runc spec has none, and docker only makes one on cgroup v2.
//! - capabilities are docker's 14 defaults (moby `oci/caps/defaults.go`) in the bounding, effective and
//!   permitted sets, none ambient or inheritable, as docker does; runc spec's 3 are too few for ordinary
//!   images (`chown`, `su`, package managers).
//! - NOFILE stays at 1024/1024: a runtime cannot raise it past the caller's hard limit (no CAP_SYS_RESOURCE
//!   on some hosts), and 1024 is the kernel default.
//! - `noNewPrivileges` is false, as docker's default (runc spec says true): setuid programs in the image
//!   (`su`, `ping`) keep working.
//! - `terminal` is off unless asked for: without a tty runc fails with "open /dev/tty".

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType,
    LinuxResources, Mount, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec,
    User,
};

use super::run_options::{clean, BindMount, NetworkMode};
use super::user::resolve_user;
use super::RuntimeError;

/// docker's `system.DefaultPathEnv` for Linux containers.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The image-spec annotation a runtime client reads to learn how to stop the container.
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";
/// The hostname when neither the caller nor the image names one.
pub const DEFAULT_HOSTNAME: &str = "lamina";

/// The parts of an image config's `config` object that shape the container process. The caller fills it
/// from the image module's parsed config; empty vectors mean "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRuntimeConfig {
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    /// Docker-format configs may carry one; the caller's `BundleOptions::hostname` wins.
    pub hostname: Option<String>,
    pub stop_signal: Option<String>,
}

/// What the person running `lamina mount --bundle` chose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleOptions {
    /// Replaces the image's Cmd and keeps its Entrypoint (`docker run IMAGE ARGS...`). `Some(vec![])` is
    /// the same as `None`, as docker cannot tell the two apart either.
    pub args_override: Option<Vec<String>>,
    pub readonly_rootfs: bool,
    pub terminal: bool,
    /// Empty: the image's hostname, else [`DEFAULT_HOSTNAME`].
    pub hostname: String,
    /// `run --entrypoint`: replaces the image's Entrypoint and drops its Cmd, as docker does (`""`
    /// clears the Entrypoint).
    pub entrypoint: Option<String>,
    /// `run -u`: replaces the image's User.
    pub user: Option<String>,
    /// `run -e`/`--env-file` entries (`K=V`), applied after the image's Env (same key: replaced).
    pub env: Vec<String>,
    /// `run -w`: replaces the image's WorkingDir.
    pub working_dir: Option<String>,
    /// `run -v`: bind mounts, after the default mounts.
    pub binds: Vec<BindMount>,
    pub network: NetworkMode,
    /// The root filesystem when it is not the bundle's `rootfs` dir (an absolute path).
    pub root_path: Option<PathBuf>,
}

/// The spec for running the image mounted at `rootfs`. `rootfs` is read only to resolve `User` through the
/// image's /etc/passwd and /etc/group; the spec's `root.path` is the bundle-relative "rootfs".
pub fn build_spec(
    cfg: &ImageRuntimeConfig,
    rootfs: &Path,
    opts: &BundleOptions,
) -> Result<Spec, RuntimeError> {
    let args = match &opts.entrypoint {
        Some(entrypoint) => entrypoint_args(entrypoint, opts.args_override.as_deref())?,
        None => process_args(cfg, opts.args_override.as_deref())?,
    };
    let hostname = [
        opts.hostname.as_str(),
        cfg.hostname.as_deref().unwrap_or(""),
    ]
    .into_iter()
    .find(|h| !h.is_empty())
    .unwrap_or(DEFAULT_HOSTNAME)
    .to_string();
    let user_spec = opts.user.as_deref().or(cfg.user.as_deref()).unwrap_or("");
    let resolved = resolve_user(rootfs, user_spec)?;
    let mut user = User::default();
    user.set_uid(resolved.uid);
    user.set_gid(resolved.gid);
    user.set_additional_gids(Some(resolved.additional_gids));

    let mut process = Process::default();
    process.set_terminal(Some(opts.terminal));
    process.set_user(user);
    process.set_args(Some(args));
    let env: Vec<String> = cfg.env.iter().chain(&opts.env).cloned().collect();
    process.set_env(Some(process_env(&env, &hostname, opts.terminal)));
    process.set_cwd(working_dir(
        opts.working_dir.as_deref().or(cfg.working_dir.as_deref()),
    ));
    process.set_capabilities(Some(docker_capabilities()));
    process.set_rlimits(Some(vec![nofile_rlimit()?]));
    process.set_no_new_privileges(Some(false));

    let mut root = Root::default();
    root.set_path(
        opts.root_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("rootfs")),
    );
    root.set_readonly(Some(opts.readonly_rootfs));

    let mut annotations = HashMap::new();
    if let Some(signal) = cfg.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        annotations.insert(STOP_SIGNAL_ANNOTATION.to_string(), signal.to_string());
    }

    let mut spec = Spec::default();
    spec.set_version("1.0.2-dev".to_string());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_hostname(Some(hostname));
    let mut mounts = default_mounts();
    mounts.extend(opts.binds.iter().map(BindMount::to_mount));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(default_linux(opts.network)));
    spec.set_annotations(Some(annotations));
    Ok(spec)
}

/// docker's rule: Entrypoint + Cmd, where the caller's arguments replace Cmd only.
pub(crate) fn process_args(
    cfg: &ImageRuntimeConfig,
    args_override: Option<&[String]>,
) -> Result<Vec<String>, RuntimeError> {
    let cmd = match args_override {
        Some(args) if !args.is_empty() => args,
        _ => cfg.cmd.as_slice(),
    };
    let args: Vec<String> = cfg.entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    Ok(args)
}

/// docker's rule for `--entrypoint`: it replaces the Entrypoint and the image's Cmd is dropped, so
/// only the caller's arguments follow it.
pub(crate) fn entrypoint_args(
    entrypoint: &str,
    args: Option<&[String]>,
) -> Result<Vec<String>, RuntimeError> {
    let args: Vec<String> = (!entrypoint.is_empty())
        .then(|| entrypoint.to_string())
        .into_iter()
        .chain(args.unwrap_or_default().iter().cloned())
        .collect();
    if args.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    Ok(args)
}

/// docker's `CreateDaemonEnvironment`: PATH and HOSTNAME (and TERM with a tty) first, then the image's
/// Env replacing a default of the same name in place or appended; a bare `NAME` unsets NAME.
pub(crate) fn process_env(image_env: &[String], hostname: &str, terminal: bool) -> Vec<String> {
    let mut env: Vec<Option<String>> = vec![
        Some(DEFAULT_PATH_ENV.to_string()),
        Some(format!("HOSTNAME={hostname}")),
    ];
    if terminal {
        env.push(Some("TERM=xterm".to_string()));
    }
    let key_of = |entry: &str| entry.split_once('=').map_or(entry, |(k, _)| k).to_string();
    let mut index: HashMap<String, usize> = env
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.as_deref().map(|e| (key_of(e), i)))
        .collect();
    for entry in image_env {
        let key = key_of(entry);
        match (index.get(&key), entry.contains('=')) {
            (Some(&i), true) => env[i] = Some(entry.clone()),
            (Some(&i), false) => env[i] = None,
            (None, true) => {
                index.insert(key, env.len());
                env.push(Some(entry.clone()));
            }
            (None, false) => {}
        }
    }
    env.into_iter().flatten().collect()
}

/// WorkingDir made absolute and lexically clean; "" means "/".
pub(crate) fn working_dir(dir: Option<&str>) -> PathBuf {
    clean(dir.unwrap_or(""))
}

/// moby `oci/caps/defaults.go`.
pub const DOCKER_DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

fn docker_capabilities() -> LinuxCapabilities {
    let set: HashSet<Capability> = DOCKER_DEFAULT_CAPS.into_iter().collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    caps
}

fn nofile_rlimit() -> Result<PosixRlimit, RuntimeError> {
    PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(1024u64)
        .hard(1024u64)
        .build()
        .map_err(RuntimeError::Spec)
}

/// `runc spec`'s mounts, in its order (a runtime mounts them in list order: /dev before /dev/pts).
fn default_mounts() -> Vec<Mount> {
    let table: [(&str, &str, &str, &[&str]); 7] = [
        ("/proc", "proc", "proc", &[]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ];
    table
        .iter()
        .map(|(destination, typ, source, options)| {
            let mut mount = Mount::default();
            mount.set_destination(PathBuf::from(destination));
            mount.set_typ(Some(typ.to_string()));
            mount.set_source(Some(PathBuf::from(source)));
            let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
            mount.set_options((!options.is_empty()).then_some(options));
            mount
        })
        .collect()
}

/// runc spec's namespaces; `--network host` leaves out the network one.
fn default_linux(network: NetworkMode) -> oci_spec::runtime::Linux {
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .filter(|typ| !(network == NetworkMode::Host && *typ == LinuxNamespaceType::Network))
    .map(|typ| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns
    })
    .collect();
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_string()));
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![deny_all]));

    let masked = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
    ];
    let readonly = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_resources(Some(resources));
    linux.set_namespaces(Some(namespaces));
    linux.set_masked_paths(Some(masked.iter().map(|p| p.to_string()).collect()));
    linux.set_readonly_paths(Some(readonly.iter().map(|p| p.to_string()).collect()));
    linux
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
