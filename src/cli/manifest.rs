//! `lamina manifest inspect [-v] REF` of a registry's manifest, printed as docker-cli prints it
//! (cli/command/manifest/inspect.go); local lists are shown by manifest_list.rs with the same
//! helpers:
//!
//! - a manifest: its bytes re-indented with tabs (Go's `json.Indent(raw, "", "\t")`);
//! - an index or manifest list: re-indented with three spaces, as distribution's manifestlist
//!   package marshals the list docker rebuilds from the entries;
//! - `-v`: docker's `ImageManifest` objects, tab-indented: `Ref` (the name with the manifest's
//!   digest), `Descriptor` (mediaType, digest, size, platform), `Raw` (the manifest's bytes in
//!   base64) and `SchemaV2Manifest` or `OCIManifest` (the manifest itself); an array of them, one
//!   per entry, for an index.

use super::args::ManifestInspectArgs;
use super::pull::registry_options;
use super::{CliResult, Context};
use crate::engine::{self, media_types, Digest, InspectedManifest, Platform, Puller, Reference};
use base64::Engine as _;
use std::io::Write;

/// `manifest inspect REF` of what the registry holds.
pub fn inspect_remote(a: &ManifestInspectArgs, name: &str) -> CliResult {
    let what = || format!("manifest inspect {name}");
    let reference = Reference::parse(name).context(what)?;
    let puller = Puller::open(&reference, &registry_options(&a.registry), None).context(what)?;
    let wanted = engine::wanted(&reference);
    let m = puller.inspect(&wanted, a.verbose).context(what)?;
    let text = if a.verbose {
        verbose(&reference, &wanted, &m)
    } else if m.members.is_some() {
        json_indent(&m.bytes, "   ")
    } else {
        json_indent(&m.bytes, "\t")
    };
    print_line(&text).context(what)
}

/// `text` and a newline on stdout.
pub(crate) fn print_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
}

/// docker's `-v`: one `ImageManifest` for a manifest, an array of them for an index.
fn verbose(reference: &Reference, wanted: &str, m: &InspectedManifest) -> String {
    // `name:tag@digest`, in full, as docker's SerializableNamed prints it.
    let named = match &reference.digest {
        Some(_) => reference.repository(),
        None => engine::full_name(reference, wanted),
    };
    let json = match &m.members {
        None => image_manifest(
            &format!("{named}@{}", m.digest),
            &m.digest,
            &m.media_type,
            &m.bytes,
            m.platform.as_ref(),
        ),
        Some(members) => {
            let entries: Vec<String> = members
                .iter()
                .filter_map(|(d, bytes)| {
                    bytes.as_ref().map(|b| {
                        let r = format!("{named}@{}", d.digest);
                        image_manifest(&r, &d.digest, &d.media_type, b, d.platform.as_ref())
                    })
                })
                .collect();
            format!("[{}]", entries.join(","))
        }
    };
    json_indent(json.as_bytes(), "\t")
}

/// One of docker's `ImageManifest` objects, as compact JSON; `reference` is its `Ref`.
pub(crate) fn image_manifest(
    reference: &str,
    digest: &Digest,
    media_type: &str,
    bytes: &[u8],
    platform: Option<&Platform>,
) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc<'a> {
        media_type: &'a str,
        digest: &'a Digest,
        size: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<&'a Platform>,
    }
    let desc = Desc {
        media_type,
        digest,
        size: bytes.len(),
        platform,
    };
    let field = if media_type == media_types::DOCKER_MANIFEST {
        "SchemaV2Manifest"
    } else {
        "OCIManifest"
    };
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\"Ref\":{},\"Descriptor\":{},\"Raw\":{},\"{field}\":{}}}",
        string(reference),
        serde_json::to_string(&desc).unwrap_or_default(),
        string(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        String::from_utf8_lossy(bytes).trim(),
    )
}

/// Go's `json.Indent`: every element of an object or array on its own line, `indent` per level,
/// `": "` after keys, empty `{}` and `[]` kept as they are, whitespace between tokens dropped.
/// The bytes are otherwise kept (key order, number spelling, string escapes), as docker keeps them.
pub(crate) fn json_indent(raw: &[u8], indent: &str) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // An opening bracket whose newline waits for the next token (so that `[]` stays `[]`).
    let mut pending_open = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if pending_open {
            pending_open = false;
            if c == '}' || c == ']' {
                depth -= 1;
                out.push(c);
                continue;
            }
            newline(&mut out, depth);
        }
        match c {
            '{' | '[' => {
                out.push(c);
                depth += 1;
                pending_open = true;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '"' => {
                in_string = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
