//! `images --filter KEY=VALUE`, combined as docker combines them: different keys must all hold;
//! several `reference` values match if any does; several `label` values must all hold; `before` and
//! `since` take the creation time of the image they name (several values: each must hold).

use crate::engine::Digest;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImageFilter {
    pub dangling: Option<bool>,
    pub before: Vec<String>,
    pub since: Vec<String>,
    /// `label=KEY` (None) or `label=KEY=VALUE`.
    pub labels: Vec<(String, Option<String>)>,
    pub references: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("bad format of filter {0:?} (expected name=value)")]
    Format(String),
    #[error("invalid filter '{0}' (filters: dangling, before, since, label, reference)")]
    Key(String),
    #[error("invalid filter 'dangling={0}' (expected true or false)")]
    Dangling(String),
}

impl ImageFilter {
    pub fn parse(args: &[String]) -> Result<ImageFilter, FilterError> {
        let mut f = ImageFilter::default();
        for a in args {
            let (key, value) = a
                .split_once('=')
                .ok_or_else(|| FilterError::Format(a.clone()))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "dangling" => {
                    let v = match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(FilterError::Dangling(value.to_string())),
                    };
                    if f.dangling.is_some_and(|d| d != v) {
                        return Err(FilterError::Dangling(format!("{}, {value}", !v)));
                    }
                    f.dangling = Some(v);
                }
                "before" => f.before.push(value.to_string()),
                "since" => f.since.push(value.to_string()),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "reference" => f.references.push(value.to_string()),
                _ => return Err(FilterError::Key(key.to_string())),
            }
        }
        Ok(f)
    }

    /// Whether an image's labels pass every `label` filter.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        })
    }

    /// Whether a familiar name (`debian:gzip`) passes the `reference` filters (true when there are none).
    pub fn reference_matches(&self, familiar: &str) -> bool {
        self.references.is_empty() || self.references.iter().any(|p| reference_match(p, familiar))
    }

    /// Whether a digest reference (familiar repository, digest) passes the `reference` filters.
    pub fn digest_reference_matches(&self, repository: &str, digest: &str) -> bool {
        let familiar = format!("{repository}@{digest}");
        self.references.is_empty()
            || self
                .references
                .iter()
                .any(|p| familiar_match(p, &familiar, repository))
    }

    /// Keeps the references of an image that pass the `reference` filters, as docker's image list
    /// does: each tag and each digest reference on its own (so `--digests` shows only the digests
    /// of matching repositories). False when none is left: the image is not listed.
    pub fn select_references(
        &self,
        tags: &mut Vec<String>,
        digests: &mut Vec<(String, Digest)>,
    ) -> bool {
        if self.references.is_empty() {
            return true;
        }
        tags.retain(|t| self.reference_matches(t));
        digests.retain(|(repo, d)| self.digest_reference_matches(repo, &d.to_string()));
        !(tags.is_empty() && digests.is_empty())
    }
}

/// docker's FamiliarMatch: the pattern is matched against `name:tag`, and then against `name` alone.
pub fn reference_match(pattern: &str, familiar: &str) -> bool {
    let name = match familiar.rfind(':') {
        Some(i) if !familiar[i..].contains('/') => &familiar[..i],
        _ => familiar,
    };
    familiar_match(pattern, familiar, name)
}

/// FamiliarMatch on a reference shown as `familiar` (`debian:gzip`, `debian@sha256:…`) whose
/// repository is `name`.
fn familiar_match(pattern: &str, familiar: &str, name: &str) -> bool {
    // Names are shown familiar (`debian`), so a pattern spelled in full matches as its familiar form.
    let pattern = pattern
        .strip_prefix("docker.io/library/")
        .or_else(|| pattern.strip_prefix("docker.io/"))
        .unwrap_or(pattern);
    glob_match(pattern, familiar) || glob_match(pattern, name)
}

/// Go's `path.Match`: `*` is any run of non-`/` characters, `?` one non-`/` character, `[...]` a
/// class (`[^...]` or `[!...]` negated, ranges `a-z`), `\` escapes. A malformed pattern matches
/// nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n).unwrap_or(false)
}

fn match_from(p: &[char], n: &[char]) -> Option<bool> {
    let (mut pi, mut ni) = (0, 0);
    // Backtracking point for the last `*`: (pattern index after it, name index it matched up to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi + 1, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    let (matched, next) = class(p, pi + 1, n[ni])?;
                    if matched && n[ni] != '/' {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                '\\' if pi + 1 >= p.len() => return None,
                c if !matches!(c, '?' | '[' | '\\') && ni < n.len() && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return Some(true);
        }
        // Mismatch: let the last `*` swallow one more character (never a `/`).
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp;
                ni = sn + 1;
            }
            _ => {
                // Still report malformed classes later in the pattern, as Go does.
                return if p[pi.min(p.len())..].contains(&'[') && !valid_tail(&p[pi.min(p.len())..])
                {
                    None
                } else {
                    Some(false)
                };
            }
        }
    }
}

fn valid_tail(p: &[char]) -> bool {
    let mut i = 0;
    while i < p.len() {
        if p[i] == '[' {
            match class(p, i + 1, 'a') {
                Some((_, next)) => i = next,
                None => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// Matches `c` against the class starting at `p[i]` (after `[`); returns (matched, index after `]`).
fn class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
    let negated = matches!(p.get(i), Some('^') | Some('!'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
            let mut h = p[i + 1];
            i += 2;
            if h == '\\' {
                h = *p.get(i)?;
                i += 1;
            }
            h
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
