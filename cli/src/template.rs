//! The subset of Go's text/template that `docker --format` users rely on, evaluated over JSON.
//!
//! Supported: text, `{{.}}`, fields `.A.B` (exact key, else case-insensitive like docker's
//! typed-then-raw fallback), `$` / `$.A`, string/number/bool literals, parentheses, pipelines `|`,
//! `{{- -}}` trimming, `if`/`else if`/`else`/`end`, `range`, `with`, and docker's functions
//! `json join split upper lower title truncate pad index len printf print println` plus `eq ne
//! lt le gt ge not and or`. A missing map key prints `<no value>`, like Go over a map.

use serde_json::{Map, Value};

use crate::error::Error;

#[derive(Debug, Clone)]
pub(crate) struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If {
        cond: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipe(Vec<Cmd>);

#[derive(Debug, Clone)]
struct Cmd(Vec<Arg>);

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B`; empty path = `.`
    Field(Vec<String>),
    /// `$` / `$.A.B`
    Root(Vec<String>),
    Lit(Value),
    Func(String),
    Sub(Pipe, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    LParen,
    RParen,
    Bar,
}

/// A parsed action or text between the control keywords, before nesting.
#[derive(Debug)]
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn err(msg: impl Into<String>) -> Error {
    Error::Template(msg.into())
}

impl Template {
    pub(crate) fn parse(src: &str) -> Result<Template, Error> {
        let items = lex(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&items, &mut pos)?;
        if let Some(kw) = end {
            return Err(err(format!("unexpected {{{{{kw}}}}}")));
        }
        Ok(Template { nodes })
    }

    pub(crate) fn render(&self, dot: &Value) -> Result<String, Error> {
        let mut out = String::new();
        let env = Env {
            root: dot,
            header: None,
        };
        exec(&self.nodes, dot, &env, &mut out)?;
        Ok(out)
    }

    /// Renders a table header: every field reference evaluates to its column title from
    /// `titles` (docker's header context), or the field name upper-cased when it has none.
    pub(crate) fn render_header(&self, titles: &[(&str, &str)]) -> Result<String, Error> {
        let mut out = String::new();
        let env = Env {
            root: &Value::Null,
            header: Some(titles),
        };
        exec(&self.nodes, &Value::Null, &env, &mut out)?;
        Ok(out)
    }
}

fn lex(src: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let text = if trim_next { rest.trim_start() } else { rest };
            items.push(Item::Text(text.to_string()));
            break;
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = &rest[start + 2..];
        if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
            text = text.trim_end();
            inner = &inner[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let (toks, consumed) = lex_action(inner)?;
        let mut after = &inner[consumed..];
        trim_next = false;
        // lex_action stops at "}}" or " -}}"
        if let Some(a) = after.strip_prefix("-}}") {
            trim_next = true;
            after = a;
        } else if let Some(a) = after.strip_prefix("}}") {
            after = a;
        }
        items.push(Item::Action(toks));
        rest = after;
    }
    Ok(items)
}

fn lex_action(s: &str) -> Result<(Vec<Tok>, usize), Error> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    loop {
        if i >= b.len() {
            return Err(err("unclosed action"));
        }
        let c = b[i];
        if s[i..].starts_with("}}") {
            return Ok((toks, i));
        }
        if c == b'-' && s[i..].starts_with("-}}") && i > 0 && b[i - 1].is_ascii_whitespace() {
            return Ok((toks, i));
        }
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1
            }
            b'|' => {
                toks.push(Tok::Bar);
                i += 1
            }
            b'"' => {
                let mut out = String::new();
                i += 1;
                let mut chars = s[i..].char_indices();
                loop {
                    let Some((off, ch)) = chars.next() else {
                        return Err(err("unterminated quoted string"));
                    };
                    match ch {
                        '"' => {
                            i += off + 1;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some(other) => out.push(other),
                            None => return Err(err("unterminated quoted string")),
                        },
                        c => out.push(c),
                    }
                }
                toks.push(Tok::Str(out));
            }
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or_else(|| err("unterminated raw string"))?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(b[i], b'(' | b')' | b'|' | b'"' | b'`')
                    && !s[i..].starts_with("}}")
                {
                    i += 1;
                }
                toks.push(Tok::Word(s[start..i].to_string()));
            }
        }
    }
}

/// Parses nodes until `end`/`else` (returned so the caller can check what closed the block).
fn parse_nodes(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), Error> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(toks) => {
                let kw = match toks.first() {
                    Some(Tok::Word(w)) => w.as_str(),
                    _ => "",
                };
                match kw {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => {
                        // `else if ...` is returned whole so the `if` parser can chain it
                        let rest: Vec<String> = toks[1..]
                            .iter()
                            .map(|t| match t {
                                Tok::Word(w) => w.clone(),
                                _ => String::new(),
                            })
                            .collect();
                        if rest.first().map(String::as_str) == Some("if") {
                            *pos -= 1;
                            return Ok((nodes, Some("else if".into())));
                        }
                        return Ok((nodes, Some("else".into())));
                    }
                    "if" | "range" | "with" => {
                        let pipe = parse_pipe(&toks[1..])?;
                        nodes.push(parse_block(kw, pipe, items, pos)?);
                    }
                    "/*" => {}
                    _ => {
                        if toks.is_empty() {
                            return Err(err("missing value for command"));
                        }
                        nodes.push(Node::Action(parse_pipe(toks)?));
                    }
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_block(kw: &str, pipe: Pipe, items: &[Item], pos: &mut usize) -> Result<Node, Error> {
    let (body, end) = parse_nodes(items, pos)?;
    let otherwise = match end.as_deref() {
        Some("end") => Vec::new(),
        Some("else") => {
            let (o, end2) = parse_nodes(items, pos)?;
            if end2.as_deref() != Some("end") {
                return Err(err(format!("missing {{{{end}}}} for {kw}")));
            }
            o
        }
        Some("else if") => {
            // items[*pos] is `else if <pipe>`: parse it as a nested if that consumes our `end`
            let Item::Action(toks) = &items[*pos] else {
                unreachable!("checked by parse_nodes")
            };
            *pos += 1;
            let cond = parse_pipe(&toks[2..])?;
            vec![parse_block("if", cond, items, pos)?]
        }
        _ => return Err(err(format!("missing {{{{end}}}} for {kw}"))),
    };
    Ok(match kw {
        "if" => Node::If {
            cond: pipe,
            then: body,
            otherwise,
        },
        "range" => Node::Range {
            pipe,
            body,
            otherwise,
        },
        _ => Node::With {
            pipe,
            body,
            otherwise,
        },
    })
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe, Error> {
    let mut cmds = Vec::new();
    let mut i = 0;
    let mut args = Vec::new();
    while i < toks.len() {
        match &toks[i] {
            Tok::Bar => {
                if args.is_empty() {
                    return Err(err("missing command before |"));
                }
                cmds.push(Cmd(std::mem::take(&mut args)));
                i += 1;
            }
            Tok::RParen => return Err(err("unexpected )")),
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(err("unclosed (")),
                    }
                    j += 1;
                }
                let inner = parse_pipe(&toks[i + 1..j])?;
                // `(index . 0).Name`: a field chain right after the parenthesis
                let mut chain = Vec::new();
                if let Some(Tok::Word(w)) = toks.get(j + 1)
                    && w.starts_with('.')
                    && w.len() > 1
                {
                    chain = w[1..].split('.').map(str::to_string).collect();
                    j += 1;
                }
                args.push(Arg::Sub(inner, chain));
                i = j + 1;
            }
            Tok::Str(s) => {
                args.push(Arg::Lit(Value::String(s.clone())));
                i += 1;
            }
            Tok::Word(w) => {
                args.push(parse_word(w)?);
                i += 1;
            }
        }
    }
    if args.is_empty() {
        return Err(err("missing command"));
    }
    cmds.push(Cmd(args));
    Ok(Pipe(cmds))
}

fn parse_word(w: &str) -> Result<Arg, Error> {
    if w == "." {
        return Ok(Arg::Field(Vec::new()));
    }
    if let Some(path) = w.strip_prefix('.') {
        return Ok(Arg::Field(path.split('.').map(str::to_string).collect()));
    }
    if w == "$" {
        return Ok(Arg::Root(Vec::new()));
    }
    if let Some(path) = w.strip_prefix("$.") {
        return Ok(Arg::Root(path.split('.').map(str::to_string).collect()));
    }
    match w {
        "true" => return Ok(Arg::Lit(Value::Bool(true))),
        "false" => return Ok(Arg::Lit(Value::Bool(false))),
        "nil" => return Ok(Arg::Lit(Value::Null)),
        _ => {}
    }
    if let Ok(n) = w.parse::<i64>() {
        return Ok(Arg::Lit(Value::from(n)));
    }
    if let Ok(f) = w.parse::<f64>() {
        return Ok(Arg::Lit(Value::from(f)));
    }
    if w.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(Arg::Func(w.to_string()));
    }
    Err(err(format!("unexpected {w:?} in command")))
}

struct Env<'a> {
    root: &'a Value,
    header: Option<&'a [(&'a str, &'a str)]>,
}

/// `None` is a missing key (prints `<no value>`), distinct from JSON null (prints `<nil>`).
type Val = Option<Value>;

fn exec(nodes: &[Node], dot: &Value, env: &Env<'_>, out: &mut String) -> Result<(), Error> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&print(&eval_pipe(p, dot, env)?)),
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                if truthy(&eval_pipe(cond, dot, env)?) {
                    exec(then, dot, env, out)?
                } else {
                    exec(otherwise, dot, env, out)?
                }
            }
            Node::With {
                pipe,
                body,
                otherwise,
            } => {
                let v = eval_pipe(pipe, dot, env)?;
                if truthy(&v) {
                    exec(body, &v.unwrap_or(Value::Null), env, out)?
                } else {
                    exec(otherwise, dot, env, out)?
                }
            }
            Node::Range {
                pipe,
                body,
                otherwise,
            } => {
                let elems: Vec<Value> = match eval_pipe(pipe, dot, env)? {
                    Some(Value::Array(a)) => a,
                    Some(Value::Object(m)) => m.into_iter().map(|(_, v)| v).collect(),
                    Some(Value::Number(n)) => {
                        (0..n.as_i64().unwrap_or(0)).map(Value::from).collect()
                    }
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => return Err(err(format!("range can't iterate over {other}"))),
                };
                if elems.is_empty() {
                    exec(otherwise, dot, env, out)?;
                }
                for e in &elems {
                    exec(body, e, env, out)?;
                }
            }
        }
    }
    Ok(())
}

fn lookup(v: &Value, path: &[String]) -> Val {
    let mut cur = v.clone();
    for key in path {
        let Value::Object(m) = &cur else { return None };
        let found = m.get(key).or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        });
        cur = found?.clone();
    }
    Some(cur)
}

fn header_of(titles: &[(&str, &str)], path: &[String]) -> Val {
    let Some(first) = path.first() else {
        return Some(Value::String(String::new()));
    };
    let title = titles
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(first))
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| path.last().unwrap_or(first).to_uppercase());
    Some(Value::String(title))
}

fn eval_arg(arg: &Arg, dot: &Value, env: &Env<'_>) -> Result<Val, Error> {
    Ok(match arg {
        Arg::Field(path) => match env.header {
            Some(t) if !path.is_empty() => header_of(t, path),
            _ => lookup(dot, path),
        },
        Arg::Root(path) => match env.header {
            Some(t) if !path.is_empty() => header_of(t, path),
            _ => lookup(env.root, path),
        },
        Arg::Lit(v) => Some(v.clone()),
        Arg::Func(name) => call(name, Vec::new(), env)?,
        Arg::Sub(p, chain) => {
            let v = eval_pipe(p, dot, env)?;
            if chain.is_empty() {
                v
            } else {
                v.and_then(|v| lookup(&v, chain))
            }
        }
    })
}

fn eval_pipe(pipe: &Pipe, dot: &Value, env: &Env<'_>) -> Result<Val, Error> {
    let mut piped: Option<Val> = None;
    for Cmd(args) in &pipe.0 {
        let result = match &args[0] {
            Arg::Func(name) => {
                let mut vals = Vec::new();
                for a in &args[1..] {
                    vals.push(eval_arg(a, dot, env)?);
                }
                if let Some(p) = piped.take() {
                    vals.push(p);
                }
                call(name, vals, env)?
            }
            first => {
                if args.len() > 1 {
                    return Err(err("can't give arguments to a non-function"));
                }
                if piped.is_some() {
                    return Err(err("can't pipe into a non-function"));
                }
                eval_arg(first, dot, env)?
            }
        };
        piped = Some(result);
    }
    Ok(piped.flatten())
}

fn truthy(v: &Val) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn s(v: &Val) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        other => print(other),
    }
}

/// Go's `%v` of a JSON-decoded value.
fn print(v: &Val) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => print_value(v),
    }
}

fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(print_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", print_value(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn want(args: &[Val], n: usize, name: &str) -> Result<(), Error> {
    if args.len() != n {
        return Err(err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
        _ => None,
    }
}

fn call(name: &str, args: Vec<Val>, env: &Env<'_>) -> Result<Val, Error> {
    let str_val = |x: String| Ok(Some(Value::String(x)));
    match name {
        "json" => {
            want(&args, 1, name)?;
            if env.header.is_some() {
                return Ok(args.into_iter().next().flatten());
            }
            let v = args.into_iter().next().flatten().unwrap_or(Value::Null);
            // Go's json.Marshal escapes <, > and & (they can only occur inside strings)
            let text = serde_json::to_string(&v).unwrap_or_default();
            str_val(
                text.replace('<', "\\u003c")
                    .replace('>', "\\u003e")
                    .replace('&', "\\u0026"),
            )
        }
        "join" => {
            want(&args, 2, name)?;
            match &args[0] {
                Some(Value::Array(a)) => {
                    let parts: Vec<String> = a.iter().map(|v| s(&Some(v.clone()))).collect();
                    str_val(parts.join(&s(&args[1])))
                }
                other => str_val(s(other)),
            }
        }
        "split" => {
            want(&args, 2, name)?;
            let parts = s(&args[0])
                .split(&s(&args[1]))
                .map(|p| Value::String(p.into()))
                .collect();
            Ok(Some(Value::Array(parts)))
        }
        "upper" => {
            want(&args, 1, name)?;
            str_val(s(&args[0]).to_uppercase())
        }
        "lower" => {
            want(&args, 1, name)?;
            str_val(s(&args[0]).to_lowercase())
        }
        "title" => {
            want(&args, 1, name)?;
            let t = s(&args[0])
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join(" ");
            str_val(t)
        }
        "truncate" => {
            want(&args, 2, name)?;
            let n = args[1].as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
            str_val(s(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            want(&args, 3, name)?;
            let l = args[1].as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
            let r = args[2].as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
            str_val(format!("{}{}{}", " ".repeat(l), s(&args[0]), " ".repeat(r)))
        }
        "len" => {
            want(&args, 1, name)?;
            let n = match &args[0] {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(m)) => m.len(),
                Some(Value::String(x)) => x.len(),
                _ => return Err(err("len of unsupported type")),
            };
            Ok(Some(Value::from(n)))
        }
        "index" => {
            if args.is_empty() {
                return Err(err("wrong number of args for index"));
            }
            let mut it = args.into_iter();
            let mut cur = it.next().flatten();
            for key in it {
                cur = match (cur, key) {
                    (Some(Value::Array(a)), Some(Value::Number(n))) => {
                        let i = n.as_u64().ok_or_else(|| err("index out of range"))? as usize;
                        Some(a.get(i).cloned().ok_or_else(|| err("index out of range"))?)
                    }
                    (Some(Value::Object(m)), k) => m.get(&s(&k)).cloned(),
                    (None | Some(Value::Null), _) => None,
                    _ => return Err(err("can't index item")),
                };
            }
            Ok(cur)
        }
        "printf" => {
            let mut it = args.into_iter();
            let fmt = s(&it.next().ok_or_else(|| err("printf needs a format"))?);
            str_val(sprintf(&fmt, it.collect()))
        }
        "print" => str_val(args.iter().map(s).collect::<Vec<_>>().join("")),
        "println" => str_val(format!(
            "{}\n",
            args.iter().map(s).collect::<Vec<_>>().join(" ")
        )),
        "eq" | "ne" => {
            if args.len() < 2 {
                return Err(err(format!("wrong number of args for {name}")));
            }
            let eq = args[1..].iter().any(|b| {
                compare(&args[0], b) == Some(std::cmp::Ordering::Equal)
                    || (args[0] == *b && args[0].is_some())
            });
            Ok(Some(Value::Bool(if name == "eq" { eq } else { !eq })))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(&args, 2, name)?;
            use std::cmp::Ordering::*;
            let o = compare(&args[0], &args[1])
                .ok_or_else(|| err("incompatible types for comparison"))?;
            let r = match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            };
            Ok(Some(Value::Bool(r)))
        }
        "not" => {
            want(&args, 1, name)?;
            Ok(Some(Value::Bool(!truthy(&args[0]))))
        }
        "and" => Ok(args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .flatten()),
        "or" => Ok(args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .flatten()),
        _ => Err(err(format!("function {name:?} not defined"))),
    }
}

/// `%s %d %v %q %%` — enough for the `printf` docker users write.
fn sprintf(fmt: &str, args: Vec<Val>) -> String {
    let mut out = String::new();
    let mut args = args.into_iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(&format!("{:?}", s(&args.next().flatten()))),
            Some(_) => out.push_str(&s(&args.next().unwrap_or(None))),
            None => out.push('%'),
        }
    }
    out
}

/// Go's text/tabwriter as docker configures it (minwidth 10, padding 3, spaces): cells are
/// separated by `\t`; the last cell of a line is not padded.
pub(crate) fn tabwrite(text: &str) -> String {
    tabwrite_min(text, 10)
}

/// [`tabwrite`] with another minimum cell width (`docker top` uses 20).
pub(crate) fn tabwrite_min(text: &str, min_width: usize) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(w);
        }
    }
    let mut out = String::new();
    for cells in &lines {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                let width = (widths[i] + 3).max(min_width);
                out.push_str(&" ".repeat(width - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// How a list command prints its rows, from its `--format` value.
#[derive(Debug)]
pub(crate) enum ListFormat {
    Table(Template),
    Lines(Template),
}

impl ListFormat {
    /// `""`/`table` → the default table, `json` → `{{json .}}`, `tableX` → table of X, else X.
    /// As docker's formatter: spaces around X are trimmed and the two-character escapes `\t`
    /// and `\n` become a tab and a newline, so a shell's `'table {{.ID}}\t{{.Name}}'` works.
    pub(crate) fn parse(format: Option<&str>, default_table: &str) -> Result<ListFormat, Error> {
        let f = format.unwrap_or("");
        let unescape = |t: &str| {
            t.trim_matches(' ')
                .replace("\\t", "\t")
                .replace("\\n", "\n")
        };
        Ok(match f {
            "" | "table" => ListFormat::Table(Template::parse(default_table)?),
            "json" => ListFormat::Lines(Template::parse("{{json .}}")?),
            _ => match f.strip_prefix("table") {
                Some(rest) => ListFormat::Table(Template::parse(&unescape(rest))?),
                None => ListFormat::Lines(Template::parse(&unescape(f))?),
            },
        })
    }

    pub(crate) fn render(&self, rows: &[Value], titles: &[(&str, &str)]) -> Result<String, Error> {
        match self {
            ListFormat::Table(t) => {
                let mut text = t.render_header(titles)?;
                text.push('\n');
                for r in rows {
                    text.push_str(&t.render(r)?);
                    text.push('\n');
                }
                Ok(tabwrite(&text))
            }
            ListFormat::Lines(t) => {
                let mut text = String::new();
                for r in rows {
                    text.push_str(&t.render(r)?);
                    text.push('\n');
                }
                Ok(text)
            }
        }
    }
}

/// Object key used by `{{json .}}` on list rows: rows are built as maps, so keys come out sorted
/// like docker's formatter contexts.
pub(crate) fn row(fields: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn fields_nested_and_missing() {
        let v = json!({"Name": "web", "State": {"Status": "running", "Pid": 42}, "Gone": null});
        assert_eq!(
            r("{{.Name}} {{.State.Status}} {{.State.Pid}}", v.clone()),
            "web running 42"
        );
        assert_eq!(r("{{.state.status}}", v.clone()), "running");
        assert_eq!(r("{{.Nope}}|{{.Gone}}", v.clone()), "<no value>|<nil>");
        assert_eq!(r("{{$.Name}}", v), "web");
    }

    #[test]
    fn functions() {
        let v = json!({"Names": ["a", "b"], "Labels": {"x": "1", "y": "2"}, "Id": "Abc"});
        assert_eq!(r(r#"{{join .Names ","}}"#, v.clone()), "a,b");
        assert_eq!(
            r("{{upper .Id}} {{lower .Id}} {{.Id | upper}}", v.clone()),
            "ABC abc ABC"
        );
        assert_eq!(
            r(r#"{{index .Labels "y"}} {{index .Names 1}}"#, v.clone()),
            "2 b"
        );
        assert_eq!(r("{{json .Names}}", v.clone()), r#"["a","b"]"#);
        assert_eq!(r("{{json .}}", json!({"a":1})), r#"{"a":1}"#);
        assert_eq!(r("{{len .Names}} {{truncate .Id 2}}", v.clone()), "2 Ab");
        assert_eq!(r(r#"{{printf "%s-%d" .Id 3}}"#, v.clone()), "Abc-3");
        assert_eq!(r("{{.Labels}} {{.Names}}", v), "map[x:1 y:2] [a b]");
    }

    #[test]
    fn control_flow_and_trimming() {
        let v = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Running": false, "N": 2});
        assert_eq!(
            r("{{range .Mounts}}{{.Source}};{{end}}", v.clone()),
            "/a;/b;"
        );
        assert_eq!(r("{{if .Running}}up{{else}}down{{end}}", v.clone()), "down");
        assert_eq!(
            r(
                "{{if eq .N 1}}one{{else if eq .N 2}}two{{else}}many{{end}}",
                v.clone()
            ),
            "two"
        );
        assert_eq!(r("a  {{- .N -}}  b", v.clone()), "a2b");
        assert_eq!(r("{{with .Mounts}}{{len .}}{{end}}", v.clone()), "2");
        assert_eq!(r("{{(index .Mounts 1).Source}}", v), "/b");
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(
            Template::parse("{{nosuch .A}}")
                .unwrap()
                .render(&json!({}))
                .is_err()
        );
    }

    #[test]
    fn tables_have_headers_and_aligned_columns() {
        let rows = vec![
            json!({"ID": "abc", "Name": "web"}),
            json!({"ID": "abcdefghijklmn", "Name": "db"}),
        ];
        let f = ListFormat::parse(Some("table {{.ID}}\t{{.Name}}"), "").unwrap();
        let out = f
            .render(&rows, &[("ID", "CONTAINER ID"), ("Name", "NAMES")])
            .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID     NAMES\nabc              web\nabcdefghijklmn   db\n"
        );
        let f = ListFormat::parse(Some("{{.Name}}"), "").unwrap();
        assert_eq!(f.render(&rows, &[]).unwrap(), "web\ndb\n");
        // a shell's literal backslash-t and backslash-n, as docker's formatter reads them
        let f = ListFormat::parse(Some(r"table {{.ID}}\t{{.Name}}"), "").unwrap();
        assert_eq!(
            f.render(&rows[..1], &[("ID", "CONTAINER ID"), ("Name", "NAMES")])
                .unwrap(),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        let f = ListFormat::parse(Some(r" {{.ID}}\t{{.Name}}\n "), "").unwrap();
        assert_eq!(f.render(&rows[..1], &[]).unwrap(), "abc\tweb\n\n");
        let f = ListFormat::parse(Some("json"), "").unwrap();
        assert_eq!(
            f.render(&rows[..1], &[]).unwrap(),
            "{\"ID\":\"abc\",\"Name\":\"web\"}\n"
        );
        // a column narrower than minwidth is padded to 10
        assert_eq!(tabwrite("A\tB\nx\ty\n"), "A         B\nx         y\n");
    }
}
