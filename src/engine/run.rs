//! `lamina run`: a stored image run as a container in the foreground, as `docker run` does it.
//!
//! A container is a writable mount: the image is mounted (its row pins the image), an OCI bundle is
//! written into the mount's dir (`mounts/ID/bundle`, its rootfs the mountpoint), and the runtime
//! runs it with the container id = the mount id (see `runtime::run_container`). Afterwards the
//! runtime's state is always deleted; with `remove` the mount, its writable layer and the bundle go
//! too, whether the command succeeded, failed, could not start or was interrupted. Without it the
//! mount stays for `diff`, `commit` and `container rm`.
//!
//! Signal handlers are installed first, so an interrupt at any point ends in the same cleanup.

use super::mount::MountOptions;
use super::plan::Driver;
use super::{Engine, EngineError, Result};
use crate::runtime::{
    self, BindMount, ContainerStdio, NetworkMode, OciRuntime, RuntimeError, SignalForwarder,
};
use crate::store::MountId;
use std::fs;
use std::path::{Path, PathBuf};

/// What `lamina run` was asked for, beyond the image.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The mount's (container's) name; default random.
    pub name: Option<String>,
    /// `--rm`: remove the mount and bundle afterwards.
    pub remove: bool,
    pub driver: Driver,
    /// `crun`, `runc` or a path; default the first of crun and runc installed.
    pub runtime: Option<String>,
    /// `--read-only`: the container's root filesystem refuses writes.
    pub read_only: bool,
    /// Replaces the image's Cmd.
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    /// `-e` entries, `K=V` or `K` (the value from lamina's environment).
    pub env: Vec<String>,
    /// `--env-file`s, read before the `-e` entries (docker's order).
    pub env_files: Vec<PathBuf>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `-v HOST:CTR[:ro]`.
    pub volumes: Vec<String>,
    pub network: NetworkMode,
    pub hostname: Option<String>,
    pub stdio: ContainerStdio,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The container's mount (gone when `remove` was asked for).
    pub mount: MountId,
    /// The container's exit code (128 + signal when a signal killed it).
    pub exit_code: i32,
}

impl EngineError {
    /// The exit code `lamina run` ends with when the run failed: docker's 126 and 127 for a command
    /// that cannot be run, 128 + signal for an interrupt before the start, else 125 (lamina's own
    /// error, as docker's 125 is the daemon's).
    pub fn run_exit_code(&self) -> i32 {
        match self {
            EngineError::Runtime(e) => e.run_exit_code(),
            EngineError::Bundle { source, .. } => source.run_exit_code(),
            _ => 125,
        }
    }
}

impl Engine {
    /// `lamina run`: mounts `image`, runs it in the foreground and returns its exit code.
    pub fn run(&mut self, image: &str, opts: &RunOptions) -> Result<RunOutcome> {
        let signals = SignalForwarder::install()?;
        let binds = opts
            .volumes
            .iter()
            .map(|v| BindMount::parse(v))
            .collect::<Result<Vec<_>, _>>()?;
        let env = run_env(opts)?;
        if let Some(dir) = opts.working_dir.as_deref().filter(|d| !d.starts_with('/')) {
            return Err(EngineError::Invalid(format!(
                "the working directory '{dir}' is invalid, it needs to be an absolute path"
            )));
        }
        let layout = self.store.layout().clone();
        let rt = OciRuntime::find(opts.runtime.as_deref(), |f| layout.runtime_state(f.name()))?;
        for bind in &binds {
            // docker creates a missing host path of a bind as a directory
            if fs::symlink_metadata(&bind.source).is_err() {
                fs::create_dir_all(&bind.source).map_err(|e| {
                    EngineError::Invalid(format!("-v {}: {e}", bind.source.display()))
                })?;
            }
        }
        let mount_opts = MountOptions {
            name: opts.name.clone(),
            driver: opts.driver,
            ..MountOptions::default()
        };
        let mounted = self.mount_image(image, None, &mount_opts)?;
        let id = mounted.id.clone();
        let bundle = layout.mount_bundle(&id);
        let ran = self
            .write_run_bundle(&mounted, &bundle, opts, binds, env)
            .and_then(|program| {
                runtime::run_container(&rt, &bundle, id.as_str(), opts.stdio, &signals)
                    .map_err(|e| naming_program(e, &program).into())
            });
        let deleted = rt.delete(id.as_str());
        let removed = if opts.remove {
            self.unmount(id.as_str()).map(|_| ())
        } else {
            Ok(())
        };
        let exit_code = ran?;
        deleted?;
        removed?;
        Ok(RunOutcome {
            mount: id,
            exit_code,
        })
    }

    fn write_run_bundle(
        &self,
        mounted: &super::MountedImage,
        bundle: &Path,
        opts: &RunOptions,
        mut binds: Vec<BindMount>,
        env: Vec<String>,
    ) -> Result<String> {
        let cfg = self.image_runtime_config(&mounted.image_id)?;
        fs::create_dir_all(bundle).map_err(|source| RuntimeError::WriteBundle {
            path: bundle.to_path_buf(),
            source,
        })?;
        let mut hostname = opts.hostname.clone();
        if opts.network == NetworkMode::Host {
            binds.extend(host_network_files(bundle)?);
            hostname = hostname.or_else(|| {
                Some(
                    rustix::system::uname()
                        .nodename()
                        .to_string_lossy()
                        .into_owned(),
                )
            });
        }
        let bundle_opts = runtime::BundleOptions {
            args_override: (!opts.command.is_empty()).then(|| opts.command.clone()),
            readonly_rootfs: opts.read_only,
            terminal: opts.stdio.terminal,
            // docker's default hostname: the container id's first 12 characters
            hostname: hostname.unwrap_or_else(|| mounted.id.as_str().chars().take(12).collect()),
            entrypoint: opts.entrypoint.clone(),
            user: opts.user.clone(),
            env,
            working_dir: opts.working_dir.clone(),
            binds,
            network: opts.network,
            root_path: Some(mounted.mountpoint.clone()),
        };
        let spec = runtime::build_spec(&cfg, &mounted.mountpoint, &bundle_opts)?;
        runtime::write_bundle(bundle, &spec)?;
        let program = spec.process().as_ref().and_then(|p| p.args().as_ref());
        Ok(program.and_then(|a| a.first()).cloned().unwrap_or_default())
    }
}

/// crun's words for a command that cannot be run do not name it ("open executable: Permission
/// denied"); docker's (runc's) do. Name it when the runtime did not.
fn naming_program(e: RuntimeError, program: &str) -> RuntimeError {
    match e {
        RuntimeError::Exec { code, message } if !message.contains(program) => RuntimeError::Exec {
            code,
            message: format!("exec {program:?}: {message}"),
        },
        e => e,
    }
}

/// `--env-file`s first, then `-e`, as docker orders them; bare names from lamina's environment.
fn run_env(opts: &RunOptions) -> Result<Vec<String>> {
    let lookup = |key: &str| std::env::var(key).ok();
    let mut env = Vec::new();
    for file in &opts.env_files {
        let text = fs::read_to_string(file)
            .map_err(|e| EngineError::Invalid(format!("--env-file {}: {e}", file.display())))?;
        env.extend(runtime::env_file_entries(&text, lookup)?);
    }
    for entry in &opts.env {
        env.extend(runtime::env_entry(entry, lookup)?);
    }
    Ok(env)
}

/// With the host's network the container also needs the host's name resolution: copies of its
/// /etc/hosts and /etc/resolv.conf in the bundle, bound over the image's (copies, as docker makes
/// them, so that the container cannot write the host's files).
fn host_network_files(bundle: &Path) -> Result<Vec<BindMount>> {
    let mut binds = Vec::new();
    for name in ["hosts", "resolv.conf"] {
        let host = Path::new("/etc").join(name);
        let Ok(text) = fs::read(&host) else { continue };
        let copy = bundle.join(name);
        fs::write(&copy, text).map_err(|source| RuntimeError::WriteBundle {
            path: copy.clone(),
            source,
        })?;
        binds.push(BindMount {
            source: copy,
            destination: host,
            readonly: false,
        });
    }
    Ok(binds)
}
