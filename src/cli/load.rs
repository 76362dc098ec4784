//! `lamina load` and `lamina import`.

use super::args::{ImportArgs, LoadArgs};
use super::pull::{platform_warning, InOrder};
use super::{CliResult, Context};
use crate::engine::{self, Engine, LayerEvent, LayerStatus, Loader, Observer, Platform};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

/// Prints docker's per-layer lines in layer order (bottom first), whatever order the concurrent
/// workers finish in, and a spinner while work is under way on a terminal.
pub(crate) struct LayerPrinter {
    bar: Option<indicatif::ProgressBar>,
    /// Finished lines waiting for the layers below them.
    pending: Mutex<InOrder>,
    /// `--platform` was given.
    platform_requested: bool,
}

impl LayerPrinter {
    pub(crate) fn new(what: &str) -> LayerPrinter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_message(what.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        LayerPrinter {
            bar,
            pending: Mutex::new(InOrder::default()),
            platform_requested: false,
        }
    }
}

impl LayerPrinter {
    /// Whether `--platform` was given (a mismatch is then with the platform "requested").
    pub(crate) fn platform_requested(mut self, requested: bool) -> LayerPrinter {
        self.platform_requested = requested;
        self
    }
}

impl Observer for LayerPrinter {
    fn layer(&self, e: &LayerEvent) {
        let line = match e.status {
            LayerStatus::Exists => format!("{}: Already exists", e.diff_id.short()),
            LayerStatus::Loaded => format!("{}: Loading layer", e.diff_id.short()),
            LayerStatus::Loading => {
                if let Some(b) = &self.bar {
                    b.set_message(format!("{}: Loading layer", e.diff_id.short()));
                }
                return;
            }
        };
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        for line in pending.push(e.index, line) {
            match &self.bar {
                Some(b) => b.println(line),
                None => println!("{line}"),
            }
        }
    }

    fn warning(&self, message: &str) {
        eprintln!("WARNING: {}", super::output::escape_controls(message));
    }

    fn platform_mismatch(&self, name: &str, image: &Platform, wanted: &Platform) {
        self.warning(&platform_warning(
            name,
            image,
            wanted,
            self.platform_requested,
        ));
    }
}

impl Drop for LayerPrinter {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

pub(crate) fn platform(p: &Option<String>) -> Result<Platform, super::CliError> {
    match p {
        Some(p) => Platform::parse(p).context(|| format!("--platform {p}")),
        None => Ok(Platform::host()),
    }
}

pub fn load(root: &Path, a: LoadArgs) -> CliResult {
    let what = || format!("load {}", a.source);
    let loader = Loader::open(&a.source, a.tag.as_deref()).context(what)?;
    let platform = platform(&a.platform)?;
    let mut engine = Engine::open(root).context(what)?;
    engine.set_max_layer_expansion(a.max_layer_expansion);
    engine.set_keep_blobs(a.keep_blobs);
    let names = loader.ref_names();
    for (i, name) in names.iter().enumerate() {
        // Which image of several failed; one image is what SOURCE already names.
        let ref_what = || match name {
            Some(n) if names.len() > 1 => format!("load {}: {n}", a.source),
            _ => what(),
        };
        let printer = LayerPrinter::new("Loading").platform_requested(a.platform.is_some());
        let loaded = engine
            .load(&loader, i, a.tag.as_deref(), &platform, &printer)
            .context(ref_what)?;
        drop(printer);
        if a.quiet {
            println!("{}", loaded.id);
        } else if loaded.tags.is_empty() {
            println!("Loaded image ID: {}", loaded.id);
        } else {
            for t in &loaded.tags {
                println!("Loaded image: {}", engine::familiar(t));
            }
        }
    }
    Ok(())
}

pub fn import(root: &Path, a: ImportArgs) -> CliResult {
    let what = || format!("import {}", a.rootfs.display());
    let tag = engine::normalize_tag(&a.name).context(what)?;
    let mut engine = Engine::open(root).context(what)?;
    let printer = LayerPrinter::new("Importing");
    let changes = super::mount::parse_changes(&a.change).context(what)?;
    let loaded = engine
        .import_rootfs(&a.rootfs, &tag, &changes, a.message.as_deref(), &printer)
        .context(what)?;
    drop(printer);
    println!("{}", loaded.id);
    Ok(())
}
