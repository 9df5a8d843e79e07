//! The metadata store: image records, the references (tags) that name
//! them, leases that protect content being ingested from garbage
//! collection, and small key/value tables for the daemon's other objects.
//!
//! Everything lives in one redb database, `<root>/metadata.redb`, whose
//! commits are durable and atomic (copy-on-write B-trees, fsync on commit).
//!
//! ```text
//! images  manifest digest        -> Image record (JSON)
//! refs    normalised reference   -> manifest digest
//!         (docker.io/library/busybox:latest, name@sha256:...)
//! leases  lease id               -> Lease (JSON: expiry + digests)
//! kv      (table, key)           -> caller's JSON
//! ```
//!
//! Transactions are short: callers fetch, verify and commit blobs first and
//! then record the image in one transaction ([`MetadataStore::put_image`]).
//!
//! Garbage collection and ingestion meet through leases. The rule: add a
//! digest to a lease *before* committing its blob. [`MetadataStore::gc`]
//! lists the blobs *before* it reads the roots, so a blob committed after
//! the listing is never considered, and one committed before it was leased
//! before the roots were read.

mod kv;
mod lease;
mod resolve;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::content::{ContentError, ContentStore, GcStats};
use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::image::Image;
use crate::reference::{Reference, ReferenceError};

pub use lease::Lease;
pub use resolve::Removed;

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const REFS: TableDefinition<&str, &str> = TableDefinition::new("refs");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// The database file inside the store's root.
pub const DB_FILE: &str = "metadata.redb";

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The database refused or failed an operation.
    #[error("metadata database: {0}")]
    Db(#[from] redb::Error),
    /// Creating the store's directory failed.
    #[error("creating {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// No image matches the name, reference or ID.
    #[error("no such image: {0}")]
    ImageNotFound(String),
    /// The reference is not stored.
    #[error("no such reference: {0}")]
    ReferenceNotFound(String),
    /// An ID prefix matches more than one image.
    #[error("image id {prefix:?} is ambiguous: it matches {}", list(.matches))]
    Ambiguous {
        /// What the caller gave.
        prefix: String,
        /// The image IDs it matches.
        matches: Vec<Digest>,
    },
    /// Deleting by ID an image tagged in several repositories needs force.
    #[error(
        "unable to delete {id} (must be forced): image is referenced in multiple repositories ({})",
        .references.join(", ")
    )]
    ReferencedInMultipleRepositories {
        /// The short image ID.
        id: String,
        /// Its references, familiar form.
        references: Vec<String>,
    },
    /// The reference is malformed.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// A reference to store names both a tag and a digest.
    #[error("reference {0} names both a tag and a digest; a stored reference has one of them")]
    TagAndDigest(String),
    /// A `name@digest` reference whose digest is not the image's.
    #[error(
        "reference {reference} names {digest}, which is neither the manifest nor the index of image {image}"
    )]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// The digest it names.
        digest: Digest,
        /// The image's manifest digest.
        image: Digest,
    },
    /// A stored record could not be decoded or a value encoded.
    #[error("record {table}/{key}: {source}")]
    Record {
        /// The table.
        table: String,
        /// The key.
        key: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The lease does not exist or has expired.
    #[error("no such lease: {0}")]
    LeaseNotFound(String),
    /// A table or key name is empty or contains a NUL byte.
    #[error("invalid table or key name {0:?}")]
    InvalidName(String),
    /// Garbage collection failed in the content store.
    #[error("garbage collection: {0}")]
    Content(#[from] ContentError),
}

impl MetadataError {
    /// The error's kind, for mapping to API statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Db(_) | Self::Io { .. } | Self::Record { .. } => ErrorKind::Io,
            Self::ImageNotFound(_) | Self::ReferenceNotFound(_) | Self::LeaseNotFound(_) => {
                ErrorKind::NotFound
            }
            Self::Ambiguous { .. }
            | Self::InvalidReference(_)
            | Self::TagAndDigest(_)
            | Self::DigestMismatch { .. }
            | Self::InvalidName(_) => ErrorKind::InvalidArgument,
            Self::ReferencedInMultipleRepositories { .. } => ErrorKind::Conflict,
            Self::Content(e) => e.kind(),
        }
    }
}

fn list(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for MetadataError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub(crate) type Result<T> = std::result::Result<T, MetadataError>;

/// An image with the references that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    /// The image record.
    pub image: Image,
    /// Its references, sorted.
    pub references: Vec<Reference>,
}

/// The redb-backed metadata store. Cheap to share behind an `Arc`; every
/// method runs its own short transaction.
#[derive(Debug)]
pub struct MetadataStore {
    db: Database,
    path: PathBuf,
}

impl MetadataStore {
    /// Opens (creating if needed) `<root>/metadata.redb`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(|source| MetadataError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let path = root.join(DB_FILE);
        let db = Database::create(&path)?;
        let txn = db.begin_write()?;
        txn.open_table(IMAGES)?;
        txn.open_table(REFS)?;
        txn.open_table(LEASES)?;
        txn.open_table(KV)?;
        txn.commit()?;
        Ok(Self { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `image` and points each of `references` at it, in one
    /// transaction; with `release`, that lease is deleted in the same
    /// transaction (its content is now held by the image). References that
    /// named another image move to this one.
    pub fn put_image(
        &self,
        image: &Image,
        references: &[Reference],
        release: Option<&str>,
    ) -> Result<()> {
        for r in references {
            check_storable(r, image)?;
        }
        let key = image.target.digest.to_string();
        let json = encode("images", &key, image)?;
        let txn = self.db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES)?;
            images.insert(key.as_str(), json.as_slice())?;
            let mut refs = txn.open_table(REFS)?;
            for r in references {
                refs.insert(r.to_string().as_str(), key.as_str())?;
            }
            if let Some(id) = release {
                txn.open_table(LEASES)?.remove(id)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The image whose manifest digest is `manifest`.
    pub fn get_image(&self, manifest: &Digest) -> Result<Option<Image>> {
        let txn = self.db.begin_read()?;
        let images = txn.open_table(IMAGES)?;
        let key = manifest.to_string();
        match images.get(key.as_str())? {
            Some(v) => Ok(Some(decode("images", &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// The image a stored reference points at.
    pub fn get_by_ref(&self, reference: &Reference) -> Result<Option<Image>> {
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(REFS)?;
        let Some(target) = refs.get(reference.to_string().as_str())? else {
            return Ok(None);
        };
        let key = target.value().to_owned();
        let images = txn.open_table(IMAGES)?;
        match images.get(key.as_str())? {
            Some(v) => Ok(Some(decode("images", &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Resolves what a user typed the way `docker image inspect X` does: a
    /// stored reference first (`busybox`, `busybox:1.36`, `name@sha256:..`),
    /// then a full image ID (`sha256:<config digest>`, or a manifest
    /// digest), then a unique prefix of an image ID (with or without
    /// `sha256:`). A prefix matching several IDs is [`MetadataError::Ambiguous`].
    pub fn resolve(&self, input: &str) -> Result<Image> {
        let state = self.read_state()?;
        state.resolve(input).map(|(image, _)| image.clone())
    }

    /// Every image with its references, sorted by manifest digest.
    pub fn list(&self) -> Result<Vec<ImageEntry>> {
        let state = self.read_state()?;
        let mut by_image: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
        for (r, d) in state.refs.values() {
            by_image.entry(*d).or_default().push(r.clone());
        }
        Ok(state
            .images
            .into_iter()
            .map(|(digest, image)| {
                let references = by_image.remove(&digest).unwrap_or_default();
                ImageEntry { image, references }
            })
            .collect())
    }

    /// Every stored reference and the manifest digest it points at.
    pub fn references(&self) -> Result<Vec<(Reference, Digest)>> {
        Ok(self.read_state()?.refs.into_values().collect())
    }

    /// Points `new_ref` at the image `source` resolves to (as
    /// [`resolve`](Self::resolve)), like `docker tag`. Returns that image.
    pub fn tag(&self, source: &str, new_ref: &Reference) -> Result<Image> {
        let txn = self.db.begin_write()?;
        let image = {
            let state = State::read(&txn.open_table(IMAGES)?, &txn.open_table(REFS)?)?;
            let (image, _) = state.resolve(source)?;
            check_storable(new_ref, image)?;
            let mut refs = txn.open_table(REFS)?;
            refs.insert(
                new_ref.to_string().as_str(),
                image.target.digest.to_string().as_str(),
            )?;
            image.clone()
        };
        txn.commit()?;
        Ok(image)
    }

    /// Removes a stored reference; returns the manifest digest it named.
    /// The image record stays (see [`delete_image`](Self::delete_image)).
    pub fn untag(&self, reference: &Reference) -> Result<Digest> {
        let txn = self.db.begin_write()?;
        let key = reference.to_string();
        let target = {
            let mut refs = txn.open_table(REFS)?;
            let Some(old) = refs.remove(key.as_str())? else {
                return Err(MetadataError::ReferenceNotFound(reference.familiar()));
            };
            let v = old.value().to_owned();
            Digest::parse(&v).map_err(|e| MetadataError::Record {
                table: "refs".into(),
                key: key.clone(),
                source: serde::de::Error::custom(e),
            })?
        };
        txn.commit()?;
        Ok(target)
    }

    /// `docker rmi X` on the metadata: resolves `input` as
    /// [`resolve`](Self::resolve) does. By reference, removes that
    /// reference (and, when it was the repository's last tag, the digest
    /// references of the same repository); the image record goes only when
    /// no reference is left. By ID, removes every reference and the record,
    /// but refuses without `force` when the image is tagged in more than one
    /// repository. Checking that no container uses the image is the
    /// caller's job. Content is freed later by [`gc`](Self::gc).
    pub fn delete_image(&self, input: &str, force: bool) -> Result<Vec<Removed>> {
        let txn = self.db.begin_write()?;
        let removed = {
            let state = State::read(&txn.open_table(IMAGES)?, &txn.open_table(REFS)?)?;
            let plan = state.plan_delete(input, force)?;
            let mut refs = txn.open_table(REFS)?;
            let mut images = txn.open_table(IMAGES)?;
            for r in &plan {
                match r {
                    Removed::Untagged(r) => {
                        refs.remove(r.to_string().as_str())?;
                    }
                    Removed::Deleted(image) => {
                        images.remove(image.target.digest.to_string().as_str())?;
                    }
                }
            }
            plan
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Every blob digest that must survive garbage collection: the index,
    /// manifest, config and layers of every image, and every digest held by
    /// a lease that has not expired.
    pub fn gc_roots(&self) -> Result<HashSet<Digest>> {
        let txn = self.db.begin_read()?;
        let mut roots = HashSet::new();
        let images = txn.open_table(IMAGES)?;
        for entry in images.iter()? {
            let (k, v) = entry?;
            let image: Image = decode("images", k.value(), v.value())?;
            roots.extend(image.content_digests());
        }
        let leases = txn.open_table(LEASES)?;
        let now = lease::now_secs();
        for entry in leases.iter()? {
            let (k, v) = entry?;
            let lease: Lease = decode("leases", k.value(), v.value())?;
            if lease.expires_at > now {
                roots.extend(lease.digests);
            }
        }
        Ok(roots)
    }

    /// Deletes every blob of `store` that [`gc_roots`](Self::gc_roots) does
    /// not name. Lists the blobs first and reads the roots second, so that
    /// with the lease-before-commit rule no blob being ingested is lost.
    pub fn gc(&self, store: &ContentStore) -> Result<GcStats> {
        let candidates = store.list()?;
        let roots = self.gc_roots()?;
        let mut stats = GcStats::default();
        for digest in candidates {
            if roots.contains(&digest) {
                continue;
            }
            let size = match store.info(&digest) {
                Ok(size) => size,
                Err(ContentError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            match store.delete(&digest) {
                Ok(()) => {}
                Err(ContentError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            stats.removed.push(digest);
            stats.reclaimed_bytes += size;
        }
        Ok(stats)
    }

    fn read_state(&self) -> Result<State> {
        let txn = self.db.begin_read()?;
        State::read(&txn.open_table(IMAGES)?, &txn.open_table(REFS)?)
    }
}

/// A `name@digest` reference must name the image's manifest or index; a
/// stored reference has a tag or a digest, not both.
fn check_storable(reference: &Reference, image: &Image) -> Result<()> {
    match (reference.tag(), reference.digest()) {
        (Some(_), Some(_)) => Err(MetadataError::TagAndDigest(reference.to_string())),
        (None, Some(d)) if *d != image.target.digest && Some(*d) != image.index => {
            Err(MetadataError::DigestMismatch {
                reference: reference.to_string(),
                digest: *d,
                image: image.target.digest,
            })
        }
        _ => Ok(()),
    }
}

/// All images and references, read in one transaction; resolution and
/// delete planning work on this snapshot. Image counts are in the hundreds,
/// so reading them all is cheaper than keeping secondary indexes in sync.
#[derive(Debug)]
pub(crate) struct State {
    images: BTreeMap<Digest, Image>,
    /// Keyed by the reference's string form, so iteration is sorted.
    refs: BTreeMap<String, (Reference, Digest)>,
}

impl State {
    fn read(
        images: &impl ReadableTable<&'static str, &'static [u8]>,
        refs: &impl ReadableTable<&'static str, &'static str>,
    ) -> Result<Self> {
        let mut state = State {
            images: BTreeMap::new(),
            refs: BTreeMap::new(),
        };
        for entry in images.iter()? {
            let (k, v) = entry?;
            let image: Image = decode("images", k.value(), v.value())?;
            state.images.insert(image.target.digest, image);
        }
        for entry in refs.iter()? {
            let (k, v) = entry?;
            let bad = |e: String| MetadataError::Record {
                table: "refs".into(),
                key: k.value().to_owned(),
                source: serde::de::Error::custom(e),
            };
            let r = Reference::parse(k.value()).map_err(|e| bad(e.to_string()))?;
            let d = Digest::parse(v.value()).map_err(|e| bad(e.to_string()))?;
            state.refs.insert(k.value().to_owned(), (r, d));
        }
        Ok(state)
    }
}

fn encode<T: serde::Serialize>(table: &str, key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| MetadataError::Record {
        table: table.into(),
        key: key.into(),
        source,
    })
}

fn decode<T: serde::de::DeserializeOwned>(table: &str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| MetadataError::Record {
        table: table.into(),
        key: key.into(),
        source,
    })
}
