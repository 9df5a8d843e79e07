//! The local end of an attached container or exec: the hijacked stream
//! joined to this process's stdin and stdout, the terminal in raw mode for
//! `-it`, resizes on SIGWINCH, and the detach keys (ctrl-p ctrl-q unless
//! `--detach-keys` or config.json's `detachKeys` say otherwise).

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_core::{DetachKeys, DetachMatcher};

use crate::Ctx;
use crate::client::Hijacked;
use crate::error::Error;
use crate::stdcopy;

/// How an attached stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streamed {
    /// The daemon closed it: the process's output ended.
    Ended,
    /// The user typed the detach keys; the process runs on.
    Detached,
}

/// The detach keys for a command: what to send the daemon (`--detach-keys`,
/// else config.json's `detachKeys`, else nothing: its default) and the
/// parsed sequence this side watches for. Checked before anything is
/// created, so a typo leaves no container behind.
pub(crate) fn detach_keys(
    config_dir: &Path,
    flag: Option<&str>,
) -> Result<(Option<String>, DetachKeys), Error> {
    let chosen = flag.map(str::to_string).or_else(|| {
        let raw = std::fs::read(config_dir.join("config.json")).ok()?;
        let config: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        config["detachKeys"].as_str().map(str::to_string)
    });
    let keys = DetachKeys::parse(chosen.as_deref().unwrap_or(""))
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok((chosen, keys))
}

/// Streams a hijacked connection until the daemon closes it or the user
/// detaches: stdin → socket on a thread (with a tty, watching for the
/// detach keys, as docker does only then), socket → stdout/stderr
/// (demultiplexed unless tty).
pub(crate) fn pump(
    conn: Hijacked,
    tty: bool,
    stdin: bool,
    keys: &DetachKeys,
) -> Result<Streamed, Error> {
    let Hijacked { mut reader, writer } = conn;
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let (matcher, detached) = (tty.then(|| keys.matcher()), detached.clone());
        std::thread::spawn(move || forward_stdin(writer, matcher, &detached));
    } else {
        let _ = writer.shutdown(Shutdown::Write);
    }
    let output = if tty {
        copy_raw(&mut reader)
    } else {
        stdcopy::demux(&mut reader, &mut std::io::stdout(), &mut std::io::stderr())
    };
    if detached.load(Ordering::SeqCst) {
        return Ok(Streamed::Detached);
    }
    output.map(|()| Streamed::Ended)
}

/// Copies stdin to the socket, half-closing it at EOF. At the detach keys
/// (not passed on) it closes the socket both ways, which ends the output
/// side too.
fn forward_stdin(
    mut socket: UnixStream,
    mut matcher: Option<DetachMatcher>,
    detached: &AtomicBool,
) {
    let mut input = std::io::stdin().lock();
    let mut buf = [0u8; 8192];
    let mut passed = Vec::with_capacity(buf.len());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (chunk, hit) = match matcher.as_mut() {
            Some(matcher) => {
                passed.clear();
                let hit = matcher.feed(&buf[..n], &mut passed);
                (&passed[..], hit)
            }
            None => (&buf[..n], false),
        };
        if socket.write_all(chunk).is_err() {
            return;
        }
        if hit {
            detached.store(true, Ordering::SeqCst);
            let _ = socket.shutdown(Shutdown::Both);
            return;
        }
    }
    if let Some(matcher) = &matcher {
        let _ = socket.write_all(matcher.held());
    }
    let _ = socket.shutdown(Shutdown::Write);
}

fn copy_raw(reader: &mut impl Read) -> Result<(), Error> {
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(Error::Output)?;
                out.flush().map_err(Error::Output)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Stream(e)),
        }
    }
}

pub(crate) fn terminal_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends the terminal size now and on every SIGWINCH; failures only matter
/// to the user's eyes, so they are ignored.
pub(crate) fn resize(ctx: &mut Ctx, path: &str) {
    if let Some((h, w)) = terminal_size() {
        let _ = ctx.client.call("POST", &format!("{path}?h={h}&w={w}"));
    }
    crate::signals::resize_on_winch(ctx.client.clone(), path.to_string());
}

/// [`resize`] after a first resize one row and column larger: a shell
/// redraws its prompt only when the size changes, and a re-attach from a
/// terminal of the same size would otherwise show nothing (docker does
/// the same).
pub(crate) fn resize_redrawing(ctx: &mut Ctx, path: &str) {
    if let Some((h, w)) = terminal_size() {
        let _ = ctx
            .client
            .call("POST", &format!("{path}?h={}&w={}", h + 1, w + 1));
    }
    resize(ctx, path);
}

/// Puts the local terminal in raw mode for `-it` and restores it on drop.
pub(crate) struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl std::fmt::Debug for RawTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawTerminal")
    }
}

impl RawTerminal {
    pub(crate) fn enable() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
