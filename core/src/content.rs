//! The content-addressed blob store: every manifest, config and layer Berth
//! keeps, stored once under its sha256 digest.
//!
//! ```text
//! <root>/blobs/sha256/<hex>     verified blobs, read-only (0444)
//! <root>/ingest/<key>/data      bytes received so far for one ingest ref
//! <root>/ingest/<key>/ref       the ingest ref itself (<key> is its sha256)
//! <root>/ingest/<key>/lock      flock(2)ed by the one live writer
//! ```
//!
//! Blobs arrive through a [`Writer`], named by a caller-chosen *ingest ref*
//! (the registry client uses one per layer, e.g. `layer-sha256:...`). The
//! writer hashes while it writes, so no second pass over the data is needed.
//! Dropping a writer keeps what it wrote: opening the same ref again resumes
//! at [`Writer::offset`] (re-hashing the partial file once). Only one writer
//! per ref may exist at a time, across threads and processes; the second gets
//! [`ContentError::Busy`].
//!
//! [`Writer::commit`] is what "commit" means in Berth: fsync, size check,
//! digest check, then an atomic rename into `blobs/` and an fsync of that
//! directory. A blob that fails either check never becomes visible and its
//! ingest is removed. Committing content that is already present is a no-op.
//!
//! Deletion is by reference: [`ContentStore::gc`] removes every blob the
//! caller does not name as live. [`ContentStore::fsck`] re-hashes every blob
//! and lists ingests that no writer holds.

mod writer;

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Digest, Digester};
use crate::error::ErrorKind;

pub use writer::Writer;

/// Why a content store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No blob with this digest.
    #[error("blob {0} not found")]
    NotFound(Digest),
    /// The ingest ref is empty.
    #[error("invalid ingest ref {0:?}: must not be empty")]
    InvalidRef(String),
    /// Another writer (in this or another process) holds the ingest ref.
    #[error("ingest {0:?} is in use by another writer")]
    Busy(String),
    /// The committed data has the wrong size.
    #[error("ingest {ref_name:?}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The ingest ref.
        ref_name: String,
        /// The size the caller expected.
        expected: u64,
        /// The size written.
        actual: u64,
    },
    /// The committed data has the wrong digest.
    #[error("ingest {ref_name:?}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The ingest ref.
        ref_name: String,
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of the data written.
        actual: Digest,
    },
    /// A write would take the ingest past its expected size.
    #[error(
        "ingest {ref_name:?}: write would grow it to {attempted} bytes, past the expected {expected}"
    )]
    TooLarge {
        /// The ingest ref.
        ref_name: String,
        /// The size the caller expected.
        expected: u64,
        /// The size the write would have reached.
        attempted: u64,
    },
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"opening"`, `"renaming"`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl ContentError {
    /// The error's kind, for mapping to API statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::InvalidRef(_) => ErrorKind::InvalidArgument,
            Self::Busy(_) => ErrorKind::Conflict,
            Self::SizeMismatch { .. } | Self::DigestMismatch { .. } | Self::TooLarge { .. } => {
                ErrorKind::Integrity
            }
            Self::Io { .. } => ErrorKind::Io,
        }
    }
}

/// Shorthand for building [`ContentError::Io`].
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContentError {
    let path = path.to_path_buf();
    move |source| ContentError::Io { op, path, source }
}

type Result<T> = std::result::Result<T, ContentError>;

/// Something [`ContentStore::fsck`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The blob's content does not hash to its name.
    Corrupted {
        /// The digest the blob is stored under.
        digest: Digest,
        /// What its content hashes to now.
        actual: Digest,
    },
    /// A file in `blobs/sha256/` whose name is not a digest, or that is not
    /// a regular file.
    UnexpectedFile {
        /// The file.
        path: PathBuf,
    },
    /// An ingest that no writer currently holds.
    StaleIngest {
        /// The ingest ref.
        ref_name: String,
        /// Bytes written so far.
        size: u64,
        /// Time since it was last written.
        age: Duration,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupted { digest, actual } => {
                write!(f, "blob {digest} is corrupted: content hashes to {actual}")
            }
            Self::UnexpectedFile { path } => write!(f, "unexpected file {}", path.display()),
            Self::StaleIngest {
                ref_name,
                size,
                age,
            } => write!(
                f,
                "stale ingest {ref_name:?}: {size} bytes, idle for {}s",
                age.as_secs()
            ),
        }
    }
}

/// What [`ContentStore::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    /// The blobs removed, sorted.
    pub removed: Vec<Digest>,
    /// Their total size in bytes.
    pub reclaimed_bytes: u64,
}

/// A content-addressed blob store rooted at one directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens the store at `root`, creating its directories if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
        fs::create_dir_all(&ingest).map_err(io_err("creating", &ingest))?;
        Ok(Self {
            root,
            blobs,
            ingest,
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Opens (or resumes) the ingest `ref_name`. With `expected`, commit
    /// checks the data against that digest and size, and writes past the
    /// size fail. A resumed ingest already longer than the expected size is
    /// restarted from zero.
    pub fn writer(&self, ref_name: &str, expected: Option<(Digest, u64)>) -> Result<Writer> {
        if ref_name.is_empty() {
            return Err(ContentError::InvalidRef(ref_name.to_owned()));
        }
        let dir = self.ingest.join(Digest::of(ref_name.as_bytes()).hex());
        Writer::open(ref_name, dir, self.blobs.clone(), expected)
    }

    /// Removes the ingest `ref_name` if no writer holds it. Removing an
    /// ingest that does not exist is not an error.
    pub fn abort_ingest(&self, ref_name: &str) -> Result<()> {
        if ref_name.is_empty() {
            return Err(ContentError::InvalidRef(ref_name.to_owned()));
        }
        let dir = self.ingest.join(Digest::of(ref_name.as_bytes()).hex());
        if !dir.exists() {
            return Ok(());
        }
        self.writer(ref_name, None)?.abort()
    }

    /// Opens a blob for reading.
    pub fn reader(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| not_found_or(e, digest, "opening", &path))
    }

    /// The size of a blob in bytes.
    pub fn info(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| not_found_or(e, digest, "inspecting", &path))
    }

    /// Whether the blob is present.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Removes a blob.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| not_found_or(e, digest, "removing", &path))
    }

    /// Every blob in the store, sorted. Files whose name is not a digest are
    /// skipped (fsck reports them).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err("listing", &self.blobs))? {
            let entry = entry.map_err(io_err("listing", &self.blobs))?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex_str(n).ok())
            {
                out.push(digest);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Re-hashes every blob and reports corrupted or foreign files, then
    /// lists ingests that no writer holds. Finding an ingest idle briefly
    /// holds its lock, so a writer opening that ref at the same instant may
    /// get [`ContentError::Busy`].
    pub fn fsck(&self) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let mut entries: Vec<_> = fs::read_dir(&self.blobs)
            .map_err(io_err("listing", &self.blobs))?
            .collect::<io::Result<_>>()
            .map_err(io_err("listing", &self.blobs))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let digest = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex_str(n).ok());
            let is_file = entry
                .file_type()
                .map_err(io_err("inspecting", &path))?
                .is_file();
            let (Some(digest), true) = (digest, is_file) else {
                problems.push(Problem::UnexpectedFile { path });
                continue;
            };
            let file = File::open(&path).map_err(io_err("opening", &path))?;
            let actual = hash_reader(file).map_err(io_err("reading", &path))?;
            if actual != digest {
                problems.push(Problem::Corrupted { digest, actual });
            }
        }
        problems.extend(self.stale_ingests()?);
        Ok(problems)
    }

    fn stale_ingests(&self) -> Result<Vec<Problem>> {
        let mut out = Vec::new();
        let mut dirs: Vec<_> = fs::read_dir(&self.ingest)
            .map_err(io_err("listing", &self.ingest))?
            .collect::<io::Result<_>>()
            .map_err(io_err("listing", &self.ingest))?;
        dirs.sort_by_key(|e| e.file_name());
        for entry in dirs {
            let dir = entry.path();
            let Some(status) = writer::probe_idle(&dir)? else {
                continue;
            };
            let age = SystemTime::now()
                .duration_since(status.modified)
                .unwrap_or_default();
            out.push(Problem::StaleIngest {
                ref_name: status.ref_name,
                size: status.size,
                age,
            });
        }
        Ok(out)
    }

    /// Removes every blob not in `keep`.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<GcStats> {
        let mut stats = GcStats::default();
        for digest in self.list()? {
            if keep.contains(&digest) {
                continue;
            }
            let path = self.blob_path(&digest);
            let size = match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("inspecting", &path)(e)),
            };
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("removing", &path)(e)),
            }
            stats.removed.push(digest);
            stats.reclaimed_bytes += size;
        }
        Ok(stats)
    }
}

fn not_found_or(e: io::Error, digest: &Digest, op: &'static str, path: &Path) -> ContentError {
    if e.kind() == io::ErrorKind::NotFound {
        ContentError::NotFound(*digest)
    } else {
        io_err(op, path)(e)
    }
}

/// Hashes everything `r` yields.
pub(crate) fn hash_reader(mut r: impl Read) -> io::Result<Digest> {
    let mut digester = Digester::new();
    hash_into(&mut r, &mut digester)?;
    Ok(digester.finish())
}

/// Feeds everything `r` yields into `digester`; returns the byte count.
pub(crate) fn hash_into(r: &mut impl Read, digester: &mut Digester) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                digester.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
