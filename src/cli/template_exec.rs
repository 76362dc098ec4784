//! Executes a parsed template (see `template`): walks the nodes with a dot and a variable stack, and
//! calls Go's builtin functions and docker's (`templates.basicFunctions`; for a table's header row,
//! docker's `HeaderFunctions`, which return the column title untouched).

use super::template::{parse_error, Arg, Node, Pipe, Pos, TemplateError};
use super::template_funcs::call;
use super::template_value::Value;

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
            return call(name, &vals, self.header)
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
                return call(name, &[], self.header)
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
