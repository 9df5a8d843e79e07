//! Dockerfile parsing: lines into instructions (with the line each starts
//! on), and moby's word processing (quotes, escapes, `$VAR`, `${VAR:-x}`).
//!
//! Hand-written rather than a crate: `dockerfile-parser` (pest, last
//! release 2021) loses moby's escape and variable rules, and
//! `parse-dockerfile` parses only; the builder needs moby's legacy
//! semantics (word splitting and expansion per instruction, JSON forms,
//! flags) and the start line of every instruction for its errors.

use std::collections::BTreeMap;

/// A Dockerfile that cannot be parsed; the text is moby's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// Upper case keyword (`RUN`).
    pub(crate) keyword: String,
    /// `--name=value` flags before the arguments.
    pub(crate) flags: Vec<(String, String)>,
    /// The arguments after the keyword and flags, continuations joined.
    pub(crate) args: String,
    /// The whole instruction as `Step N/M :` shows it.
    pub(crate) original: String,
    /// 1-based line the instruction starts on.
    pub(crate) line: usize,
}

impl Instruction {
    pub(crate) fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    pub(crate) fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses flags other than `allowed`.
    pub(crate) fn check_flags(&self, allowed: &[&str]) -> Result<(), ParseError> {
        match self
            .flags
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(self.error(format!("unknown flag: --{k}"))),
            None => Ok(()),
        }
    }

    /// The JSON array form (`["a", "b"]`), if the arguments are one.
    pub(crate) fn json_args(&self) -> Option<Vec<String>> {
        let text = self.args.trim();
        if !text.starts_with('[') {
            return None;
        }
        serde_json::from_str::<Vec<String>>(text).ok()
    }
}

const KNOWN: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Instructions whose arguments start with `--flag=value` words.
const WITH_FLAGS: &[&str] = &["FROM", "RUN", "ADD", "COPY", "HEALTHCHECK"];

/// Splits a Dockerfile into instructions. Comments and empty lines are
/// skipped, also inside a continued instruction (as moby does); the
/// `escape` parser directive is honoured.
pub(crate) fn parse(text: &str) -> Result<Vec<Instruction>, ParseError> {
    let mut escape = '\\';
    let mut lines = text.lines().enumerate().peekable();
    // Parser directives: `# key=value` lines before anything else.
    while let Some((_, line)) = lines.peek() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "escape" => {
                escape = match value.trim() {
                    "`" => '`',
                    "\\" => '\\',
                    other => {
                        return Err(ParseError {
                            line: lines.peek().map_or(1, |(n, _)| n + 1),
                            message: format!(
                                "invalid escape token '{other}' does not match ` or \\"
                            ),
                        });
                    }
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
        lines.next();
    }
    let mut out = Vec::new();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let start = index + 1;
        let mut joined = String::new();
        let mut current = line.trim_start().to_owned();
        loop {
            let body = current.trim_end();
            match body.strip_suffix(escape) {
                Some(rest) => {
                    joined.push_str(rest);
                    // The next line that is not a comment or empty.
                    let mut next = None;
                    for (_, l) in lines.by_ref() {
                        let t = l.trim();
                        if t.is_empty() || t.starts_with('#') {
                            continue;
                        }
                        next = Some(l.to_owned());
                        break;
                    }
                    match next {
                        Some(l) => current = l,
                        None => break,
                    }
                }
                None => {
                    joined.push_str(body);
                    break;
                }
            }
        }
        out.push(instruction(&joined, start)?);
    }
    Ok(out)
}

fn instruction(text: &str, line: usize) -> Result<Instruction, ParseError> {
    let text = text.trim();
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = word.to_ascii_uppercase();
    let error = |message: String| ParseError { line, message };
    if !KNOWN.contains(&keyword.as_str()) {
        return Err(error(format!("unknown instruction: {word}")));
    }
    let mut args = rest.trim_start();
    let mut flags = Vec::new();
    if WITH_FLAGS.contains(&keyword.as_str()) {
        while let Some(flag) = args.strip_prefix("--") {
            let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
            let (name, value) = match flag[..end].split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (flag[..end].to_owned(), "true".to_owned()),
            };
            if name.is_empty() {
                break;
            }
            flags.push((name, value));
            args = flag[end..].trim_start();
        }
    }
    let args = args.trim().to_owned();
    let needs_args = !matches!(keyword.as_str(), "CMD" | "ENTRYPOINT");
    if needs_args && args.is_empty() {
        return Err(error(format!("{keyword} requires at least one argument")));
    }
    Ok(Instruction {
        keyword,
        flags,
        args,
        original: text.to_owned(),
        line,
    })
}

/// Variables for expansion: the build's env first, then its args.
pub(crate) type Vars = BTreeMap<String, String>;

/// moby's `ProcessWords`: splits on unquoted whitespace, removes quotes and
/// escapes, expands variables. Quoted empty strings stay words.
pub(crate) fn words(text: &str, vars: &Vars) -> Result<Vec<String>, String> {
    Lexer::new(text, vars).words()
}

/// moby's `ProcessWord`: one word (whitespace kept), quotes removed,
/// variables expanded.
pub(crate) fn word(text: &str, vars: &Vars) -> Result<String, String> {
    Lexer::new(text, vars).whole()
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: &'a Vars,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, vars: &'a Vars) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            vars,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn whole(mut self) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.one(c, &mut out)?;
        }
        Ok(out)
    }

    fn words(mut self) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += 1;
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            if c == '$' {
                // An unquoted expansion splits on whitespace (EXPOSE $PORTS).
                self.pos += 1;
                let value = self.variable()?;
                let mut parts = value.split_whitespace().peekable();
                if value.starts_with(char::is_whitespace) && !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                while let Some(part) = parts.next() {
                    current.push_str(part);
                    if parts.peek().is_some() {
                        words.push(std::mem::take(&mut current));
                    }
                }
                continue;
            }
            self.one(c, &mut current)?;
        }
        if in_word {
            words.push(current);
        }
        Ok(words)
    }

    /// Consumes one unit (character, escape, quoted run, variable) at the
    /// current position into `out`.
    fn one(&mut self, c: char, out: &mut String) -> Result<(), String> {
        self.pos += 1;
        match c {
            '\\' => {
                if let Some(n) = self.next() {
                    out.push(n);
                }
            }
            '\'' => {
                loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(ch) => out.push(ch),
                        None => return Err(
                            "unexpected end of statement while looking for matching single-quote"
                                .into(),
                        ),
                    }
                }
            }
            '"' => {
                loop {
                    match self.next() {
                        Some('"') => break,
                        Some('\\') => match self.next() {
                            Some(n @ ('"' | '\\' | '$')) => out.push(n),
                            Some(n) => {
                                out.push('\\');
                                out.push(n);
                            }
                            None => {}
                        },
                        Some('$') => out.push_str(&self.variable()?),
                        Some(ch) => out.push(ch),
                        None => return Err(
                            "unexpected end of statement while looking for matching double-quote"
                                .into(),
                        ),
                    }
                }
            }
            '$' => out.push_str(&self.variable()?),
            other => out.push(other),
        }
        Ok(())
    }

    /// After a `$`: `NAME`, `{NAME}`, `{NAME:-word}`, `{NAME:+word}`,
    /// `{NAME-word}`, `{NAME+word}`; anything else is a literal `$`.
    fn variable(&mut self) -> Result<String, String> {
        let lookup = |name: &str| self.vars.get(name).cloned();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                match self.next() {
                    Some('}') => Ok(lookup(&name).unwrap_or_default()),
                    Some(op @ (':' | '-' | '+')) => {
                        let (colon, kind) = if op == ':' {
                            (true, self.next())
                        } else {
                            (false, Some(op))
                        };
                        let mut raw = String::new();
                        let mut depth = 0;
                        loop {
                            match self.next() {
                                Some('}') if depth == 0 => break,
                                Some(c) => {
                                    if c == '{' {
                                        depth += 1;
                                    } else if c == '}' {
                                        depth -= 1;
                                    }
                                    raw.push(c);
                                }
                                None => return Err(format!("missing '}}' in ${{{name}")),
                            }
                        }
                        let value = lookup(&name);
                        let set = match &value {
                            Some(v) => !colon || !v.is_empty(),
                            None => false,
                        };
                        let alternative = Lexer::new(&raw, self.vars).whole()?;
                        match kind {
                            Some('-') => Ok(if set {
                                value.unwrap_or_default()
                            } else {
                                alternative
                            }),
                            Some('+') => Ok(if set { alternative } else { String::new() }),
                            _ => Err(format!("unsupported modifier in ${{{name}}}")),
                        }
                    }
                    _ => Err(format!("missing '}}' in ${{{name}")),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                Ok(lookup(&name).unwrap_or_default())
            }
            _ => Ok("$".to_owned()),
        }
    }
}

/// `ENV`/`LABEL`/`ARG`-style `k=v k2="v 2"` pairs, or (`legacy`) the old
/// `KEY value words` form with one key.
pub(crate) fn pairs(
    ins: &Instruction,
    vars: &Vars,
    legacy: bool,
) -> Result<Vec<(String, String)>, ParseError> {
    let raw = words_raw(&ins.args);
    let first = raw.first().cloned().unwrap_or_default();
    if legacy && !first.contains('=') {
        let key = word(&first, vars).map_err(|e| ins.error(e))?;
        let rest = ins.args[ins.args.find(char::is_whitespace).unwrap_or(ins.args.len())..].trim();
        if rest.is_empty() {
            return Err(ins.error(format!("{} must have two arguments", ins.keyword)));
        }
        let value = word(rest, vars).map_err(|e| ins.error(e))?;
        return Ok(vec![(key, value)]);
    }
    let mut out = Vec::new();
    for w in raw {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ins.error(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )));
        };
        let key = word(k, vars).map_err(|e| ins.error(e))?;
        if key.is_empty() {
            return Err(ins.error(format!("{} names can not be blank", ins.keyword)));
        }
        out.push((key, word(v, vars).map_err(|e| ins.error(e))?));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words
/// (each is expanded on its own afterwards).
fn words_raw(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some('\''), c) => current.push(c),
            (_, '\\') => {
                current.push('\\');
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vars {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn instructions_keep_their_start_line_and_join_continuations() {
        let text = "# syntax=docker/dockerfile:1\nFROM busybox AS base\n\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\ncopy --chown=1:2 a /b\nCMD\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!((got[0].keyword.as_str(), got[0].line), ("FROM", 2));
        assert_eq!(got[1].args, "echo a   && echo b");
        assert_eq!(got[1].line, 5);
        assert_eq!(got[2].keyword, "COPY");
        assert_eq!(got[2].flag("chown"), Some("1:2"));
        assert_eq!(got[2].args, "a /b");
        assert_eq!(got[3].args, "");
    }

    #[test]
    fn unknown_instructions_and_missing_arguments_name_the_line() {
        let err = parse("FROM busybox\n\nFOO bar\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dockerfile parse error on line 3: unknown instruction: FOO"
        );
        let err = parse("FROM busybox\nRUN\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dockerfile parse error on line 2: RUN requires at least one argument"
        );
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let got = parse("# escape=`\nFROM x\nRUN a `\n b\n").unwrap();
        assert_eq!(got[1].args, "a  b");
    }

    #[test]
    fn words_expand_like_moby() {
        let v = vars(&[("A", "1"), ("EMPTY", ""), ("PORTS", "80 443")]);
        assert_eq!(word("$A-${A}", &v).unwrap(), "1-1");
        assert_eq!(word("${MISSING:-x$A}", &v).unwrap(), "x1");
        assert_eq!(word("${EMPTY:-d}", &v).unwrap(), "d");
        assert_eq!(word("${EMPTY-d}", &v).unwrap(), "");
        assert_eq!(word("${A:+set}", &v).unwrap(), "set");
        assert_eq!(word("'$A' \"$A\" \\$A", &v).unwrap(), "$A 1 $A");
        assert_eq!(
            words("a \"b c\" $PORTS", &v).unwrap(),
            ["a", "b c", "80", "443"]
        );
        assert!(word("\"open", &v).is_err());
    }

    #[test]
    fn pairs_take_both_forms() {
        let ins = parse("ENV A=1 B=\"two words\" C=$A\n").unwrap().remove(0);
        let v = vars(&[("A", "x")]);
        assert_eq!(
            pairs(&ins, &v, true).unwrap(),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "two words".to_owned()),
                ("C".to_owned(), "x".to_owned())
            ]
        );
        let ins = parse("ENV KEY some value\n").unwrap().remove(0);
        assert_eq!(
            pairs(&ins, &v, true).unwrap(),
            [("KEY".to_owned(), "some value".to_owned())]
        );
        let ins = parse("LABEL novalue\n").unwrap().remove(0);
        assert!(pairs(&ins, &v, false).is_err());
    }
}
