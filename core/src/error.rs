//! Error kinds shared by every `berth-core` error, so the daemon can map any
//! failure to an HTTP status in one place.

/// What kind of failure an error is, independent of the module it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object (blob, image, ...) does not exist.
    NotFound,
    /// The caller passed something malformed (a bad digest, reference, ...).
    InvalidArgument,
    /// The object is busy or in a state that forbids the operation.
    Conflict,
    /// Content did not match what it claimed to be (size or digest).
    Integrity,
    /// The operating system refused or failed an I/O operation.
    Io,
}
