//! Scanning Go templates: the text between actions, and each `{{action}}` as a list of tokens
//! (with `{{-`/`-}}` trimming applied and `{{/* comments */}}` dropped). Parsing is in `template`.

use super::template::{parse_error, Pos, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LParen,
    RParen,
    Bar,
    Comma,
    Declare,
    Assign,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(String),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    /// Whitespace before it (a field right after `)` chains onto it only when there is none).
    pub spaced: bool,
    pub pos: Pos,
}

#[derive(Debug)]
pub enum Item {
    Text(String),
    Action(Vec<Token>, Pos),
}

fn pos_at(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = offset - before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    Pos { line, col }
}

pub fn scan(text: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = vec![];
    let mut at = 0;
    let mut trim_next = false;
    while at < text.len() {
        let Some(open) = text[at..].find("{{").map(|i| at + i) else {
            push_text(&mut items, &text[at..], trim_next, false);
            break;
        };
        let mut inner = open + 2;
        let trim_before = text[inner..].starts_with("- ")
            || text[inner..].starts_with("-\t")
            || text[inner..].starts_with("-\n");
        if trim_before {
            inner += 1;
        }
        push_text(&mut items, &text[at..open], trim_next, trim_before);
        let line = pos_at(text, open).line;
        let rest = text[inner..].trim_start();
        if rest.starts_with("/*") {
            let start = inner + (text[inner..].len() - rest.len());
            let end = text[start..]
                .find("*/")
                .ok_or_else(|| parse_error(line, "unclosed comment"))?
                + start
                + 2;
            let tail = &text[end..];
            let (close, trims) = if let Some(t) = tail.strip_prefix(" -}}") {
                (text.len() - t.len(), true)
            } else if let Some(t) = tail.strip_prefix("}}") {
                (text.len() - t.len(), false)
            } else {
                return Err(parse_error(line, "comment ends before closing delimiter"));
            };
            trim_next = trims;
            at = close;
            continue;
        }
        let (tokens, close, trims) = lex_action(text, inner, line)?;
        items.push(Item::Action(tokens, pos_at(text, open)));
        trim_next = trims;
        at = close;
    }
    Ok(items)
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start();
    }
    if trim_end {
        t = t.trim_end();
    }
    if !t.is_empty() {
        items.push(Item::Text(t.to_string()));
    }
}

/// Lexes one action from `start` (just after `{{` or `{{-`); returns its tokens, the offset after
/// the closing `}}`, and whether it was `-}}`.
fn lex_action(
    text: &str,
    start: usize,
    line: usize,
) -> Result<(Vec<Token>, usize, bool), TemplateError> {
    let b = text.as_bytes();
    let mut i = start;
    let mut tokens = vec![];
    let mut spaced = false;
    loop {
        if i >= b.len() {
            return Err(parse_error(line, "unclosed action"));
        }
        let c = b[i];
        if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
            if text[i..].trim_start().starts_with("-}}") {
                let after = i + (text[i..].len() - text[i..].trim_start().len()) + 3;
                return Ok((tokens, after, true));
            }
            spaced = true;
            i += 1;
            continue;
        }
        if text[i..].starts_with("}}") {
            return Ok((tokens, i + 2, false));
        }
        let pos = pos_at(text, i);
        let (tok, len) = lex_token(&text[i..], line)?;
        tokens.push(Token { tok, spaced, pos });
        spaced = false;
        i += len;
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `.A.B` → ["A", "B"] and the length consumed.
fn lex_chain(s: &str) -> (Vec<String>, usize) {
    let mut chain = vec![];
    let mut at = 0;
    while s[at..].starts_with('.') {
        let name: String = s[at + 1..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .collect();
        if name.is_empty() {
            break;
        }
        at += 1 + name.len();
        chain.push(name);
    }
    (chain, at)
}

fn lex_token(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let c = s.chars().next().unwrap_or(' ');
    Ok(match c {
        '(' => (Tok::LParen, 1),
        ')' => (Tok::RParen, 1),
        '|' => (Tok::Bar, 1),
        ',' => (Tok::Comma, 1),
        ':' if s.starts_with(":=") => (Tok::Declare, 2),
        '=' => (Tok::Assign, 1),
        '.' => {
            let (chain, len) = lex_chain(s);
            if len == 0 {
                if s[1..].starts_with(|c: char| c.is_ascii_digit()) {
                    let n = number_len(s);
                    return Ok((Tok::Num(s[..n].to_string()), n));
                }
                (Tok::Field(vec![]), 1)
            } else {
                (Tok::Field(chain), len)
            }
        }
        '$' => {
            let name: String = s[1..].chars().take_while(|c| is_ident_char(*c)).collect();
            let (chain, len) = lex_chain(&s[1 + name.len()..]);
            (Tok::Var(name.clone(), chain), 1 + name.len() + len)
        }
        '"' => {
            let mut out = String::new();
            let mut chars = s.char_indices().skip(1);
            loop {
                match chars.next() {
                    None | Some((_, '\n')) => {
                        return Err(parse_error(line, "unterminated quoted string"))
                    }
                    Some((i, '"')) => return Ok((Tok::Str(out), i + 1)),
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        Some((_, 'r')) => out.push('\r'),
                        Some((_, '\\')) => out.push('\\'),
                        Some((_, '"')) => out.push('"'),
                        Some((_, other)) => {
                            return Err(parse_error(
                                line,
                                format!("invalid syntax: escape \\{other}"),
                            ))
                        }
                        None => return Err(parse_error(line, "unterminated quoted string")),
                    },
                    Some((_, ch)) => out.push(ch),
                }
            }
        }
        '`' => match s[1..].find('`') {
            Some(end) => (Tok::Str(s[1..1 + end].to_string()), end + 2),
            None => return Err(parse_error(line, "unterminated raw quoted string")),
        },
        c if c.is_ascii_digit()
            || ((c == '-' || c == '+') && s[1..].starts_with(|d: char| d.is_ascii_digit())) =>
        {
            let n = number_len(s);
            (Tok::Num(s[..n].to_string()), n)
        }
        c if is_ident_char(c) => {
            let name: String = s.chars().take_while(|c| is_ident_char(*c)).collect();
            let len = name.len();
            (Tok::Ident(name), len)
        }
        c => {
            return Err(parse_error(
                line,
                format!(
                    "unexpected bad character U+{:04X} '{c}' in command",
                    c as u32
                ),
            ))
        }
    })
}

fn number_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let sign = (c == '-' || c == '+') && (i == 0 || matches!(s.as_bytes()[i - 1], b'e' | b'E'));
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || sign {
            n = i + c.len_utf8();
        } else {
            break;
        }
    }
    n
}
