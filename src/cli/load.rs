//! `lamina load` and `lamina import`.

use super::args::{ImportArgs, LoadArgs};
use super::{CliError, CliResult, Context};
use crate::image::Platform;
use crate::source::{self, SourceRef};
use crate::store::{self, LayerEvent, LayerStatus, Store};
use std::io::IsTerminal;
use std::path::Path;

/// The name a loaded ref gets: a full reference names the image itself; a bare one is a tag of the
/// repository named after the source (`gzip` in `oci/debian` is `debian:gzip`).
pub(crate) fn tag_for_ref(ref_name: &str, default_repository: &str) -> Result<String, CliError> {
    let name = if ref_name.contains(':') || ref_name.contains('/') {
        ref_name.to_string()
    } else {
        format!("{default_repository}:{ref_name}")
    };
    store::normalize_tag(&name).context(|| format!("ref {ref_name:?}"))
}

/// Prints docker's per-layer lines, and a spinner while work is under way on a terminal.
pub(crate) struct LayerPrinter {
    bar: Option<indicatif::ProgressBar>,
}

impl LayerPrinter {
    pub(crate) fn new(what: &str) -> LayerPrinter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_message(what.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        LayerPrinter { bar }
    }

    pub(crate) fn event(&self, e: &LayerEvent) {
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
        match &self.bar {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }
}

impl Drop for LayerPrinter {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

pub fn load(root: &Path, a: LoadArgs) -> CliResult {
    let what = || format!("load {}", a.source);
    let (source, want) = source::open_source(&a.source).context(what)?;
    let platform = match &a.platform {
        Some(p) => Platform::parse(p).context(|| format!("--platform {p}"))?,
        None => Platform::host(),
    };
    let refs = source.refs().context(what)?;
    let selected: Vec<SourceRef> = match &want {
        None => refs,
        Some(w) => vec![source::find_ref(&*source, w).context(what)?],
    };
    if selected.is_empty() {
        return Err(CliError(format!(
            "{}: {} holds no image",
            what(),
            source.describe()
        )));
    }
    if a.tag.is_some() && selected.len() > 1 {
        return Err(CliError(format!(
            "{}: --tag names one image, but {} holds {}; pick one with PATH:REF",
            what(),
            source.describe(),
            selected.len()
        )));
    }
    let mut store = Store::open(root).context(what)?;
    for r in &selected {
        let ref_what = || match &r.name {
            Some(n) => format!("load {}: {n}", a.source),
            None => what(),
        };
        let image = source::resolve(&*source, r, &platform).context(ref_what)?;
        for w in &image.warnings {
            eprintln!("lamina: warning: {w}");
        }
        let tags = match (&a.tag, &r.name) {
            (Some(t), _) => vec![store::normalize_tag(t).context(ref_what)?],
            (None, Some(n)) => {
                vec![tag_for_ref(n, &source.default_repository()).context(ref_what)?]
            }
            (None, None) => vec![],
        };
        let repo = tags.first().map(|t| repository_of(t));
        let repo_digest = match (&repo, &image.manifest_digest) {
            (Some(repo), Some(d)) => Some((repo.as_str(), d)),
            _ => None,
        };
        let printer = LayerPrinter::new("Loading");
        let loaded = store
            .ingest(&*source, &image, &tags, repo_digest, &|e| printer.event(e))
            .context(ref_what)?;
        drop(printer);
        if a.quiet {
            println!("{}", loaded.id);
        } else if loaded.tags.is_empty() {
            println!("Loaded image ID: {}", loaded.id);
        } else {
            for t in &loaded.tags {
                println!("Loaded image: {}", store::familiar(t));
            }
        }
    }
    Ok(())
}

/// The repository part of a full tag name (`docker.io/library/debian:gzip` -> `docker.io/library/debian`).
pub(crate) fn repository_of(full: &str) -> String {
    match full.rfind(':') {
        Some(i) if !full[i..].contains('/') => full[..i].to_string(),
        _ => full.to_string(),
    }
}

pub fn import(root: &Path, a: ImportArgs) -> CliResult {
    let what = || format!("import {}", a.rootfs.display());
    let tag = store::normalize_tag(&a.name).context(what)?;
    let mut store = Store::open(root).context(what)?;
    let printer = LayerPrinter::new("Importing");
    let changes = super::mount::parse_changes(&a.change).context(what)?;
    let loaded = store
        .import_rootfs(&a.rootfs, &tag, &changes, a.message.as_deref(), &|e| {
            printer.event(e)
        })
        .context(what)?;
    drop(printer);
    println!("{}", loaded.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_become_tags_as_the_design_says() {
        let cases = [
            ("gzip", "debian", "docker.io/library/debian:gzip"),
            ("debian:gzip", "whatever", "docker.io/library/debian:gzip"),
            ("example.com/x/y:1", "d", "example.com/x/y:1"),
            (
                "busybox:latest",
                "busybox-oci",
                "docker.io/library/busybox:latest",
            ),
        ];
        for (r, repo, want) in cases {
            assert_eq!(tag_for_ref(r, repo).unwrap(), want, "{r}");
        }
        assert!(tag_for_ref("Bad Tag", "debian").is_err());
    }

    #[test]
    fn repository_is_the_name_without_tag() {
        assert_eq!(
            repository_of("docker.io/library/debian:gzip"),
            "docker.io/library/debian"
        );
        assert_eq!(repository_of("localhost:5000/a/b:1"), "localhost:5000/a/b");
    }
}
