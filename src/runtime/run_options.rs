//! What `lamina run` adds to a bundle beyond the image config, in docker's grammar: bind mounts
//! (`-v HOST:CTR[:ro]`), the environment (`-e`, `--env-file`) and the network mode. Parsing only; no
//! file is read here, so every rule is tested without a container.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use super::RuntimeError;

/// `-v HOST:CTR[:ro|:rw]`: a host directory or file bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub readonly: bool,
}

impl BindMount {
    /// docker's rules for a bind: both paths absolute (a relative HOST would be a named volume,
    /// which lamina does not have), the destination not `/`, the mode `ro` or `rw`.
    pub fn parse(spec: &str) -> Result<BindMount, RuntimeError> {
        let bad = |reason: &str| RuntimeError::BadVolume {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, destination, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, None),
            [s, d, m] => (*s, *d, Some(*m)),
            _ => return Err(bad("want HOST:CONTAINER[:ro]")),
        };
        if !source.starts_with('/') {
            return Err(bad(
                "the host path must be absolute (named volumes are not supported)",
            ));
        }
        if !destination.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        let destination = clean(destination);
        if destination == Path::new("/") {
            return Err(bad("the container path cannot be /"));
        }
        let readonly = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(m) => return Err(bad(&format!("unknown mode {m:?} (want ro or rw)"))),
        };
        Ok(BindMount {
            source: PathBuf::from(source),
            destination,
            readonly,
        })
    }

    /// The OCI mount: a recursive, private bind (docker's `rbind,rprivate`), read-only when asked.
    pub fn to_mount(&self) -> Mount {
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if self.readonly {
            options.push("ro".to_string());
        }
        let mut mount = Mount::default();
        mount.set_destination(self.destination.clone());
        mount.set_typ(Some("bind".to_string()));
        mount.set_source(Some(self.source.clone()));
        mount.set_options(Some(options));
        mount
    }
}

/// A path made absolute and lexically clean (`..` cannot climb above `/`).
pub(crate) fn clean(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in Path::new(path).components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// `--network`: docker's `none` (a network namespace of the container's own, loopback only, also
/// lamina's default) or `host` (the host's namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    #[default]
    None,
    Host,
}

/// One `-e` value: `K=V` as it is; a bare `K` takes K's value from `lookup` (lamina's environment),
/// and is dropped when K is unset there, as docker does.
pub fn env_entry(
    entry: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, RuntimeError> {
    let key = entry.split_once('=').map_or(entry, |(k, _)| k);
    if key.is_empty() {
        return Err(RuntimeError::BadEnv {
            entry: entry.to_string(),
            reason: "empty variable name".to_string(),
        });
    }
    if entry.contains('=') {
        return Ok(Some(entry.to_string()));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(RuntimeError::BadEnv {
            entry: entry.to_string(),
            reason: "variable name contains whitespace".to_string(),
        });
    }
    Ok(lookup(key).map(|v| format!("{key}={v}")))
}

/// The entries of an `--env-file` (docker's format): one `K=V` or `K` per line, leading whitespace
/// ignored, blank lines and lines starting with `#` skipped, no quoting (a value is taken as written).
pub fn env_file_entries(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if key.chars().any(char::is_whitespace) {
            return Err(RuntimeError::BadEnv {
                entry: line.to_string(),
                reason: "variable name contains whitespace".to_string(),
            });
        }
        if let Some(entry) = env_entry(line, &lookup)? {
            out.push(entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "run_options_tests.rs"]
mod tests;
