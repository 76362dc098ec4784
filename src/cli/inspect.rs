//! `lamina inspect` (and `image inspect`): docker's image inspect document, as JSON indented by four
//! spaces, or through `--format`/`-f` (a Go template run on each image, as `docker inspect -f`).
//!
//! The field set is docker's (`Id`, `RepoTags`, `RepoDigests`, `Parent`, `Comment`, `Created`,
//! `DockerVersion`, `Author`, `Config`, `Architecture`, `Variant`, `Os`, `Size`, `GraphDriver`,
//! `RootFS`, `Metadata`), with `""` for an absent string, plus lamina's `Mounts` (the mounts using
//! the image). `GraphDriver` is `overlay` (the format of lamina's layer dirs) with the layer dirs as
//! docker and podman show them for an image: `UpperDir` the top layer, `LowerDir` the ones below it
//! (top first, `:`-separated). An image has no merged or work dir; its mounts do.
//!
//! Several names: the images found are printed, then one `Error: No such object: X` line on stderr
//! for each name that is not, and the exit code is 1. A template that does not parse exits 64.

use super::args::InspectArgs;
use super::format::{emit, rfc3339};
use super::template::{Template, Value};
use crate::engine::{Engine, ErrorKind, ImageDetails};
use std::path::{Path, PathBuf};

/// docker's exit code for a template that does not parse (`cli.StatusError{StatusCode: 64}`).
const EXIT_BAD_TEMPLATE: i32 = 64;

/// Prints what it found and its errors itself; returns the exit code.
pub fn inspect(root: &Path, a: InspectArgs, object: &str) -> i32 {
    let template = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => match Template::parse(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("template parsing error: {e}");
                return EXIT_BAD_TEMPLATE;
            }
        },
    };
    let engine = match Engine::open(root) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("lamina: inspect: {e}");
            return 1;
        }
    };
    let mut found = vec![];
    let mut errors = vec![];
    for name in &a.images {
        match engine.inspect(name) {
            Ok(d) => {
                let dirs = engine.layer_dirs(&d.row.id).unwrap_or_default();
                found.push(image_value(&d, &dirs));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                errors.push(format!("Error: No such {object}: {name}"))
            }
            Err(e) => errors.push(format!("lamina: inspect {name}: {e}")),
        }
    }
    let out = match (&template, a.format.as_deref()) {
        (Some(t), _) => {
            let mut out = String::new();
            for v in &found {
                match t.execute(v) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => errors.push(format!("template parsing error: {e}")),
                }
            }
            if out.is_empty() {
                out.push('\n');
            }
            out
        }
        (None, Some("json")) => format!("{}\n", Value::List(found).to_json(true)),
        (None, _) => format!("{}\n", Value::List(found).to_json_indented("    ")),
    };
    emit(&out);
    for e in &errors {
        eprintln!("{e}");
    }
    i32::from(!errors.is_empty())
}

fn strings(items: impl IntoIterator<Item = impl Into<String>>) -> Value {
    Value::List(items.into_iter().map(|s| Value::Str(s.into())).collect())
}

/// docker's image.InspectResponse for one image.
pub fn image_value(d: &ImageDetails, layer_dirs: &[PathBuf]) -> Value {
    let c = &d.config;
    let text = |key: &str| {
        c.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    // docker's Comment is the config's; commit and import of lamina write it into the history.
    let comment = match text("comment") {
        s if !s.is_empty() => s,
        _ => c
            .get("history")
            .and_then(|h| h.as_array())
            .and_then(|h| h.last())
            .and_then(|h| h.get("comment"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    };
    let config = match c.get("config") {
        Some(v @ serde_json::Value::Object(_)) => Value::from_json(v),
        _ => Value::Map(Default::default()),
    };
    let diff_ids: Vec<String> = c
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut data = std::collections::BTreeMap::new();
    let dirs: Vec<String> = layer_dirs.iter().map(|p| p.display().to_string()).collect();
    if let Some((top, lower)) = dirs.split_first() {
        data.insert("UpperDir".to_string(), Value::str(top));
        if !lower.is_empty() {
            data.insert("LowerDir".to_string(), Value::str(lower.join(":")));
        }
    }
    let mut fields: Vec<(&str, Value)> = vec![
        ("Id", Value::str(d.row.id.to_string())),
        ("RepoTags", strings(d.tags.clone())),
        ("RepoDigests", strings(d.repo_digests.clone())),
        ("Parent", Value::str("")),
        ("Comment", Value::Str(comment)),
        ("Created", Value::Str(text("created"))),
        ("DockerVersion", Value::Str(text("docker_version"))),
        ("Author", Value::Str(text("author"))),
        ("Config", config),
        ("Architecture", Value::Str(text("architecture"))),
    ];
    if !text("variant").is_empty() {
        fields.push(("Variant", Value::Str(text("variant"))));
    }
    fields.push(("Os", Value::Str(text("os"))));
    if !text("os.version").is_empty() {
        fields.push(("OsVersion", Value::Str(text("os.version"))));
    }
    fields.extend([
        (
            "Size",
            Value::Int(i64::try_from(d.row.size).unwrap_or(i64::MAX)),
        ),
        (
            "GraphDriver",
            Value::Struct(
                "storage.DriverData",
                vec![
                    ("Data".into(), Value::Map(data)),
                    ("Name".into(), Value::str("overlay")),
                ],
            ),
        ),
        (
            "RootFS",
            Value::Struct(
                "image.RootFS",
                vec![
                    ("Type".into(), Value::str("layers")),
                    ("Layers".into(), strings(diff_ids)),
                ],
            ),
        ),
        (
            // lamina does not record when a tag was set; the time the image was stored stands in.
            "Metadata",
            Value::Struct(
                "image.Metadata",
                vec![("LastTagTime".into(), Value::Str(rfc3339(d.row.loaded)))],
            ),
        ),
        (
            "Mounts",
            strings(d.mounts.iter().map(|m| m.as_str().to_string())),
        ),
    ]);
    Value::Struct(
        "image.InspectResponse",
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
