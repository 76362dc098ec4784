//! `--format`: the subset of Go templates that docker users write for listings.
//!
//! Supported: `{{.Field}}`, `{{json .}}`, `{{json .Field}}`, literal text with `\t` and `\n` escapes
//! (docker replaces them before parsing, so shells need no `$'…'`), the `table` prefix (a header row
//! of column names, and the cells aligned as docker's tabwriter aligns them: min width 10, padding
//! 3), and the bare word `json` (one JSON object per row with every field). Anything else is an
//! error naming the template and the fields that exist, rather than silently empty output.

use crate::engine::UtcTime;
use std::collections::BTreeMap;

/// One row of a listing: field names (as templates spell them) and their values, in column order.
pub type Record = Vec<(&'static str, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(&'static str),
    Json(Option<&'static str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    table: bool,
    json_lines: bool,
    parts: Vec<Part>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("template {template:?}: unclosed action")]
    Unclosed { template: String },
    #[error("template {template:?}: unsupported action {{{{{action}}}}} (supported: {{{{.Field}}}}, {{{{json .}}}}, {{{{json .Field}}}})")]
    Unsupported { template: String, action: String },
    #[error("template {template:?}: no field {field:?} (fields: {known})")]
    UnknownField {
        template: String,
        field: String,
        known: String,
    },
}

impl Template {
    /// Parses a `--format` value; `fields` are the names a record of this listing has.
    pub fn parse(format: &str, fields: &[&'static str]) -> Result<Template, FormatError> {
        if format.trim() == "json" {
            return Ok(Template {
                table: false,
                json_lines: true,
                parts: vec![],
            });
        }
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, format),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let mut parts = vec![];
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| FormatError::Unclosed {
                template: format.to_string(),
            })?;
            let action = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            parts.push(parse_action(action, format, fields)?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            table,
            json_lines: false,
            parts,
        })
    }

    /// Renders records to lines (with the header line first for `table`).
    pub fn render(&self, records: &[Record], headers: &BTreeMap<&str, &str>) -> String {
        if self.json_lines {
            let mut out = String::new();
            for r in records {
                out.push_str(&record_json(r));
                out.push('\n');
            }
            return out;
        }
        let mut lines: Vec<String> = vec![];
        if self.table {
            let header: Record = self
                .fields()
                .into_iter()
                .map(|f| {
                    (
                        f,
                        headers
                            .get(f)
                            .map(|h| h.to_string())
                            .unwrap_or_else(|| f.to_uppercase()),
                    )
                })
                .collect();
            lines.push(self.render_one(&header));
        }
        lines.extend(records.iter().map(|r| self.render_one(r)));
        if self.table {
            return align(&lines);
        }
        let mut out = String::new();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    fn fields(&self) -> Vec<&'static str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Field(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    fn render_one(&self, r: &Record) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Field(f) => s.push_str(lookup(r, f)),
                Part::Json(None) => s.push_str(&record_json(r)),
                Part::Json(Some(f)) => {
                    s.push_str(&serde_json::Value::String(lookup(r, f).to_string()).to_string())
                }
            }
        }
        s
    }
}

fn lookup<'a>(r: &'a Record, field: &str) -> &'a str {
    r.iter()
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn record_json(r: &Record) -> String {
    let map: BTreeMap<&str, &str> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    serde_json::to_string(&map).unwrap_or_default()
}

fn parse_action(
    action: &str,
    template: &str,
    fields: &[&'static str],
) -> Result<Part, FormatError> {
    let field = |name: &str| -> Result<&'static str, FormatError> {
        let name = name.strip_prefix('.').unwrap_or(name);
        if let Some(f) = fields.iter().find(|f| **f == name) {
            Ok(*f)
        } else {
            Err(FormatError::UnknownField {
                template: template.to_string(),
                field: name.to_string(),
                known: fields.join(", "),
            })
        }
    };
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
        [f] if f.starts_with('.') && f.len() > 1 => Ok(Part::Field(field(f)?)),
        ["json", "."] => Ok(Part::Json(None)),
        ["json", f] if f.starts_with('.') => Ok(Part::Json(Some(field(f)?))),
        _ => Err(FormatError::Unsupported {
            template: template.to_string(),
            action: action.to_string(),
        }),
    }
}

/// Aligns tab-separated cells as Go's tabwriter with minwidth 10, padding 3 (docker's table writer):
/// every cell followed by a tab is padded to its column's width; the last cell is left as it is.
pub fn align(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = vec![];
    for cells in &split {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for cells in &split {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

/// "2024-01-02 03:04:05 +0000 UTC", as docker prints CreatedAt.
pub fn utc_time(secs: i64) -> String {
    let t = UtcTime::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
