//! Mounting what a snapshotter's API describes, as containerd's `mount.All` does, from the JSON
//! `ctr ... --mounts` prints or from the gRPC types.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One mount containerd's API describes.
#[derive(Debug, Clone, PartialEq)]
pub struct MountSpec {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// The JSON `ctr snapshots prepare|view --mounts` prints (Go's field names).
pub fn parse_ctr_mounts(json: &str) -> Vec<MountSpec> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("ctr --mounts printed no JSON ({e}): {json}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not a list of mounts: {json}"))
        .iter()
        .map(|m| MountSpec {
            kind: m["Type"].as_str().unwrap_or_default().to_string(),
            source: m["Source"].as_str().unwrap_or_default().to_string(),
            options: m["Options"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Mounts `mounts` on `target` with util-linux mount, as containerd's `mount.All` does: a long
/// `lowerdir=` (hundreds of layers) is made relative to the lowers' common directory and mounted
/// from there, since mount(2) takes at most a page of options.
pub fn mount_all(mounts: &[MountSpec], target: &Path) {
    for m in mounts {
        let mut cmd = Command::new("mount");
        let mut options = m.options.clone();
        if m.kind == "overlay" && options.join(",").len() > 4000 {
            let (cwd, relative) = relative_lowers(&options);
            cmd.current_dir(cwd);
            options = relative;
        }
        if m.kind == "bind" {
            cmd.arg("-o")
                .arg(options.join(","))
                .arg(&m.source)
                .arg(target);
        } else {
            cmd.arg("-t")
                .arg(&m.kind)
                .arg("-o")
                .arg(options.join(","))
                .arg(&m.source)
                .arg(target);
        }
        common::run(&mut cmd, common::LIMIT).expect_ok();
    }
}

/// The `lowerdir=` option with paths relative to the directory above their parent (the store root
/// for lamina's `l/` links), and that directory.
fn relative_lowers(options: &[String]) -> (PathBuf, Vec<String>) {
    let lowers: Vec<&str> = options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .map(|l| l.split(':').collect())
        .unwrap_or_default();
    let first = Path::new(lowers.first().copied().unwrap_or("/"));
    let base = first
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let prefix = format!("{}/", base.display());
    let relative: Vec<&str> = lowers
        .iter()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l))
        .collect();
    let options = options
        .iter()
        .map(|o| {
            if o.starts_with("lowerdir=") {
                format!("lowerdir={}", relative.join(":"))
            } else {
                o.clone()
            }
        })
        .collect();
    (base, options)
}

pub fn unmount_all(target: &Path) {
    common::unmount_below(target);
    assert!(
        !common::is_mountpoint(target),
        "{} still mounted",
        target.display()
    );
}
