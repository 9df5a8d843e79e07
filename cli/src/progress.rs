//! Rendering of the JSON message streams of pull/push (docker's jsonmessage): in a terminal one
//! line per layer (`id: state bytes`), rewritten in place; otherwise plain state-change lines.

use std::collections::HashMap;
use std::io::Write;

use serde_json::Value;

use crate::client::Response;
use crate::error::Error;
use crate::units::human_size;

/// Displays the stream and returns the `aux` payloads it carried (push digests, build ids).
pub(crate) fn display(
    resp: Response,
    out: &mut impl Write,
    tty: bool,
) -> Result<Vec<Value>, Error> {
    let mut lines: HashMap<String, usize> = HashMap::new();
    let mut aux = Vec::new();
    for msg in resp.json_stream() {
        let msg = msg?;
        if let Some(detail) = msg.get("errorDetail") {
            let text = detail
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(Error::InStream(text.to_string()));
        }
        if let Some(a) = msg.get("aux") {
            aux.push(a.clone());
            continue;
        }
        let id = msg.get("id").and_then(Value::as_str).unwrap_or("");
        let status = msg.get("status").and_then(Value::as_str).unwrap_or("");
        let stream = msg.get("stream").and_then(Value::as_str);
        let detail = msg.get("progressDetail");
        let is_progress = detail.is_some_and(|d| d.get("current").is_some());
        let w = |e| Error::Output(e);
        if tty && !id.is_empty() && detail.is_some() {
            let n = lines.len();
            let line = *lines.entry(id.to_string()).or_insert_with(|| {
                // a new layer gets a fresh line at the bottom
                let _ = writeln!(out);
                n
            });
            let up = lines.len() - line;
            let bytes = bytes_of(&msg);
            write!(
                out,
                "\x1b[{up}A\r\x1b[2K{id}: {status}{}\x1b[{up}B\r",
                if bytes.is_empty() {
                    String::new()
                } else {
                    format!(" {bytes}")
                }
            )
            .map_err(w)?;
        } else {
            if tty {
                // anything else ends the in-place block, as docker's Display does
                lines.clear();
            }
            if let Some(s) = stream {
                write!(out, "{s}").map_err(w)?;
            } else if is_progress {
                // plain output skips byte counters: state changes only
                continue;
            } else if id.is_empty() {
                writeln!(out, "{status}").map_err(w)?;
            } else {
                writeln!(out, "{id}: {status}").map_err(w)?;
            }
        }
        out.flush().map_err(Error::Output)?;
    }
    Ok(aux)
}

fn bytes_of(msg: &Value) -> String {
    if let Some(p) = msg
        .get("progress")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        return p.to_string();
    }
    let d = &msg["progressDetail"];
    match (
        d.get("current").and_then(Value::as_f64),
        d.get("total").and_then(Value::as_f64),
    ) {
        (Some(c), Some(t)) if t > 0.0 => format!("{}/{}", human_size(c), human_size(t)),
        (Some(c), _) => human_size(c),
        _ => String::new(),
    }
}
