//! Image archives: `docker save`/`docker load` tarballs and `docker import`
//! of a root file system.
//!
//! [`save`] writes one tar that is both a docker-archive (`manifest.json`
//! with `Config`/`RepoTags`/`Layers`) and an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`), as Docker 25+ does; both point at the
//! same blobs, streamed from the content store as stored (compressed
//! layers stay compressed).
//!
//! [`load`] reads that layout, the legacy docker-archive layout
//! (`<id>/layer.tar`, `<config>.json`) and plain OCI layout tarballs
//! (`oci-archive:`). Every blob goes through a content store writer with
//! its digest verified; the images are recorded only when every blob is in
//! place, and a failed load removes the blobs it added.
//!
//! [`import`] turns a root file system tar into a one-layer image;
//! [`commit`] adds a container's changes as a layer on top of its image;
//! a [`BuildSession`] holds the layers of `docker build` steps.

mod build;
mod commit;
mod import;
mod load;
mod save;

use std::io::{self, Write};

use crate::content::{ContentError, ContentStore};
use crate::digest::{Digest, Digester};
use crate::error::ErrorKind;
use crate::image::ImageError;
use crate::metadata::{MetadataError, MetadataStore};
use crate::reference::ReferenceError;

pub use build::{BuildSession, BuiltLayer};
pub use commit::{CommitConfig, commit};
pub use import::{ImportConfig, import};
pub use load::{LoadedImage, load};
pub use save::save;

/// Why saving, loading or importing an archive failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input could not be read as a tar stream.
    #[error("input is not a valid tar archive: {0}")]
    NotATar(io::Error),
    /// Reading the input failed part-way.
    #[error("reading {path} from the archive: {source}")]
    Read {
        /// The entry being read.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// Writing the output failed.
    #[error("writing the archive: {0}")]
    Write(io::Error),
    /// A metadata file of the archive is not the JSON it should be.
    #[error("{path} in the archive is not valid JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The archive has neither `manifest.json` nor `index.json`.
    #[error("archive has neither manifest.json nor index.json: not an image archive")]
    NoManifest,
    /// A file named by the archive's metadata is not in it.
    #[error("archive has no file {path} (named by {named_by})")]
    MissingFile {
        /// The missing path.
        path: String,
        /// What named it.
        named_by: String,
    },
    /// A blob an image needs is neither in the archive nor in the store.
    #[error("blob {0} is referenced but is not in the archive")]
    MissingBlob(Digest),
    /// A layer's uncompressed content does not match the config's diff ID.
    #[error("layer {path}: content has diff id {actual}, but the config says {expected}")]
    DiffIdMismatch {
        /// The layer file in the archive.
        path: String,
        /// The config's diff ID.
        expected: Digest,
        /// The layer's actual diff ID.
        actual: Digest,
    },
    /// A `RepoTags` entry or name annotation is not a valid reference.
    #[error("image name {name:?} in the archive: {source}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is invalid.
        source: ReferenceError,
    },
    /// A blob could not be stored or read.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A manifest or config could not be turned into an image record.
    #[error(transparent)]
    Image(Box<ImageError>),
}

impl ArchiveError {
    /// The error's kind, for mapping to API statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotATar(_)
            | Self::Json { .. }
            | Self::NoManifest
            | Self::MissingFile { .. }
            | Self::MissingBlob(_)
            | Self::InvalidName { .. } => ErrorKind::InvalidArgument,
            Self::DiffIdMismatch { .. } => ErrorKind::Integrity,
            Self::Read { .. } | Self::Write(_) => ErrorKind::Io,
            Self::Content(e) => e.kind(),
            Self::Metadata(e) => e.kind(),
            Self::Image(e) => e.kind(),
        }
    }
}

impl From<ImageError> for ArchiveError {
    fn from(e: ImageError) -> Self {
        Self::Image(Box::new(e))
    }
}

pub(crate) type Result<T> = std::result::Result<T, ArchiveError>;

/// Leases of loads and imports expire after this long, so a crashed one
/// does not pin its blobs forever.
const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Blobs one load or import stored, so a failure can remove them again.
#[derive(Debug)]
pub(crate) struct Ingest<'a> {
    store: &'a ContentStore,
    metadata: &'a MetadataStore,
    lease: String,
    /// Blobs that were not in the store before this ingest committed them.
    added: Vec<Digest>,
    seq: u64,
}

impl<'a> Ingest<'a> {
    pub(crate) fn new(store: &'a ContentStore, metadata: &'a MetadataStore) -> Result<Self> {
        let lease = metadata.create_lease(LEASE_TTL)?;
        Ok(Self {
            store,
            metadata,
            lease,
            added: Vec::new(),
            seq: 0,
        })
    }

    fn ingest_ref(&mut self) -> String {
        self.seq += 1;
        format!("archive-{}-{}", self.lease, self.seq)
    }

    /// Stores `data` (a manifest or config) and returns its digest.
    pub(crate) fn put_bytes(&mut self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        self.copy_known(&mut &data[..], digest, data.len() as u64)?;
        Ok(digest)
    }

    /// Streams a blob whose digest and size are known from `r` into the store.
    pub(crate) fn copy_known(
        &mut self,
        r: &mut impl io::Read,
        digest: Digest,
        size: u64,
    ) -> Result<()> {
        self.metadata.lease_add(&self.lease, &[digest])?;
        if self.store.exists(&digest) {
            io::copy(r, &mut io::sink()).map_err(|source| ArchiveError::Read {
                path: format!("blob {digest}"),
                source,
            })?;
            return Ok(());
        }
        let ref_name = self.ingest_ref();
        let mut w = self.store.writer(&ref_name, Some((digest, size)))?;
        if let Err(source) = io::copy(r, &mut w) {
            w.abort()?;
            return Err(read_or_content(source, format!("blob {digest}")));
        }
        w.commit()?;
        self.added.push(digest);
        Ok(())
    }

    /// Streams a blob whose digest is not known in advance. Hashes it on the
    /// way so the digest can be leased before the commit publishes it.
    pub(crate) fn copy_unknown(
        &mut self,
        r: &mut impl io::Read,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let ref_name = self.ingest_ref();
        let mut w = HashingWriter {
            inner: self.store.writer(&ref_name, None)?,
            digester: Digester::new(),
        };
        if let Err(source) = io::copy(r, &mut w) {
            w.inner.abort()?;
            return Err(read_or_content(source, what.to_owned()));
        }
        self.commit_hashed(w)
    }

    /// Leases the digest `w` computed, then commits the blob.
    pub(crate) fn commit_hashed(
        &mut self,
        w: HashingWriter<crate::content::Writer>,
    ) -> Result<(Digest, u64)> {
        let size = w.digester.len();
        let digest = w.digester.finish();
        let existed = self.store.exists(&digest);
        if let Err(e) = self.metadata.lease_add(&self.lease, &[digest]) {
            w.inner.abort()?;
            return Err(e.into());
        }
        w.inner.commit()?;
        if !existed {
            self.added.push(digest);
        }
        Ok((digest, size))
    }

    /// The ingest succeeded: drop the lease (the images now hold the blobs).
    pub(crate) fn finish(self) -> Result<()> {
        self.metadata.delete_lease(&self.lease)?;
        Ok(())
    }

    /// The ingest failed: drop the lease and remove the blobs it added that
    /// nothing else holds. Errors here are secondary to the one being
    /// returned, so they are ignored.
    pub(crate) fn rollback(self) {
        let _ = self.metadata.delete_lease(&self.lease);
        let Ok(roots) = self.metadata.gc_roots() else {
            return;
        };
        for d in &self.added {
            if !roots.contains(d) {
                let _ = self.store.delete(d);
            }
        }
    }
}

/// `io::copy` reports a writer's errors as io errors; recover the content
/// error a store writer wrapped (e.g. a blob larger than declared).
fn read_or_content(source: io::Error, path: String) -> ArchiveError {
    if !source.get_ref().is_some_and(|e| e.is::<ContentError>()) {
        return ArchiveError::Read { path, source };
    }
    match source.into_inner().map(|b| b.downcast::<ContentError>()) {
        Some(Ok(e)) => ArchiveError::Content(*e),
        Some(Err(other)) => ArchiveError::Read {
            path,
            source: io::Error::other(other),
        },
        None => ArchiveError::Read {
            path,
            source: io::Error::other("unknown write error"),
        },
    }
}

/// Hashes what passes through to `inner`.
#[derive(Debug)]
pub(crate) struct HashingWriter<W> {
    pub(crate) inner: W,
    pub(crate) digester: Digester,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
