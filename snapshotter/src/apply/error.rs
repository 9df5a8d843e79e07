//! The error of [`apply_layer`](super::apply_layer).

use std::io;
use std::path::PathBuf;

use berth_core::ErrorKind;

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// the layer destination could not be opened
    #[error("opening layer destination {}", path.display())]
    OpenDest {
        /// The destination directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// the tar stream could not be read or is malformed
    #[error("reading the layer tar stream{}", entry.as_ref().map(|p| format!(" at entry {}", p.display())).unwrap_or_default())]
    Read {
        /// The entry being read, or the last one read when the next header
        /// is bad; `None` before the first entry.
        entry: Option<PathBuf>,
        /// What the reader said.
        #[source]
        source: io::Error,
    },
    /// an entry names a path outside the layer root
    #[error("entry {} escapes the layer root", entry.display())]
    PathEscape {
        /// The entry, as named in the tar.
        entry: PathBuf,
    },
    /// an entry has a type a layer cannot hold
    #[error("entry {} has unsupported type {kind:?}", entry.display())]
    UnsupportedEntryType {
        /// The entry, as named in the tar.
        entry: PathBuf,
        /// The tar type flag.
        kind: char,
    },
    /// an entry's header is malformed
    #[error("entry {} is invalid: {reason}", entry.display())]
    InvalidEntry {
        /// The entry, as named in the tar.
        entry: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// a system call failed while applying an entry
    #[error("{op} failed for entry {}", entry.display())]
    Io {
        /// The entry, as named in the tar.
        entry: PathBuf,
        /// The operation that failed (`mkdirat`, `write`, ...).
        op: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// an entry would replace a directory by a non-directory or the reverse
    #[error("{reason}: {}", entry.display())]
    WouldOverwrite {
        /// The entry, as named in the tar.
        entry: PathBuf,
        /// Which replacement was refused.
        reason: &'static str,
    },
}

impl ApplyError {
    /// The kind of failure, for mapping to an API status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::OpenDest { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Self::OpenDest { .. } | Self::Io { .. } => ErrorKind::Io,
            Self::Read { source, .. } if source.kind() == io::ErrorKind::InvalidData => {
                ErrorKind::InvalidArgument
            }
            Self::Read { .. } => ErrorKind::Io,
            Self::PathEscape { .. }
            | Self::UnsupportedEntryType { .. }
            | Self::InvalidEntry { .. }
            | Self::WouldOverwrite { .. } => ErrorKind::InvalidArgument,
        }
    }
}
