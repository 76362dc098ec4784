//! `lamina mount`, `umount`, `mounts`, `info`, `diff`, `commit`.

use super::args::{CommitArgs, DiffArgs, MountArgs, MountsArgs, UmountArgs};
use super::load::LayerPrinter;
use super::output::{print_table, short_id, time_ago};
use super::{CliError, CliResult, Context};
use crate::image::change::ConfigChange;
use crate::runtime;
use crate::store::{self, Driver, MountOptions, Store};
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
    let driver = Driver::parse(&a.driver).ok_or_else(|| {
        CliError(format!(
            "{}: unknown driver {:?} (overlay or copy)",
            what(),
            a.driver
        ))
    })?;
    let json = match a.format.as_str() {
        "json" => true,
        "text" | "" => false,
        f => {
            return Err(CliError(format!(
                "{}: unknown format {f:?} (text or json)",
                what()
            )))
        }
    };
    let target = match (&a.bundle, &a.target) {
        (Some(_), Some(_)) => {
            return Err(CliError(format!(
                "{}: --bundle mounts at BUNDLE/rootfs; do not give --target too",
                what()
            )))
        }
        (Some(b), None) => Some(b.join("rootfs")),
        (None, t) => t.clone(),
    };
    let mut store = Store::open(root).context(what)?;
    let opts = MountOptions {
        name: a.name.clone(),
        target,
        readonly: a.read_only,
        driver,
        no_mount: a.no_mount,
    };
    let mounted = store.mount_image(&a.image, &opts).context(what)?;
    if let Some(bundle) = &a.bundle {
        let written = write_bundle(&store, &mounted, bundle, &a);
        if let Err(e) = written {
            let _ = store.unmount(&mounted.id);
            return Err(CliError(format!(
                "{}: bundle {}: {e}",
                what(),
                bundle.display()
            )));
        }
    }
    if json {
        let out = json!({
            "id": mounted.id,
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

fn write_bundle(
    store: &Store,
    mounted: &store::MountedImage,
    bundle: &Path,
    a: &MountArgs,
) -> Result<(), CliError> {
    let config = store.config(&mounted.image_id)?;
    let c = config.container_config();
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let cfg = runtime::ImageRuntimeConfig {
        user: non_empty(&c.user),
        env: c.env.clone(),
        entrypoint: c.entrypoint.clone().unwrap_or_default(),
        cmd: c.cmd.clone().unwrap_or_default(),
        working_dir: non_empty(&c.working_dir),
        hostname: None,
        stop_signal: non_empty(&c.stop_signal),
    };
    let opts = runtime::BundleOptions {
        args_override: (!a.command.is_empty()).then(|| a.command.clone()),
        readonly_rootfs: mounted.readonly,
        terminal: false,
        hostname: mounted.id.chars().take(12).collect(),
    };
    let spec = runtime::build_spec(&cfg, &mounted.mountpoint, &opts)?;
    runtime::write_bundle(bundle, &spec)?;
    Ok(())
}

pub fn umount(root: &Path, a: UmountArgs) -> CliResult {
    let mut store = Store::open(root).context(|| "umount".to_string())?;
    for m in &a.mounts {
        let row = store.unmount(m).context(|| format!("umount {m}"))?;
        println!("{}", row.id);
    }
    Ok(())
}

pub fn mounts(root: &Path, a: MountsArgs) -> CliResult {
    let store = Store::open(root).context(|| "mounts".to_string())?;
    let rows = store.db().mounts()?;
    if a.quiet {
        for m in &rows {
            println!("{}", m.id);
        }
        return Ok(());
    }
    if a.format == "json" {
        let list: Vec<_> = rows
            .iter()
            .map(|m| {
                json!({"id": m.id, "image": m.image_id.to_string(), "mountpoint": m.target,
                       "driver": m.driver, "readonly": m.readonly, "created": m.created})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut table = vec![vec![
        "MOUNT ID".to_string(),
        "IMAGE".into(),
        "DRIVER".into(),
        "MODE".into(),
        "CREATED".into(),
        "MOUNTPOINT".into(),
    ]];
    for m in &rows {
        let image = store
            .familiar_tags(&m.image_id)?
            .into_iter()
            .next()
            .unwrap_or_else(|| short_id(&m.image_id).to_string());
        table.push(vec![
            m.id.chars().take(12).collect(),
            image,
            m.driver.clone(),
            if m.readonly { "ro".into() } else { "rw".into() },
            time_ago(m.created),
            m.target.clone(),
        ]);
    }
    print_table(&table);
    Ok(())
}

pub fn info(root: &Path) -> CliResult {
    let store = Store::open(root).context(|| "info".to_string())?;
    let f = store.features()?;
    let db = store.db();
    println!("Root: {}", root.display());
    println!("Images: {}", db.images()?.len());
    println!("Layers: {}", db.layers()?.len());
    println!("Mounts: {}", db.mounts()?.len());
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
    let store = Store::open(root).context(what)?;
    let changes = store.mount_changes(&a.id).context(what)?;
    print!("{}", runtime::format_changes(&changes));
    Ok(())
}

pub fn commit(root: &Path, a: CommitArgs) -> CliResult {
    let what = || format!("commit {}", a.id);
    let tag = store::normalize_tag(&a.name).context(what)?;
    let changes = parse_changes(&a.change).context(what)?;
    let mut store = Store::open(root).context(what)?;
    let printer = LayerPrinter::new("Committing");
    let loaded = store
        .commit_mount(
            &a.id,
            &tag,
            &changes,
            a.message.as_deref(),
            a.author.as_deref(),
            &|e| printer.event(e),
        )
        .context(what)?;
    drop(printer);
    println!("{}", loaded.id);
    Ok(())
}
