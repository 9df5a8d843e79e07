//! `docker pull` and `docker login`: the registry client the daemon builds
//! per request (with that request's credentials) and the pull, translated
//! from the snapshotter's [`Progress`] events into the status lines dockerd
//! sends.
//!
//! ```text
//! pull task ──Progress──► unbounded channel ──► translator task ──PullLine──► response
//! ```
//!
//! The pull runs in its own task and always runs to its end: a client that
//! goes away only stops receiving lines (the translator drains the events
//! and publishes the `pull` event regardless). Errors before the manifest
//! is resolved are returned (an HTTP error status); later ones become the
//! last line of the stream.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use berth_core::registry::RegistryError;
use berth_core::{Credentials, Digest, Platform, Reference, RegistryClient, RegistryConfig};
use berth_snapshotter::pull::{self, Progress, PullError, PullTarget};
use tokio::sync::mpsc;

use super::{ImageError, Stores};
use crate::engine::Engine;
use crate::engine::events::{Event, EventType};
use crate::log;

/// Lines buffered between the translator and a slow client.
const LINES_IN_FLIGHT: usize = 64;

/// One line of a pull or push progress stream, as dockerd's JSON messages
/// carry it (`api` renders the JSON and the progress bar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullLine {
    /// A status with no progress detail: `Pulling from ...` (with the tag
    /// as id), `Digest: ...`, `Status: ...`.
    Status { id: Option<String>, status: String },
    /// A per-layer status (`Pulling fs layer`, `Pull complete`...), with
    /// `current`/`total` bytes for `Downloading`/`Extracting`/`Pushing`.
    Layer {
        id: String,
        status: String,
        progress: Option<(u64, u64)>,
    },
    /// The `aux` message closing a push.
    PushResult {
        tag: String,
        digest: String,
        size: u64,
    },
    /// The stream failed.
    Error(String),
}

impl PullLine {
    pub(crate) fn layer(id: &str, status: &str) -> PullLine {
        PullLine::Layer {
            id: id.to_owned(),
            status: status.to_owned(),
            progress: None,
        }
    }

    pub(crate) fn status(status: String) -> PullLine {
        PullLine::Status { id: None, status }
    }
}

/// The 12-hex short form dockerd shows for layers.
pub(super) fn short_id(digest: &Digest) -> String {
    digest.hex()[..12].to_owned()
}

impl Engine {
    /// A registry client for `host` with `credentials` (one client per
    /// request: its token cache must never serve another user's token).
    pub(crate) fn registry_client(
        &self,
        host: &str,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient, ImageError> {
        let mut config = RegistryConfig {
            insecure_registries: self.config.insecure_registries.iter().cloned().collect(),
            user_agent: concat!("berthd/", env!("CARGO_PKG_VERSION")).to_owned(),
            ..RegistryConfig::default()
        };
        if let Some(credentials) = credentials {
            config.credentials.insert(host.to_owned(), credentials);
        }
        RegistryClient::new(config).map_err(|e| ImageError::Registry(Box::new(e)))
    }

    /// `POST /auth`: checks `credentials` against registry `host`.
    pub(crate) async fn registry_login(
        &self,
        host: &str,
        credentials: Credentials,
    ) -> Result<(), ImageError> {
        let client = self.registry_client(host, Some(credentials))?;
        match client.check_login(host).await {
            Ok(_) => Ok(()),
            Err(RegistryError::Unauthorized { .. }) => {
                // dockerd's text for a refused login.
                let scheme = if client.config().insecure_registries.contains(host)
                    || Reference::parse(&format!("{host}/x"))
                        .is_ok_and(|r| r.is_insecure_by_default())
                {
                    "http"
                } else {
                    "https"
                };
                Err(ImageError::LoginFailed(format!(
                    "login attempt to {scheme}://{host}/v2/ failed with status: 401 Unauthorized"
                )))
            }
            Err(e) => Err(ImageError::Registry(Box::new(e))),
        }
    }

    /// `POST /images/create?fromImage=`: starts pulling `reference` and
    /// returns the progress lines once the manifest is resolved; errors
    /// before that are returned as such.
    pub(crate) async fn image_pull(
        &self,
        reference: Reference,
        platform: Option<Platform>,
        credentials: Option<Credentials>,
    ) -> Result<mpsc::Receiver<PullLine>, ImageError> {
        let client = self.registry_client(reference.domain(), credentials)?;
        let stores = self.images.stores.clone();
        let target = PullTarget {
            content: Arc::new(stores.content.clone()),
            metadata: stores.metadata.clone(),
            snapshots: stores.snapshots.clone(),
        };
        // What the reference named before, for "Image is up to date".
        let previous = {
            let (stores, reference) = (stores.clone(), reference.clone());
            tokio::task::spawn_blocking(move || stores.metadata.get_by_ref(&reference))
                .await
                .map_err(|e| ImageError::Task("pull", e.to_string()))??
                .map(|image| image.target.digest)
        };
        let platform = platform.unwrap_or_default();
        let (events_tx, mut events) = mpsc::unbounded_channel::<Progress>();
        let task = {
            let reference = reference.clone();
            tokio::spawn(async move {
                let report = move |p: Progress| {
                    let _ = events_tx.send(p);
                };
                pull::pull(&client, &target, &reference, &platform, &report).await
            })
        };
        let Some(first) = events.recv().await else {
            // The pull ended without resolving anything: it failed.
            return match task.await {
                Ok(Err(e)) => Err(pull_error(&reference, e)),
                Ok(Ok(_)) => Err(ImageError::Task(
                    "pull",
                    "the pull ended without reporting".to_owned(),
                )),
                Err(e) => Err(ImageError::Task("pull", e.to_string())),
            };
        };
        let (tx, rx) = mpsc::channel(LINES_IN_FLIGHT);
        let translator = Translator {
            tx,
            reference,
            previous,
            layers: Vec::new(),
            present: HashSet::new(),
            announced: false,
            downloading: HashSet::new(),
            sizes: HashMap::new(),
        };
        let events_bus = self.events.clone();
        tokio::spawn(async move {
            translator
                .run(first, events, task, stores, &events_bus)
                .await;
        });
        Ok(rx)
    }
}

/// Errors before the stream, with moby's texts where the CLI shows them.
fn pull_error(reference: &Reference, err: PullError) -> ImageError {
    if let PullError::Registry { source, .. } = &err
        && let Some(RegistryError::ManifestNotFound { .. }) = source.downcast_ref::<RegistryError>()
    {
        return ImageError::PullNotFound(format!(
            "manifest for {} not found: manifest unknown: manifest unknown",
            reference.familiar()
        ));
    }
    ImageError::Pull(Box::new(err))
}

/// Turns [`Progress`] events into dockerd's lines.
struct Translator {
    tx: mpsc::Sender<PullLine>,
    reference: Reference,
    previous: Option<Digest>,
    /// The manifest's layers, bottom first.
    layers: Vec<Digest>,
    /// Layers reported already present (held back until the first other
    /// event: an up-to-date image shows none of them, as in dockerd).
    present: HashSet<Digest>,
    announced: bool,
    downloading: HashSet<Digest>,
    sizes: HashMap<Digest, u64>,
}

impl Translator {
    async fn send(&self, line: PullLine) {
        // A client that went away stops reading; the pull goes on.
        let _ = self.tx.send(line).await;
    }

    async fn run(
        mut self,
        first: Progress,
        mut events: mpsc::UnboundedReceiver<Progress>,
        task: tokio::task::JoinHandle<Result<berth_core::Image, PullError>>,
        stores: Arc<Stores>,
        bus: &crate::engine::EventBus,
    ) {
        let tag_or_digest = match (self.reference.digest(), self.reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        self.send(PullLine::Status {
            id: Some(tag_or_digest),
            status: format!("Pulling from {}", self.reference.repository()),
        })
        .await;
        let mut next = Some(first);
        while let Some(event) = next {
            self.handle(event).await;
            next = events.recv().await;
        }
        let result = match task.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("pull task failed: {e}")),
        };
        match result {
            Ok(image) => {
                let up_to_date = self.previous == Some(image.target.digest);
                if !up_to_date {
                    self.announce().await;
                }
                let digest = image.index.unwrap_or(image.target.digest);
                let familiar = self.reference.familiar();
                self.send(PullLine::status(format!("Digest: {digest}")))
                    .await;
                let status = if up_to_date {
                    format!("Status: Image is up to date for {familiar}")
                } else {
                    format!("Status: Downloaded newer image for {familiar}")
                };
                self.send(PullLine::status(status)).await;
                let labels = tokio::task::spawn_blocking(move || {
                    stores
                        .config(&image)
                        .map(|c| c.labels())
                        .unwrap_or_default()
                })
                .await
                .unwrap_or_default();
                let mut attributes = labels;
                attributes.insert("name".to_owned(), self.reference.familiar_name());
                bus.publish(Event::now(EventType::Image, "pull", &familiar, attributes));
            }
            Err(message) => {
                log::warning!("pulling {}: {message}", self.reference);
                self.send(PullLine::Error(message)).await;
            }
        }
    }

    /// Sends each layer's first line: `Already exists` or `Pulling fs layer`.
    async fn announce(&mut self) {
        if self.announced {
            return;
        }
        self.announced = true;
        for layer in self.layers.clone() {
            let status = if self.present.contains(&layer) {
                "Already exists"
            } else {
                "Pulling fs layer"
            };
            self.send(PullLine::layer(&short_id(&layer), status)).await;
        }
    }

    async fn handle(&mut self, event: Progress) {
        match event {
            Progress::Resolved { layers, .. } => {
                self.layers = layers.iter().map(|(d, _)| *d).collect();
                self.sizes = layers.into_iter().collect();
            }
            Progress::AlreadyExists(digest) => {
                self.present.insert(digest);
            }
            Progress::Downloading {
                layer,
                current,
                total,
            } => {
                self.announce().await;
                self.downloading.insert(layer);
                self.send(PullLine::Layer {
                    id: short_id(&layer),
                    status: "Downloading".to_owned(),
                    progress: Some((current, total)),
                })
                .await;
            }
            Progress::PullComplete(digest) => {
                self.announce().await;
                let id = short_id(&digest);
                if self.downloading.remove(&digest) {
                    self.send(PullLine::layer(&id, "Verifying Checksum")).await;
                    self.send(PullLine::layer(&id, "Download complete")).await;
                }
                let size = self.sizes.get(&digest).copied().unwrap_or(0);
                self.send(PullLine::Layer {
                    id: id.clone(),
                    status: "Extracting".to_owned(),
                    progress: Some((size, size)),
                })
                .await;
                self.send(PullLine::layer(&id, "Pull complete")).await;
            }
            Progress::Done { .. } => {}
        }
    }
}
