//! Manifest lists a person assembles (`manifest create`, `annotate`, `push`), built as docker-cli
//! builds them (cli/command/manifest, with distribution's `manifestlist.FromDescriptors`):
//!
//! - the list's type follows its FIRST member: an OCI index when that member is an OCI manifest,
//!   else a Docker manifest list. Members of mixed families are not refused (docker does not
//!   refuse them either; the registry accepts both kinds of list with either kind of member);
//! - each entry is `mediaType`, `size`, `digest`, `platform` in that order (distribution's
//!   `ManifestDescriptor`), with `platform` always present; nothing else of a member is kept;
//! - the document is Go's `json.MarshalIndent(list, "", "   ")`: three spaces, no final newline,
//!   and `<`, `>`, `&` (and U+2028, U+2029) escaped inside strings as Go's encoder escapes them.
//!   Its bytes are its identity (their digest is what the registry stores), so the same members
//!   always give the same digest that docker would push.

use super::media_types as mt;
use super::platform::Platform;
use super::{Descriptor, ImageError};
use crate::digest::Digest;
use serde::{Deserialize, Serialize};

/// What docker's annotate checks a platform against: the `GOOS/GOARCH` pairs docker-cli lists
/// (cli/command/manifest/util.go, "Remove any unsupported os/arch combo").
const VALID_OS_ARCH: &[(&str, &str)] = &[
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm"),
    ("darwin", "arm64"),
    ("dragonfly", "amd64"),
    ("freebsd", "386"),
    ("freebsd", "amd64"),
    ("freebsd", "arm"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("linux", "mips64"),
    ("linux", "mips64le"),
    ("linux", "riscv64"),
    ("linux", "s390x"),
    ("netbsd", "386"),
    ("netbsd", "amd64"),
    ("netbsd", "arm"),
    ("openbsd", "386"),
    ("openbsd", "amd64"),
    ("openbsd", "arm"),
    ("plan9", "386"),
    ("plan9", "amd64"),
    ("solaris", "amd64"),
    ("windows", "386"),
    ("windows", "amd64"),
];

/// Whether `os/arch` is a combination `manifest annotate` accepts.
pub fn is_valid_os_arch(os: &str, arch: &str) -> bool {
    VALID_OS_ARCH.iter().any(|&(o, a)| o == os && a == arch)
}

/// The platform an image config states, read as docker reads it for a list entry (the config's
/// own `architecture`, `os`, `os.version`, `os.features` and `variant`; absent ones empty).
pub fn config_platform(config: &[u8]) -> Result<Platform, ImageError> {
    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        architecture: Option<String>,
        #[serde(default)]
        os: Option<String>,
        #[serde(rename = "os.version", default)]
        os_version: Option<String>,
        #[serde(rename = "os.features", default)]
        os_features: Option<Vec<String>>,
        #[serde(default)]
        variant: Option<String>,
    }
    let f: Fields = serde_json::from_slice(config).map_err(|e| ImageError::MalformedJson {
        reason: e.to_string(),
    })?;
    Ok(Platform {
        architecture: f.architecture.unwrap_or_default(),
        os: f.os.unwrap_or_default(),
        os_version: f.os_version.filter(|v| !v.is_empty()),
        os_features: f.os_features.unwrap_or_default(),
        variant: f.variant.filter(|v| !v.is_empty()),
    })
}

/// One entry of the list, in distribution's field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a Digest,
    platform: &'a Platform,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<Entry<'a>>,
}

/// The list of `members` (their manifests' descriptors, platform included): its media type and
/// its bytes, exactly as docker pushes them.
pub fn build_list(members: &[&Descriptor]) -> Result<(String, Vec<u8>), ImageError> {
    let media_type = match members.first() {
        Some(d) if d.media_type == mt::OCI_MANIFEST => mt::OCI_INDEX,
        _ => mt::DOCKER_MANIFEST_LIST,
    };
    let none = Platform::new("", "", None);
    let list = List {
        schema_version: 2,
        media_type,
        manifests: members
            .iter()
            .map(|d| Entry {
                media_type: &d.media_type,
                size: d.size,
                digest: &d.digest,
                platform: d.platform.as_ref().unwrap_or(&none),
            })
            .collect(),
    };
    let mut bytes = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut bytes,
        serde_json::ser::PrettyFormatter::with_indent(b"   "),
    );
    list.serialize(&mut ser).map_err(|e| ImageError::Invalid {
        reason: format!("cannot encode the manifest list: {e}"),
    })?;
    Ok((media_type.to_string(), go_escape(bytes)))
}

/// Go's encoding/json escapes these inside strings (they cannot appear outside one in JSON, so
/// replacing every occurrence is exact).
fn go_escape(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return bytes;
    }
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

#[cfg(test)]
#[path = "manifest_list_tests.rs"]
mod tests;
