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
//! a range request, or not at all when the ingest is whole), and removes
//! the `unpack-<pid>-*` snapshots of pulls whose process is gone.
//!
//! What a failed pull keeps: a partial ingest only when the network broke
//! off (or the pull's future was dropped), since it can be resumed; bytes
//! that failed their digest, did not decode or did not apply are discarded,
//! as a retry would replay them into the same failure. No snapshot of the
//! pull is kept, and its lease is deleted (also when the future is dropped).
//!
//! Memory stays bounded whatever the layer size: each layer has a bounded
//! channel of network chunks and fixed-size decode and copy buffers.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use berth_core::content::{ContentError, ContentStore, Writer};
use berth_core::image::{Image, Layer, Target};
use berth_core::metadata::MetadataStore;
use berth_core::registry::{Platform, RegistryClient, RegistryError};
use berth_core::{Digest, ErrorKind, Reference};

use crate::decompress::Compression;
use crate::snapshot::{Kind, Snapshotter};
use crate::unpack::{self, Unpacked};

/// Network chunks buffered per layer between the download and the
/// unpacker. Few: a chunk is a slice of hyper's read buffer (up to ~400
/// KiB) and pins all of it; 32 per layer cost ~35 MB of peak RSS on a
/// 4-layer pull (58 MB vs 23 MB) and bought no speed.
const CHUNKS_IN_FLIGHT: usize = 4;
/// How often, and how long at most, a small blob another pull is storing
/// is waited for.
const BUSY_POLL: Duration = Duration::from_millis(20);
const BUSY_WAIT: Duration = Duration::from_secs(60);
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

    let snaps = target.snapshots.clone();
    blocking(move || remove_abandoned_unpacks(&*snaps)).await;

    let md = target.metadata.clone();
    let lease = blocking(move || md.create_lease(PULL_LEASE))
        .await
        .map_err(|e| other(e.kind(), format!("creating a lease: {e}")))?;

    let mut cancelled = LeaseGuard {
        metadata: target.metadata.clone(),
        lease: Some(lease.clone()),
    };
    let result = pull_leased(client, target, reference, &resolved, &lease, progress).await;
    cancelled.lease = None;
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
    let mut waited = Duration::ZERO;
    while !target.content.exists(&config_digest) {
        match client
            .fetch_blob_into(&target.content, reference, &config_digest, config.size())
            .await
        {
            Ok(_) => break,
            // A concurrent pull is fetching it.
            Err(RegistryError::Content(ContentError::Busy(_))) if waited < BUSY_WAIT => {
                tokio::time::sleep(BUSY_POLL).await;
                waited += BUSY_POLL;
            }
            Err(e) => {
                return Err(PullError::Registry {
                    reference: name.clone(),
                    kind: e.kind(),
                    source: Box::new(e),
                });
            }
        }
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
    let mut uncommitted = Uncommitted::new(target.snapshots.clone());
    let mut tasks = Vec::new();
    for layer in &image.layers[present..] {
        lease_add(target, lease, layer.blob.digest).await?;
        tasks.push(fetch_and_unpack(
            client,
            target,
            reference,
            layer.clone(),
            &uncommitted.keys,
            progress,
        ));
    }
    let pacer = WritebackPacer::start(target.snapshots.clone());
    let results = futures_util::future::join_all(tasks).await;
    drop(pacer);
    // From here on the snapshots are removed or committed by blocking
    // tasks that run to the end even if this future is dropped.
    uncommitted.disarm();
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

/// Deletes the lease of a pull whose future was dropped before it ended
/// (its caller went away), as a failed pull does, instead of leaving the
/// content protected until the lease expires.
struct LeaseGuard {
    metadata: Arc<MetadataStore>,
    lease: Option<String>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let md = self.metadata.clone();
        let delete = move || {
            let _ = md.delete_lease(&lease);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(delete)),
            Err(_) => delete(),
        }
    }
}

/// The keys of the snapshots a pull has unpacked and not yet handed to
/// [`unpack::commit_chain`]; `None` once the pull was dropped.
type Pending = Arc<Mutex<Option<Vec<String>>>>;

/// Gives an unpacked layer to its pull, or removes its snapshot if the pull
/// was dropped while the layer was unpacked on its blocking thread.
fn hand_over<S: Snapshotter + ?Sized>(
    pending: &Pending,
    snapshots: &S,
    unpacked: Unpacked,
) -> Result<Unpacked, (ErrorKind, String)> {
    let mut keys = pending.lock().unwrap_or_else(|e| e.into_inner());
    match keys.as_mut() {
        Some(keys) => {
            keys.push(unpacked.key.clone());
            Ok(unpacked)
        }
        None => {
            drop(keys);
            let _ = snapshots.remove(&unpacked.key);
            Err((ErrorKind::Io, "pull cancelled".to_owned()))
        }
    }
}

/// Removes, when a pull is dropped mid-way, the snapshots its layers were
/// unpacked into (and makes layers still unpacking remove theirs).
struct Uncommitted<S: Snapshotter + Send + Sync + 'static> {
    keys: Pending,
    snapshots: Arc<S>,
    armed: bool,
}

impl<S: Snapshotter + Send + Sync + 'static> Uncommitted<S> {
    fn new(snapshots: Arc<S>) -> Self {
        Self {
            keys: Arc::new(Mutex::new(Some(Vec::new()))),
            snapshots,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl<S: Snapshotter + Send + Sync + 'static> std::fmt::Debug for Uncommitted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uncommitted")
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl<S: Snapshotter + Send + Sync + 'static> Drop for Uncommitted<S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        let snapshots = self.snapshots.clone();
        let remove = move || {
            for key in keys {
                let _ = snapshots.remove(&key);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// Downloads one layer into the content store and unpacks it into a new
/// parentless snapshot, in one pass.
async fn fetch_and_unpack<S>(
    client: &RegistryClient,
    target: &PullTarget<S>,
    reference: &Reference,
    layer: Layer,
    pending: &Pending,
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
        return unpack_stored(target, &layer, compression, pending, progress)
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
                    return unpack_stored(target, &layer, compression, pending, progress)
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
    let (tx, rx) = mpsc::channel::<Result<Bytes, Failure>>(CHUNKS_IN_FLIGHT);
    let complete = Arc::new(AtomicBool::new(false));
    let tee_complete = complete.clone();
    let snaps = target.snapshots.clone();
    let diff_id = layer.diff_id;
    let pending = pending.clone();
    let unpacker = tokio::task::spawn_blocking(move || {
        let mut tee = TeeReader {
            replay,
            rx,
            writer: Some(writer),
            chunk: Bytes::new(),
            network_error: None,
            complete: tee_complete,
        };
        let unpacked = unpack::unpack_detached(&*snaps, &mut tee, compression, Some(diff_id))
            .map_err(|e| (e.kind(), e.to_string()))
            .and_then(|u| {
                // The blob must be whole and match its digest before the
                // snapshot counts; bytes after the compressed stream's end
                // still count.
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
        if unpacked.is_err() {
            // Keep the partial blob only when the network broke off: a
            // retry resumes from it. Bytes that failed to decode, apply or
            // verify would fail the same way when replayed, forever.
            let resumable = tee
                .network_error
                .is_some_and(|kind| kind != ErrorKind::Integrity);
            if let Some(w) = tee.writer.take().filter(|_| !resumable) {
                let _ = w.abort();
            }
        }
        unpacked.and_then(|u| hand_over(&pending, &*snaps, u))
    });

    let download = async {
        if offset >= size {
            // A pull stopped between the last byte and the commit: the
            // ingest is whole (the commit checks it), nothing to fetch.
            complete.store(true, Ordering::Release);
            return Ok(());
        }
        let mut stream = match client.fetch_blob(reference, &digest, offset).await {
            Ok(stream) => stream,
            Err(e) => {
                // Tells the unpacker why its input ends, so that it keeps
                // the partial ingest for a retry.
                let _ = tx.send(Err(Failure::of(&e))).await;
                return Err(fail(e.kind(), e.to_string()));
            }
        };
        if let Some(served) = stream.size().filter(|served| *served != size) {
            let message = format!(
                "{} serves {served} bytes, the manifest says {size}",
                stream.url()
            );
            let _ = tx
                .send(Err(Failure {
                    kind: ErrorKind::Integrity,
                    message: message.clone(),
                }))
                .await;
            return Err(fail(ErrorKind::Integrity, message));
        }
        let mut current = offset;
        let mut last_report = 0;
        loop {
            let chunk = match stream.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    complete.store(true, Ordering::Release);
                    break;
                }
                Err(e) => {
                    // Sent on, so the unpacker stops too (and knows why).
                    let _ = tx.send(Err(Failure::of(&e))).await;
                    return Err(fail(e.kind(), e.to_string()));
                }
            };
            current += chunk.len() as u64;
            if current - last_report >= 512 << 10 || current == size {
                progress(Progress::Downloading {
                    layer: digest,
                    current,
                    total: size,
                });
                last_report = current;
            }
            if tx.send(Ok(chunk)).await.is_err() {
                // The unpacker stopped; its error is the one to report.
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
    pending: &Pending,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Unpacked, (ErrorKind, String)>
where
    S: Snapshotter + Send + Sync + 'static,
{
    let (content, snaps) = (target.content.clone(), target.snapshots.clone());
    let (digest, diff_id) = (layer.blob.digest, layer.diff_id);
    let pending = pending.clone();
    let u = blocking(move || {
        let file = content
            .reader(&digest)
            .map_err(|e| (e.kind(), e.to_string()))?;
        let u = unpack::unpack_detached(
            &*snaps,
            io::BufReader::new(file),
            compression,
            Some(diff_id),
        )
        .map_err(|e| (e.kind(), e.to_string()))?;
        hand_over(&pending, &*snaps, u)
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
    rx: mpsc::Receiver<Result<Bytes, Failure>>,
    writer: Option<Writer>,
    chunk: Bytes,
    /// The kind of the download's failure, once one arrived.
    network_error: Option<ErrorKind>,
    /// Set by the download when the blob's last byte is sent. The channel
    /// closing without it means the pull was dropped mid-download.
    complete: Arc<AtomicBool>,
}

/// A download failure handed to the unpacker.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    fn of(e: &RegistryError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
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
                None if self.complete.load(Ordering::Acquire) => return Ok(0),
                None => {
                    self.network_error = Some(ErrorKind::Io);
                    return Err(io::Error::other("the download stopped: pull cancelled"));
                }
                Some(Err(failure)) => {
                    self.network_error = Some(failure.kind);
                    return Err(io::Error::other(failure.message));
                }
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
        let mut waited = Duration::ZERO;
        let mut w = loop {
            if content.exists(&digest) {
                return Ok(());
            }
            match content.writer(
                &format!("blob-{digest}"),
                Some((digest, bytes.len() as u64)),
            ) {
                Ok(w) => break w,
                // A concurrent pull of the same image is storing it: wait
                // for its commit.
                Err(ContentError::Busy(_)) if waited < BUSY_WAIT => {
                    std::thread::sleep(BUSY_POLL);
                    waited += BUSY_POLL;
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        };
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

/// Removes the active snapshots that pulls of processes no longer running
/// were unpacking into (a pull killed before it could clean up). Their keys
/// are `unpack-<pid>-...` ([`unpack::unpack_detached`]); a live process's,
/// this one's included, are left alone. Best effort: a failure here only
/// leaves disk space used.
fn remove_abandoned_unpacks<S: Snapshotter + ?Sized>(snapshots: &S) {
    let Ok(infos) = snapshots.list() else {
        return;
    };
    let own = std::process::id();
    for info in infos {
        if info.kind == Kind::Committed {
            continue;
        }
        let pid = info
            .name
            .strip_prefix("unpack-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let abandoned = pid.is_some_and(|pid| {
            pid != own && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if abandoned {
            let _ = snapshots.remove(&info.name);
        }
    }
}

/// Runs blocking store work off the async threads. A panic in `f` is
/// carried on to the caller, as if `f` had run here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Writes the unpacked files back while layers are still being unpacked:
/// a thread that `syncfs`es the snapshotter's filesystem over and over
/// until dropped. Without it the kernel starts writing only when the final
/// `syncfs` asks (the dirty limits of a large machine are never reached
/// by one image), so the whole write-back would come after the unpack
/// instead of beside it.
struct WritebackPacer {
    stop: Arc<AtomicBool>,
}

impl WritebackPacer {
    fn start<S: Snapshotter + Send + Sync + 'static>(snapshots: Arc<S>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if snapshots.sync().is_err() {
                        break;
                    }
                }
            });
        drop(spawned);
        Self { stop }
    }
}

impl Drop for WritebackPacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
