//! containerd's filter syntax (its `filters` package), as `Walk` receives it over the wire:
//!
//! ```text
//! selectors := selector ("," selector)*          all must match
//! selector  := fieldpath [operator value]         no operator: the field is present
//! fieldpath := field ("." field)*
//! field     := quoted | [A-Za-z0-9_]+
//! operator  := "==" | "!=" | "~="                 ~= is a regular expression (RE2 syntax)
//! value     := quoted | [^\s,]+
//! quoted    := a Go string literal ("..."; for ~= also /.../ or |...|)
//! ```
//! Several filter strings match when any of them does. Snapshots have the fields `kind`, `name`,
//! `parent` and `labels.<key>` (the key may be quoted: `labels."containerd.io/gc.root"`).

use super::snapshots::SnapshotInfo;

/// Filters of which any may match (none given: everything matches).
#[derive(Debug)]
pub struct Filters(Vec<Vec<Selector>>);

#[derive(Debug)]
struct Selector {
    path: Vec<String>,
    op: Op,
    value: String,
    re: Option<regex::Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Present,
    Equal,
    NotEqual,
    Matches,
}

impl Filters {
    /// Parses each filter string; the error names what is wrong and where.
    pub fn parse(filters: &[String]) -> Result<Filters, String> {
        let mut any = Vec::with_capacity(filters.len());
        for f in filters {
            if f.is_empty() {
                any.push(vec![]);
                continue;
            }
            any.push(Parser { s: f, pos: 0 }.selectors()?);
        }
        Ok(Filters(any))
    }

    pub fn matches(&self, info: &SnapshotInfo) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|all| all.iter().all(|sel| sel.matches(info)))
    }
}

impl Selector {
    fn matches(&self, info: &SnapshotInfo) -> bool {
        let field = field(info, &self.path);
        match self.op {
            Op::Present => field.is_some(),
            Op::Equal => field == Some(self.value.as_str()),
            Op::NotEqual => field.unwrap_or("") != self.value,
            Op::Matches => self
                .re
                .as_ref()
                .is_some_and(|re| re.is_match(field.unwrap_or(""))),
        }
    }
}

/// The value of a field path of a snapshot, if it has one (containerd's `adaptSnapshot`).
fn field<'a>(info: &'a SnapshotInfo, path: &[String]) -> Option<&'a str> {
    match path.first().map(String::as_str)? {
        "kind" => Some(info.kind.as_str()),
        "name" => Some(&info.name),
        "parent" => Some(&info.parent),
        "labels" => info.labels.get(&path[1..].join(".")).map(String::as_str),
        _ => None,
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn selectors(&mut self) -> Result<Vec<Selector>, String> {
        let mut all = vec![self.selector()?];
        loop {
            self.skip_spaces();
            match self.peek() {
                None => return Ok(all),
                Some(',') => {
                    self.pos += 1;
                    all.push(self.selector()?);
                }
                Some(c) => return Err(self.err(&format!("unexpected input {c:?}"))),
            }
        }
    }

    fn selector(&mut self) -> Result<Selector, String> {
        let mut path = vec![self.field()?];
        while self.peek() == Some('.') {
            self.pos += 1;
            path.push(self.field()?);
        }
        self.skip_spaces();
        if matches!(self.peek(), None | Some(',')) {
            return Ok(Selector {
                path,
                op: Op::Present,
                value: String::new(),
                re: None,
            });
        }
        let op = self.operator()?;
        self.skip_spaces();
        let value = match self.peek() {
            Some('"') => self.quoted('"')?,
            Some(q @ ('/' | '|')) if op == Op::Matches => self.quoted(q)?,
            Some(c) if c != ',' && c != '.' && !c.is_whitespace() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ',' && !c.is_whitespace()) {
                    self.bump();
                }
                self.s[start..self.pos].to_string()
            }
            _ => return Err(self.err("expected a value")),
        };
        let re = match op {
            Op::Matches => Some(
                regex::Regex::new(&value)
                    .map_err(|e| self.err(&format!("bad regular expression: {e}")))?,
            ),
            _ => None,
        };
        Ok(Selector {
            path,
            op,
            value,
            re,
        })
    }

    fn field(&mut self) -> Result<String, String> {
        self.skip_spaces();
        if self.peek() == Some('"') {
            return self.quoted('"');
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a field or a quoted string"));
        }
        Ok(self.s[start..self.pos].to_string())
    }

    fn operator(&mut self) -> Result<Op, String> {
        let start = self.pos;
        while matches!(self.peek(), Some('=' | '!' | '~')) {
            self.pos += 1;
        }
        match &self.s[start..self.pos] {
            "==" => Ok(Op::Equal),
            "!=" => Ok(Op::NotEqual),
            "~=" => Ok(Op::Matches),
            "" => Err(self.err(r#"expected an operator ("=="|"!="|"~=")"#)),
            other => Err(self.err(&format!("unsupported operator {other:?}"))),
        }
    }

    /// A Go-style quoted string, `quote` being `"`, `/` or `|`.
    fn quoted(&mut self, quote: char) -> Result<String, String> {
        self.bump();
        let mut out = String::new();
        loop {
            let c = self
                .bump()
                .ok_or_else(|| self.err("quoted literal not terminated"))?;
            match c {
                c if c == quote => return Ok(out),
                '\n' => return Err(self.err("quoted literal not terminated")),
                '\\' => out.push(self.escape(quote)?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, quote: char) -> Result<char, String> {
        let c = self
            .bump()
            .ok_or_else(|| self.err("illegal escape sequence"))?;
        let simple = match c {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        let (radix, digits, first) = match c {
            '0'..='7' => (8, 3, Some(c)),
            'x' => (16, 2, None),
            'u' => (16, 4, None),
            'U' => (16, 8, None),
            _ => return Err(self.err("illegal escape sequence")),
        };
        let mut text: String = first.into_iter().collect();
        while text.len() < digits {
            text.push(
                self.bump()
                    .ok_or_else(|| self.err("illegal numeric escape sequence"))?,
            );
        }
        u32::from_str_radix(&text, radix)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.err("illegal numeric escape sequence"))
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at position {} of {:?}", self.pos, self.s)
    }
}

#[cfg(test)]
#[path = "snapshots_filter_tests.rs"]
mod tests;
