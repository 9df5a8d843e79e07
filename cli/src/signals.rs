//! Signals while attached: docker's `--sig-proxy` (signals the CLI receives are forwarded to the
//! container as `POST /containers/{id}/kill?signal=NAME`) and SIGWINCH → resize for TTYs.
//!
//! The signals are blocked in every thread and collected by one thread with `sigwait`, so no
//! code runs in signal-handler context.

use crate::client::{Client, encode_path};

const FORWARDED: [(libc::c_int, &str); 6] = [
    (libc::SIGINT, "INT"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGHUP, "HUP"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
];

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set it is given; sigaddset only writes to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks `signals` in the calling thread (and the threads it spawns later) and runs
/// `on_signal` for each one received, on a thread of its own. Call before spawning the stream
/// threads so they inherit the mask.
fn on_signals(signals: &[libc::c_int], mut on_signal: impl FnMut(libc::c_int) + Send + 'static) {
    let set = signal_set(signals);
    // SAFETY: pthread_sigmask reads `set`, a valid initialised sigset; the old mask is not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return;
    }
    std::thread::spawn(move || {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid sigset and `sig` a valid out pointer for this call.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                return;
            }
            on_signal(sig);
        }
    });
}

/// Forwards INT, TERM, HUP, QUIT, USR1 and USR2 to `container`; failures are only reported,
/// as docker does.
pub(crate) fn proxy_to(client: Client, container: String) {
    let signals: Vec<libc::c_int> = FORWARDED.iter().map(|(s, _)| *s).collect();
    let mut client = client;
    on_signals(&signals, move |sig| {
        let Some((_, name)) = FORWARDED.iter().find(|(s, _)| *s == sig) else {
            return;
        };
        let path = format!("/containers/{}/kill?signal={name}", encode_path(&container));
        if let Err(e) = client.call("POST", &path) {
            eprintln!("berth: forwarding SIG{name} to {container}: {e}");
        }
    });
}

/// Sends the terminal size to `resize_path` (`/containers/{id}/resize` or `/exec/{id}/resize`)
/// on every SIGWINCH, as docker's `MonitorTtySize` does.
pub(crate) fn resize_on_winch(client: Client, resize_path: String) {
    let mut client = client;
    on_signals(&[libc::SIGWINCH], move |_| {
        if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
            if ws.ws_row > 0 && ws.ws_col > 0 {
                let path = format!("{resize_path}?h={}&w={}", ws.ws_row, ws.ws_col);
                let _ = client.call("POST", &path);
            }
        }
    });
}
