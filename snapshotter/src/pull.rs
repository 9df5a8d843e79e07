//! Pull: an image from a registry into the content store and unpacked
//! snapshots, every layer at once, each as one stream:
//!
//! ```text
//! network ──► content store writer (hash + write) ──► decompress ──► tar apply
//!   (tokio task)        (one blocking thread per layer, in one pass)
//! ```
//!
//! No temporary tarball: the compressed bytes are written to the layer's
//! ingest and fed to the decompressor as they arrive. The blob's digest is
//! checked when the stream ends (the ingest commit); the diff ID when the
//! tar ends. A layer that fails either check, or any other step, has its
//! snapshot removed. Layers are unpacked into parentless snapshots in
//! parallel and committed in chain order once all are verified, so a chain
//! ID in the snapshotter always names a complete, verified stack.
//!
//! Durability: blobs are fsynced by their commit; the unpacked files by one
//! `syncfs` of the snapshotter's filesystem before the image record is
//! written. The record is the last step: an interrupted pull leaves at most
//! leased content and uncommitted snapshots, never an image that is not
//! all there. A later pull resumes partial ingests (the bytes already on
//! disk are replayed through the unpacker, then the download continues with
//! a range request).
//!
//! Memory stays bounded whatever the layer size: each layer has a bounded
//! channel of network chunks and fixed-size decode and copy buffers.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use berth_core::content::{ContentError, ContentStore, Writer};
use berth_core::image::{Image, Layer, Target};
use berth_core::metadata::MetadataStore;
use berth_core::registry::{Platform, RegistryClient};
use berth_core::{Digest, ErrorKind, Reference};

use crate::decompress::Compression;
use crate::snapshot::Snapshotter;
use crate::unpack::{self, Unpacked};

/// Network chunks buffered per layer between the download and the unpacker.
const CHUNKS_IN_FLIGHT: usize = 32;
/// How long the content of an unfinished pull is protected from gc.
const PULL_LEASE: Duration = Duration::from_secs(3600);

/// Why a pull failed. The message names the image, and the layer where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry refused or failed (not found, auth, network...).
    #[error("pulling {reference}: {source}")]
    Registry {
        /// What was pulled.
        reference: String,
        /// The registry client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// Its kind.
        kind: ErrorKind,
    },
    /// Storing content, unpacking or recording failed.
    #[error("pulling {reference}: layer {layer}: {message}")]
    Layer {
        /// What was pulled.
        reference: String,
        /// The layer's blob digest.
        layer: Digest,
        /// What went wrong.
        message: String,
        /// Its kind.
        kind: ErrorKind,
    },
    /// Any other step (manifest, config, metadata).
    #[error("pulling {reference}: {message}")]
    Other {
        /// What was pulled.
        reference: String,
        /// What went wrong.
        message: String,
        /// Its kind.
        kind: ErrorKind,
    },
}

impl PullError {
    /// The kind of failure, for the API's status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PullError::Registry { kind, .. }
            | PullError::Layer { kind, .. }
            | PullError::Other { kind, .. } => *kind,
        }
    }
}

/// What a pull reports as it goes (for `docker pull`'s progress lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest was resolved; these layers follow.
    Resolved {
        /// The manifest digest.
        digest: Digest,
        /// The layers (blob digest, compressed size).
        layers: Vec<(Digest, u64)>,
    },
    /// The layer's snapshot and blob are already here.
    AlreadyExists(Digest),
    /// Bytes of a layer received so far (including resumed bytes).
    Downloading {
        /// The layer blob.
        layer: Digest,
        /// Bytes so far.
        current: u64,
        /// Blob size.
        total: u64,
    },
    /// The layer is downloaded, verified and unpacked.
    PullComplete(Digest),
    /// The image record is written.
    Done {
        /// The manifest digest.
        digest: Digest,
    },
}

/// Everything a pull writes to.
#[derive(Debug, Clone)]
pub struct PullTarget<S> {
    /// Blobs.
    pub content: Arc<ContentStore>,
    /// Image records and leases.
    pub metadata: Arc<MetadataStore>,
    /// Unpacked layers.
    pub snapshots: Arc<S>,
}

/// Pulls `reference` for `platform` and returns the recorded image.
pub async fn pull<S>(
    client: &RegistryClient,
    target: &PullTarget<S>,
    reference: &Reference,
    platform: &Platform,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Image, PullError>
where
    S: Snapshotter + Send + Sync + 'static,
{
    let name = reference.to_string();
    let other = |kind: ErrorKind, message: String| PullError::Other {
        reference: name.clone(),
        message,
        kind,
    };
    let resolved = client
        .resolve(reference, platform)
        .await
        .map_err(|e| PullError::Registry {
            reference: name.clone(),
            kind: e.kind(),
            source: Box::new(e),
        })?;

    let md = target.metadata.clone();
    let lease = blocking(move || md.create_lease(PULL_LEASE))
        .await
        .map_err(|e| other(e.kind(), format!("creating a lease: {e}")))?;

    let result = pull_leased(client, target, reference, &resolved, &lease, progress).await;
    if result.is_err() {
        // The content stays in the store (a retry resumes from it) but is
        // no longer protected: gc may reclaim it.
        let md = target.metadata.clone();
        let _ = blocking(move || md.delete_lease(&lease)).await;
    }
    result
}

async fn pull_leased<S>(
    client: &RegistryClient,
    target: &PullTarget<S>,
    reference: &Reference,
    resolved: &berth_core::registry::ResolvedManifest,
    lease: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Image, PullError>
where
    S: Snapshotter + Send + Sync + 'static,
{
    let name = reference.to_string();
    let other = |kind: ErrorKind, message: String| PullError::Other {
        reference: name.clone(),
        message,
        kind,
    };

    // The manifest bytes are already verified by the client.
    store_bytes(target, lease, &resolved.digest, &resolved.raw)
        .await
        .map_err(|e| {
            other(
                ErrorKind::Io,
                format!("storing manifest {}: {e}", resolved.digest),
            )
        })?;
    if let Some((index_digest, _, index_bytes)) = &resolved.index {
        store_bytes(target, lease, index_digest, index_bytes)
            .await
            .map_err(|e| other(ErrorKind::Io, format!("storing index {index_digest}: {e}")))?;
    }

    // The config is small: fetch it whole, then build the record from the
    // stored manifest and config, which gives every layer's chain ID.
    let config = &resolved.manifest.config();
    let config_digest = Digest::parse(config.digest().as_ref())
        .map_err(|e| other(ErrorKind::InvalidArgument, format!("config digest: {e}")))?;
    lease_add(target, lease, config_digest).await?;
    if !target.content.exists(&config_digest) {
        client
            .fetch_blob_into(&target.content, reference, &config_digest, config.size())
            .await
            .map_err(|e| PullError::Registry {
                reference: name.clone(),
                kind: e.kind(),
                source: Box::new(e),
            })?;
    }
    let content = target.content.clone();
    let manifest_target = Target {
        digest: resolved.digest,
        media_type: resolved.media_type.clone(),
        size: resolved.raw.len() as u64,
    };
    let index = resolved.index.as_ref().map(|(d, _, _)| *d);
    let image = blocking(move || Image::from_content(&content, manifest_target, index))
        .await
        .map_err(|e| other(e.kind(), e.to_string()))?;
    progress(Progress::Resolved {
        digest: image.target.digest,
        layers: image
            .layers
            .iter()
            .map(|l| (l.blob.digest, l.blob.size))
            .collect(),
    });

    // Layers already unpacked form a prefix of the chain (a chain ID
    // includes its parents).
    let mut present = 0;
    for layer in &image.layers {
        if target.snapshots.is_committed(&layer.chain_id.to_string())
            && target.content.exists(&layer.blob.digest)
        {
            progress(Progress::AlreadyExists(layer.blob.digest));
            present += 1;
        } else {
            break;
        }
    }

    // Every missing layer at once.
    let mut tasks = Vec::new();
    for layer in &image.layers[present..] {
        lease_add(target, lease, layer.blob.digest).await?;
        tasks.push(fetch_and_unpack(
            client,
            target,
            reference,
            layer.clone(),
            progress,
        ));
    }
    let results = futures_util::future::join_all(tasks).await;
    let mut unpacked = Vec::new();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(u) => unpacked.push(u),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        let snaps = target.snapshots.clone();
        let _ = blocking(move || {
            for u in unpacked {
                let _ = snaps.remove(&u.key);
            }
            Ok::<_, io::Error>(())
        })
        .await;
        return Err(e);
    }

    // Commit the chain in order, make the files durable, then record.
    let snaps = target.snapshots.clone();
    let chain: Vec<(Unpacked, String)> = unpacked
        .into_iter()
        .zip(&image.layers[present..])
        .map(|(u, l)| (u, l.chain_id.to_string()))
        .collect();
    let base = present
        .checked_sub(1)
        .map(|i| image.layers[i].chain_id.to_string());
    blocking(move || unpack::commit_chain(&*snaps, chain, base.as_deref()))
        .await
        .map_err(|e| other(e.kind(), format!("committing snapshots: {e}")))?;
    let snaps = target.snapshots.clone();
    blocking(move || snaps.sync())
        .await
        .map_err(|e| other(ErrorKind::Io, format!("syncing snapshots: {e}")))?;
    let md = target.metadata.clone();
    let (record, lease) = (image.clone(), lease.to_string());
    let references = vec![reference.clone()];
    blocking(move || md.put_image(&record, &references, Some(&lease)))
        .await
        .map_err(|e| other(e.kind(), format!("recording the image: {e}")))?;
    progress(Progress::Done {
        digest: image.target.digest,
    });
    Ok(image)
}

/// Downloads one layer into the content store and unpacks it into a new
/// parentless snapshot, in one pass.
async fn fetch_and_unpack<S>(
    client: &RegistryClient,
    target: &PullTarget<S>,
    reference: &Reference,
    layer: Layer,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Unpacked, PullError>
where
    S: Snapshotter + Send + Sync + 'static,
{
    let digest = layer.blob.digest;
    let size = layer.blob.size;
    let fail = |kind: ErrorKind, message: String| PullError::Layer {
        reference: reference.to_string(),
        layer: digest,
        message,
        kind,
    };
    let compression = Compression::from_media_type(&layer.blob.media_type).ok_or_else(|| {
        fail(
            ErrorKind::InvalidArgument,
            format!("unsupported layer media type {:?}", layer.blob.media_type),
        )
    })?;

    // A blob already stored (e.g. loaded, or a snapshot removed since) is
    // unpacked from the store.
    if target.content.exists(&digest) {
        return unpack_stored(target, &layer, compression, progress)
            .await
            .map_err(|(kind, message)| fail(kind, message));
    }

    // The ingest is shared with `RegistryClient::fetch_blob_into`, so a
    // download interrupted in either resumes in both. Another pull holding
    // it is waited for: its blob is then unpacked from the store.
    let writer = loop {
        let content = target.content.clone();
        let ingest = RegistryClient::ingest_ref(&digest);
        match blocking(move || content.writer(&ingest, Some((digest, size)))).await {
            Ok(w) => break w,
            Err(ContentError::Busy(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if target.content.exists(&digest) {
                    return unpack_stored(target, &layer, compression, progress)
                        .await
                        .map_err(|(kind, message)| fail(kind, message));
                }
            }
            Err(e) => return Err(fail(e.kind(), e.to_string())),
        }
    };
    let offset = writer.offset();
    let replay = if offset > 0 {
        Some(
            writer
                .partial_reader()
                .map_err(|e| fail(e.kind(), e.to_string()))?,
        )
    } else {
        None
    };
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let snaps = target.snapshots.clone();
    let diff_id = layer.diff_id;
    let unpacker = tokio::task::spawn_blocking(move || {
        let mut tee = TeeReader {
            replay,
            rx,
            writer: Some(writer),
            chunk: Bytes::new(),
        };
        let u = unpack::unpack_detached(&*snaps, &mut tee, compression, Some(diff_id))
            .map_err(|e| (e.kind(), e.to_string()))?;
        // The blob must be whole and match its digest before the snapshot
        // counts; bytes after the compressed stream's end still count.
        let committed = io::copy(&mut tee, &mut io::sink())
            .map_err(|e| (ErrorKind::Io, e.to_string()))
            .and_then(|_| {
                let w = tee.writer.take().expect("writer taken once");
                w.commit().map_err(|e| (e.kind(), e.to_string()))
            });
        match committed {
            Ok(_) => Ok(u),
            Err(e) => {
                let _ = snaps.remove(&u.key);
                Err(e)
            }
        }
    });

    let download = async {
        let mut stream = client
            .fetch_blob(reference, &digest, offset)
            .await
            .map_err(|e| fail(e.kind(), e.to_string()))?;
        let mut current = offset;
        let mut last_report = 0;
        while let Some(chunk) = stream.chunk().await.transpose() {
            let chunk = chunk.map_err(|e| io::Error::other(e.to_string()));
            if let Ok(c) = &chunk {
                current += c.len() as u64;
                if current - last_report >= 512 << 10 || current == size {
                    progress(Progress::Downloading {
                        layer: digest,
                        current,
                        total: size,
                    });
                    last_report = current;
                }
            }
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                // The unpacker stopped (its error is the one to report) or
                // the network failed (sent on, so the unpacker stops too).
                break;
            }
        }
        drop(tx);
        Ok::<_, PullError>(())
    };
    let downloaded = download.await;
    let unpacked = unpacker
        .await
        .map_err(|e| fail(ErrorKind::Io, format!("unpacker panicked: {e}")))?;
    match (downloaded, unpacked) {
        (_, Ok(u)) => {
            progress(Progress::PullComplete(digest));
            Ok(u)
        }
        (Err(e), Err(_)) => Err(e),
        (Ok(()), Err((kind, message))) => Err(fail(kind, message)),
    }
}

/// Unpacks a layer whose blob is already in the content store.
async fn unpack_stored<S>(
    target: &PullTarget<S>,
    layer: &Layer,
    compression: Compression,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Unpacked, (ErrorKind, String)>
where
    S: Snapshotter + Send + Sync + 'static,
{
    let (content, snaps) = (target.content.clone(), target.snapshots.clone());
    let (digest, diff_id) = (layer.blob.digest, layer.diff_id);
    let u = blocking(move || {
        let file = content
            .reader(&digest)
            .map_err(|e| (e.kind(), e.to_string()))?;
        unpack::unpack_detached(
            &*snaps,
            io::BufReader::new(file),
            compression,
            Some(diff_id),
        )
        .map_err(|e| (e.kind(), e.to_string()))
    })
    .await?;
    progress(Progress::PullComplete(digest));
    Ok(u)
}

/// The unpacker's input: first the bytes a previous attempt left in the
/// ingest (already stored), then network chunks, each written to the
/// ingest (which hashes it) before it is handed on.
struct TeeReader {
    replay: Option<io::Take<std::fs::File>>,
    rx: mpsc::Receiver<io::Result<Bytes>>,
    writer: Option<Writer>,
    chunk: Bytes,
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(replay) = &mut self.replay {
            let n = replay.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.replay = None;
        }
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(chunk)) => {
                    if let Some(w) = &mut self.writer {
                        io::Write::write_all(w, &chunk)?;
                    }
                    self.chunk = chunk;
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Stores a small verified blob (manifest, index) under the lease.
async fn store_bytes<S>(
    target: &PullTarget<S>,
    lease: &str,
    digest: &Digest,
    bytes: &Bytes,
) -> io::Result<()> {
    let (md, content) = (target.metadata.clone(), target.content.clone());
    let (digest, bytes, lease) = (*digest, bytes.clone(), lease.to_string());
    blocking(move || {
        md.lease_add(&lease, &[digest]).map_err(io::Error::other)?;
        if content.exists(&digest) {
            return Ok(());
        }
        let mut w = content
            .writer(
                &format!("blob-{digest}"),
                Some((digest, bytes.len() as u64)),
            )
            .map_err(io::Error::other)?;
        if w.offset() > 0 {
            w.abort().map_err(io::Error::other)?;
            w = content
                .writer(
                    &format!("blob-{digest}"),
                    Some((digest, bytes.len() as u64)),
                )
                .map_err(io::Error::other)?;
        }
        io::Write::write_all(&mut w, &bytes)?;
        w.commit().map_err(io::Error::other)?;
        Ok(())
    })
    .await
}

async fn lease_add<S>(
    target: &PullTarget<S>,
    lease: &str,
    digest: Digest,
) -> Result<(), PullError> {
    let md = target.metadata.clone();
    let lease = lease.to_string();
    blocking(move || md.lease_add(&lease, &[digest]))
        .await
        .map_err(|e| PullError::Other {
            reference: String::new(),
            message: format!("leasing {digest}: {e}"),
            kind: e.kind(),
        })
}

/// Runs blocking store work off the async threads. A panic in `f` is
/// carried on to the caller, as if `f` had run here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
