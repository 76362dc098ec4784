//! Executes a parsed template (see `template`): walks the nodes with a dot and a variable stack, and
//! calls Go's builtin functions and docker's (`templates.basicFunctions`; for a table's header row,
//! docker's `HeaderFunctions`, which return the column title untouched).

use super::template::{parse_error, Arg, Node, Pipe, Pos, TemplateError};
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

enum Flow {
    Normal,
    Break,
    Continue,
}

type Result<T> = std::result::Result<T, TemplateError>;

pub struct Exec {
    header: bool,
    /// Variables in scope, innermost last; `$` (named "") is the data.
    vars: Vec<(String, Value)>,
    out: String,
    root: Value,
}

fn exec_error(pos: Pos, at: &dyn std::fmt::Display, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!(
        "template: :{}:{}: executing \"\" at <{at}>: {msg}",
        pos.line, pos.col
    ))
}

impl Exec {
    pub fn new(data: &Value, header: bool) -> Exec {
        Exec {
            header,
            vars: vec![(String::new(), data.clone())],
            out: String::new(),
            root: data.clone(),
        }
    }

    pub fn run(mut self, nodes: &[Node]) -> Result<String> {
        let root = self.root.clone();
        self.walk(nodes, &root)?;
        Ok(self.out)
    }

    /// Runs to the first error and returns what was written before it (docker ignores errors
    /// while writing a header row).
    pub fn run_partial(mut self, nodes: &[Node]) -> String {
        let root = self.root.clone();
        let _ = self.walk(nodes, &root);
        self.out
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Print(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        self.out.push_str(&v.to_string());
                    } else {
                        self.bind(pipe, v)?;
                    }
                    Flow::Normal
                }
                Node::If(pipe, body, els) | Node::With(pipe, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let truth = v.truth();
                    if !pipe.vars.is_empty() {
                        self.bind(pipe, v.clone())?;
                    }
                    let flow = match (truth, node) {
                        (true, Node::With(..)) => self.walk(body, &v)?,
                        (true, _) => self.walk(body, dot)?,
                        (false, _) => self.walk(els, dot)?,
                    };
                    self.vars.truncate(mark);
                    flow
                }
                Node::Range(pipe, body, els) => self.range(pipe, body, els, dot)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, pipe: &Pipe, body: &[Node], els: &[Node], dot: &Value) -> Result<Flow> {
        let v = self.pipe(pipe, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Missing | Value::Nil => vec![],
            other => {
                return Err(exec_error(
                    pipe.pos,
                    &"range",
                    format!("range can't iterate over {other}"),
                ))
            }
        };
        if items.is_empty() {
            return self.walk(els, dot);
        }
        for (key, item) in items {
            let mark = self.vars.len();
            match pipe.vars.as_slice() {
                [v] => self.vars.push((v.clone(), item.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), item.clone()));
                }
                _ => {}
            }
            let flow = self.walk(body, &item)?;
            self.vars.truncate(mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// `$x := v` declares in the current scope; `$x = v` sets the nearest `$x`.
    fn bind(&mut self, pipe: &Pipe, v: Value) -> Result<()> {
        for name in &pipe.vars {
            if pipe.declare {
                self.vars.push((name.clone(), v.clone()));
            } else {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => {
                        return Err(parse_error(
                            pipe.pos.line,
                            format!("undefined variable: ${name}"),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value> {
        let mut last: Option<Value> = None;
        for cmd in &pipe.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        Ok(last.unwrap_or(Value::Missing))
    }

    fn command(&mut self, args: &[(Pos, Arg)], dot: &Value, last: Option<Value>) -> Result<Value> {
        let Some((pos, first)) = args.first() else {
            return Ok(Value::Missing);
        };
        let pos = *pos;
        if let Arg::Func(name) = first {
            if name == "and" || name == "or" {
                return self.and_or(name == "and", &args[1..], dot, last, pos);
            }
            let mut vals = args[1..]
                .iter()
                .map(|(p, a)| self.arg(a, dot, *p))
                .collect::<Result<Vec<_>>>()?;
            vals.extend(last);
            return self
                .call(name, &vals)
                .map_err(|e| exec_error(pos, first, format!("error calling {name}: {e}")));
        }
        if args.len() > 1 || last.is_some() {
            return Err(exec_error(
                pos,
                first,
                format!("can't give argument to non-function {first}"),
            ));
        }
        self.arg(first, dot, pos)
    }

    fn and_or(
        &mut self,
        and: bool,
        args: &[(Pos, Arg)],
        dot: &Value,
        last: Option<Value>,
        pos: Pos,
    ) -> Result<Value> {
        if args.is_empty() && last.is_none() {
            return Err(exec_error(
                pos,
                &"and",
                "wrong number of args: want at least 1 got 0",
            ));
        }
        let mut v = Value::Missing;
        for (p, a) in args {
            v = self.arg(a, dot, *p)?;
            if v.truth() != and {
                return Ok(v);
            }
        }
        Ok(last.unwrap_or(v))
    }

    fn arg(&mut self, arg: &Arg, dot: &Value, pos: Pos) -> Result<Value> {
        let (base, chain) = match arg {
            Arg::Dot => return Ok(dot.clone()),
            Arg::Field(chain) => (dot.clone(), chain),
            Arg::Var(name, chain) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| parse_error(pos.line, format!("undefined variable: ${name}")))?;
                (v, chain)
            }
            Arg::Sub(pipe, chain) => (self.pipe(pipe, dot)?, chain),
            Arg::Func(name) => {
                return self
                    .call(name, &[])
                    .map_err(|e| exec_error(pos, arg, format!("error calling {name}: {e}")))
            }
            Arg::Str(s) => return Ok(Value::Str(s.clone())),
            Arg::Int(i) => return Ok(Value::Int(*i)),
            Arg::Float(f) => return Ok(Value::Float(*f)),
            Arg::Bool(b) => return Ok(Value::Bool(*b)),
            Arg::Nil => return Ok(Value::Nil),
        };
        let mut v = base;
        for name in chain {
            v = field(&v, name).map_err(|msg| exec_error(pos, arg, msg))?;
        }
        Ok(v)
    }

    fn call(&self, name: &str, a: &[Value]) -> std::result::Result<Value, String> {
        let want = |n: usize| -> std::result::Result<(), String> {
            if a.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    a.len()
                ))
            }
        };
        if self.header
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
                            .get(
                                usize::try_from(*i)
                                    .map_err(|_| format!("index out of range: {i}"))?,
                            )
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?,
                        (Value::Map(m), Value::Str(k)) => {
                            m.get(k).cloned().unwrap_or(Value::Missing)
                        }
                        (Value::Missing | Value::Nil, _) => {
                            return Err("index of untyped nil".into())
                        }
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
}

fn field(v: &Value, name: &str) -> std::result::Result<Value, String> {
    match v {
        Value::Struct(type_name, fields) => fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("can't evaluate field {name} in type {type_name}")),
        Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Missing)),
        Value::Missing | Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            other.type_name()
        )),
    }
}

/// A string argument; other values as Go's `%v` would print them.
fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> std::result::Result<usize, String> {
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

fn compare(a: &Value, b: &Value) -> std::result::Result<Ordering, String> {
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
