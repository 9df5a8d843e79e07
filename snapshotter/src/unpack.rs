//! Unpacking: a compressed layer stream into a snapshot, in one pass.
//!
//! ```text
//! compressed bytes ──► decoder ──► sha256 (diff ID) ──► tar apply ──► upper dir
//! ```
//!
//! The diff ID (sha256 of the uncompressed tar) is computed by a reader
//! between the decoder and the tar applier, so the layer is read once. The
//! layer is applied into the snapshot's directory without mounting it
//! ([`Snapshotter::upper_dir`]).
//!
//! Nothing half-done is kept: on any failure (decode, apply, diff-ID
//! mismatch, commit) the active snapshot is removed.
//!
//! Two ways in:
//!
//! - [`unpack_layer`]: one layer onto an already committed parent; does
//!   nothing (reads nothing) if the layer's chain ID is already committed.
//! - [`unpack_detached`] then [`commit_chain`]: every layer of an image
//!   at once, each on its own thread into a parentless snapshot (layers
//!   are diffs with whiteouts, so they can be applied without their
//!   parents), then committed in chain order with each one's parent
//!   recorded ([`Snapshotter::commit_with_parent`]). A chain ID in the
//!   snapshotter so always names a complete, verified stack.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_core::image::chain_ids;
use berth_core::{Digest, Digester, ErrorKind};

use crate::apply::{ApplyError, ApplyOptions, ApplyStats, apply_layer};
use crate::decompress::{self, Compression, DecodeError};
use crate::snapshot::{SnapshotError, Snapshotter};

/// A layer applied into a parentless active snapshot, not yet committed.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The active snapshot's key (unique, generated).
    pub key: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// What the apply created.
    pub stats: ApplyStats,
}

/// What [`unpack_layer`] did.
#[derive(Debug, Clone)]
pub enum LayerOutcome {
    /// The chain ID was already committed; the layer was not read.
    AlreadyPresent,
    /// The layer was unpacked and committed under its chain ID.
    Unpacked {
        /// sha256 of the uncompressed tar.
        diff_id: Digest,
        /// What the apply created.
        stats: ApplyStats,
    },
}

/// Why a layer could not be unpacked. Whatever the cause, no snapshot of
/// the layer is left behind.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The compressed stream is corrupt (the message names the compression).
    #[error(transparent)]
    Decode(DecodeError),
    /// The tar could not be applied.
    #[error("applying layer: {source}")]
    Apply {
        /// The applier's error.
        #[from]
        source: ApplyError,
    },
    /// Reading the compressed stream failed.
    #[error("reading layer: {source}")]
    Read {
        /// What the reader said.
        #[source]
        source: io::Error,
    },
    /// The uncompressed tar does not have the expected diff ID.
    #[error("layer diff ID mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch {
        /// The diff ID from the image config.
        expected: Digest,
        /// What the tar hashed to.
        actual: Digest,
    },
    /// A chain ID given to [`commit_chain`] does not follow from its parent
    /// and the layer's diff ID.
    #[error("chain ID {given} does not match its layer: expected {expected}")]
    ChainIdMismatch {
        /// The chain ID given.
        given: String,
        /// The chain ID of the parent and the diff ID.
        expected: Digest,
    },
    /// A chain ID or base parent given to [`commit_chain`] is not a digest.
    #[error("{value:?} is not a chain ID")]
    InvalidChainId {
        /// The value given.
        value: String,
    },
}

impl UnpackError {
    /// The kind of failure, for mapping to an API status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Snapshot(e) => e.kind(),
            Self::Decode(_) | Self::DiffIdMismatch { .. } => ErrorKind::Integrity,
            Self::Apply { source } => source.kind(),
            Self::Read { .. } => ErrorKind::Io,
            Self::ChainIdMismatch { .. } | Self::InvalidChainId { .. } => {
                ErrorKind::InvalidArgument
            }
        }
    }

    /// A read error, or the decoder's error it carries.
    fn from_read(e: io::Error) -> Self {
        match take_decode_error(e) {
            Ok(d) => Self::Decode(d),
            Err(source) => Self::Read { source },
        }
    }

    fn from_apply(e: ApplyError) -> Self {
        match e {
            ApplyError::Read { source, entry } => match take_decode_error(source) {
                Ok(d) => Self::Decode(d),
                Err(source) => Self::Apply {
                    source: ApplyError::Read { entry, source },
                },
            },
            other => Self::Apply { source: other },
        }
    }
}

fn take_decode_error(e: io::Error) -> Result<DecodeError, io::Error> {
    if DecodeError::find(&e).is_none() {
        return Err(e);
    }
    let inner = e.into_inner().expect("a decode error is inside");
    Ok(*inner.downcast::<DecodeError>().expect("checked by find"))
}

/// Feeds everything read through it to a digester.
struct Hashing<R> {
    inner: R,
    digester: Digester,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

fn unique_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "unpack-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unpacks `layer` (compressed with `compression`) into a new parentless
/// active snapshot and returns its key with the layer's diff ID, checked
/// against `expected_diff_id` when given. On error the snapshot is removed.
pub fn unpack_detached<S: Snapshotter + ?Sized>(
    snapshotter: &S,
    layer: impl Read + Send,
    compression: Compression,
    expected_diff_id: Option<Digest>,
) -> Result<Unpacked, UnpackError> {
    let key = unique_key();
    snapshotter.prepare(&key, None)?;
    match apply_into(snapshotter, &key, layer, compression, expected_diff_id) {
        Ok((diff_id, stats)) => Ok(Unpacked {
            key,
            diff_id,
            stats,
        }),
        Err(e) => {
            let _ = snapshotter.remove(&key);
            Err(e)
        }
    }
}

fn apply_into<S: Snapshotter + ?Sized>(
    snapshotter: &S,
    key: &str,
    layer: impl Read + Send,
    compression: Compression,
    expected_diff_id: Option<Digest>,
) -> Result<(Digest, ApplyStats), UnpackError> {
    let dest = snapshotter.upper_dir(key)?;
    let decoded = decompress::decoder(compression, layer).map_err(UnpackError::from_read)?;
    let mut hashing = Hashing {
        inner: decoded,
        digester: Digester::new(),
    };
    let stats = apply_layer(&mut hashing, &dest, &ApplyOptions::default())
        .map_err(UnpackError::from_apply)?;
    // The tar ends before the stream does (zero blocks padding the last
    // record); the diff ID covers every byte.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::from_read)?;
    let diff_id = hashing.digester.finish();
    if let Some(expected) = expected_diff_id {
        if expected != diff_id {
            return Err(UnpackError::DiffIdMismatch {
                expected,
                actual: diff_id,
            });
        }
    }
    Ok((diff_id, stats))
}

/// Unpacks one layer and commits it as `chain_id` on `parent` (which must
/// be committed). Returns without reading `layer` if `chain_id` is already
/// committed.
pub fn unpack_layer<S: Snapshotter + ?Sized>(
    snapshotter: &S,
    chain_id: &str,
    parent: Option<&str>,
    layer: impl Read + Send,
    compression: Compression,
    expected_diff_id: Option<Digest>,
) -> Result<LayerOutcome, UnpackError> {
    if snapshotter.is_committed(chain_id) {
        return Ok(LayerOutcome::AlreadyPresent);
    }
    let unpacked = unpack_detached(snapshotter, layer, compression, expected_diff_id)?;
    match snapshotter.commit_with_parent(chain_id, &unpacked.key, parent) {
        Ok(()) => Ok(LayerOutcome::Unpacked {
            diff_id: unpacked.diff_id,
            stats: unpacked.stats,
        }),
        Err(e) => {
            let _ = snapshotter.remove(&unpacked.key);
            // Someone else committed the same layer meanwhile.
            if matches!(e, SnapshotError::AlreadyExists { .. })
                && snapshotter.is_committed(chain_id)
            {
                return Ok(LayerOutcome::AlreadyPresent);
            }
            Err(e.into())
        }
    }
}

/// Commits layers unpacked with [`unpack_detached`], in chain order: the
/// first on `base_parent` (the committed chain ID of the layers beneath,
/// `None` for a base layer), each next one on the one before.
///
/// Each chain ID is checked against the OCI rule (from the previous chain
/// ID and the layer's diff ID), so a layer list out of order is refused
/// before anything is committed. A chain ID that is already committed
/// (another pull of the same layers) is kept and the duplicate removed. On
/// error every snapshot not yet committed is removed; those committed
/// before stay, as complete verified stacks.
pub fn commit_chain<S: Snapshotter + ?Sized>(
    snapshotter: &S,
    chain: impl IntoIterator<Item = (Unpacked, String)>,
    base_parent: Option<&str>,
) -> Result<(), UnpackError> {
    let chain: Vec<(Unpacked, String)> = chain.into_iter().collect();
    let remove_all = |from: usize| {
        for (u, _) in &chain[from..] {
            let _ = snapshotter.remove(&u.key);
        }
    };
    if let Err(e) = check_chain(&chain, base_parent) {
        remove_all(0);
        return Err(e);
    }
    let mut parent = base_parent.map(str::to_owned);
    for (i, (unpacked, chain_id)) in chain.iter().enumerate() {
        if snapshotter.is_committed(chain_id) {
            let _ = snapshotter.remove(&unpacked.key);
        } else if let Err(e) =
            snapshotter.commit_with_parent(chain_id, &unpacked.key, parent.as_deref())
        {
            let raced = matches!(e, SnapshotError::AlreadyExists { .. })
                && snapshotter.is_committed(chain_id);
            if !raced {
                remove_all(i);
                return Err(e.into());
            }
            let _ = snapshotter.remove(&unpacked.key);
        }
        parent = Some(chain_id.clone());
    }
    Ok(())
}

fn check_chain(chain: &[(Unpacked, String)], base_parent: Option<&str>) -> Result<(), UnpackError> {
    let parse = |value: &str| {
        Digest::parse(value).map_err(|_| UnpackError::InvalidChainId {
            value: value.to_owned(),
        })
    };
    let mut parent = base_parent.map(parse).transpose()?;
    for (unpacked, chain_id) in chain {
        let given = parse(chain_id)?;
        let expected = match parent {
            None => unpacked.diff_id,
            Some(p) => chain_ids(&[p, unpacked.diff_id])[1],
        };
        if given != expected {
            return Err(UnpackError::ChainIdMismatch {
                given: chain_id.clone(),
                expected,
            });
        }
        parent = Some(given);
    }
    Ok(())
}
