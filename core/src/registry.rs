//! The OCI distribution (Docker registry v2) client: resolve a reference to
//! one platform's manifest, stream blobs, and push images.
//!
//! ```text
//! RegistryClient ── request(): cached Authorization, 401 -> challenge -> retry once
//!     │                 auth.rs: Basic, Bearer token fetch + cache per host+scope
//!     └── Transport ── transport.rs: hyper client, HTTPS or plain HTTP, retries
//! resolve()         manifest.rs: media types, index -> platform selection
//! fetch_blob()      BlobStream: chunks as they arrive, Range resume, digest check
//! push_image()      push.rs: HEAD / mount / upload blobs, then PUT manifest
//! ```
//!
//! Every byte that comes from a registry is checked before anyone trusts
//! it: manifests against the digest the reference, the index entry or the
//! `Docker-Content-Digest` header names, blobs against their digest (by
//! [`BlobStream`] when read from the start, by [`ContentStore`]'s commit
//! always).
//!
//! Registries on loopback, and those configured as insecure, are spoken to
//! over plain HTTP, as Docker does; every other one over HTTPS with the
//! system's roots.

mod auth;
mod manifest;
mod push;
mod transport;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue,
    LOCATION, RANGE, WWW_AUTHENTICATE,
};
use http::{Method, Response, StatusCode};
use hyper::body::{Body as _, Incoming};
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::content::{ContentError, ContentStore};
use crate::digest::{Digest, Digester};
use crate::error::ErrorKind;
use crate::reference::Reference;

pub use auth::{Challenge, Credentials, load_docker_config, parse_challenges};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, Platform, ResolvedManifest,
};
pub use transport::RetryPolicy;

use auth::AuthCache;
use manifest::Kind;
use transport::{Body, Transport, error_excerpt, read_body, resolve_location};

/// Manifests and indexes larger than this are refused (Docker's limit).
const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;
/// Redirects followed for one blob request.
const MAX_REDIRECTS: usize = 5;

/// Why a registry operation failed. Every variant names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The system's TLS root certificates could not be loaded.
    #[error("loading the system's TLS root certificates: {0}")]
    TlsRoots(#[source] io::Error),
    /// A URL could not be built or parsed.
    #[error("invalid registry URL {url:?}")]
    InvalidUrl {
        /// The URL.
        url: String,
    },
    /// The request could not be sent or no response arrived.
    #[error("{method} {url} failed after {attempts} attempt(s): {source}")]
    Transport {
        /// The request method.
        method: Method,
        /// The URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The connection or protocol error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response body could not be read (or was too large).
    #[error("reading the response of {url}: {source}")]
    Body {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The registry answered with a status this operation cannot use.
    #[error("{method} {url}: unexpected status {status}: {body}")]
    Status {
        /// The request method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// Authentication failed or was refused.
    #[error("unauthorized at {host}: {detail}")]
    Unauthorized {
        /// The registry host.
        host: String,
        /// What was refused and why.
        detail: String,
    },
    /// The token server's answer was unusable.
    #[error("token server {realm}: {detail}")]
    Token {
        /// The token server URL.
        realm: String,
        /// What was wrong.
        detail: String,
    },
    /// The reference names no manifest in the registry.
    #[error("manifest for {reference} not found")]
    ManifestNotFound {
        /// The reference as written.
        reference: String,
    },
    /// The registry has no blob with this digest in this repository.
    #[error("blob {digest} not found in {repository}")]
    BlobNotFound {
        /// `domain/repository`.
        repository: String,
        /// The blob.
        digest: Digest,
    },
    /// The manifest is not a JSON document.
    #[error("manifest for {reference} (served as {media_type:?}) is not JSON: {source}")]
    ManifestNotJson {
        /// The reference.
        reference: String,
        /// The media type the registry served it as.
        media_type: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest is JSON but not a valid manifest or index.
    #[error("manifest {digest} for {reference} is invalid: {source}")]
    ManifestInvalid {
        /// The reference.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest has a media type Berth cannot pull.
    #[error("manifest for {reference} has unsupported media type {media_type:?}")]
    UnknownMediaType {
        /// The reference.
        reference: String,
        /// The media type, as served or declared (empty if neither).
        media_type: String,
    },
    /// The index has no manifest for the requested platform.
    #[error("no manifest for platform {wanted} in {reference} (available: {})", available.join(", "))]
    PlatformNotFound {
        /// The reference.
        reference: String,
        /// The platform asked for.
        wanted: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// Content did not hash to the digest it was fetched by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched (`manifest for ...`, `blob ... from ...`).
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// A blob had another size than expected.
    #[error("blob {digest} from {url}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Where it came from.
        url: String,
        /// The size the manifest (or Content-Length) promised.
        expected: u64,
        /// The size served.
        actual: u64,
    },
    /// A blob download broke off.
    #[error("download of blob {digest} from {url} interrupted after byte {received}: {source}")]
    Interrupted {
        /// The blob.
        digest: Digest,
        /// Where it came from.
        url: String,
        /// Blob offset reached (resume from here).
        received: u64,
        /// The connection error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A ranged response did not start where it was asked to.
    #[error("blob {digest} from {url}: asked for bytes from {asked}, got {content_range:?}")]
    BadRange {
        /// The blob.
        digest: Digest,
        /// Where it came from.
        url: String,
        /// The offset asked for.
        asked: u64,
        /// The `Content-Range` received.
        content_range: String,
    },
    /// The response lacks a header the protocol requires.
    #[error("{method} {url}: response has no {header} header")]
    MissingHeader {
        /// The request method.
        method: Method,
        /// The URL.
        url: String,
        /// The header.
        header: &'static str,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A local file (being pushed or written) failed.
    #[error("{op} blob {digest}: {source}")]
    LocalIo {
        /// What was being done.
        op: &'static str,
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A manifest in the local store could not be used for a push.
    #[error("pushing {digest}: {detail}")]
    Push {
        /// The manifest or blob.
        digest: Digest,
        /// What was wrong.
        detail: String,
    },
}

impl RegistryError {
    /// The error's kind, for mapping to API statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ManifestNotFound { .. }
            | Self::BlobNotFound { .. }
            | Self::PlatformNotFound { .. } => ErrorKind::NotFound,
            // ErrorKind has no "unauthorized"; bad or missing credentials are
            // the caller's input.
            Self::Unauthorized { .. }
            | Self::InvalidUrl { .. }
            | Self::ManifestNotJson { .. }
            | Self::ManifestInvalid { .. }
            | Self::UnknownMediaType { .. }
            | Self::Push { .. } => ErrorKind::InvalidArgument,
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } => ErrorKind::Integrity,
            Self::Content(e) => e.kind(),
            Self::TlsRoots(_)
            | Self::Transport { .. }
            | Self::Body { .. }
            | Self::Status { .. }
            | Self::Token { .. }
            | Self::Interrupted { .. }
            | Self::BadRange { .. }
            | Self::MissingHeader { .. }
            | Self::LocalIo { .. } => ErrorKind::Io,
        }
    }
}

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// How a [`RegistryClient`] talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registry hosts (`host[:port]`, as in references) spoken to over plain
    /// HTTP. Loopback registries always are.
    pub insecure_registries: HashSet<String>,
    /// Credentials per registry host (`docker.io`, `host:port`).
    pub credentials: HashMap<String, Credentials>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Retries for connection errors, 5xx and 429.
    pub retry: RetryPolicy,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            insecure_registries: HashSet::new(),
            credentials: HashMap::new(),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A registry client. Cloning is cheap and clones share the connection
/// pool and the token cache.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RegistryConfig,
    transport: Transport,
    auth: AuthCache,
}

/// The access a request needs, for the token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

impl RegistryClient {
    /// A client with this configuration.
    pub fn new(config: RegistryConfig) -> Result<Self> {
        let transport = Transport::new(&config.user_agent, config.retry)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                transport,
                auth: AuthCache::default(),
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// `scheme://host/v2/<repository>` for the reference's registry.
    fn repo_url(&self, reference: &Reference) -> String {
        let domain = reference.domain();
        let insecure = reference.is_insecure_by_default()
            || self.inner.config.insecure_registries.contains(domain);
        let scheme = if insecure { "http" } else { "https" };
        // Docker Hub's API lives on another host than its name.
        let host = if domain == "docker.io" {
            "registry-1.docker.io"
        } else {
            domain
        };
        format!("{scheme}://{host}/v2/{}", reference.repository())
    }

    fn scope(reference: &Reference, access: Access) -> String {
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        format!("repository:{}:{actions}", reference.repository())
    }

    /// Sends a request to the reference's registry with the cached
    /// credentials for `scopes`; on 401 answers the challenge and retries
    /// once.
    async fn request(
        &self,
        reference: &Reference,
        scopes: &[String],
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>> {
        let host = reference.domain();
        let scope_key = scopes.join(" ");
        let transport = &self.inner.transport;
        if let Some(value) = self.inner.auth.get(host, &scope_key) {
            headers.insert(AUTHORIZATION, value);
        }
        let response = transport.send(&method, url, &headers, &body).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        drop(response);
        let value = auth::answer_challenge(
            transport,
            &self.inner.auth,
            host,
            scopes,
            challenge.as_deref(),
            self.inner.config.credentials.get(host),
        )
        .await?;
        headers.insert(AUTHORIZATION, value);
        let response = transport.send(&method, url, &headers, &body).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let detail = match self.inner.config.credentials.get(host) {
                Some(c) => format!("{method} {url} refused the credentials of {:?}", c.username),
                None => format!("{method} {url} refused anonymous access"),
            };
            return Err(RegistryError::Unauthorized {
                host: host.to_owned(),
                detail,
            });
        }
        Ok(response)
    }

    /// Resolves `reference` to the manifest for `platform`: fetches the
    /// manifest or index it names, picks the platform from an index, and
    /// verifies every document against its digest.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedManifest> {
        let key = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let top = self
            .fetch_manifest(reference, &key, reference.digest().copied())
            .await?;
        let (document, index) = match top.kind {
            Kind::Manifest => (top, None),
            Kind::Index => {
                let parsed: ImageIndex = serde_json::from_slice(&top.raw).map_err(|source| {
                    RegistryError::ManifestInvalid {
                        reference: reference.to_string(),
                        digest: top.digest,
                        source,
                    }
                })?;
                let (digest, _) =
                    manifest::select_platform(&parsed, platform).map_err(|available| {
                        RegistryError::PlatformNotFound {
                            reference: reference.to_string(),
                            wanted: platform.to_string(),
                            available,
                        }
                    })?;
                let chosen = self
                    .fetch_manifest(reference, &digest.to_string(), Some(digest))
                    .await?;
                if chosen.kind != Kind::Manifest {
                    return Err(RegistryError::UnknownMediaType {
                        reference: format!("{reference} (entry {digest} of its index)"),
                        media_type: chosen.media_type,
                    });
                }
                (chosen, Some((top.digest, top.media_type, top.raw)))
            }
        };
        let manifest: ImageManifest = serde_json::from_slice(&document.raw).map_err(|source| {
            RegistryError::ManifestInvalid {
                reference: reference.to_string(),
                digest: document.digest,
                source,
            }
        })?;
        Ok(ResolvedManifest {
            digest: document.digest,
            media_type: document.media_type,
            raw: document.raw,
            manifest,
            index,
        })
    }

    /// GETs one manifest or index by tag or digest and verifies it.
    async fn fetch_manifest(
        &self,
        reference: &Reference,
        key: &str,
        expected: Option<Digest>,
    ) -> Result<FetchedManifest> {
        let url = format!("{}/manifests/{key}", self.repo_url(reference));
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(manifest::MANIFEST_ACCEPT));
        let scopes = [Self::scope(reference, Access::Pull)];
        let response = self
            .request(reference, &scopes, Method::GET, &url, headers, Body::Empty)
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::ManifestNotFound {
                    reference: reference.to_string(),
                });
            }
            status => {
                return Err(RegistryError::Status {
                    method: Method::GET,
                    body: error_excerpt(response, &url).await,
                    url,
                    status,
                });
            }
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE.as_str())
            .map(|ct| ct.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let served_digest = header("docker-content-digest");
        let raw = read_body(response, &url, MANIFEST_LIMIT).await?;
        let digest = Digest::of(&raw);
        // By digest the reference is the authority; by tag the registry's
        // own claim is all there is to check.
        let claimed = match expected {
            Some(d) => Some(d),
            None => served_digest.as_deref().and_then(|d| Digest::parse(d).ok()),
        };
        if let Some(claimed) = claimed {
            if claimed != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest for {reference}"),
                    expected: claimed,
                    actual: digest,
                });
            }
        }
        let json: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|source| RegistryError::ManifestNotJson {
                reference: reference.to_string(),
                media_type: content_type.clone(),
                source,
            })?;
        let declared = manifest::declared_media_type(&json);
        let media_type = if manifest::kind_of(&content_type).is_some() {
            content_type
        } else if let Some(declared) = declared {
            declared.to_owned()
        } else if content_type.is_empty() || content_type == "application/json" {
            // OCI documents may omit mediaType; tell them apart by shape.
            if json.get("manifests").is_some() {
                OCI_INDEX.to_owned()
            } else if json.get("config").is_some() && json.get("layers").is_some() {
                OCI_MANIFEST.to_owned()
            } else {
                content_type
            }
        } else {
            content_type
        };
        let kind =
            manifest::kind_of(&media_type).ok_or_else(|| RegistryError::UnknownMediaType {
                reference: reference.to_string(),
                media_type: media_type.clone(),
            })?;
        Ok(FetchedManifest {
            raw,
            media_type,
            digest,
            kind,
        })
    }

    /// Checks that the configured credentials for registry `host`
    /// (`host[:port]`, `docker.io`) are accepted (`docker login`): a GET of
    /// `/v2/` that answers the registry's challenge like any request.
    /// Returns the URL checked.
    pub async fn check_login(&self, host: &str) -> Result<String> {
        let probe = Reference::parse(&format!("{host}/berth-login-check")).map_err(|_| {
            RegistryError::InvalidUrl {
                url: host.to_owned(),
            }
        })?;
        let repo_url = self.repo_url(&probe);
        let url = repo_url
            .strip_suffix(probe.repository())
            .unwrap_or(&repo_url)
            .to_owned();
        let response = self
            .request(
                &probe,
                &[],
                Method::GET,
                &url,
                HeaderMap::new(),
                Body::Empty,
            )
            .await?;
        match response.status() {
            s if s.is_success() => Ok(url),
            status => Err(RegistryError::Status {
                method: Method::GET,
                body: error_excerpt(response, &url).await,
                url,
                status,
            }),
        }
    }

    /// Starts downloading blob `digest` of `repository`'s repository from
    /// byte `offset`. The returned stream yields the bytes as they arrive.
    pub async fn fetch_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream> {
        let mut url = format!("{}/blobs/{digest}", self.repo_url(repository));
        let mut headers = HeaderMap::new();
        if offset > 0 {
            let range = HeaderValue::from_str(&format!("bytes={offset}-"))
                .expect("a number is a valid header value");
            headers.insert(RANGE, range);
        }
        let scopes = [Self::scope(repository, Access::Pull)];
        let mut response = self
            .request(
                repository,
                &scopes,
                Method::GET,
                &url,
                headers.clone(),
                Body::Empty,
            )
            .await?;
        // Registries redirect blob downloads to their storage, which must not
        // see the registry's credentials.
        for _ in 0..MAX_REDIRECTS {
            if !response.status().is_redirection() {
                break;
            }
            let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(RegistryError::MissingHeader {
                    method: Method::GET,
                    url,
                    header: "Location",
                });
            };
            url = resolve_location(&url, location);
            headers.remove(AUTHORIZATION);
            response = self
                .inner
                .transport
                .send(&Method::GET, &url, &headers, &Body::Empty)
                .await?;
        }
        let status = response.status();
        let content_length = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (skip, size) = match status {
            StatusCode::OK => (offset, content_length),
            StatusCode::PARTIAL_CONTENT => {
                let content_range = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                match parse_content_range(&content_range) {
                    Some((start, total)) if start == offset => {
                        (0, total.or(content_length.map(|l| l + offset)))
                    }
                    _ => {
                        return Err(RegistryError::BadRange {
                            digest: *digest,
                            url,
                            asked: offset,
                            content_range,
                        });
                    }
                }
            }
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::BlobNotFound {
                    repository: repository.name(),
                    digest: *digest,
                });
            }
            status => {
                return Err(RegistryError::Status {
                    method: Method::GET,
                    body: error_excerpt(response, &url).await,
                    url,
                    status,
                });
            }
        };
        Ok(BlobStream {
            body: response.into_body(),
            digest: *digest,
            url,
            skip,
            position: offset,
            size,
            hasher: (offset == 0).then(Digester::new),
            done: false,
        })
    }

    /// Downloads blob `digest` (of `size` bytes) into `store`, resuming a
    /// partial ingest left by an earlier interrupted call. The store's
    /// commit checks size and digest; nothing unverified becomes visible.
    /// Callers protecting the blob from gc add it to their lease first.
    pub async fn fetch_blob_into(
        &self,
        store: &ContentStore,
        repository: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<Digest> {
        if store.exists(digest) {
            return Ok(*digest);
        }
        let ref_name = Self::ingest_ref(digest);
        let digest = *digest;
        let writer = {
            let store = store.clone();
            let ref_name = ref_name.clone();
            // Opening resumes and re-hashes the partial data: file I/O.
            spawn_blocking(digest, move || {
                store.writer(&ref_name, Some((digest, size)))
            })
            .await?
        };
        let offset = writer.offset();
        let writer = if offset < size {
            let mut stream = self.fetch_blob(repository, &digest, offset).await?;
            if let Some(served) = stream.size() {
                if served != size {
                    let url = stream.url.clone();
                    drop(writer);
                    return Err(RegistryError::SizeMismatch {
                        digest,
                        url,
                        expected: size,
                        actual: served,
                    });
                }
            }
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
            let write_task = tokio::task::spawn_blocking(move || {
                let mut writer = writer;
                while let Some(chunk) = rx.blocking_recv() {
                    if let Err(source) = writer.write_all(&chunk) {
                        return (writer, Err(source));
                    }
                }
                (writer, Ok(()))
            });
            let mut failure = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        if tx.send(chunk).await.is_err() {
                            break; // the writer failed; its error is below
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            drop(tx);
            let (writer, written) = write_task.await.map_err(|e| join_error(e, digest))?;
            if let Some(e) = failure {
                if e.kind() == ErrorKind::Integrity {
                    // Bad bytes must not be resumed from.
                    spawn_blocking(digest, move || writer.abort()).await?;
                }
                return Err(e);
            }
            if let Err(source) = written {
                return Err(RegistryError::LocalIo {
                    op: "writing",
                    digest,
                    source,
                });
            }
            writer
        } else {
            writer
        };
        spawn_blocking(digest, move || writer.commit()).await
    }

    /// The content store ingest ref [`fetch_blob_into`](Self::fetch_blob_into)
    /// uses for `digest`: a download interrupted in any process resumes
    /// from it.
    pub fn ingest_ref(digest: &Digest) -> String {
        format!("fetch-{digest}")
    }
}

/// Runs content store file I/O off the async threads.
async fn spawn_blocking<T: Send + 'static>(
    digest: Digest,
    f: impl FnOnce() -> Result<T, ContentError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| join_error(e, digest))?
        .map_err(RegistryError::from)
}

/// A blocking task only fails to join by panicking (passed on) or by
/// being cancelled at runtime shutdown.
fn join_error(e: tokio::task::JoinError, digest: Digest) -> RegistryError {
    if let Ok(panic) = e.try_into_panic() {
        std::panic::resume_unwind(panic);
    }
    RegistryError::LocalIo {
        op: "storing",
        digest,
        source: io::Error::other("the runtime is shutting down"),
    }
}

/// `bytes <start>-<end>/<total|*>` -> (start, total).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

#[derive(Debug)]
struct FetchedManifest {
    raw: Bytes,
    media_type: String,
    digest: Digest,
    kind: Kind,
}

/// A blob download in progress: a [`Stream`] of chunks as they arrive from
/// the network, never buffered whole. Read from offset 0, the stream
/// checks size and digest at the end and yields an error instead of ending
/// cleanly if either is wrong; read from a later offset, only the store's
/// commit can check.
pub struct BlobStream {
    body: Incoming,
    digest: Digest,
    url: String,
    /// Bytes still to drop: the server ignored our Range header.
    skip: u64,
    /// The blob offset of the next byte yielded.
    position: u64,
    size: Option<u64>,
    hasher: Option<Digester>,
    done: bool,
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("digest", &self.digest)
            .field("url", &self.url)
            .field("position", &self.position)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl BlobStream {
    /// The blob's total size, when the registry sent it (registries do).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The blob offset of the next chunk: the start offset plus everything
    /// yielded so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The blob being downloaded.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The URL the bytes come from (after redirects).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next chunk, `None` at the (verified) end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.next().await.transpose()
    }

    fn finish(&mut self) -> Option<Result<Bytes>> {
        self.done = true;
        let actual = self.position;
        if let Some(expected) = self.size {
            if expected != actual {
                return Some(Err(RegistryError::SizeMismatch {
                    digest: self.digest,
                    url: self.url.clone(),
                    expected,
                    actual,
                }));
            }
        }
        if let Some(hasher) = self.hasher.take() {
            let actual = hasher.finish();
            if actual != self.digest {
                return Some(Err(RegistryError::DigestMismatch {
                    what: format!("blob from {}", self.url),
                    expected: self.digest,
                    actual,
                }));
            }
        }
        None
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(this.finish()),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(RegistryError::Interrupted {
                        digest: this.digest,
                        url: this.url.clone(),
                        received: this.position,
                        source: Box::new(e),
                    })));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue; // trailers
                    };
                    if this.skip > 0 {
                        let drop_now = this.skip.min(data.len() as u64);
                        this.skip -= drop_now;
                        let _ = data.split_to(drop_now as usize);
                    }
                    if data.is_empty() {
                        continue;
                    }
                    this.position += data.len() as u64;
                    if let Some(hasher) = &mut this.hasher {
                        hasher.update(&data);
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
            }
        }
    }
}
