//! The data a `--format` template sees, modelled on what Go's text/template sees in docker: structs
//! (fields in declaration order; a missing field is an error), maps (keys sorted when ranged over or
//! printed; a missing key is `<no value>`), lists, strings, numbers, booleans and nil.
//!
//! Printing follows Go's `fmt` `%v` (`[a b]`, `map[k:v]`, `{a b}`, `<nil>`), and JSON follows
//! `encoding/json` (struct fields in order, map keys sorted, `<>&` escaped unless asked not to).

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A missing map key or an unset variable: prints `<no value>`, is false.
    Missing,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A Go struct: its type name (for error messages) and its fields in order.
    Struct(&'static str, Vec<(String, Value)>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A struct of string fields, as docker's listing contexts are (every field is a method
    /// returning a string); the fields are sorted so that `{{json .}}` prints them as docker does.
    pub fn record(type_name: &'static str, fields: &[(&str, String)]) -> Value {
        let mut fields: Vec<(String, Value)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.clone())))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Struct(type_name, fields)
    }

    /// JSON as decoded into Go's `interface{}`: objects become maps (sorted keys).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, lists and maps are false; structs are true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(..) => true,
        }
    }

    /// The Go type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(name, _) => name,
        }
    }

    /// Compact JSON; `escape_html` as Go's json.Marshal (docker's `{{json}}` turns it off).
    pub fn to_json(&self, escape_html: bool) -> String {
        let mut out = String::new();
        self.write_json(&mut out, escape_html, None, 0);
        out
    }

    /// JSON indented by `indent` per level, as Go's json.MarshalIndent (which escapes HTML).
    pub fn to_json_indented(&self, indent: &str) -> String {
        let mut out = String::new();
        self.write_json(&mut out, true, Some(indent), 0);
        out
    }

    fn write_json(&self, out: &mut String, html: bool, indent: Option<&str>, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if let Some(i) = indent {
                out.push('\n');
                for _ in 0..depth {
                    out.push_str(i);
                }
            }
        };
        let colon = if indent.is_some() { ": " } else { ":" };
        match self {
            Value::Missing | Value::Nil => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
            Value::Str(s) => write_json_string(out, s, html),
            Value::List(items) => {
                if items.is_empty() {
                    out.push_str("[]");
                    return;
                }
                out.push('[');
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    v.write_json(out, html, indent, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Value::Map(_) | Value::Struct(..) => {
                let fields: Vec<(&String, &Value)> = match self {
                    Value::Map(m) => m.iter().collect(),
                    Value::Struct(_, f) => f.iter().map(|(k, v)| (k, v)).collect(),
                    _ => vec![],
                };
                if fields.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                for (n, (k, v)) in fields.into_iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    write_json_string(out, k, html);
                    out.push_str(colon);
                    v.write_json(out, html, indent, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }
}

fn write_json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `%v`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Missing => f.write_str("<no value>"),
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("map[")?;
                for (n, (k, v)) in m.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::Struct(_, fields) => {
                f.write_str("{")?;
                for (n, (_, v)) in fields.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}
