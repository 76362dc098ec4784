//! `lamina manifest create|annotate|push|rm|inspect`, with docker's words
//! (cli/command/manifest):
//!
//! ```text
//! $ lamina manifest create 127.0.0.1:5000/app:1 127.0.0.1:5000/app:amd64 127.0.0.1:5000/app:arm64
//! Created manifest list 127.0.0.1:5000/app:1
//! $ lamina manifest annotate 127.0.0.1:5000/app:1 127.0.0.1:5000/app:arm64 --variant v8
//! $ lamina manifest push 127.0.0.1:5000/app:1
//! sha256:…
//! ```
//!
//! `inspect` looks for a local list first, then asks the registry (manifest.rs); with two names
//! it shows one image of a local list.

use super::args::{
    ManifestAnnotateArgs, ManifestCommand, ManifestCreateArgs, ManifestInspectArgs,
    ManifestPushArgs, ManifestRmArgs,
};
use super::manifest::{image_manifest, inspect_remote, json_indent, print_line};
use super::pull::registry_options;
use super::{CliError, CliResult, Context};
use crate::engine::{Digest, Engine, ListMember, LocalList, PlatformAnnotation};
use std::path::Path;

pub fn manifest(root: &Path, c: ManifestCommand) -> CliResult {
    match c {
        ManifestCommand::Inspect(a) => inspect(root, a),
        ManifestCommand::Create(a) => create(root, a),
        ManifestCommand::Annotate(a) => annotate(root, a),
        ManifestCommand::Push(a) => push(root, a),
        ManifestCommand::Rm(a) => rm(root, a),
    }
}

fn create(root: &Path, a: ManifestCreateArgs) -> CliResult {
    let what = || format!("manifest create {}", a.list);
    let mut engine = Engine::open(root).context(what)?;
    let list = engine
        .manifest_list_create(&a.list, &a.images, a.amend, &registry_options(&a.registry))
        .context(what)?;
    print_line(&format!("Created manifest list {}", list.full())).context(what)
}

fn annotate(root: &Path, a: ManifestAnnotateArgs) -> CliResult {
    let what = || format!("manifest annotate {} {}", a.list, a.image);
    let mut engine = Engine::open(root).context(what)?;
    let annotation = PlatformAnnotation {
        os: a.os.clone(),
        arch: a.arch.clone(),
        variant: a.variant.clone(),
        os_version: a.os_version.clone(),
        os_features: a.os_features.clone(),
    };
    engine
        .manifest_list_annotate(&a.list, &a.image, &annotation)
        .context(what)
}

fn push(root: &Path, a: ManifestPushArgs) -> CliResult {
    let what = || format!("manifest push {}", a.list);
    let mut engine = Engine::open(root).context(what)?;
    let pushed_ref = |reference: &str, digest: &Digest| {
        let _ = print_line(&format!("Pushed ref {reference} with digest: {digest}"));
    };
    let pushed = engine
        .manifest_list_push(
            &a.list,
            a.purge,
            &registry_options(&a.registry),
            &pushed_ref,
        )
        .context(what)?;
    print_line(&pushed.digest.to_string()).context(what)
}

/// Removes every list it can; each one that cannot be is said on stderr, and the exit code is 1.
fn rm(root: &Path, a: ManifestRmArgs) -> CliResult {
    let mut engine = Engine::open(root).context(|| "manifest rm".into())?;
    let mut failed = 0;
    for list in &a.lists {
        if let Err(e) = engine.manifest_list_remove(list) {
            eprintln!(
                "lamina: manifest rm {}",
                super::output::escape_controls(&format!("{list}: {e}"))
            );
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        _ => Err(CliError(
            "manifest rm: some manifest lists could not be removed".into(),
        )),
    }
}

/// docker's order: an image of a local list (two names), a local list, a registry's manifest.
fn inspect(root: &Path, a: ManifestInspectArgs) -> CliResult {
    match a.names.as_slice() {
        [list, image] => {
            let what = || format!("manifest inspect {list} {image}");
            let engine = Engine::open(root).context(what)?;
            let member = engine.manifest_list_member(list, image).context(what)?;
            print_line(&member_text(&member, a.verbose)).context(what)
        }
        [name] => {
            // As docker, anything that keeps a local list from being read sends the name to the
            // registry instead.
            let local = Engine::open(root)
                .ok()
                .and_then(|e| e.manifest_list(name).ok().flatten());
            match local {
                Some(list) => {
                    let what = || format!("manifest inspect {name}");
                    print_line(&list_text(&list, a.verbose).context(what)?).context(what)
                }
                None => inspect_remote(&a, name),
            }
        }
        _ => Err(CliError(
            "manifest inspect: expected [LIST] REF".to_string(),
        )),
    }
}

/// One image of a local list: its manifest tab-indented, or docker's `ImageManifest` with `-v`.
fn member_text(m: &ListMember, verbose: bool) -> String {
    if !verbose {
        return json_indent(&m.raw, "\t");
    }
    json_indent(image_manifest_of(m).as_bytes(), "\t")
}

fn image_manifest_of(m: &ListMember) -> String {
    let d = &m.descriptor;
    image_manifest(
        &m.reference,
        &d.digest,
        &d.media_type,
        &m.raw,
        d.platform.as_ref(),
    )
}

/// A local list: the document push would send (three-space indented, as it is), or with `-v`
/// the array of its images' `ImageManifest`s, tab-indented.
fn list_text(list: &LocalList, verbose: bool) -> Result<String, CliError> {
    if !verbose {
        let (_, bytes) = list
            .document()
            .map_err(|e| CliError(format!("failed to assemble ManifestDescriptor: {e}")))?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let entries: Vec<String> = list.members.iter().map(image_manifest_of).collect();
    Ok(json_indent(
        format!("[{}]", entries.join(",")).as_bytes(),
        "\t",
    ))
}
