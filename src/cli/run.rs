//! `lamina run` and `lamina container run|ls|rm|diff|commit`.
//!
//! `run` pulls a missing image the way `docker run` does (`Unable to find image 'x:latest' locally`,
//! then the pull's own lines, all on stderr so that stdout is the container's alone), then hands the
//! rest to `Engine::run`. It exits with the container's exit code; when the run fails, with docker's
//! codes: 125 for lamina's own errors, 126 for a command that cannot be invoked, 127 for one that is
//! not found.

use super::args::{
    ContainerCommand, MountsArgs, NetworkArg, PullArgs, PullPolicy, RegistryArgs, RunArgs,
};
use super::{mount, pull, CliResult};
use crate::engine::{self, ContainerStdio, Engine, ErrorKind, NetworkMode, Reference, RunOptions};
use std::io::Write;
use std::path::Path;

/// docker's exit code for its own failures (as opposed to the container's).
const OWN_ERROR: i32 = 125;

pub fn run(root: &Path, a: RunArgs) -> i32 {
    let code = match run_image(root, &a) {
        Ok(code) => code,
        Err((code, message)) => {
            let _ = std::io::stdout().flush();
            eprintln!("lamina: run {}: {message}", a.image);
            code
        }
    };
    let _ = std::io::stdout().flush();
    code
}

fn run_image(root: &Path, a: &RunArgs) -> Result<i32, (i32, String)> {
    let own = |e: &dyn std::fmt::Display| (OWN_ERROR, e.to_string());
    let mut engine = Engine::open(root).map_err(|e| own(&e))?;
    let pull_first = match a.pull {
        PullPolicy::Always => true,
        PullPolicy::Never => false,
        PullPolicy::Missing => match engine.resolve(&a.image) {
            Ok(_) => false,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("Unable to find image '{}' locally", shown_name(&a.image));
                true
            }
            Err(e) => return Err(own(&e)),
        },
    };
    if pull_first {
        let pull_args = PullArgs {
            reference: a.image.clone(),
            all_tags: false,
            platform: a.platform.clone(),
            quiet: false,
            registry: RegistryArgs {
                insecure: false,
                cert_dir: None,
            },
            to_stderr: true,
            max_layer_expansion: crate::engine::DEFAULT_MAX_EXPANSION,
            keep_blobs: false,
        };
        // the pull's error already names what it pulled
        if let Err(e) = pull::pull(root, pull_args) {
            let _ = std::io::stdout().flush();
            eprintln!("lamina: {e}");
            return Ok(OWN_ERROR);
        }
    }
    let opts = RunOptions {
        name: a.name.clone(),
        remove: a.rm,
        driver: a.driver,
        runtime: a.runtime.clone(),
        read_only: a.read_only,
        command: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        volumes: a.volumes.clone(),
        network: match a.network {
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Host => NetworkMode::Host,
        },
        hostname: a.hostname.clone(),
        stdio: ContainerStdio {
            interactive: a.interactive,
            terminal: a.tty,
        },
    };
    match engine.run(&a.image, &opts) {
        Ok(outcome) => Ok(outcome.exit_code),
        Err(e) => Err((e.run_exit_code(), e.to_string())),
    }
}

/// The name docker shows for an image it is about to pull: familiar, with its tag
/// (`debian` -> `debian:latest`).
fn shown_name(image: &str) -> String {
    match Reference::parse(image) {
        Ok(r) => engine::familiar(&engine::full_name(&r, &engine::wanted(&r))),
        Err(_) => image.to_string(),
    }
}

/// `container ls|rm|diff|commit`: the top-level commands on the writable mounts (`container run`
/// is [`run`]).
pub fn container(root: &Path, c: ContainerCommand) -> CliResult {
    match c {
        ContainerCommand::Run(a) => match run(root, a) {
            0 => Ok(()),
            code => std::process::exit(code),
        },
        ContainerCommand::Ls(a) => mount::mounts(
            root,
            MountsArgs {
                writable_only: true,
                ..a
            },
        ),
        ContainerCommand::Rm(a) => mount::umount(root, a),
        ContainerCommand::Diff(a) => mount::diff(root, a),
        ContainerCommand::Commit(a) => mount::commit(root, a),
    }
}
