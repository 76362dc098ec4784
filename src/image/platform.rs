//! Platforms (`linux/arm64/v8`): parsing, normalisation and matching as containerd's
//! `platforms` package does them, so a multi-platform image resolves here to the same manifest
//! containerd (and docker) would pick.
//!
//! Two forms exist. `parse` and `host` give the form people write and docker shows
//! (`linux/arm64/v8`); `normalize` gives containerd's canonical form used only to compare
//! (`aarch64` -> `arm64`, arm64's `v8` dropped, arm's missing variant -> `v7`, amd64 `v1` dropped).
//!
//! Matching follows containerd's `platforms.Only` with one deliberate difference: amd64 does not
//! fall back to 386 (an image without an amd64 build is refused rather than silently run as
//! 32-bit). Preference order: the exact platform, then older variants of the same architecture
//! (amd64 v3 > v2 > v1; arm64 v8.2 > v8.1 > v8; arm v7 > v6 > v5), then for arm64 the 32-bit arm
//! variants (v8 down to v5).

use super::manifest::Descriptor;
use super::ImageError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "super::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Go's GOOS values (go/build/syslist.go), as containerd's database.go lists them.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform this process runs on, with Go's architecture names.
    pub fn host() -> Self {
        let (arch, variant) = host_arch();
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Parses `os`, `arch`, `os/arch` or `os/arch/variant` (containerd's `platforms.Parse`):
    /// a lone word is an OS if Go knows it, else an architecture; the other half is the host's.
    pub fn parse(specifier: &str) -> Result<Self, ImageError> {
        let bad = |reason: String| ImageError::InvalidPlatform {
            input: specifier.to_string(),
            reason,
        };
        if specifier.contains('*') {
            return Err(bad("wildcards are not supported".into()));
        }
        let parts: Vec<&str> = specifier.split('/').collect();
        if parts.len() > 3 {
            return Err(bad("expected OS/ARCH[/VARIANT]".into()));
        }
        let (os_part, os_version) = split_os_version(parts[0]).ok_or_else(|| {
            bad(format!(
                "{:?} is not a valid OS: expected [A-Za-z0-9_-]+ with an optional (version)",
                parts[0]
            ))
        })?;
        let component = |p: &&str| !p.is_empty() && p.bytes().all(|b| is_os_char(b) || b == b'.');
        if let Some(p) = parts[1..].iter().find(|p| !component(p)) {
            return Err(bad(format!(
                "{p:?} is not a valid component: expected [A-Za-z0-9_.-]+"
            )));
        }
        let os = normalize_os(os_part);
        let mut p = match parts.len() {
            1 if KNOWN_OS.contains(&os.as_str()) => {
                let host = Platform::host();
                Platform::new(&os, &host.architecture, host.variant.as_deref())
            }
            1 => {
                let (arch, mut variant) = normalize_arch(parts[0], "");
                if arch == "arm" && variant == "v7" {
                    variant.clear();
                }
                if !KNOWN_ARCH.contains(&arch.as_str()) {
                    return Err(bad("unknown operating system or architecture".into()));
                }
                Platform::new(std::env::consts::OS, &arch, Some(&variant))
            }
            2 => {
                let (arch, mut variant) = normalize_arch(parts[1], "");
                if arch == "arm" && variant == "v7" {
                    variant.clear();
                }
                Platform::new(&os, &arch, Some(&variant))
            }
            _ => {
                let (arch, mut variant) = normalize_arch(parts[1], parts[2]);
                if arch == "arm64" && variant.is_empty() {
                    variant = "v8".into();
                }
                Platform::new(&os, &arch, Some(&variant))
            }
        };
        p.os_version = os_version.map(str::to_string);
        Ok(p)
    }

    /// containerd's canonical form, used for comparisons.
    pub fn normalize(&self) -> Platform {
        let (arch, variant) =
            normalize_arch(&self.architecture, self.variant.as_deref().unwrap_or(""));
        Platform {
            architecture: arch,
            os: normalize_os(&self.os),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: Some(variant).filter(|v| !v.is_empty()),
        }
    }

    /// The platforms this one can run, best first (containerd's `platformVector`).
    pub fn compatible(&self) -> Vec<Platform> {
        let p = self.normalize();
        let with_variant = |arch: &str, v: String| Platform {
            architecture: arch.to_string(),
            variant: Some(v),
            ..p.clone()
        };
        let number = |v: Option<&str>| -> Option<u32> { v?.strip_prefix('v')?.parse().ok() };
        let mut out = vec![p.clone()];
        match p.architecture.as_str() {
            "amd64" => {
                if let Some(n) = number(p.variant.as_deref()) {
                    out.extend((1..n).rev().map(|k| with_variant("amd64", format!("v{k}"))));
                }
            }
            "arm" => {
                if let Some(n) = number(p.variant.as_deref()) {
                    out.extend((5..n).rev().map(|k| with_variant("arm", format!("v{k}"))));
                }
            }
            "arm64" => {
                let variant = p.variant.clone().unwrap_or_else(|| "v8".into());
                let versions = arm64_versions(&variant);
                if versions.is_empty() {
                    // containerd matches nothing at all here; an exact match is kinder.
                    return out;
                }
                out.clear();
                for (major, minor) in versions {
                    out.extend((0..=minor).rev().map(|m| {
                        let v = if m == 0 {
                            format!("v{major}")
                        } else {
                            format!("v{major}.{m}")
                        };
                        with_variant("arm64", v)
                    }));
                }
                let arm = if variant.starts_with("v8") || variant.starts_with("v9") {
                    "v8".to_string()
                } else {
                    variant
                };
                out.extend(with_variant("arm", arm).compatible());
            }
            _ => {}
        }
        out.iter().map(Platform::normalize).collect()
    }

    /// Whether an image built for `candidate` runs here. OS versions and features are not
    /// compared (they only matter for Windows images).
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.rank(candidate).is_some()
    }

    /// Position of `candidate` in this platform's preference order (0 = best), if it runs here.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        let c = candidate.normalize();
        self.compatible().iter().position(|p| {
            p.os == c.os && p.architecture == c.architecture && p.variant == c.variant
        })
    }

    /// The best manifest for this platform among an index's entries; the first wins a tie, as
    /// containerd's stable sort does. Entries without a platform are not considered here.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let compatible = self.compatible();
        manifests
            .iter()
            .filter_map(|d| {
                let c = d.platform.as_ref()?.normalize();
                let rank = compatible.iter().position(|p| {
                    p.os == c.os && p.architecture == c.architecture && p.variant == c.variant
                })?;
                Some((rank, d))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

/// containerd's arm64variantToVersion: (major, highest minor) pairs to try, best first.
/// A v9.x CPU also runs v8.(x+5).
fn arm64_versions(variant: &str) -> Vec<(u32, u32)> {
    let v = variant.strip_prefix('v').unwrap_or("");
    let (major, minor) = match v.split_once('.') {
        Some((a, b)) => (a.parse::<u32>().ok(), b.parse::<u32>().ok()),
        None => (v.parse::<u32>().ok(), Some(0)),
    };
    match (major, minor) {
        (Some(8), Some(m)) if m <= 9 => vec![(8, m)],
        (Some(9), Some(m)) if m <= 7 => vec![(9, m), (8, (m + 5).min(9))],
        _ => Vec::new(),
    }
}

fn host_arch() -> (&'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "powerpc" => ("ppc", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        "mips" if cfg!(target_endian = "little") => ("mipsle", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    }
}

fn normalize_os(os: &str) -> String {
    let os = if os.is_empty() {
        std::env::consts::OS.to_string()
    } else {
        os.to_lowercase()
    };
    if os == "macos" {
        "darwin".into()
    } else {
        os
    }
}

/// containerd's normalizeArch.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

/// `os` or `os(version)`.
fn split_os_version(part: &str) -> Option<(&str, Option<&str>)> {
    let (os, version) = match part.split_once('(') {
        Some((os, rest)) => {
            let v = rest.strip_suffix(')')?;
            let ok = v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return None;
            }
            (os, Some(v).filter(|v| !v.is_empty()))
        }
        None => (part, None),
    };
    (!os.is_empty() && os.bytes().all(is_os_char)).then_some((os, version))
}

fn is_os_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.os.is_empty() {
            return f.write_str("unknown");
        }
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant.as_deref() {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

impl FromStr for Platform {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
