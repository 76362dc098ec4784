//! Image references, parsed and normalised as docker does (distribution/reference's
//! `ParseNormalizedNamed`): `alpine` is `docker.io/library/alpine`, `user/repo` is
//! `docker.io/user/repo`, and the first component is a registry only when it looks like a host
//! (contains `.` or `:`, is `localhost`, or has uppercase letters).
//!
//! Grammar: `[host[:port]/]component(/component)*[:tag][@digest]` where a component is
//! `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`, and a tag is `[\w][\w.-]{0,127}`.

use super::ImageError;
use crate::digest::Digest;
use std::fmt;
use std::str::FromStr;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// distribution/reference's NameTotalLengthMax: domain + "/" + path.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path within the registry, e.g. `library/debian`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Self, ImageError> {
        let bad = |reason: &str| ImageError::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(bad("repository name must not be empty"));
        }
        if input.len() == 64 && Digest::from_hex(input).is_ok() {
            return Err(bad(
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| bad(&e.to_string()))?;
                (n, Some(digest))
            }
            None => (input, None),
        };
        let (domain, remainder) = split_domain(name_and_tag);
        let (path, tag) = match remainder.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (remainder.as_str(), None),
        };
        if path.to_lowercase() != path {
            return Err(bad(&format!("repository name ({path}) must be lowercase")));
        }
        if !is_valid_domain(&domain) {
            return Err(bad(&format!("invalid registry host {domain:?}")));
        }
        if let Some(c) = path.split('/').find(|c| !is_valid_path_component(c)) {
            return Err(bad(&format!(
                "invalid path component {c:?}: components are lowercase letters and digits, \
                 separated by '.', '_', '__' or '-'"
            )));
        }
        if let Some(t) = tag {
            if !is_valid_tag(t) {
                return Err(bad(&format!(
                    "invalid tag {t:?}: a tag is up to 128 characters of [A-Za-z0-9_.-], \
                     not starting with '.' or '-'"
                )));
            }
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(bad(&format!(
                "repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        Ok(Reference {
            domain,
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Adds the `latest` tag when the reference names neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// A copy with the given tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ImageError> {
        if !is_valid_tag(tag) {
            return Err(ImageError::InvalidReference {
                input: format!("{}:{tag}", self.repository()),
                reason: format!("invalid tag {tag:?}"),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// `docker.io/library/debian`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `docker.io/library/debian:gzip` (and `@sha256:…` when there is a digest).
    pub fn full(&self) -> String {
        with_suffixes(self.repository(), self)
    }

    /// The short form docker shows: `debian:gzip`, `user/repo:tag`, `example.com/x/y:1`.
    pub fn familiar(&self) -> String {
        with_suffixes(self.repository_familiar(), self)
    }

    /// The short repository name without tag or digest: `debian`, `example.com/x/y`.
    pub fn repository_familiar(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }
}

fn with_suffixes(mut s: String, r: &Reference) -> String {
    if let Some(t) = &r.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &r.digest {
        s.push('@');
        s.push_str(&d.to_string());
    }
    s
}

/// distribution/reference's splitDockerDomain.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `host[:port]` where host is a DNS name or a bracketed IPv6 address.
fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    let host_ok = host.is_empty() && domain.starts_with('[')
        || !host.is_empty() && host.split('.').all(is_valid_domain_component);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

/// `[\w][\w.-]{0,127}`
pub fn is_valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

impl FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

/// Stored and exchanged as the full string (`docker.io/library/debian:gzip`).
impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
