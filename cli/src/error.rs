//! Errors of the CLI and the exit statuses they map to.

use std::io;

/// Everything a command can fail with. Messages are what the user sees after `berth: ` ... or, for
/// daemon errors, after docker's `Error response from daemon: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(
        "Cannot connect to the Docker daemon at {host}. Is the docker daemon running? ({source}; start it with `sudo berthd &`, or point -H/BERTH_HOST/DOCKER_HOST at a running daemon)"
    )]
    Connect { host: String, source: io::Error },
    #[error("error talking to the daemon at {host}: {source}")]
    Io { host: String, source: io::Error },
    #[error("unsupported host {0:?}: only unix:///path/to/socket is supported")]
    UnsupportedHost(String),
    /// The daemon answered with an error status; `message` is its `{"message": ...}`.
    #[error("{message}")]
    Api { status: u16, message: String },
    /// An error the daemon reported inside a 200 stream (`errorDetail` of a pull/push message).
    #[error("{0}")]
    InStream(String),
    #[error("unable to upgrade to tcp, received {0}")]
    UpgradeRefused(u16),
    #[error("error reading the response stream: {0}")]
    Stream(io::Error),
    #[error("invalid JSON from the daemon: {0}")]
    BadJson(String),
    #[error("template: {0}")]
    Template(String),
    /// A mistake in the command line that the argument parser cannot see (bad `--filter` syntax...).
    #[error("{0}")]
    Usage(String),
    #[error("No such object: {0}")]
    NoSuchObject(String),
    /// The command found nothing to show, as docker reports with status 1 (`port` of a port that
    /// is not published).
    #[error("{0}")]
    NotFound(String),
    #[error("writing output: {0}")]
    Output(io::Error),
    /// The user typed the detach keys: `attach` and `exec` exit 1 with docker's words.
    #[error("read escape sequence")]
    Detached,
    /// Not an error: the command wants the process to exit with this status (container exit code).
    #[error("exit status {0}")]
    Exit(i32),
}

impl Error {
    /// The process exit status for this error, as the docker CLI's: 1 for what the daemon
    /// refused or a daemon that cannot be reached, 125 for command-line mistakes. `run` maps
    /// its own failures (`run_failure`): 125, or docker's `toStatusError` for the container's
    /// start, 127 for a missing executable and 126 for permission denied.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Exit(code) => *code,
            Error::NoSuchObject(_)
            | Error::NotFound(_)
            | Error::InStream(_)
            | Error::Detached
            | Error::Api { .. }
            | Error::Connect { .. }
            | Error::Io { .. }
            | Error::UpgradeRefused(_)
            | Error::Stream(_)
            | Error::BadJson(_) => 1,
            _ => 125,
        }
    }

    /// Whether to print docker's `Error response from daemon: ` prefix.
    pub(crate) fn is_daemon_error(&self) -> bool {
        matches!(self, Error::Api { .. })
    }

    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }
}

/// docker's `toStatusError` for errors of `run`/`start`/`exec`: the exec failure text decides.
pub(crate) fn start_failure_status(err: &Error) -> i32 {
    let msg = err.to_string();
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        125
    }
}
