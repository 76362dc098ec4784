//! The mounts a runtime would perform itself for a spec (containerd's snapshotter `Mounts` shape).

use std::path::Path;

use super::{OverlaySpec, RuntimeMount};

/// `[{type: "bind", options: ["ro", "rbind"]}]` for one read-only layer, else one overlay mount with
/// absolute `lowerdir=` (top first), `upperdir`, `workdir` and `index=off`.
///
/// Runtimes pass these options to `mount(2)`, so `:` and `\` in paths are backslash-escaped as the
/// overlay option parser expects; the page-size limit of that route is the runtime's concern.
pub fn runtime_mounts(spec: &OverlaySpec) -> Vec<RuntimeMount> {
    if spec.lowers.len() == 1 && spec.upper.is_none() {
        return vec![RuntimeMount::bind(&spec.lowers[0], true)];
    }
    let lowers: Vec<String> = spec.lowers.iter().map(|l| escape(&absolute(l))).collect();
    let mut options = vec![format!("lowerdir={}", lowers.join(":"))];
    if let Some((upper, work)) = &spec.upper {
        options.push(format!("upperdir={}", escape(&absolute(upper))));
        options.push(format!("workdir={}", escape(&absolute(work))));
    }
    options.push("index=off".into());
    vec![RuntimeMount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options,
    }]
}

impl RuntimeMount {
    /// A recursive bind of `source`, read-only or writable.
    pub fn bind(source: &Path, readonly: bool) -> RuntimeMount {
        let mode = if readonly { "ro" } else { "rw" };
        RuntimeMount {
            kind: "bind".into(),
            source: absolute(source),
            options: vec![mode.into(), "rbind".into()],
        }
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn escape(path: &str) -> String {
    path.replace('\\', "\\\\").replace(':', "\\:")
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
