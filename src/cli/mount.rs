//! `lamina mount`, `umount`, `mounts`, `info`, `diff`, `commit`.

use super::args::{CommitArgs, DiffArgs, MountArgs, MountFormat, MountsArgs, UmountArgs};
use super::format::{choose, emit, records, utc_time, Listing, Record};
use super::load::LayerPrinter;
use super::output::{short_id, time_ago};
use super::{CliError, CliResult, Context};
use crate::engine::{self, ConfigChange, Engine, MountOptions};
use serde_json::json;
use std::path::Path;

pub(crate) fn parse_changes(changes: &[String]) -> Result<Vec<ConfigChange>, CliError> {
    changes
        .iter()
        .map(|c| ConfigChange::parse(c).context(|| format!("--change {c:?}")))
        .collect()
}

pub fn mount(root: &Path, a: MountArgs) -> CliResult {
    let what = || format!("mount {}", a.image);
    let mut engine = Engine::open(root).context(what)?;
    let opts = MountOptions {
        name: a.name.clone(),
        target: a.target.clone(),
        readonly: a.read_only,
        driver: a.driver,
        no_mount: a.no_mount,
        bundle: a.bundle.clone(),
        command: a.command.clone(),
    };
    let mounted = engine.mount(&a.image, &opts).context(what)?;
    if a.format == MountFormat::Json {
        let out = json!({
            "id": mounted.id.as_str(),
            "image": mounted.image_id.to_string(),
            "mountpoint": mounted.mountpoint,
            "driver": mounted.driver.name(),
            "readonly": mounted.readonly,
            "bundle": a.bundle,
            "mounts": mounted.mounts,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", mounted.mountpoint.display());
    }
    Ok(())
}

pub fn umount(root: &Path, a: UmountArgs) -> CliResult {
    let mut engine = Engine::open(root).context(|| "umount".to_string())?;
    for m in &a.mounts {
        let row = engine.unmount(m).context(|| format!("umount {m}"))?;
        println!("{}", row.id);
    }
    Ok(())
}

/// `mounts`' default table: the ID cut to 12 characters, as docker cuts IDs.
const MOUNTS_TABLE: &str = "table {{truncate .ID 12}}\\t{{.Image}}\\t{{.Driver}}\\t{{.Mode}}\\t{{.CreatedSince}}\\t{{.Mountpoint}}";

pub const MOUNT_TITLES: &[(&str, &str)] = &[
    ("ID", "MOUNT ID"),
    ("Image", "IMAGE"),
    ("ImageID", "IMAGE ID"),
    ("Driver", "DRIVER"),
    ("Mode", "MODE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Mountpoint", "MOUNTPOINT"),
];

/// `lamina mounts`: one row per mount; `-q` prints whole IDs (what `umount` takes).
pub fn mounts(root: &Path, a: MountsArgs) -> CliResult {
    let listing = Listing::parse(&choose(a.format.as_deref(), a.quiet, MOUNTS_TABLE))?;
    let engine = Engine::open(root).context(|| "mounts".to_string())?;
    let mut rows: Vec<Record> = vec![];
    // `container ls` lists the containers: the writable mounts.
    for m in engine
        .mounts()?
        .into_iter()
        .filter(|m| !(a.writable_only && m.readonly))
    {
        let image = engine
            .familiar_tags(&m.image_id)?
            .into_iter()
            .next()
            .unwrap_or_else(|| short_id(&m.image_id).to_string());
        rows.push(vec![
            ("ID", m.id.as_str().to_string()),
            ("Image", image),
            ("ImageID", m.image_id.to_string()),
            ("Driver", m.driver.clone()),
            ("Mode", if m.readonly { "ro" } else { "rw" }.to_string()),
            ("CreatedSince", time_ago(m.created)),
            ("CreatedAt", utc_time(m.created)),
            ("Mountpoint", m.target.clone()),
        ]);
    }
    emit(&listing.render(&records("mount", &rows), MOUNT_TITLES)?);
    Ok(())
}

pub fn info(root: &Path) -> CliResult {
    let engine = Engine::open(root).context(|| "info".to_string())?;
    let info = engine.info()?;
    let f = &info.features;
    println!("Root: {}", root.display());
    println!("Images: {}", info.images);
    println!("Layers: {}", info.layers);
    println!("Mounts: {}", info.mounts);
    println!("Kernel: {}", f.kernel);
    println!("Overlay: {}", yes_no(f.overlay));
    println!(
        "New mount API (fsopen/fsmount): {}",
        yes_no(f.new_mount_api)
    );
    println!("Overlay lowerdir+: {}", yes_no(f.lowerdir_plus));
    println!("Overlay lowerdir+ by fd: {}", yes_no(f.lowerdir_fd));
    println!("Max lower layers: {}", f.max_lowers);
    println!(
        "Default driver: {}",
        if f.overlay { "overlay" } else { "copy" }
    );
    println!(
        "Gzip decoder: {}",
        crate::unpack::GzipBackend::selected().describe()
    );
    println!("Zstd decoder: {}", crate::unpack::zstd_decoder_name());
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub fn diff(root: &Path, a: DiffArgs) -> CliResult {
    let what = || format!("diff {}", a.id);
    let engine = Engine::open(root).context(what)?;
    let changes = engine.mount_changes(&a.id).context(what)?;
    print!("{}", engine::format_changes(&changes));
    Ok(())
}

pub fn commit(root: &Path, a: CommitArgs) -> CliResult {
    let what = || format!("commit {}", a.id);
    let tag = engine::normalize_tag(&a.name).context(what)?;
    let changes = parse_changes(&a.change).context(what)?;
    let mut engine = Engine::open(root).context(what)?;
    engine.set_max_layer_expansion(a.max_layer_expansion);
    let printer = LayerPrinter::new("Committing");
    let loaded = engine
        .commit_mount(
            &a.id,
            &tag,
            &changes,
            a.message.as_deref(),
            a.author.as_deref(),
            &printer,
        )
        .context(what)?;
    drop(printer);
    println!("{}", loaded.id);
    Ok(())
}

#[cfg(test)]
#[path = "mount_tests.rs"]
mod tests;
