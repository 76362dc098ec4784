//! Go's text/template, as docker's `--format` uses it: parsing here, execution in `template_exec`,
//! the data model in `template_value`.
//!
//! The language: text and `{{actions}}` with `{{-`/`-}}` trimming and `{{/* comments */}}`;
//! pipelines of commands joined by `|` (each result is passed as the last argument of the next);
//! operands `.`, `.Field.Chain`, `$var.Field`, `(pipeline).Field`, strings ("..." and `...`),
//! numbers, `true`/`false`/`nil` and function calls; `$x := ...`, `$x = ...`;
//! `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`, `break`, `continue`), `with`/`else`.
//! Functions: Go's builtins (and or not len index print printf println eq ne lt le gt ge) and
//! docker's (json split join title lower upper pad truncate). An unknown function is a parse error,
//! as in Go; errors read as Go's (`template: :1: unclosed action`).

use super::template_exec::Exec;
use super::template_funcs::is_function;
use super::template_lex::{scan, Item, Tok, Token};
pub use super::template_value::Value;

/// Where a node starts: 1-based line, 0-based byte column within the line (Go's `:line:col:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Print(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub pos: Pos,
    /// Variables declared (`:=`) or assigned (`=`) by this pipeline.
    pub vars: Vec<String>,
    pub declare: bool,
    /// Commands, each a list of arguments with where they start.
    pub cmds: Vec<Command>,
}

/// One command of a pipeline: its arguments, each with where it starts.
pub type Command = Vec<(Pos, Arg)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipe>, Vec<String>),
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = |f: &mut std::fmt::Formatter<'_>, c: &[String]| {
            c.iter().try_for_each(|s| write!(f, ".{s}"))
        };
        match self {
            Arg::Dot => f.write_str("."),
            Arg::Field(c) => chain(f, c),
            Arg::Var(v, c) => {
                write!(f, "${v}")?;
                chain(f, c)
            }
            Arg::Func(n) => f.write_str(n),
            Arg::Str(s) => write!(f, "{s:?}"),
            Arg::Int(i) => write!(f, "{i}"),
            Arg::Float(x) => write!(f, "{x}"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Nil => f.write_str("nil"),
            Arg::Sub(_, c) => {
                f.write_str("(...)")?;
                chain(f, c)
            }
        }
    }
}

/// A parse or execution error, worded as Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

pub(super) fn parse_error(line: usize, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("template: :{line}: {msg}"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let items = scan(text)?;
        let mut p = Parser { items, next: 0 };
        let (nodes, end) = p.list()?;
        if let Some((word, line)) = end {
            return Err(parse_error(line, format!("unexpected {{{{{word}}}}}")));
        }
        Ok(Template { nodes })
    }

    /// Runs the template on `data` with docker's functions.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        Exec::new(data, false).run(&self.nodes)
    }

    /// Runs the template for a table's header row: `data` maps field names to column titles, and
    /// docker's header functions leave the titles as they are (`upper`, `json`... return their input).
    pub fn execute_header(&self, data: &Value) -> String {
        Exec::new(data, true).run_partial(&self.nodes)
    }
}

// ---- parsing: items into nodes

struct Parser {
    items: Vec<Item>,
    next: usize,
}

/// How a list ended: the keyword (`end`, `else`) and its line; `else` keeps its remaining tokens.
type ListEnd = Option<(String, usize)>;

impl Parser {
    /// Parses nodes up to `{{end}}`/`{{else ...}}` (returned) or the end of the input (None).
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut nodes = vec![];
        while self.next < self.items.len() {
            let i = self.next;
            self.next += 1;
            let (tokens, pos) = match &mut self.items[i] {
                Item::Text(t) => {
                    nodes.push(Node::Text(std::mem::take(t)));
                    continue;
                }
                Item::Action(t, pos) => (std::mem::take(t), *pos),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(w)) => w.as_str(),
                _ => "",
            };
            match keyword {
                "end" => return Ok((nodes, Some(("end".into(), pos.line)))),
                "else" => {
                    // `else if ...` / `else with ...`: leave the rest for the caller.
                    self.items[i] = Item::Action(tokens[1..].to_vec(), pos);
                    return Ok((nodes, Some(("else".into(), pos.line))));
                }
                "if" | "range" | "with" => nodes.push(self.control(keyword, &tokens[1..], pos)?),
                "break" => nodes.push(Node::Break),
                "continue" => nodes.push(Node::Continue),
                "define" | "template" | "block" => {
                    return Err(parse_error(
                        pos.line,
                        format!("{{{{{keyword}}}}} is not supported"),
                    ))
                }
                _ => {
                    let pipe = pipeline(&tokens, pos, "command")?;
                    nodes.push(Node::Print(pipe));
                }
            }
        }
        Ok((nodes, None))
    }

    fn control(
        &mut self,
        keyword: &str,
        tokens: &[Token],
        pos: Pos,
    ) -> Result<Node, TemplateError> {
        let pipe = pipeline(tokens, pos, keyword)?;
        let (body, end) = self.list()?;
        let mut otherwise = vec![];
        match end {
            None => return Err(parse_error(pos.line, "unexpected EOF")),
            Some((w, _)) if w == "end" => {}
            Some((_, line)) => {
                // The else action's remaining tokens are in the item just consumed.
                let i = self.next - 1;
                let rest = match &self.items[i] {
                    Item::Action(t, _) => t.clone(),
                    Item::Text(_) => vec![],
                };
                let chained = match rest.first().map(|t| &t.tok) {
                    Some(Tok::Ident(w)) if w == "if" || w == "with" => Some(w.clone()),
                    _ => None,
                };
                if let Some(w) = chained {
                    // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing the outer `{{end}}`.
                    otherwise.push(self.control(&w, &rest[1..], pos)?);
                } else {
                    if !rest.is_empty() {
                        return Err(parse_error(line, "unexpected tokens after else"));
                    }
                    let (els, end) = self.list()?;
                    match end {
                        Some((w, _)) if w == "end" => {}
                        Some((w, line)) => {
                            return Err(parse_error(line, format!("unexpected {{{{{w}}}}}")))
                        }
                        None => return Err(parse_error(pos.line, "unexpected EOF")),
                    }
                    otherwise = els;
                }
            }
        }
        Ok(match keyword {
            "if" => Node::If(pipe, body, otherwise),
            "range" => Node::Range(pipe, body, otherwise),
            _ => Node::With(pipe, body, otherwise),
        })
    }
}

/// Parses a whole pipeline (with an optional declaration) from an action's tokens.
fn pipeline(tokens: &[Token], pos: Pos, context: &str) -> Result<Pipe, TemplateError> {
    let mut vars = vec![];
    let mut declare = false;
    let mut rest = tokens;
    // `$x :=`, `$x =`, `$i, $v :=`
    let mut k = 0;
    let mut names = vec![];
    while let Some(Token {
        tok: Tok::Var(name, chain),
        ..
    }) = rest.get(k)
    {
        if !chain.is_empty() {
            break;
        }
        names.push(name.clone());
        match rest.get(k + 1).map(|t| &t.tok) {
            Some(Tok::Comma) if context == "range" && names.len() < 2 => k += 2,
            Some(Tok::Declare) | Some(Tok::Assign) => {
                declare = rest[k + 1].tok == Tok::Declare;
                vars = names.clone();
                rest = &rest[k + 2..];
                break;
            }
            _ => break,
        }
    }
    let (cmds, used) = commands(rest, pos)?;
    if used != rest.len() {
        return Err(parse_error(pos.line, "unexpected right paren"));
    }
    if cmds.is_empty() {
        return Err(parse_error(
            pos.line,
            format!("missing value for {context}"),
        ));
    }
    Ok(Pipe {
        pos,
        vars,
        declare,
        cmds,
    })
}

/// Commands separated by `|`, up to the end or an unmatched `)`; returns them and tokens used.
fn commands(tokens: &[Token], pos: Pos) -> Result<(Vec<Command>, usize), TemplateError> {
    let mut cmds = vec![];
    let mut cmd: Command = vec![];
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let arg = match &t.tok {
            Tok::RParen => break,
            Tok::Bar => {
                if cmd.is_empty() {
                    return Err(parse_error(t.pos.line, "missing command"));
                }
                cmds.push(std::mem::take(&mut cmd));
                i += 1;
                continue;
            }
            Tok::LParen => {
                let (sub, used) = commands(&tokens[i + 1..], t.pos)?;
                i += used + 1;
                if tokens.get(i).map(|t| &t.tok) != Some(&Tok::RParen) {
                    return Err(parse_error(t.pos.line, "unclosed left paren"));
                }
                if sub.is_empty() {
                    return Err(parse_error(t.pos.line, "missing command"));
                }
                let mut chain = vec![];
                if let Some(Token {
                    tok: Tok::Field(c),
                    spaced: false,
                    ..
                }) = tokens.get(i + 1)
                {
                    chain = c.clone();
                    i += 1;
                }
                let pipe = Pipe {
                    pos: t.pos,
                    vars: vec![],
                    declare: false,
                    cmds: sub,
                };
                Arg::Sub(Box::new(pipe), chain)
            }
            Tok::Field(c) if c.is_empty() => Arg::Dot,
            Tok::Field(c) => Arg::Field(c.clone()),
            Tok::Var(v, c) => Arg::Var(v.clone(), c.clone()),
            Tok::Str(s) => Arg::Str(s.clone()),
            Tok::Num(n) => number(n, t.pos.line)?,
            Tok::Ident(w) => match w.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ if is_function(w) => Arg::Func(w.clone()),
                _ => {
                    return Err(parse_error(
                        t.pos.line,
                        format!("function {w:?} not defined"),
                    ))
                }
            },
            Tok::Comma | Tok::Declare | Tok::Assign => {
                return Err(parse_error(t.pos.line, "unexpected token in command"))
            }
        };
        cmd.push((t.pos, arg));
        i += 1;
    }
    if !cmd.is_empty() {
        cmds.push(cmd);
    } else if !cmds.is_empty() {
        return Err(parse_error(pos.line, "missing command"));
    }
    Ok((cmds, i))
}

fn number(n: &str, line: usize) -> Result<Arg, TemplateError> {
    let clean = n.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Ok(Arg::Int(if neg { -i } else { i }));
    }
    match clean.parse::<f64>() {
        Ok(f) => Ok(Arg::Float(f)),
        Err(_) => Err(parse_error(line, format!("bad number syntax: {n:?}"))),
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
