//! The OCI runtime binary (crun, runc, or one given by path) and the commands lamina runs it with.
//!
//! Every invocation passes `--root STATE`, a state dir of lamina's own, so containers never mix with
//! the runtime's shared default (/run/crun, /run/runc) and `RUNTIME --root STATE list` shows exactly
//! lamina's. crun is started in a private mount namespace without the cgroup2 mount where the host has
//! hybrid cgroups (see [`crate::sys::spawn::unshare_mounts_detaching`]); runc needs nothing.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::RuntimeError;

/// Which command-line dialect a runtime speaks. Anything that is not crun is driven as runc (youki
/// and runsc follow runc's CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Crun,
    Runc,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Crun => "crun",
            Flavor::Runc => "runc",
        }
    }
}

/// A runtime binary with the state dir lamina keeps its containers in.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    pub path: PathBuf,
    pub flavor: Flavor,
    pub state_root: PathBuf,
    /// The host's cgroup2 mount to hide from crun (hybrid cgroups), when there is one to hide.
    hide_cgroup2: Option<PathBuf>,
}

/// Where a hybrid host mounts its cgroup2 hierarchy beside the v1 controllers.
const HYBRID_CGROUP2: &str = "/sys/fs/cgroup/unified";
/// `TMPFS_MAGIC` from linux/magic.h: /sys/fs/cgroup is a tmpfs of v1 controller mounts on v1 and
/// hybrid hosts, a cgroup2 mount on unified ones.
const TMPFS_MAGIC: i64 = 0x0102_1994;

impl OciRuntime {
    /// The runtime `choice` names (`crun`, `runc`, or a path), or the first of crun and runc that is
    /// installed. `state_of(flavor)` gives the state dir for the runtime found.
    pub fn find(
        choice: Option<&str>,
        state_of: impl Fn(Flavor) -> PathBuf,
    ) -> Result<OciRuntime, RuntimeError> {
        let path = match choice {
            Some(c) if c.contains('/') => {
                let p = PathBuf::from(c);
                if !p.is_file() {
                    return Err(RuntimeError::NoRuntime {
                        wanted: c.to_string(),
                    });
                }
                p
            }
            Some(name) => search_path(name).ok_or_else(|| RuntimeError::NoRuntime {
                wanted: name.to_string(),
            })?,
            None => ["crun", "runc"]
                .iter()
                .find_map(|n| search_path(n))
                .ok_or_else(|| RuntimeError::NoRuntime {
                    wanted: "crun or runc".to_string(),
                })?,
        };
        let flavor = flavor_of(&path);
        let hide_cgroup2 =
            (flavor == Flavor::Crun && hybrid_cgroups()).then(|| HYBRID_CGROUP2.into());
        Ok(OciRuntime {
            state_root: state_of(flavor),
            path,
            flavor,
            hide_cgroup2,
        })
    }

    /// `RUNTIME --root STATE ARGS...`, with stdio closed unless the caller sets it.
    pub fn command(&self, args: &[&std::ffi::OsStr]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(&self.state_root);
        if self.flavor == Flavor::Runc {
            // One JSON object per message on stderr, so an error's text can be read back exactly.
            cmd.args(["--log-format", "json"]);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = &self.hide_cgroup2 {
            if let Ok(c) = CString::new(dir.as_os_str().as_encoded_bytes()) {
                crate::sys::spawn::unshare_mounts_detaching(&mut cmd, c);
            }
        }
        cmd
    }

    /// `RUNTIME delete --force ID`: the container's state (and its processes) gone; no error when it
    /// never existed or is gone already.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let out = self
            .command(&["delete".as_ref(), "--force".as_ref(), id.as_ref()])
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        let text = runtime_message(&String::from_utf8_lossy(&out.stderr));
        let gone = text.contains("does not exist") || text.contains("No such file");
        if out.status.success() || gone || !self.state_root.join(id).exists() {
            return Ok(());
        }
        Err(RuntimeError::Runtime {
            runtime: self.flavor.name(),
            action: "delete",
            message: text,
        })
    }

    pub(crate) fn spawn_error(&self, source: std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            path: self.path.clone(),
            source,
        }
    }
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// crun says so in its `--version`; a binary named crun is taken at its word.
fn flavor_of(path: &Path) -> Flavor {
    let named_crun = path.file_name().is_some_and(|n| n == "crun");
    let says_crun = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"crun"));
    if named_crun || says_crun {
        Flavor::Crun
    } else {
        Flavor::Runc
    }
}

/// v1 controllers on a tmpfs at /sys/fs/cgroup plus a cgroup2 at `unified` that still holds a
/// controller: the case crun 1.8 refuses.
fn hybrid_cgroups() -> bool {
    let v1 = rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type == TMPFS_MAGIC);
    v1 && std::fs::read_to_string(Path::new(HYBRID_CGROUP2).join("cgroup.controllers"))
        .is_ok_and(|c| !c.trim().is_empty())
}

/// The message a runtime printed, one line: the `msg` of runc's JSON log lines (its logrus text
/// lines' `msg="..."` otherwise), crun's plain lines as they are.
pub fn runtime_message(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
                .or_else(|| logrus_msg(line))
                .unwrap_or_else(|| line.to_string())
        })
        .collect();
    lines.join("; ")
}

fn logrus_msg(line: &str) -> Option<String> {
    let start = line.find("msg=\"")? + "msg=\"".len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// docker's exit code for a container whose command could not be run (docker/cli
/// `runStartContainerErr`): 127 when it was not found, 126 when it could not be invoked. Matched
/// without regard to case, and also in crun's words ("executable file `x` not found in $PATH",
/// "open executable: Permission denied" / "Operation not permitted" for a directory).
pub fn exec_failure_code(message: &str) -> Option<i32> {
    let m = message.to_ascii_lowercase();
    let exec = m.contains("exec") || m.contains("executable");
    if m.contains("executable file not found")
        || m.contains("not found in $path")
        || (exec && m.contains("no such file or directory"))
    {
        Some(127)
    } else if m.contains("open executable:")
        || (exec && (m.contains("permission denied") || m.contains("is a directory")))
    {
        Some(126)
    } else {
        None
    }
}

#[cfg(test)]
#[path = "oci_runtime_tests.rs"]
mod tests;
