//! The pull/push progress display as a terminal user sees it: `berth push` and `berth pull` run
//! under a pty (expectrl; 80 and 132 columns) against a private berthd and a loopback registry,
//! then the same commands with stdout a pipe, as in CI logs.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;
use std::time::Duration;

use berth_testkit::registry::TestRegistry;
use common::{berth_command, ok, start_berthd};
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};
use regex::Regex;

/// `berth` under a pty; `transcript` holds what it wrote so far (newlines as the pty's `\r\n`).
struct Terminal {
    session: OsSession,
    transcript: String,
}

impl Terminal {
    /// `berth <args>` in a terminal `columns` wide.
    fn run(host: &str, args: &[&str], columns: u16) -> Terminal {
        // ptyprocess opens every pty at 80x24: stty sets the width before berth starts
        let berth = berth_command(host, args);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"stty cols "$0" && exec "$@""#)
            .arg(columns.to_string())
            .arg(berth.get_program())
            .args(berth.get_args());
        for (key, value) in berth.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        let mut session = Session::spawn(cmd).expect("berth under a pty");
        session.set_expect_timeout(Some(Duration::from_secs(120)));
        Terminal {
            session,
            transcript: String::new(),
        }
    }

    /// Reads up to the next match of `pattern` (`^` is where the last match ended).
    fn expect(&mut self, pattern: &str) {
        match self.session.expect(expectrl::Regex(pattern)) {
            Ok(found) => self
                .transcript
                .push_str(&String::from_utf8_lossy(found.as_bytes())),
            Err(e) => {
                let rest = self.session.expect(Eof).map_or(String::new(), |c| {
                    String::from_utf8_lossy(c.as_bytes()).into_owned()
                });
                panic!(
                    "{pattern:?} did not come ({e}); read before: {:?}; after: {rest:?}",
                    self.transcript
                );
            }
        }
    }

    /// Reads to the end, insists on nothing more and exit status 0, returns the transcript.
    fn finish(mut self) -> String {
        let rest = self.session.expect(Eof).expect("reading to the end");
        assert!(
            rest.as_bytes().is_empty(),
            "more than expected after {:?}: {:?}",
            self.transcript,
            String::from_utf8_lossy(rest.as_bytes())
        );
        let status = self
            .session
            .get_process()
            .wait()
            .expect("waiting for berth");
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "berth ended with {status:?}: {:?}",
            self.transcript
        );
        self.transcript
    }
}

/// What each layer's row showed, in order: every in-place rewrite
/// `ESC[<n>A CR ESC[2K <id>: <text> ESC[<n>B CR`, by layer id.
fn layer_rows(transcript: &str) -> BTreeMap<String, Vec<String>> {
    let rewrite =
        Regex::new(r"\x1b\[(\d+)A\r\x1b\[2K([0-9a-f]{12}): ([^\x1b\r\n]*)\x1b\[(\d+)B\r").unwrap();
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in rewrite.captures_iter(transcript) {
        assert_eq!(c[1], c[4], "the cursor goes back down as far as it went up");
        rows.entry(c[2].to_string())
            .or_default()
            .push(c[3].to_string());
    }
    rows
}

const SIZE: &str = r"[\d.]+[kMG]?B";

/// Checks each of the two layers' rows: `during` shown at some point (with a rate), and
/// `done` (bytes and average rate) left on screen.
fn check_rows(transcript: &str, during: &str, done: &str) {
    let rows = layer_rows(transcript);
    assert_eq!(rows.len(), 2, "one row per layer: {rows:#?}");
    let (during, done) = (Regex::new(during).unwrap(), Regex::new(done).unwrap());
    for (id, texts) in &rows {
        assert!(
            texts.iter().any(|t| during.is_match(t)),
            "layer {id} never showed {during}: {texts:#?}"
        );
        let last = texts.last().unwrap();
        assert!(
            done.is_match(last),
            "layer {id} ended as {last:?}, not {done}"
        );
    }
}

/// The line before `line` in `out` (plain output).
fn line_before<'a>(out: &'a str, line: &Regex) -> &'a str {
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| line.is_match(l))
        .unwrap_or_else(|| panic!("no {line} in {out}"));
    assert!(at > 0, "{line} comes first in {out}");
    lines[at - 1]
}

fn random_file(path: &std::path::Path, len: u64) {
    let mut data = Vec::new();
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .take(len)
        .read_to_end(&mut data)
        .unwrap();
    std::fs::write(path, data).unwrap();
}

#[test]
fn pull_and_push_progress_in_a_terminal_and_in_a_log() {
    let d = start_berthd();
    let h = &d.host();
    let reg = TestRegistry::start(None);

    // two layers of incompressible data, 3MB and 2MB: several progress messages each
    let ctx = d.dir.path().join("progress-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    random_file(&ctx.join("big"), 3_000_000);
    random_file(&ctx.join("small"), 2_000_000);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY big /big\nCOPY small /small\n",
    )
    .unwrap();
    let image = format!("{}/test/progress:v1", reg.host());
    ok(h, &["build", "-q", "-t", &image, ctx.to_str().unwrap()]);
    let total = |verb: &str| format!(r"{verb} 2 layers, 5(\.\d+)?MB in \d+\.\d\ds \({SIZE}/s\)");

    // push in an 80-column terminal (counters, no bar): rows rewritten in place, the total
    // right below them, docker's last line
    let mut t = Terminal::run(h, &["push", &image], 80);
    t.expect(&format!(
        r"^The push refers to repository \[{}/test/progress\]\r\n",
        regex::escape(&reg.host())
    ));
    t.expect(&format!(r"\x1b\[\d+B\r{}\r\n", total("Pushed")));
    t.expect(r"^v1: digest: sha256:[0-9a-f]{64} size: \d+\r\n");
    check_rows(
        &t.finish(),
        &format!(r"^Pushing +{SIZE}/{SIZE}  {SIZE}/s$"),
        &format!(r"^Pushed  {SIZE} at {SIZE}/s$"),
    );

    // pushed again, nothing moves: no total
    let again = ok(h, &["push", &image]);
    assert_eq!(
        again.matches(": Layer already exists\n").count(),
        2,
        "{again}"
    );
    assert!(!again.contains("Pushed"), "{again}");

    // pull in a terminal wide enough for docker's bar
    ok(h, &["rmi", &image]);
    let mut t = Terminal::run(h, &["pull", &image], 132);
    t.expect(r"^v1: Pulling from test/progress\r\n");
    t.expect(&format!(r"\x1b\[\d+B\r{}\r\n", total("Downloaded")));
    t.expect(r"^Digest: sha256:[0-9a-f]{64}\r\n");
    let image_re = regex::escape(&image);
    t.expect(&format!(
        r"^Status: Downloaded newer image for {image_re}\r\n{image_re}\r\n"
    ));
    check_rows(
        &t.finish(),
        &format!(r"^Downloading \[=*> *\] +{SIZE}/{SIZE}  {SIZE}/s$"),
        &format!(r"^Pull complete  {SIZE} at {SIZE}/s$"),
    );

    // the same without a terminal: state changes, the total, no escapes or byte counters
    ok(h, &["rmi", &image]);
    let pulled = ok(h, &["pull", &image]);
    assert!(!pulled.contains('\x1b'), "{pulled}");
    assert!(!pulled.contains("Downloading"), "{pulled}");
    assert_eq!(pulled.matches(": Pull complete\n").count(), 2, "{pulled}");
    let total_line = line_before(&pulled, &Regex::new("^Digest: sha256:").unwrap());
    assert!(
        Regex::new(&format!("^{}$", total("Downloaded")))
            .unwrap()
            .is_match(total_line),
        "{pulled}"
    );
    assert!(
        pulled.ends_with(&format!(
            "Status: Downloaded newer image for {image}\n{image}\n"
        )),
        "{pulled}"
    );
}
