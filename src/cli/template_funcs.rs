//! The functions a template can call: Go's builtins (`and` and `or` are in `template_exec`, which
//! evaluates them lazily) and docker's `templates.basicFunctions`, or for a table's header row
//! docker's `HeaderFunctions`, which return the column title as it is.

use super::template_printf::{print, printf};
use super::template_value::Value;
use std::cmp::Ordering;

const FUNCTIONS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Calls function `name`; `header` selects docker's header functions (see `Exec::new`).
pub fn call(name: &str, a: &[Value], header: bool) -> Result<Value, String> {
    let want = |n: usize| -> Result<(), String> {
        if a.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                a.len()
            ))
        }
    };
    if header
        && matches!(
            name,
            "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
        )
    {
        // docker's HeaderFunctions: the column title stays as it is.
        return a
            .first()
            .cloned()
            .ok_or_else(|| format!("wrong number of args for {name}"));
    }
    Ok(match name {
        "not" => {
            want(1)?;
            Value::Bool(!a[0].truth())
        }
        "len" => {
            want(1)?;
            match &a[0] {
                Value::Str(s) => Value::Int(s.len() as i64),
                Value::List(l) => Value::Int(l.len() as i64),
                Value::Map(m) => Value::Int(m.len() as i64),
                other => return Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            let mut v = a.first().cloned().ok_or("wrong number of args for index")?;
            for key in &a[1..] {
                v = match (&v, key) {
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Missing),
                    (Value::Missing | Value::Nil, _) => return Err("index of untyped nil".into()),
                    (v, k) => {
                        return Err(format!(
                            "can't index item of type {} with {}",
                            v.type_name(),
                            k.type_name()
                        ))
                    }
                };
            }
            v
        }
        "print" => Value::Str(print(a, false)),
        "println" => Value::Str(print(a, true)),
        "printf" => match a.split_first() {
            Some((Value::Str(f), rest)) => Value::Str(printf(f, rest)),
            _ => return Err("wrong type for value; expected string".into()),
        },
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for b in &a[1..] {
                any |= compare(&a[0], b)? == Ordering::Equal;
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            if name != "ne" && !ordered(&a[0]) {
                return Err("invalid type for comparison".into());
            }
            let o = compare(&a[0], &a[1])?;
            Value::Bool(match name {
                "ne" => o != Ordering::Equal,
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        "json" => {
            want(1)?;
            Value::Str(a[0].to_json(false))
        }
        "split" => {
            want(2)?;
            let (s, sep) = (text(&a[0]), text(&a[1]));
            Value::List(if sep.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(Value::str).collect()
            })
        }
        "join" => {
            want(2)?;
            match &a[0] {
                Value::List(l) => {
                    Value::Str(l.iter().map(text).collect::<Vec<_>>().join(&text(&a[1])))
                }
                other => {
                    return Err(format!(
                        "wrong type for value; expected []string; got {}",
                        other.type_name()
                    ))
                }
            }
        }
        "title" => {
            want(1)?;
            Value::Str(title(&text(&a[0])))
        }
        "lower" => {
            want(1)?;
            Value::Str(text(&a[0]).to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::Str(text(&a[0]).to_uppercase())
        }
        "pad" => {
            want(3)?;
            let s = text(&a[0]);
            if s.is_empty() {
                Value::Str(s)
            } else {
                let (pre, post) = (int(&a[1])?, int(&a[2])?);
                Value::Str(format!("{}{s}{}", " ".repeat(pre), " ".repeat(post)))
            }
        }
        "truncate" => {
            want(2)?;
            let s = text(&a[0]);
            let n = int(&a[1])?;
            if s.len() < n {
                Value::Str(s)
            } else {
                let mut end = n;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Value::Str(s[..end].to_string())
            }
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

/// A string argument; other values as Go's `%v` would print them.
fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> Result<usize, String> {
    match v {
        Value::Int(i) => usize::try_from(*i).map_err(|_| format!("negative count {i}")),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

fn ordered(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Float(_) | Value::Str(_))
}

fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    let num = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Nil | Value::Missing, Value::Nil | Value::Missing) => Ok(Ordering::Equal),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal)),
            _ => Err("incompatible types for comparison".into()),
        },
    }
}

/// Go's strings.Title: the first letter of every word in upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}
