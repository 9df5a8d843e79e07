//! The runtime's error type. Every variant names what failed.

use std::fmt;
use std::path::PathBuf;

use crate::process::Step;

/// What sort of failure an error is, for callers that map errors to
/// statuses (the daemon) or exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unsupported,
    Internal,
}

/// An error raised inside the container's init between `clone3` and
/// `execve`, sent to the runtime as a fixed-size record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildError {
    pub step: Step,
    pub errno: i32,
    /// The path or name the step was working on, if any.
    pub detail: String,
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = std::io::Error::from_raw_os_error(self.errno);
        if self.step == Step::FindExecutable {
            // Wording matched by docker's CLI to pick exit status 127.
            return write!(
                f,
                "exec: \"{}\": executable file not found in $PATH",
                self.detail
            );
        }
        if self.detail.is_empty() {
            write!(f, "{}: {err}", self.step)
        } else {
            write!(f, "{} {}: {err}", self.step, self.detail)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("container {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container {id:?} is {status}, {action} needs it {expected}")]
    WrongStatus {
        id: String,
        status: &'static str,
        action: &'static str,
        expected: &'static str,
    },
    #[error("reading {path}: {source}")]
    ReadSpec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    ParseSpec {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid config: {0}")]
    InvalidSpec(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("container init failed: {0}")]
    Child(ChildError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{kind} hook {path} failed: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    #[error("state of container {id:?} is corrupt: {reason}")]
    CorruptState { id: String, reason: String },
}

impl RuntimeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } | Self::WrongStatus { .. } => ErrorKind::Conflict,
            Self::InvalidId { .. }
            | Self::ParseSpec { .. }
            | Self::InvalidSpec(_)
            | Self::InvalidSignal(_)
            | Self::Seccomp(_) => ErrorKind::InvalidArgument,
            Self::ReadSpec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::Cgroup(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }

    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn sys(op: &'static str, source: std::io::Error) -> Self {
        Self::Sys { op, source }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
