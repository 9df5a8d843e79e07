//! The control protocol between berthd and `berth-shim`.
//!
//! One request per connection on the `SOCK_STREAM` unix socket
//! `<state-dir>/shim.sock`: the client writes one JSON [`Request`] followed
//! by a newline, the shim answers with one JSON [`Response`] line, with file
//! descriptors attached (`SCM_RIGHTS`) where the response says so.
//! Long-lived requests keep the connection: `wait` answers when the
//! container exits, `attach` turns the connection into a stream of
//! [`frame`]s, `exec` sends a second line when the process exits.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

/// The control socket in a shim's state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("shim.sock")
}

/// The exit record in a shim's state directory, written (atomically)
/// before any waiter hears of the exit.
pub fn exit_path(state_dir: &Path) -> PathBuf {
    state_dir.join("exit.json")
}

/// The shim's own diagnostics (its stderr) in its state directory.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("shim.log")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Let the created container's init run its process.
    Start,
    /// Report [`ContainerInfo`].
    State,
    /// Signal the init (with `all`, every process of the container).
    Kill { signal: i32, all: bool },
    /// Answer with [`Response::Exit`] once the container has exited.
    Wait,
    /// Stream the container's output as frames from now on. With `stdin`,
    /// the response carries a descriptor writing to the container's stdin
    /// (the pty master for a tty); with `close_stdin` the shim hands over
    /// its own end, so closing the passed descriptor means EOF for the
    /// container (docker's `StdinOnce`) and later attaches get no stdin.
    Attach { stdin: bool, close_stdin: bool },
    /// [`Request::Start`], then [`Request::Attach`] on this connection, in
    /// one round trip (the output is only read after both, so none is
    /// missed). Answered with [`Response::Attached`] once started, or the
    /// start's error.
    AttachStart { stdin: bool, close_stdin: bool },
    /// Set the container tty's window size.
    Resize { rows: u16, cols: u16 },
    /// Run `process` in the container. Its stdio comes back as
    /// descriptors with [`Response::ExecStarted`]: for a tty
    /// (`process.terminal`) the pty master; otherwise stdout and stderr
    /// read ends, preceded by the stdin write end when `stdin` is set.
    Exec { process: Box<Process>, stdin: bool },
    /// Delete the container (killing it if needed) and exit.
    Shutdown,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Stopped,
}

/// How the container's init ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitInfo {
    /// Docker's convention: the exit code, or 128 + signal.
    pub exit_code: i32,
    /// The signal that killed the init, if one did.
    pub signal: Option<i32>,
    /// RFC 3339 with nanoseconds, UTC.
    pub started_at: Option<String>,
    pub finished_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// The init's pid in the shim's pid namespace.
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    pub status: Status,
    pub tty: bool,
    pub created_at: String,
    pub started_at: Option<String>,
    pub exit: Option<ExitInfo>,
}

/// What went wrong, for the daemon to map to an HTTP status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unsupported,
    Internal,
}

impl From<berth_runtime::ErrorKind> for ErrorKind {
    fn from(k: berth_runtime::ErrorKind) -> Self {
        match k {
            berth_runtime::ErrorKind::NotFound => Self::NotFound,
            berth_runtime::ErrorKind::Conflict => Self::Conflict,
            berth_runtime::ErrorKind::InvalidArgument => Self::InvalidArgument,
            berth_runtime::ErrorKind::Unsupported => Self::Unsupported,
            berth_runtime::ErrorKind::Internal => Self::Internal,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Sent by a newly started shim once the container is created.
    Ready {
        pid: i32,
        shim_pid: i32,
    },
    Ok,
    State(ContainerInfo),
    Exit(ExitInfo),
    /// Frames follow on this connection; `stdin` says whether a
    /// descriptor is attached.
    Attached {
        stdin: bool,
        tty: bool,
    },
    ExecStarted {
        pid: i32,
        tty: bool,
    },
    ExecExited {
        exit_code: i32,
    },
    Error {
        kind: ErrorKind,
        message: String,
        /// For a process that could not be started: the exit code docker
        /// reports for it (127 command not found, 126 not executable).
        exit_code: Option<i32>,
    },
}

/// Output frames on an attach connection, docker's multiplexed format: a
/// header of stream (1 stdout, 2 stderr), three zero bytes and the
/// payload length as big-endian u32, then the payload.
pub mod frame {
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const HEADER_LEN: usize = 8;

    pub fn header(stream: u8, len: usize) -> [u8; HEADER_LEN] {
        let l = (len as u32).to_be_bytes();
        [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
    }

    /// (stream, payload length) of a header.
    pub fn parse(h: &[u8; HEADER_LEN]) -> (u8, usize) {
        (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let r = Request::Kill {
            signal: 9,
            all: false,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"op":"kill","signal":9,"all":false}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
    }

    #[test]
    fn frame_header_round_trips() {
        let h = frame::header(frame::STDERR, 70000);
        assert_eq!(frame::parse(&h), (frame::STDERR, 70000));
    }
}
