//! Images: listing, inspecting, tagging and removing the images of the
//! metadata store, and moving them in and out as archives (`docker save`,
//! `load`, `import`).
//!
//! Blobs live in the content store at `<data-root>/content`, records in
//! `<data-root>/metadata.redb`. Every store call runs on a blocking thread;
//! archives stream through bounded channels ([`pipe`]) so a large image is
//! never buffered whole. Removal drops records first and then frees the
//! blobs nothing references any more (garbage collection by references).

mod changes;
mod commit;
mod error;
mod filter;
pub(crate) mod pipe;
mod pull;
mod push;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use berth_core::{
    ArchiveError, ContentStore, Digest, Image, ImportConfig, LoadedImage, MetadataError,
    MetadataStore, Reference, Removed, archive,
};
use berth_snapshotter::OverlaySnapshotter;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::Engine;
use super::containers::init_layer::INIT_PREFIX;
use super::events::{Event, EventType, unix_nanos};
use super::filters::Filters;
use crate::log;
pub(crate) use commit::CommitRequest;
pub(crate) use error::ImageError;
use filter::{LIST_FILTERS, PRUNE_FILTERS, dangling_filter, glob_match, labels_pass, parse_until};
use pipe::{ChannelReader, ChannelWriter, PIPE_DEPTH};
pub(crate) use pull::PullLine;

/// kv table: image ID -> RFC 3339 time of its last tag.
const LAST_TAG_TABLE: &str = "image-last-tag";
/// Largest image config read for inspect and history.
const MAX_CONFIG: u64 = 8 << 20;

/// A name the user typed must be an ID, an ID prefix or a valid reference.
fn check_name(input: &str) -> Result<(), ImageError> {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Ok(());
    }
    Reference::parse(input).map(|_| ()).map_err(Into::into)
}

/// The reference `repo` + `tag` name together (moby's `RepoTagReference`).
fn tag_reference(action: &'static str, repo: &str, tag: &str) -> Result<Reference, ImageError> {
    let parsed = Reference::parse(repo)?;
    if parsed.digest().is_some() {
        return Err(ImageError::DigestReference {
            action,
            reference: repo.to_owned(),
        });
    }
    if tag.is_empty() {
        return Ok(parsed);
    }
    Ok(Reference::parse(&format!("{}:{tag}", parsed.name()))?)
}

/// One entry of an image config's `history`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct HistoryEntry {
    #[serde(default)]
    pub(crate) created: Option<String>,
    #[serde(default)]
    pub(crate) created_by: String,
    #[serde(default)]
    pub(crate) comment: String,
    #[serde(default)]
    pub(crate) empty_layer: bool,
}

/// What inspect and history need from an image config blob.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ImageConfig {
    #[serde(default)]
    pub(crate) author: String,
    #[serde(default)]
    pub(crate) comment: String,
    #[serde(default)]
    pub(crate) docker_version: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
    /// The runtime config (`Cmd`, `Env`, `Labels`...) as stored.
    #[serde(default)]
    pub(crate) config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub(crate) history: Vec<HistoryEntry>,
}

impl ImageConfig {
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.get("Labels"))
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default()
    }
}

/// An image with what the API shows about it.
#[derive(Debug, Clone)]
pub(crate) struct ImageDetails {
    pub(crate) image: Image,
    /// The references that name it (after a `reference` filter: the matching ones).
    pub(crate) references: Vec<Reference>,
    pub(crate) config: Arc<ImageConfig>,
    /// When it was last tagged (RFC 3339), if ever.
    pub(crate) last_tag_time: Option<String>,
}

impl ImageDetails {
    /// `sha256:<config digest>`.
    pub(crate) fn id(&self) -> String {
        self.image.id().to_string()
    }

    /// `busybox:latest`, ...
    pub(crate) fn repo_tags(&self) -> Vec<String> {
        self.references
            .iter()
            .filter(|r| r.tag().is_some() && r.digest().is_none())
            .map(Reference::familiar)
            .collect()
    }

    /// `busybox@sha256:...`, ...
    pub(crate) fn repo_digests(&self) -> Vec<String> {
        self.references
            .iter()
            .filter_map(|r| Some(format!("{}@{}", r.familiar_name(), r.digest()?)))
            .collect()
    }

    pub(crate) fn created_unix(&self) -> i64 {
        created_unix(self.image.created.as_deref())
    }

    fn is_dangling(&self) -> bool {
        self.repo_tags().is_empty()
    }
}

/// RFC 3339 -> Unix seconds (0 when absent or unreadable).
pub(crate) fn created_unix(created: Option<&str>) -> i64 {
    created
        .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
        .map_or(0, |t| unix_nanos(t).div_euclid(1_000_000_000))
}

/// One row of `docker history`, newest first.
#[derive(Debug, Clone)]
pub(crate) struct HistoryItem {
    /// The image ID for the top row, `<missing>` below it (as Docker).
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) created_by: String,
    pub(crate) tags: Vec<String>,
    pub(crate) size: u64,
    pub(crate) comment: String,
}

/// One effect of removing images, in Docker's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `docker import` settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImportRequest {
    pub(crate) repo: String,
    pub(crate) tag: String,
    pub(crate) changes: Vec<String>,
    pub(crate) message: Option<String>,
}

/// A `docker save` tar being produced: the first chunk (already there, so
/// errors before it could still become a status) and the rest.
#[derive(Debug)]
pub(crate) struct SaveStream {
    pub(crate) first: Bytes,
    pub(crate) rest: mpsc::Receiver<Bytes>,
}

/// The stores, shared with blocking tasks.
#[derive(Debug)]
pub(crate) struct Stores {
    pub(crate) content: ContentStore,
    pub(crate) metadata: Arc<MetadataStore>,
    /// Unpacked layers by chain ID, and containers' writable layers.
    pub(crate) snapshots: Arc<OverlaySnapshotter>,
    /// Configs are immutable by digest, so parsed ones are kept.
    configs: Mutex<HashMap<Digest, Arc<ImageConfig>>>,
}

/// The engine's image store.
#[derive(Debug)]
pub(crate) struct ImageStore {
    stores: Arc<Stores>,
}

impl ImageStore {
    /// Opens the content store at `<data_root>/content`, the metadata
    /// store at `<data_root>/metadata.redb` and the snapshotter at
    /// `<data_root>/overlay` (the layout `berth-image` uses too).
    pub(crate) fn open(data_root: &Path) -> Result<ImageStore, ImageError> {
        let content = ContentStore::open(data_root.join("content"))?;
        let metadata = Arc::new(MetadataStore::open(data_root)?);
        let snapshots = Arc::new(OverlaySnapshotter::open(data_root.join("overlay"))?);
        Ok(ImageStore {
            stores: Arc::new(Stores {
                content,
                metadata,
                snapshots,
                configs: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The stores, for the pull and container code.
    #[allow(dead_code)] // pull and containers use it next
    pub(crate) fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }

    /// How many images are stored (for `GET /info`); 0 if the store fails.
    pub(crate) fn count(&self) -> usize {
        match self.stores.metadata.list() {
            Ok(list) => list.len(),
            Err(err) => {
                log::warning!("counting images: {err}");
                0
            }
        }
    }
}

impl Stores {
    fn config(&self, image: &Image) -> Result<Arc<ImageConfig>, ImageError> {
        let digest = image.config.digest;
        let mut cache = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = cache.get(&digest) {
            return Ok(config.clone());
        }
        let bad = |reason: String| ImageError::BadConfig { digest, reason };
        let file = self.content.reader(&digest)?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, MAX_CONFIG), &mut bytes)
            .map_err(|e| bad(format!("reading: {e}")))?;
        let config: ImageConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let config = Arc::new(config);
        cache.insert(digest, config.clone());
        Ok(config)
    }

    fn details(
        &self,
        image: Image,
        references: Vec<Reference>,
    ) -> Result<ImageDetails, ImageError> {
        let config = self.config(&image)?;
        let last_tag_time = self
            .metadata
            .get::<String>(LAST_TAG_TABLE, &image.id().hex())?;
        Ok(ImageDetails {
            image,
            references,
            config,
            last_tag_time,
        })
    }

    fn all(&self) -> Result<Vec<ImageDetails>, ImageError> {
        self.metadata
            .list()?
            .into_iter()
            .map(|entry| self.details(entry.image, entry.references))
            .collect()
    }

    pub(super) fn resolve(&self, name: &str) -> Result<ImageDetails, ImageError> {
        check_name(name)?;
        let image = self.metadata.resolve(name)?;
        let references = self
            .metadata
            .references()?
            .into_iter()
            .filter(|(_, d)| *d == image.target.digest)
            .map(|(r, _)| r)
            .collect();
        self.details(image, references)
    }

    /// Frees blobs no image or lease holds. The records are already gone, so
    /// a failure here only leaves garbage for the next run: logged, not returned.
    fn collect_garbage(&self) -> u64 {
        self.remove_unused_layers();
        match self.metadata.gc(&self.content) {
            Ok(stats) => {
                let mut cache = self.configs.lock().unwrap_or_else(|p| p.into_inner());
                for digest in &stats.removed {
                    cache.remove(digest);
                }
                stats.reclaimed_bytes
            }
            Err(err) => {
                log::warning!("freeing unreferenced image content: {err}");
                0
            }
        }
    }

    /// Removes unpacked layers (committed snapshots keyed by chain ID)
    /// that no image has any more, and the init layers on them, top
    /// layers first (after image removal and after a failed build). One
    /// with a child (a container's writable layer, a layer above) stays; a
    /// layer removed under a pull or build still in progress is unpacked
    /// again from its blob when a container needs it.
    pub(crate) fn remove_unused_layers(&self) {
        use berth_snapshotter::{Kind, Snapshotter};
        let (Ok(images), Ok(snapshots)) = (self.metadata.list(), self.snapshots.list()) else {
            return;
        };
        let kept: std::collections::HashSet<String> = images
            .iter()
            .flat_map(|entry| entry.image.layers.iter().map(|l| l.chain_id.to_string()))
            .collect();
        let unused_layer = |name: &str| name.starts_with("sha256:") && !kept.contains(name);
        let mut unused: Vec<String> = snapshots
            .into_iter()
            .filter(|s| s.kind == Kind::Committed)
            .filter(|s| {
                let init_of = s.name.strip_prefix(INIT_PREFIX);
                unused_layer(&s.name) || init_of.is_some_and(unused_layer)
            })
            .map(|s| s.name)
            .collect();
        // Each pass removes the layers nothing sits on; their parents
        // become removable in the next.
        while !unused.is_empty() {
            let before = unused.len();
            unused.retain(|key| self.snapshots.remove(key).is_err());
            if unused.len() == before {
                break;
            }
        }
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

impl Engine {
    /// Runs `f` on a blocking thread with the image stores.
    async fn images_blocking<T, F>(&self, what: &'static str, f: F) -> Result<T, ImageError>
    where
        T: Send + 'static,
        F: FnOnce(&Stores) -> Result<T, ImageError> + Send + 'static,
    {
        let stores = self.images.stores.clone();
        tokio::task::spawn_blocking(move || f(&stores))
            .await
            .map_err(|e| ImageError::Task(what, e.to_string()))?
    }

    /// Builds a new image with `build` on the blocking pool (import,
    /// commit), records when `reference` was tagged and sends its tag event;
    /// returns the image's ID and labels.
    pub(super) async fn store_new_image<F>(
        &self,
        what: &'static str,
        reference: Option<Reference>,
        build: F,
    ) -> Result<(String, BTreeMap<String, String>), ImageError>
    where
        F: FnOnce(&Stores, Option<&Reference>) -> Result<Image, ArchiveError> + Send + 'static,
    {
        let tagged = reference.clone();
        let (image, labels) = self
            .images_blocking(what, move |stores| {
                let image = build(stores, reference.as_ref())?;
                if reference.is_some() {
                    stores
                        .metadata
                        .put(LAST_TAG_TABLE, &image.id().hex(), &now_rfc3339())?;
                }
                let labels = stores.config(&image)?.labels();
                Ok((image, labels))
            })
            .await?;
        let id = image.id().to_string();
        if let Some(reference) = tagged {
            self.image_event("tag", &id, &reference.familiar(), labels.clone());
        }
        Ok((id, labels))
    }

    fn image_event(&self, action: &str, id: &str, name: &str, labels: BTreeMap<String, String>) {
        let mut attributes = labels;
        attributes.insert("name".to_owned(), name.to_owned());
        self.events()
            .publish(Event::now(EventType::Image, action, id, attributes));
    }

    /// The containers (short IDs) created from `image_id`.
    pub(crate) fn containers_using_image(&self, image_id: &Digest) -> Vec<String> {
        self.containers_of_image(image_id)
    }

    /// `GET /images/json`: images matching `filters`, newest first.
    pub(crate) async fn image_list(
        &self,
        filters: Filters,
    ) -> Result<Vec<ImageDetails>, ImageError> {
        filters.validate(LIST_FILTERS)?;
        let dangling = dangling_filter(&filters)?;
        let until = filters
            .get("until")
            .map(parse_until)
            .collect::<Result<Vec<_>, _>>()?;
        self.images_blocking("list", move |stores| {
            let bound = |key: &str| -> Result<Option<i64>, ImageError> {
                let mut out = None;
                for name in filters.get(key) {
                    out = Some(stores.resolve(name)?.created_unix());
                }
                Ok(out)
            };
            let before = bound("before")?;
            let since = bound("since")?;
            let mut out = Vec::new();
            for mut details in stores.all()? {
                if filters.contains("reference") {
                    details.references.retain(|r| {
                        filters.get("reference").any(|pattern| {
                            glob_match(pattern, &r.familiar())
                                || glob_match(pattern, &r.familiar_name())
                        })
                    });
                    if details.references.is_empty() {
                        continue;
                    }
                }
                let created = details.created_unix();
                let keep = dangling.is_none_or(|d| d == details.is_dangling())
                    && before.is_none_or(|b| created < b)
                    && since.is_none_or(|s| created > s)
                    && until.iter().all(|u| created <= *u)
                    && labels_pass(&filters, &details.config.labels());
                if keep {
                    out.push(details);
                }
            }
            out.sort_by(|a, b| {
                b.created_unix()
                    .cmp(&a.created_unix())
                    .then_with(|| a.id().cmp(&b.id()))
            });
            Ok(out)
        })
        .await
    }

    /// `GET /images/{name}/json`.
    pub(crate) async fn image_inspect(&self, name: &str) -> Result<ImageDetails, ImageError> {
        let name = name.to_owned();
        self.images_blocking("inspect", move |stores| stores.resolve(&name))
            .await
    }

    /// `GET /images/{name}/history`: the config's history, newest first,
    /// with each layer's stored (compressed) size on the entry that made it.
    pub(crate) async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let details = self.image_inspect(name).await?;
        let mut history = details.config.history.clone();
        if history.is_empty() {
            history = vec![HistoryEntry::default(); details.image.layers.len()];
        }
        let mut layers = details.image.layers.iter();
        let mut items: Vec<HistoryItem> = history
            .iter()
            .map(|entry| HistoryItem {
                id: "<missing>".to_owned(),
                created: created_unix(entry.created.as_deref()),
                created_by: entry.created_by.clone(),
                tags: Vec::new(),
                size: if entry.empty_layer {
                    0
                } else {
                    layers.next().map_or(0, |l| l.blob.size)
                },
                comment: entry.comment.clone(),
            })
            .collect();
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = details.id();
            top.tags = details.repo_tags();
        }
        Ok(items)
    }

    /// `POST /images/{name}/tag`.
    pub(crate) async fn image_tag(
        &self,
        source: &str,
        repo: &str,
        tag: &str,
    ) -> Result<(), ImageError> {
        check_name(source)?;
        let new_ref = tag_reference("tag", repo, tag)?;
        let source = source.to_owned();
        let familiar = new_ref.familiar();
        let (image, labels) = self
            .images_blocking("tag", move |stores| {
                let image = stores.metadata.tag(&source, &new_ref)?;
                stores
                    .metadata
                    .put(LAST_TAG_TABLE, &image.id().hex(), &now_rfc3339())?;
                let labels = stores.config(&image)?.labels();
                Ok((image, labels))
            })
            .await?;
        self.image_event("tag", &image.id().to_string(), &familiar, labels);
        Ok(())
    }

    /// `DELETE /images/{name}`. Content no image needs any more is freed.
    pub(crate) async fn image_delete(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let target = self.image_inspect(name).await?;
        // As moby's ImageDelete: removing one of several tags only untags, so
        // containers using the image are no conflict then.
        let id_hex = target.image.id().hex();
        let short = name.strip_prefix("sha256:").unwrap_or(name);
        let by_id = !short.is_empty() && id_hex.starts_with(short);
        let untag_only = !by_id && target.repo_tags().len() > 1;
        if !force
            && !untag_only
            && let Some(container) = self.containers_using_image(&target.image.id()).first()
        {
            return Err(ImageError::InUse {
                reference: name.to_owned(),
                container: container.clone(),
                image: id_hex[..12].to_owned(),
            });
        }
        // A spare container is made from an image, but it is no user's.
        self.drop_spare_containers().await;
        let name = name.to_owned();
        let removed = self
            .images_blocking("delete", move |stores| {
                let removed = stores.metadata.delete_image(&name, force)?;
                stores.collect_garbage();
                Ok(removed)
            })
            .await?;
        Ok(self.report_removed(removed, &target.id(), &target.config.labels()))
    }

    /// Publishes the events of a removal (moby names both the untag and
    /// the delete event after the image ID) and renders its report.
    fn report_removed(
        &self,
        removed: Vec<Removed>,
        id: &str,
        labels: &BTreeMap<String, String>,
    ) -> Vec<DeleteItem> {
        removed
            .into_iter()
            .map(|r| match r {
                Removed::Untagged(reference) => {
                    self.image_event("untag", id, id, labels.clone());
                    DeleteItem::Untagged(reference.familiar())
                }
                Removed::Deleted(image) => {
                    self.image_event("delete", id, id, labels.clone());
                    DeleteItem::Deleted(image.id().to_string())
                }
            })
            .collect()
    }

    /// `POST /images/prune`: removes dangling images (every image with
    /// `dangling=false`) that no container uses; returns what was removed
    /// and the bytes freed.
    pub(crate) async fn image_prune(
        &self,
        filters: Filters,
    ) -> Result<(Vec<DeleteItem>, u64), ImageError> {
        filters.validate(PRUNE_FILTERS)?;
        let dangling_only = dangling_filter(&filters)?.unwrap_or(true);
        let until = filters
            .get("until")
            .map(parse_until)
            .collect::<Result<Vec<_>, _>>()?;
        let candidates: Vec<ImageDetails> = self
            .images_blocking("prune", |stores| stores.all())
            .await?
            .into_iter()
            .filter(|d| {
                (!dangling_only || d.is_dangling())
                    && until.iter().all(|u| d.created_unix() <= *u)
                    && labels_pass(&filters, &d.config.labels())
                    && self.containers_using_image(&d.image.id()).is_empty()
            })
            .collect();
        if !candidates.is_empty() {
            self.drop_spare_containers().await;
        }
        let mut report = Vec::new();
        let mut removed_sets = Vec::new();
        let (removed, reclaimed) = self
            .images_blocking("prune", move |stores| {
                for details in &candidates {
                    let key = details.image.target.digest.to_string();
                    match stores.metadata.delete_image(&key, true) {
                        Ok(removed) => {
                            removed_sets.push((removed, details.id(), details.config.labels()))
                        }
                        // Removed meanwhile by someone else: nothing to do.
                        Err(MetadataError::ImageNotFound(_)) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                Ok((removed_sets, stores.collect_garbage()))
            })
            .await?;
        for (set, id, labels) in removed {
            report.extend(self.report_removed(set, &id, &labels));
        }
        Ok((report, reclaimed))
    }

    /// `GET /images/get`: the tar of `names`, produced while it is sent.
    /// Errors before the first chunk (unknown name, missing blob) are
    /// returned; later ones can only cut the stream short (and are logged).
    pub(crate) async fn image_save(&self, names: Vec<String>) -> Result<SaveStream, ImageError> {
        for name in &names {
            check_name(name)?;
        }
        let (tx, mut rx) = mpsc::channel(PIPE_DEPTH);
        let stores = self.images.stores.clone();
        let task = tokio::task::spawn_blocking(move || {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            archive::save(
                &stores.content,
                &stores.metadata,
                &names,
                ChannelWriter::new(tx),
            )
        });
        match rx.recv().await {
            Some(first) => {
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => log::error!("saving images (stream cut short): {err}"),
                        Err(err) => log::error!("saving images: task failed: {err}"),
                    }
                });
                Ok(SaveStream { first, rest: rx })
            }
            None => match task.await {
                Ok(Ok(())) => Ok(SaveStream {
                    first: Bytes::new(),
                    rest: rx,
                }),
                Ok(Err(err)) => Err(err.into()),
                Err(err) => Err(ImageError::Task("save", err.to_string())),
            },
        }
    }

    /// `POST /images/load`: reads an archive from `body` as it arrives.
    pub(crate) async fn image_load(
        &self,
        body: mpsc::Receiver<io::Result<Bytes>>,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let loaded = self
            .images_blocking("load", move |stores| {
                let loaded =
                    archive::load(&stores.content, &stores.metadata, ChannelReader::new(body))?;
                let labels = loaded
                    .iter()
                    .map(|l| {
                        stores
                            .config(&l.image)
                            .map(|c| c.labels())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>();
                Ok((loaded, labels))
            })
            .await;
        let (loaded, labels) = loaded?;
        for (image, labels) in loaded.iter().zip(labels) {
            let id = image.image.id().to_string();
            self.image_event("load", &id, &id, labels);
        }
        Ok(loaded)
    }

    /// Checks a `docker import` request before its body is read.
    pub(crate) fn image_import_plan(
        &self,
        request: &ImportRequest,
    ) -> Result<(Option<Reference>, ImportConfig), ImageError> {
        let reference = match request.repo.as_str() {
            "" => None,
            repo => Some(tag_reference("import", repo, &request.tag)?),
        };
        let mut config = ImportConfig {
            message: request.message.clone().filter(|m| !m.is_empty()),
            ..ImportConfig::default()
        };
        changes::apply(&mut config, &request.changes)?;
        Ok((reference, config))
    }

    /// `POST /images/create?fromSrc=-`: a root file system tar from `body`
    /// becomes a one-layer image. Returns the image ID.
    pub(crate) async fn image_import(
        &self,
        body: mpsc::Receiver<io::Result<Bytes>>,
        reference: Option<Reference>,
        config: ImportConfig,
    ) -> Result<String, ImageError> {
        let (id, labels) = self
            .store_new_image("import", reference, move |stores, reference| {
                archive::import(
                    &stores.content,
                    &stores.metadata,
                    ChannelReader::new(body),
                    reference,
                    &config,
                )
            })
            .await?;
        self.image_event("import", &id, &id, labels);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorKind;

    #[test]
    fn tag_references_join_repo_and_tag_and_refuse_digests() {
        let r = tag_reference("tag", "docker.io/compatprobe/nginx", "v2").unwrap();
        assert_eq!(r.familiar(), "compatprobe/nginx:v2");
        let r = tag_reference("tag", "box:v1", "").unwrap();
        assert_eq!(r.familiar(), "box:v1");
        let r = tag_reference("tag", "box:v1", "v3").unwrap();
        assert_eq!(r.familiar(), "box:v3");
        let digest = format!("box@sha256:{}", "b".repeat(64));
        assert!(matches!(
            tag_reference("tag", &digest, ""),
            Err(ImageError::DigestReference { .. })
        ));
        let err = tag_reference("tag", "Bad", "").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid reference format"),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn created_times_parse_to_unix_seconds() {
        assert_eq!(created_unix(Some("1970-01-01T00:01:40Z")), 100);
        assert_eq!(
            created_unix(Some("2024-01-02T03:04:05.123456789Z")),
            1_704_164_645
        );
        assert_eq!(created_unix(None), 0);
    }
}
