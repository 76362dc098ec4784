//! Go's `fmt.Sprint`, `fmt.Sprintln` and the common part of `fmt.Sprintf` for templates:
//! verbs `%v %s %d %q %f %e %g %x %X %t %%`, flags `-+0 ` and space, width and precision.
//! A verb that does not fit its operand prints as Go's does: `%!d(string=abc)`.

use super::template_value::Value;

/// Sprint puts spaces between operands when neither side is a string; Sprintln always, plus `\n`.
pub fn print(args: &[Value], line: bool) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            let strings = matches!(a, Value::Str(_)) || matches!(args[i - 1], Value::Str(_));
            if line || !strings {
                out.push(' ');
            }
        }
        out.push_str(&a.to_string());
    }
    if line {
        out.push('\n');
    }
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

pub fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let digits = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        spec.width = digits(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&pad(&spec, &one(verb, &spec, arg)));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={a}", a.type_name()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn one(verb: char, spec: &Spec, arg: &Value) -> String {
    let sign = |neg: bool| {
        if neg {
            "-"
        } else if spec.plus {
            "+"
        } else if spec.space {
            " "
        } else {
            ""
        }
    };
    match (verb, arg) {
        ('v', _) => arg.to_string(),
        ('s', Value::Str(s)) => match spec.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', v) if !matches!(v, Value::Int(_) | Value::Float(_) | Value::Bool(_)) => v.to_string(),
        ('q', Value::Str(s)) => serde_json::Value::String(s.clone()).to_string(),
        ('t', Value::Bool(b)) => b.to_string(),
        ('d', Value::Int(i)) => format!("{}{}", sign(*i < 0), i.unsigned_abs()),
        ('x', Value::Int(i)) => format!("{}{:x}", sign(*i < 0), i.unsigned_abs()),
        ('X', Value::Int(i)) => format!("{}{:X}", sign(*i < 0), i.unsigned_abs()),
        ('x', Value::Str(s)) => hex::encode(s),
        ('f' | 'e' | 'g', Value::Int(i)) => one(verb, spec, &Value::Float(*i as f64)),
        ('f', Value::Float(f)) => {
            let p = spec.precision.unwrap_or(6);
            format!("{}{:.p$}", sign(*f < 0.0), f.abs())
        }
        ('e', Value::Float(f)) => {
            let p = spec.precision.unwrap_or(6);
            let s = format!("{:.p$e}", f.abs());
            // Go writes the exponent with a sign and two digits: 1.5e+00.
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            format!(
                "{}{m}e{}{:02}",
                sign(*f < 0.0),
                if e < 0 { '-' } else { '+' },
                e.abs()
            )
        }
        ('g', Value::Float(f)) => format!("{}{}", sign(*f < 0.0), f.abs()),
        (verb, v) => format!("%!{verb}({}={v})", v.type_name()),
    }
}

fn pad(spec: &Spec, s: &str) -> String {
    let width = spec.width.unwrap_or(0);
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let fill = width - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero {
        // Zeros go after the sign.
        let (sign, digits) = match s.strip_prefix(['-', '+', ' ']) {
            Some(d) => (&s[..1], d),
            None => ("", s),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}
