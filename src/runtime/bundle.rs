//! Writing an OCI bundle directory: `config.json` next to the `rootfs` mountpoint.
//!
//! config.json is replaced atomically (temp file, fsync, rename, fsync of the directory), so a runtime
//! started at any moment reads either the old config or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::Spec;

use super::RuntimeError;

pub const CONFIG_FILE: &str = "config.json";
pub const ROOTFS_DIR: &str = "rootfs";

/// Writes `spec` as `bundle_dir/config.json`, creating `bundle_dir` and an empty `bundle_dir/rootfs`
/// mountpoint when they are missing (an existing rootfs, mounted or not, is left alone).
pub fn write_bundle(bundle_dir: &Path, spec: &Spec) -> Result<(), RuntimeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| RuntimeError::WriteBundle { path, source }
    };
    fs::create_dir_all(bundle_dir).map_err(io_err(bundle_dir))?;
    let rootfs = bundle_dir.join(ROOTFS_DIR);
    match fs::create_dir(&rootfs) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_err(&rootfs)(e)),
        _ => {}
    }

    let mut json = serde_json::to_value(spec).map_err(RuntimeError::Serialize)?;
    sort_capability_sets(&mut json);
    let mut text = serde_json::to_vec_pretty(&json).map_err(RuntimeError::Serialize)?;
    text.push(b'\n');

    let target = bundle_dir.join(CONFIG_FILE);
    let temp = bundle_dir.join(format!(
        ".{CONFIG_FILE}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&temp, &target)?;
        File::open(bundle_dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(io_err(&target))
}

/// oci-spec keeps capability sets in a HashSet, whose order changes from run to run; sort them so the
/// same image always gives the same config.json.
fn sort_capability_sets(json: &mut serde_json::Value) {
    let Some(caps) = json
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for set in caps.values_mut() {
        if let Some(list) = set.as_array_mut() {
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}
