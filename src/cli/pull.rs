//! `lamina pull`, with docker's words:
//!
//! ```text
//! latest: Pulling from library/debian
//! 3f2a1b4c5d6e: Already exists
//! 9c01aa2b3c4d: Pull complete
//! Digest: sha256:…
//! Status: Downloaded newer image for debian:latest
//! docker.io/library/debian:latest
//! ```
//!
//! Layers are named by the first 12 hex digits of their blob digest, as docker names them. On a
//! terminal each layer being fetched has a live progress bar; otherwise only the final lines print.

use super::args::{PullArgs, RegistryArgs};
use super::output::human_size;
use super::{CliError, CliResult, Context};
use crate::engine::{
    self, Descriptor, Digest, Engine, LayerEvent, LayerStatus, Observer, Platform, Puller,
    Reference, RegistryOptions,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub(crate) fn registry_options(a: &RegistryArgs) -> RegistryOptions {
    RegistryOptions {
        insecure: a.insecure,
        cert_dir: a.cert_dir.clone(),
        // retries and resumes are said as they happen, a line each
        notices: crate::engine::Notices::new(|m| {
            eprintln!("{}", super::output::escape_controls(m))
        }),
        ..RegistryOptions::default()
    }
}

pub fn pull(root: &Path, a: PullArgs) -> CliResult {
    let what = || format!("pull {}", a.reference);
    let reference = Reference::parse(&a.reference).context(what)?;
    if a.all_tags && (reference.tag.is_some() || reference.digest.is_some()) {
        return Err(CliError(format!(
            "{}: a tag or digest cannot be used with --all-tags/-a",
            what()
        )));
    }
    let platform = super::load::platform(&a.platform)?;
    let mut engine = Engine::open(root).context(what)?;
    engine.set_max_layer_expansion(a.max_layer_expansion);
    engine.set_keep_blobs(a.keep_blobs);
    let ui = Arc::new(PullUi::new(a.quiet, a.to_stderr, a.platform.is_some()));
    let progress_ui = ui.clone();
    let puller = Puller::open(
        &reference,
        &registry_options(&a.registry),
        Some(Arc::new(move |blob: &Digest, done, total| {
            progress_ui.progress(blob, done, total)
        })),
    )
    .context(what)?;

    let wanted: Vec<String> = if a.all_tags {
        let tags = puller.tags().context(what)?;
        for t in &tags.refused {
            let shown: String = t.chars().take(80).collect();
            let more = if t.chars().count() > 80 { "..." } else { "" };
            ui.warning(&format!(
                "skipping {shown:?}{more} the registry listed as a tag: {}",
                engine::TAG_RULE
            ));
        }
        if tags.valid.is_empty() {
            let refused = match tags.refused.len() {
                0 => String::new(),
                n => format!(" ({n} invalid ones skipped)"),
            };
            return Err(CliError(format!(
                "{}: the repository has no tags{refused}",
                what()
            )));
        }
        tags.valid
    } else {
        if reference.tag.is_none() && reference.digest.is_none() {
            ui.line(&format!(
                "Using default tag: {}",
                engine::wanted(&reference)
            ));
        }
        vec![engine::wanted(&reference)]
    };
    let mut any_new = false;
    for w in &wanted {
        let shown = engine::full_name(&reference, w);
        let one_what = || format!("pull {shown}");
        // docker names what it pulls only once the registry has answered for it.
        let resolved = puller.resolve(w, &platform).context(one_what)?;
        ui.line(&format!("{w}: Pulling from {}", reference.path));
        let pulled = engine
            .pull(&puller, &resolved, &platform, &*ui)
            .context(one_what)?;
        ui.line(&format!("Digest: {}", pulled.digest));
        any_new |= pulled.new;
        if !a.all_tags {
            ui.line(&status_line(pulled.new, &engine::familiar(&shown)));
            if a.quiet {
                println!("{shown}");
            } else if !a.to_stderr {
                // `docker run` ends its pull at the status line
                ui.line(&shown);
            }
        }
    }
    if a.all_tags {
        ui.line(&status_line(any_new, &reference.repository_familiar()));
        let repo = reference.repository();
        if a.quiet {
            println!("{repo}");
        } else {
            ui.line(&repo);
        }
    }
    Ok(())
}

/// docker's words for an image that is not for the platform wanted: "requested" only when one was
/// asked for with `--platform`, else the host's.
pub(crate) fn platform_warning(
    name: &str,
    image: &Platform,
    wanted: &Platform,
    requested: bool,
) -> String {
    if requested {
        format!(
            "image with reference {name} was found but does not match the requested platform: \
             wanted {wanted}, actual: {image}"
        )
    } else {
        format!(
            "the platform of image {name} ({image}) does not match the detected host platform \
             ({wanted})"
        )
    }
}

/// Lines of layers (bottom first), printed in that order whatever order the concurrent workers
/// finish in, as docker prints them.
#[derive(Default)]
pub(crate) struct InOrder {
    next: usize,
    waiting: BTreeMap<usize, String>,
}

impl InOrder {
    /// Takes the line of layer `index`; returns the lines now ready to print, in order.
    pub(crate) fn push(&mut self, index: usize, line: String) -> Vec<String> {
        self.waiting.insert(index, line);
        let mut ready = vec![];
        while let Some(line) = self.waiting.remove(&self.next) {
            ready.push(line);
            self.next += 1;
        }
        ready
    }
}

fn status_line(new: bool, name: &str) -> String {
    if new {
        format!("Status: Downloaded newer image for {name}")
    } else {
        format!("Status: Image is up to date for {name}")
    }
}

/// The output of a pull: docker's lines, and progress bars on a terminal.
struct PullUi {
    multi: Option<MultiProgress>,
    quiet: bool,
    to_stderr: bool,
    /// `--platform` was given.
    platform_requested: bool,
    state: Mutex<UiState>,
}

#[derive(Default)]
struct UiState {
    /// diffID -> blob digest, for the image being pulled.
    blob_of: HashMap<Digest, Digest>,
    /// Live bars, by blob digest.
    bars: HashMap<Digest, ProgressBar>,
    /// The layer lines, held back until the layers below them have theirs.
    lines: InOrder,
}

impl PullUi {
    fn new(quiet: bool, to_stderr: bool, platform_requested: bool) -> PullUi {
        let multi = match to_stderr {
            false => (!quiet && std::io::stdout().is_terminal())
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
            true => (!quiet && std::io::stderr().is_terminal())
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        };
        PullUi {
            multi,
            quiet,
            to_stderr,
            platform_requested,
            state: Mutex::new(UiState::default()),
        }
    }

    fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None if self.to_stderr => eprintln!("{s}"),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{s}");
            }
        }
    }
}

impl Observer for PullUi {
    fn warning(&self, message: &str) {
        let s = format!("WARNING: {}", super::output::escape_controls(message));
        match &self.multi {
            Some(m) => m.suspend(|| eprintln!("{s}")),
            None => eprintln!("{s}"),
        }
    }

    fn platform_mismatch(&self, name: &str, image: &Platform, wanted: &Platform) {
        self.warning(&platform_warning(
            name,
            image,
            wanted,
            self.platform_requested,
        ));
    }

    fn image_started(&self, layers: &[(Descriptor, Digest)]) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.lines = InOrder::default();
        st.blob_of = layers
            .iter()
            .map(|(desc, diff_id)| (diff_id.clone(), desc.digest.clone()))
            .collect();
        // Every layer shows from the start, as docker shows "Waiting" until a worker takes it.
        if let Some(m) = &self.multi {
            for (desc, _) in layers {
                if st.bars.contains_key(&desc.digest) {
                    continue; // the same blob twice in one image
                }
                let bar = m.add(ProgressBar::new(desc.size));
                bar.set_style(waiting_style());
                bar.set_prefix(desc.digest.short().to_string());
                st.bars.insert(desc.digest.clone(), bar);
            }
        }
    }

    fn image_finished(&self) {
        if let Ok(mut st) = self.state.lock() {
            for (_, bar) in st.bars.drain() {
                bar.finish_and_clear();
            }
        }
    }

    fn layer(&self, e: &LayerEvent) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let blob = st
            .blob_of
            .get(&e.diff_id)
            .cloned()
            .unwrap_or_else(|| e.diff_id.clone());
        let line = match e.status {
            LayerStatus::Exists => {
                if let Some(bar) = st.bars.remove(&blob) {
                    bar.finish_and_clear();
                }
                format!("{}: Already exists", blob.short())
            }
            LayerStatus::Loaded => {
                if let Some(bar) = st.bars.remove(&blob) {
                    bar.finish_and_clear();
                }
                format!("{}: Pull complete", blob.short())
            }
            LayerStatus::Loading => {
                if let Some(bar) = st.bars.get(&blob) {
                    bar.set_style(bar_style());
                }
                return;
            }
        };
        let ready = st.lines.push(e.index, line);
        drop(st);
        for line in ready {
            self.line(&line);
        }
    }
}

impl PullUi {
    /// Bytes of a layer blob arrived (other blobs, such as configs, have no bar).
    fn progress(&self, blob: &Digest, done: u64, total: u64) {
        let Ok(st) = self.state.lock() else { return };
        if let Some(bar) = st.bars.get(blob) {
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.set_position(done);
            bar.set_message(format!("{}/{}", human_size(done), human_size(total)));
        }
    }
}

fn waiting_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: Waiting")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: Downloading [{bar:40}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
