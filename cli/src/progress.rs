//! Rendering of the JSON message streams of pull/push (docker's jsonmessage). In a terminal: one
//! line per layer (`id: state bytes rate`), rewritten in place; otherwise plain state-change
//! lines. Either way the layer block ends with a total (`Downloaded 2 layers, 4.19MB in 0.61s
//! (6.87MB/s)`), printed before the lines scripts parse (`Digest: ...`, `<tag>: digest: ...`),
//! which stay as docker prints them. Rates are measured here, from `progressDetail.current` and
//! the time each message arrives: the daemon's stream carries no times.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Response;
use crate::error::Error;
use crate::units::human_size;

/// How to show the stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    /// State changes only, one line each, no escape sequences or byte counters (CI logs).
    Plain,
    /// Layer lines rewritten in place; `width` columns (0: unknown).
    Terminal { width: usize },
}

impl Mode {
    /// `Terminal` when `stream` is one, with its width.
    pub(crate) fn of(stream: impl AsFd + IsTerminal) -> Mode {
        if !stream.is_terminal() {
            return Mode::Plain;
        }
        let width = rustix::termios::tcgetwinsize(&stream).map_or(0, |ws| ws.ws_col.into());
        Mode::Terminal { width }
    }
}

/// Displays the stream and returns the `aux` payloads it carried (push digests, build ids).
pub(crate) fn display(
    resp: Response,
    out: &mut impl Write,
    mode: Mode,
) -> Result<Vec<Value>, Error> {
    let mut display = Display::new(out, mode, Instant::now());
    for msg in resp.json_stream() {
        display.message(&msg?, Instant::now())?;
    }
    display.finish(Instant::now())
}

/// Layer states that end a layer's line: it then shows the bytes moved and their average rate.
const DONE: [&str; 3] = ["Download complete", "Pull complete", "Pushed"];

/// The state that moves a layer's bytes, and the verb of the total it adds to.
fn transfer_verb(status: &str) -> Option<&'static str> {
    match status {
        "Downloading" => Some("Downloaded"),
        "Pushing" => Some("Pushed"),
        _ => None,
    }
}

/// One layer's transfer: its first and latest transfer messages, as (arrival, bytes so far).
struct Transfer {
    first: (Instant, u64),
    latest: (Instant, u64),
}

impl Transfer {
    /// Bytes per second between the first and latest messages; none until there is a span.
    fn rate(&self) -> Option<f64> {
        rate(
            self.latest.1.saturating_sub(self.first.1),
            self.latest.0 - self.first.0,
        )
    }
}

fn rate(bytes: u64, span: Duration) -> Option<f64> {
    let secs = span.as_secs_f64();
    (bytes > 0 && secs > 0.0).then(|| bytes as f64 / secs)
}

struct Display<'a, W: Write> {
    out: &'a mut W,
    mode: Mode,
    started: Instant,
    /// Row of each layer in the in-place block (terminal only), counted from its top.
    rows: HashMap<String, usize>,
    /// Layers that moved bytes since the last total, and the verb of the total.
    transfers: HashMap<String, Transfer>,
    verb: &'static str,
    aux: Vec<Value>,
}

impl<'a, W: Write> Display<'a, W> {
    fn new(out: &'a mut W, mode: Mode, started: Instant) -> Self {
        Display {
            out,
            mode,
            started,
            rows: HashMap::new(),
            transfers: HashMap::new(),
            verb: "",
            aux: Vec::new(),
        }
    }

    /// Shows one message that arrived at `now`.
    fn message(&mut self, msg: &Value, now: Instant) -> Result<(), Error> {
        if let Some(detail) = msg.get("errorDetail") {
            let text = detail
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(Error::InStream(text.to_string()));
        }
        if let Some(a) = msg.get("aux") {
            self.aux.push(a.clone());
            return Ok(());
        }
        let id = msg.get("id").and_then(Value::as_str).unwrap_or("");
        let status = msg.get("status").and_then(Value::as_str).unwrap_or("");
        let detail = msg.get("progressDetail");
        let counter = |key| detail.and_then(|d| d.get(key)).and_then(Value::as_u64);
        let (current, total) = (counter("current"), counter("total"));
        let layer_line = !id.is_empty() && detail.is_some();
        if let Some(verb) = transfer_verb(status).filter(|_| layer_line) {
            let at = (now, current.unwrap_or(0));
            self.transfers
                .entry(id.to_string())
                .and_modify(|t| t.latest = at)
                .or_insert(Transfer {
                    first: at,
                    latest: at,
                });
            self.verb = verb;
        }
        let w = Error::Output;
        match self.mode {
            Mode::Terminal { width } if layer_line => {
                let row = match self.rows.get(id) {
                    Some(row) => *row,
                    None => {
                        // a new layer gets a fresh line at the bottom
                        writeln!(self.out).map_err(w)?;
                        self.rows.insert(id.to_string(), self.rows.len());
                        self.rows.len() - 1
                    }
                };
                let mut text = self.layer_text(id, status, current, total, width > 110);
                if width > 0 && text.chars().count() >= width {
                    // a wrapped line would break the cursor movements
                    text = text.chars().take(width - 1).collect();
                }
                let up = self.rows.len() - row;
                write!(self.out, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r").map_err(w)?;
            }
            _ => {
                if !layer_line {
                    // anything else ends the layer block, as in docker's Display
                    self.rows.clear();
                    self.total(now)?;
                }
                if let Some(s) = msg.get("stream").and_then(Value::as_str) {
                    write!(self.out, "{s}").map_err(w)?;
                } else if current.is_some() {
                    // plain output skips byte counters: state changes only
                    return Ok(());
                } else if id.is_empty() {
                    writeln!(self.out, "{status}").map_err(w)?;
                } else {
                    writeln!(self.out, "{id}: {status}").map_err(w)?;
                }
            }
        }
        self.out.flush().map_err(Error::Output)
    }

    /// The end of the stream at `now`: the total if nothing printed it yet.
    fn finish(mut self, now: Instant) -> Result<Vec<Value>, Error> {
        self.total(now)?;
        self.out.flush().map_err(Error::Output)?;
        Ok(self.aux)
    }

    /// `id: state [bar] bytes rate`: the rate while bytes move, bytes and average rate once done.
    fn layer_text(
        &self,
        id: &str,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
        bar: bool,
    ) -> String {
        let mut text = format!("{id}: {status}");
        let transfer = self.transfers.get(id);
        if DONE.contains(&status) {
            if let Some(t) = transfer {
                text += &format!("  {}", human_size(t.latest.1 as f64));
                if let Some(r) = t.rate() {
                    text += &format!(" at {}/s", human_size(r));
                }
            }
            return text;
        }
        text += &counters(current.unwrap_or(0), total.unwrap_or(0), bar);
        if let Some(r) = transfer
            .filter(|_| transfer_verb(status).is_some())
            .and_then(Transfer::rate)
        {
            text += &format!("  {}/s", human_size(r));
        }
        text
    }

    /// `Downloaded 2 layers, 4.19MB in 0.61s (6.87MB/s)`, once per block, if bytes moved.
    fn total(&mut self, now: Instant) -> Result<(), Error> {
        if self.transfers.is_empty() {
            return Ok(());
        }
        let layers = self.transfers.len();
        let bytes: u64 = self.transfers.values().map(|t| t.latest.1).sum();
        let elapsed = now - self.started;
        let mut line = format!(
            "{} {layers} layer{}, {} in {}",
            self.verb,
            if layers == 1 { "" } else { "s" },
            human_size(bytes as f64),
            seconds(elapsed)
        );
        if let Some(r) = rate(bytes, elapsed) {
            line += &format!(" ({}/s)", human_size(r));
        }
        self.transfers.clear();
        writeln!(self.out, "{line}").map_err(Error::Output)
    }
}

/// docker's `JSONProgress.String` without the time left: ` [==>   ]   1.05MB/2MB`, the bar
/// only in a wide terminal.
fn counters(current: u64, total: u64, bar: bool) -> String {
    if total == 0 {
        return match current {
            0 => String::new(),
            c => format!(" {:>8}", human_size(c as f64)),
        };
    }
    let mut text = String::from(" ");
    if bar {
        let filled = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
        text += &format!("[{}>{}] ", "=".repeat(filled), " ".repeat(50 - filled));
    }
    text += &format!(
        "{:>8}/{}",
        human_size(current as f64),
        human_size(total as f64)
    );
    text
}

/// `0.61s`, `12.30s`, `2m05s`.
fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs `display` over `(seconds since start, message)` pairs; returns the output.
    fn render(mode: Mode, msgs: &[(f64, Value)]) -> String {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut out = Vec::new();
        let mut display = Display::new(&mut out, mode, t0);
        for (s, msg) in msgs {
            display.message(msg, at(*s)).unwrap();
        }
        display
            .finish(at(msgs.last().map_or(0.0, |m| m.0)))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn layer(id: &str, status: &str) -> Value {
        json!({"status": status, "progressDetail": {}, "id": id})
    }

    fn moving(id: &str, status: &str, current: u64, total: u64) -> Value {
        json!({"status": status, "progressDetail": {"current": current, "total": total},
               "progress": "[=>  ] daemon's bar", "id": id})
    }

    fn status(s: &str) -> Value {
        json!({ "status": s })
    }

    /// A pull of two layers, `a` (2MB) and `b` (1MB), and one that is there already.
    fn pull() -> Vec<(f64, Value)> {
        vec![
            (0.0, json!({"status": "Pulling from test/blob", "id": "v1"})),
            (0.1, layer("c", "Already exists")),
            (0.1, layer("a", "Pulling fs layer")),
            (0.1, layer("b", "Pulling fs layer")),
            (0.2, moving("a", "Downloading", 500_000, 2_000_000)),
            (0.3, moving("b", "Downloading", 1_000_000, 1_000_000)),
            (0.7, moving("a", "Downloading", 1_500_000, 2_000_000)),
            (0.8, layer("b", "Download complete")),
            (0.9, moving("b", "Extracting", 1_000_000, 1_000_000)),
            (1.0, layer("b", "Pull complete")),
            (1.2, moving("a", "Downloading", 2_000_000, 2_000_000)),
            (1.2, layer("a", "Verifying Checksum")),
            (1.2, layer("a", "Download complete")),
            (1.3, layer("a", "Pull complete")),
            (1.6, status("Digest: sha256:0123")),
            (
                1.6,
                status("Status: Downloaded newer image for r/test/blob:v1"),
            ),
        ]
    }

    #[test]
    fn plain_pull_has_state_changes_and_a_total_before_the_digest() {
        assert_eq!(
            render(Mode::Plain, &pull()),
            "v1: Pulling from test/blob\n\
             c: Already exists\n\
             a: Pulling fs layer\n\
             b: Pulling fs layer\n\
             b: Download complete\n\
             b: Pull complete\n\
             a: Verifying Checksum\n\
             a: Download complete\n\
             a: Pull complete\n\
             Downloaded 2 layers, 3MB in 1.60s (1.88MB/s)\n\
             Digest: sha256:0123\n\
             Status: Downloaded newer image for r/test/blob:v1\n"
        );
    }

    /// The terminal's text of each layer row after the stream, and the lines below the block.
    fn screen(output: &str) -> Vec<String> {
        let mut rows: Vec<String> = vec![String::new()];
        let mut row = 0;
        let mut rest = output;
        while let Some(c) = rest.chars().next() {
            if let Some(esc) = rest.strip_prefix("\x1b[") {
                let end = esc.find(|c: char| c.is_ascii_alphabetic()).unwrap();
                let n: usize = esc[..end].parse().unwrap_or(0);
                match &esc[end..=end] {
                    "A" => row -= n,
                    "B" => row += n,
                    "K" => rows[row].clear(),
                    other => panic!("unexpected escape {other}"),
                }
                rest = &esc[end + 1..];
                continue;
            }
            match c {
                '\r' => {}
                '\n' => {
                    row += 1;
                    if row == rows.len() {
                        rows.push(String::new());
                    }
                }
                c => rows[row].push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        rows
    }

    #[test]
    fn terminal_pull_rewrites_layer_rows_with_rates() {
        let rows = screen(&render(Mode::Terminal { width: 80 }, &pull()));
        assert_eq!(
            rows,
            [
                "v1: Pulling from test/blob",
                "c: Already exists",
                // 1.5MB moved in 1s between its first and last Downloading
                "a: Pull complete  2MB at 1.5MB/s",
                // one message only: no span to measure a rate over
                "b: Pull complete  1MB",
                "Downloaded 2 layers, 3MB in 1.60s (1.88MB/s)",
                "Digest: sha256:0123",
                "Status: Downloaded newer image for r/test/blob:v1",
                "",
            ]
        );
    }

    #[test]
    fn terminal_shows_the_rate_while_downloading() {
        let msgs = &pull()[..7];
        let out = render(Mode::Terminal { width: 80 }, msgs);
        let rows = screen(&out);
        assert_eq!(rows[2], "a: Downloading    1.5MB/2MB  2MB/s");
        assert_eq!(rows[3], "b: Downloading      1MB/1MB");
        // the stream ended inside the block: the total still comes, below it
        assert_eq!(rows[4], "Downloaded 2 layers, 2.5MB in 0.70s (3.57MB/s)");
        // a wide terminal gets docker's bar, drawn from progressDetail
        let wide = screen(&render(Mode::Terminal { width: 120 }, msgs));
        assert_eq!(
            wide[2],
            format!(
                "a: Downloading [{}>{}]    1.5MB/2MB  2MB/s",
                "=".repeat(37),
                " ".repeat(13)
            )
        );
        // a narrow one cuts lines rather than wrap them
        let narrow = screen(&render(Mode::Terminal { width: 20 }, msgs));
        assert_eq!(narrow[2], "a: Downloading    1");
    }

    fn push(existing: bool) -> Vec<(f64, Value)> {
        let mut msgs = vec![
            (0.0, status("The push refers to repository [r/test/blob]")),
            (0.1, layer("a", "Preparing")),
        ];
        if existing {
            msgs.push((0.2, layer("a", "Layer already exists")));
        } else {
            msgs.extend([
                (
                    0.2,
                    json!({"status": "Pushing", "progressDetail": {"total": 4_000_000}, "id": "a"}),
                ),
                (2.2, moving("a", "Pushing", 4_000_000, 4_000_000)),
                (2.2, layer("a", "Pushed")),
            ]);
        }
        msgs.extend([
            (2.5, status("v1: digest: sha256:0123 size: 528")),
            (
                2.5,
                json!({"aux": {"Tag": "v1", "Digest": "sha256:0123", "Size": 528}}),
            ),
        ]);
        msgs
    }

    #[test]
    fn push_total_comes_before_the_digest_line() {
        assert_eq!(
            render(Mode::Plain, &push(false)),
            "The push refers to repository [r/test/blob]\n\
             a: Preparing\n\
             a: Pushing\n\
             a: Pushed\n\
             Pushed 1 layer, 4MB in 2.50s (1.6MB/s)\n\
             v1: digest: sha256:0123 size: 528\n"
        );
        let rows = screen(&render(Mode::Terminal { width: 80 }, &push(false)));
        assert_eq!(
            rows[1..],
            [
                "a: Pushed  4MB at 2MB/s",
                "Pushed 1 layer, 4MB in 2.50s (1.6MB/s)",
                "v1: digest: sha256:0123 size: 528",
                ""
            ]
        );
    }

    #[test]
    fn no_total_when_nothing_moved() {
        let out = render(Mode::Plain, &push(true));
        assert_eq!(
            out,
            "The push refers to repository [r/test/blob]\n\
             a: Preparing\n\
             a: Layer already exists\n\
             v1: digest: sha256:0123 size: 528\n"
        );
        let out = render(Mode::Terminal { width: 80 }, &push(true));
        assert!(!out.contains("Pushed"), "{out:?}");
    }

    #[test]
    fn errors_end_the_stream_without_a_total() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut display = Display::new(&mut out, Mode::Plain, t0);
        display
            .message(&moving("a", "Downloading", 1, 2), t0)
            .unwrap();
        let err = display
            .message(
                &json!({"errorDetail": {"message": "read: connection reset"}, "error": "x"}),
                t0,
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "read: connection reset");
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn durations_read_as_seconds_then_minutes() {
        assert_eq!(seconds(Duration::from_millis(610)), "0.61s");
        assert_eq!(seconds(Duration::from_secs(125)), "2m05s");
    }
}
