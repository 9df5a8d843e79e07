//! Writing to stdout, docker-style pretty JSON, and `--filter key=value` encoding.

use std::collections::BTreeMap;
use std::io::Write;

use crate::error::Error;

pub(crate) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

pub(crate) fn println(text: &str) -> Result<(), Error> {
    print(&format!("{text}\n"))
}

/// Re-indents raw JSON like Go's `json.Indent(prefix, "    ")`, keeping the daemon's key order
/// (serde_json's map would sort the keys) and `{}`/`[]` compact.
pub(crate) fn indent_json(raw: &[u8], level: usize) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = level;
    let mut in_str = false;
    let mut escaped = false;
    let chars: Vec<char> = text.trim().chars().collect();
    let newline = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(d));
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                if next == Some(&close) {
                    out.push(c);
                    out.push(close);
                    i = i + 1 + chars[i + 1..].iter().position(|&x| x == close).unwrap_or(0) + 1;
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `-f key=value` flags → docker's filters JSON `{"key":{"value":true}}`.
pub(crate) fn filters_json(filters: &[String]) -> Result<Option<String>, Error> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut map: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Error::Usage(format!(
                "bad format of filter (expected name=value): {f}"
            )));
        };
        map.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(Some(serde_json::to_string(&map).unwrap_or_default()))
}

/// `sha256:0123…` → `0123456789ab`
pub(crate) fn short_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let raw = br#"{"Id":"x","Args":[],"Env":["A=1","B=\"}"],"State":{"Running":true},"M":{}}"#;
        assert_eq!(
            indent_json(raw, 0),
            "{\n    \"Id\": \"x\",\n    \"Args\": [],\n    \"Env\": [\n        \"A=1\",\n        \"B=\\\"}\"\n    ],\n    \"State\": {\n        \"Running\": true\n    },\n    \"M\": {}\n}"
        );
    }

    #[test]
    fn filters_are_encoded_as_maps() {
        let f =
            filters_json(&["name=web".into(), "status=exited".into(), "name=db".into()]).unwrap();
        assert_eq!(
            f.as_deref(),
            Some(r#"{"name":{"db":true,"web":true},"status":{"exited":true}}"#)
        );
        assert!(filters_json(&["nonsense".into()]).is_err());
    }
}
