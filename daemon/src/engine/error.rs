//! The engine's error type and the kinds the API layer maps to HTTP statuses.

use std::path::PathBuf;

/// What kind of failure an engine error is; `api::error` turns each kind into
/// exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    /// Refused by policy (a read-only rootfs or volume).
    Forbidden,
    #[allow(dead_code)] // for engine operations still to come
    Unavailable,
    #[allow(dead_code)]
    NotImplemented,
    Internal,
}

impl From<berth_core::ErrorKind> for ErrorKind {
    fn from(kind: berth_core::ErrorKind) -> Self {
        match kind {
            berth_core::ErrorKind::NotFound => ErrorKind::NotFound,
            berth_core::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            berth_core::ErrorKind::Conflict => ErrorKind::Conflict,
            // Corrupt content and failed I/O are the daemon's problem, not the caller's.
            berth_core::ErrorKind::Integrity | berth_core::ErrorKind::Io => ErrorKind::Internal,
        }
    }
}

/// Errors of engine operations.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Filter(#[from] super::filters::FilterError),
    #[error("`since` time ({since}) cannot be after `until` time ({until})")]
    SinceAfterUntil { since: String, until: String },
    #[error("opening the image store: {0}")]
    Images(super::images::ImageError),
    #[error("opening the container store: {0}")]
    Containers(Box<super::containers::ContainerError>),
    #[error("opening the volume store: {0}")]
    Volumes(super::volumes::VolumeError),
    #[error("starting networking: {0}")]
    Networks(Box<super::networks::NetError>),
}

impl EngineError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Io { .. } => ErrorKind::Internal,
            EngineError::Images(e) => e.kind(),
            EngineError::Containers(e) => e.kind(),
            EngineError::Volumes(e) => e.kind(),
            EngineError::Networks(e) => e.kind(),
            EngineError::Filter(_) | EngineError::SinceAfterUntil { .. } => {
                ErrorKind::InvalidArgument
            }
        }
    }
}
