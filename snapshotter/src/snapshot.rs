//! The snapshotter contract (containerd's model), which every
//! implementation (overlay directories today, lazily fetched images later)
//! provides and passes [`conformance`](crate::conformance) against.
//!
//! A snapshot is named by a key, any string. It is one of:
//!
//! - **active**: writable, made by [`Snapshotter::prepare`]; a layer is
//!   applied into one, a container's rootfs is one.
//! - **committed**: immutable, made from an active snapshot by
//!   [`Snapshotter::commit`]; only committed snapshots can be parents.
//!   Image layers are committed under their chain IDs (`sha256:...`).
//! - **view**: read-only, made by [`Snapshotter::view`].
//!
//! The snapshotter only describes mounts ([`Mount`]); mounting is the
//! caller's job, and fetching content is not the snapshotter's at all.
//!
//! # Parallel unpacking and `commit_with_parent`
//!
//! An image's layers are applied at the same time, each into its own
//! parentless active snapshot, before any of them is committed. That works
//! because a layer is a diff: deletions are stored as overlayfs whiteouts,
//! so applying a layer never needs to see what lies beneath it. Once all
//! are verified, [`Snapshotter::commit_with_parent`] commits them in chain
//! order, recording each one's parent at commit time.

use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use berth_core::{ErrorKind, Mount};

/// What state a snapshot is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// Writable; can be committed.
    Active,
    /// Read-only view of a parent.
    View,
    /// Immutable; can be a parent.
    Committed,
}

/// What [`Snapshotter::stat`] reports about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The snapshot's key.
    pub name: String,
    /// The committed snapshot it sits on, if any.
    pub parent: Option<String>,
    /// Its state.
    pub kind: Kind,
    /// When it was created (prepared, viewed or committed).
    pub created: SystemTime,
}

/// Disk use of one snapshot's own layer (not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated on disk.
    pub size: u64,
    /// Inodes (files, directories, links...), hard links counted once.
    pub inodes: u64,
}

/// Why a snapshotter operation failed. Messages name the key.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this key.
    #[error("snapshot {key:?} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The key is already taken.
    #[error("snapshot {key:?} already exists")]
    AlreadyExists {
        /// The key asked for.
        key: String,
    },
    /// The snapshot is a parent of others.
    #[error("snapshot {key:?} has {children} child snapshot(s)")]
    HasChildren {
        /// The snapshot.
        key: String,
        /// How many snapshots name it as their parent.
        children: usize,
    },
    /// The snapshot is not in the state the operation needs (committing a
    /// view, using an active snapshot as a parent...).
    #[error("snapshot {key:?} is {actual:?}, expected {expected:?}")]
    WrongKind {
        /// The snapshot.
        key: String,
        /// What it is.
        actual: Kind,
        /// What the operation needs.
        expected: Kind,
    },
    /// `commit_with_parent` was given a parent other than the one the
    /// active snapshot was prepared on.
    #[error("snapshot {key:?} was prepared on {prepared:?}, cannot commit it on {requested:?}")]
    ParentMismatch {
        /// The active snapshot.
        key: String,
        /// Its parent from `prepare`.
        prepared: Option<String>,
        /// The parent asked for at commit.
        requested: Option<String>,
    },
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`creating`, `removing`...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("snapshot metadata: {0}")]
    Metadata(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SnapshotError {
    /// The kind of failure, for mapping to an API status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } | Self::HasChildren { .. } => ErrorKind::Conflict,
            Self::WrongKind { .. } | Self::ParentMismatch { .. } => ErrorKind::InvalidArgument,
            Self::Io { .. } | Self::Metadata(_) => ErrorKind::Io,
        }
    }
}

/// A store of snapshots. Methods are synchronous and may do disk I/O (call
/// them from blocking threads); implementations are safe to share between
/// threads.
pub trait Snapshotter {
    /// Creates the active (writable) snapshot `key` on top of the committed
    /// snapshot `parent` and returns the mounts of its filesystem.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;

    /// Creates the read-only view `key` of the committed `parent` (an empty
    /// directory without one) and returns its mounts.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;

    /// The mounts of an active snapshot or view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;

    /// Commits the active snapshot `key` as the immutable snapshot `name`
    /// (with the parent it was prepared on); `key` no longer exists after.
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;

    /// Commits the active snapshot `key` as `name` on top of `parent`. The
    /// active snapshot must have been prepared without a parent (or on
    /// that same parent): its directory holds a diff that is valid on any
    /// parent, which lets layers be applied in parallel and chained after.
    fn commit_with_parent(
        &self,
        name: &str,
        key: &str,
        parent: Option<&str>,
    ) -> Result<(), SnapshotError>;

    /// Removes a snapshot of any kind; refuses (Conflict) if another
    /// snapshot names it as parent. Its mounts must be unmounted first.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;

    /// Information about one snapshot.
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;

    /// Every snapshot.
    fn list(&self) -> Result<Vec<Info>, SnapshotError>;

    /// Disk use of the snapshot's own layer.
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;

    /// The directory of an active snapshot's own layer, for appliers that
    /// write a layer without mounting it (containerd's overlay fast path).
    fn upper_dir(&self, key: &str) -> Result<PathBuf, SnapshotError>;

    /// Makes every snapshot's files durable (one `syncfs`).
    fn sync(&self) -> Result<(), SnapshotError>;

    /// True if `key` exists and is committed.
    fn is_committed(&self, key: &str) -> bool {
        matches!(self.stat(key), Ok(info) if info.kind == Kind::Committed)
    }
}
