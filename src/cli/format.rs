//! `--format` for the listing commands, as docker's `formatter.Context` does it.
//!
//! A format is a Go template (see `template`) run once per row, each output followed by a newline.
//! `json` is `{{json .}}`. A format starting with `table` drops that word, prints a header row first
//! (the same template run over the column titles, with docker's header functions), and aligns the
//! tab-separated cells as Go's tabwriter with docker's settings (minwidth 10, padding 3, spaces).
//! `\t` and `\n` written as two characters are replaced before parsing, so shells need no `$'…'`.
//! Errors read as docker's: `template parsing error: template: :1: unclosed action`.

use super::template::{Template, Value};
use crate::engine::UtcTime;
use std::collections::BTreeMap;

/// One row of a listing: field names as templates spell them, and their values.
pub type Record = Vec<(&'static str, String)>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template parsing error: {0}")]
pub struct FormatError(pub String);

#[derive(Debug, Clone)]
pub struct Listing {
    table: bool,
    template: Template,
}

/// docker's `NewXFormat` for commands without extra rules: no format or `table` is the command's
/// default table (`{{.ID}}` rows with `-q`); anything else is used as given, `-q` or not.
pub fn choose(format: Option<&str>, quiet: bool, default_table: &str) -> String {
    match format.filter(|f| !f.is_empty()) {
        None | Some("table") if quiet => "{{.ID}}".to_string(),
        None | Some("table") => default_table.to_string(),
        Some(f) => f.to_string(),
    }
}

impl Listing {
    pub fn parse(format: &str) -> Result<Listing, FormatError> {
        let table = format.starts_with("table");
        let body = if table {
            &format["table".len()..]
        } else if format == "json" {
            "{{json .}}"
        } else {
            format
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let template = Template::parse(&body).map_err(|e| FormatError(e.0))?;
        Ok(Listing { table, template })
    }

    /// Renders the rows (each a template's data) under the titles (`field -> title`). Nothing is
    /// returned when a row fails: docker prints nothing either.
    pub fn render(&self, rows: &[Value], titles: &[(&str, &str)]) -> Result<String, FormatError> {
        let mut out = String::new();
        if self.table {
            let titles: BTreeMap<String, Value> = titles
                .iter()
                .map(|(k, v)| (k.to_string(), Value::str(*v)))
                .collect();
            out.push_str(&self.template.execute_header(&Value::Map(titles)));
            out.push('\n');
        }
        for row in rows {
            out.push_str(&self.template.execute(row).map_err(|e| FormatError(e.0))?);
            out.push('\n');
        }
        Ok(if self.table { tabwrite(&out) } else { out })
    }
}

/// Writes a listing to stdout; a closed pipe (`| head`) ends the output quietly, as docker's does.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Rows of string fields as template data (see `Value::record`). Every value is escaped here, once
/// for all listings: names, tags, history lines and comments are what an image or a registry
/// chose, and must not reach a terminal as control characters.
pub fn records(type_name: &'static str, rows: &[Record]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let escaped: Record = r
                .iter()
                .map(|(k, v)| (*k, super::output::escape_controls(v).into_owned()))
                .collect();
            Value::record(type_name, &escaped)
        })
        .collect()
}

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Go's text/tabwriter with docker's settings: cells are terminated by tabs; a column is the cells
/// at one index in a run of consecutive lines that all have a tab-terminated cell there; each is
/// padded to the widest cell of its column plus 3, at least 10. The last cell of a line is not in
/// a column and is not padded.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    format_block(&lines, 0, lines.len(), &mut vec![], &mut out);
    out
}

fn format_block(
    lines: &[Vec<&str>],
    first: usize,
    end: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut line0 = first;
    let mut this = first;
    while this < end {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = MIN_WIDTH;
        while this < end && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, end, widths, out);
}

fn write_lines(lines: &[Vec<&str>], first: usize, end: usize, widths: &[usize], out: &mut String) {
    for (i, cells) in lines.iter().enumerate().take(end).skip(first) {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j) {
                out.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(cell.chars().count()),
                ));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// Aligns lines of tab-separated cells (for the fixed tables, e.g. `df`).
pub fn align(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    tabwrite(&text)
}

/// "2024-01-02 03:04:05 +0000 UTC", as Go prints a time (docker's images CreatedAt).
pub fn utc_time(secs: i64) -> String {
    let t = UtcTime::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// "2024-01-02T03:04:05Z", RFC 3339 in UTC (docker's history CreatedAt).
pub fn rfc3339(secs: i64) -> String {
    let t = UtcTime::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
