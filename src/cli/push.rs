//! `lamina push`, with docker's words:
//!
//! ```text
//! The push refers to repository [localhost:5000/app]
//! 3f2a1b4c5d6e: Pushed
//! 9c01aa2b3c4d: Layer already exists
//! 77aa01bb02cc: Mounted from other/app
//! latest: digest: sha256:… size: 1234
//! ```
//!
//! Layers are named by the first 12 hex digits of their blob digest, bottom first.

use super::args::PushArgs;
use super::pull::registry_options;
use super::{CliError, CliResult, Context};
use crate::engine::{
    Digest, Engine, LayerCompression, PushObserver, PushStatus, Pusher, Reference,
};
use std::io::Write;
use std::path::Path;

pub fn push(root: &Path, a: PushArgs) -> CliResult {
    let what = || format!("push {}", a.reference);
    let reference = Reference::parse(&a.reference).context(what)?;
    if a.all_tags && reference.tag.is_some() {
        return Err(CliError(format!(
            "{}: a tag cannot be used with --all-tags/-a",
            what()
        )));
    }
    let compression =
        LayerCompression::new(a.compression_format, a.compression_level).context(what)?;
    let mut engine = Engine::open(root).context(what)?;
    // The store is asked first: an image that is not there needs no registry.
    let targets = engine.push_targets(&reference, a.all_tags).context(what)?;
    if reference.tag.is_none() && !a.all_tags {
        line(a.quiet, "Using default tag: latest");
    }
    let pusher = Pusher::open(&reference, &registry_options(&a.registry)).context(what)?;
    line(
        a.quiet,
        &format!("The push refers to repository [{}]", reference.repository()),
    );
    let ui = PushUi { quiet: a.quiet };
    for (tag, id) in &targets {
        let pushed = engine
            .push(&pusher, tag, id, compression, &ui)
            .context(|| format!("push {}:{tag}", reference.repository_familiar()))?;
        line(
            a.quiet,
            &format!("{tag}: digest: {} size: {}", pushed.digest, pushed.size),
        );
        if a.quiet {
            println!("{}:{tag}", reference.repository());
        }
    }
    Ok(())
}

fn line(quiet: bool, s: &str) {
    if !quiet {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
    }
}

struct PushUi {
    quiet: bool,
}

impl PushObserver for PushUi {
    fn layer(&self, blob: &Digest, status: &PushStatus) {
        let word = match status {
            PushStatus::Pushed => "Pushed".to_string(),
            PushStatus::AlreadyExists => "Layer already exists".to_string(),
            PushStatus::MountedFrom(repo) => format!("Mounted from {repo}"),
        };
        line(self.quiet, &format!("{}: {word}", &blob.hex()[..12]));
    }

    fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}
