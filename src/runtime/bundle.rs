//! Writing an OCI bundle directory: `config.json` next to the `rootfs` mountpoint.
//!
//! config.json is replaced atomically (temp file, fsync, rename, fsync of the directory), so a runtime
//! started at any moment reads either the old config or the new one, never half of one.

use std::io::Write;
use std::path::Path;

use crate::sys::create::{create_temp, open_dir_nofollow};
use rustix::fs::{Mode, OFlags};

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
    // Everything below happens in the bundle dir opened without following a symlink anywhere on
    // its path (a new one is 0700: its rootfs shows the image's setuid binaries), and by name in
    // that dir: a planted `rootfs` or `config.json` symlink is never written through.
    let dir = open_dir_nofollow(bundle_dir, Some(Mode::from_raw_mode(0o700)))
        .map_err(io_err(bundle_dir))?;
    let rootfs = bundle_dir.join(ROOTFS_DIR);
    match rustix::fs::mkdirat(&dir, ROOTFS_DIR, Mode::from_raw_mode(0o755)) {
        Err(e) if e != rustix::io::Errno::EXIST => return Err(io_err(&rootfs)(e.into())),
        _ => {}
    }

    let mut json = serde_json::to_value(spec).map_err(RuntimeError::Serialize)?;
    sort_capability_sets(&mut json);
    let mut text = serde_json::to_vec_pretty(&json).map_err(RuntimeError::Serialize)?;
    text.push(b'\n');

    let target = bundle_dir.join(CONFIG_FILE);
    let (mut file, temp) =
        create_temp(&dir, CONFIG_FILE, Mode::from_raw_mode(0o644)).map_err(io_err(&target))?;
    let written = (|| {
        file.write_all(&text)?;
        file.sync_all()?;
        rustix::fs::renameat(&dir, &temp, &dir, CONFIG_FILE)?;
        rustix::fs::fsync(rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(&dir, &temp, rustix::fs::AtFlags::empty());
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
