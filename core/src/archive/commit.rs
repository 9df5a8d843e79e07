//! `docker commit`: a container's changes become one more layer on top of
//! its image.
//!
//! The layer is produced by the caller (an OCI diff tar of the container's
//! writable layer) straight into the same gzip + diff-ID pipeline
//! `docker import` uses, so it is read once and never buffered whole. The
//! new config is the parent's with the runtime config replaced, the diff ID
//! and a history entry appended; the manifest lists the parent's layers
//! (as OCI media types, same bytes) plus the new one.

use std::io::{self, Read, Write};

use serde_json::{Value, json};

use super::import::{LayerSink, rfc3339_now, store_image, store_layer};
use super::{ArchiveError, Ingest, Result};
use crate::content::ContentStore;
use crate::image::{
    Image, MEDIA_TYPE_DOCKER_LAYER, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
};
use crate::metadata::MetadataStore;
use crate::reference::Reference;

/// What `docker commit` says about the new image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitConfig {
    /// The image's runtime config (`Cmd`, `Env`, `Labels`, ...), Docker's JSON.
    pub config: serde_json::Map<String, Value>,
    /// `--author`.
    pub author: String,
    /// `--message`.
    pub comment: String,
    /// The history entry's `created_by` (the container's command).
    pub created_by: String,
    /// The container's ID (the config's `container` field).
    pub container: String,
}

/// Stores the layer `write_layer` produces (an uncompressed tar written to
/// the given writer) on top of `parent`, and records the new image, tagged
/// `reference` if given. A failure stores nothing.
pub fn commit(
    store: &ContentStore,
    metadata: &MetadataStore,
    parent: &Image,
    write_layer: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    reference: Option<&Reference>,
    config: &CommitConfig,
) -> Result<Image> {
    let mut ingest = Ingest::new(store, metadata)?;
    match commit_inner(
        &mut ingest,
        store,
        metadata,
        parent,
        write_layer,
        reference,
        config,
    ) {
        Ok(image) => {
            ingest.finish()?;
            Ok(image)
        }
        Err(e) => {
            ingest.rollback();
            Err(e)
        }
    }
}

fn read_json(store: &ContentStore, what: &str, digest: &crate::digest::Digest) -> Result<Value> {
    let mut bytes = Vec::new();
    store
        .reader(digest)?
        .take(8 << 20)
        .read_to_end(&mut bytes)
        .map_err(|source| ArchiveError::Read {
            path: format!("{what} {digest}"),
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json {
        path: format!("{what} {digest}"),
        source,
    })
}

/// The OCI name of a layer media type (Docker's gzip and plain layers are
/// byte-for-byte OCI layers).
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        MEDIA_TYPE_DOCKER_LAYER_GZIP => MEDIA_TYPE_OCI_LAYER_GZIP,
        MEDIA_TYPE_DOCKER_LAYER => MEDIA_TYPE_OCI_LAYER,
        other => other,
    }
}

fn commit_inner(
    ingest: &mut Ingest<'_>,
    store: &ContentStore,
    metadata: &MetadataStore,
    parent: &Image,
    write_layer: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    reference: Option<&Reference>,
    config: &CommitConfig,
) -> Result<Image> {
    let mut image_config = read_json(store, "config", &parent.config.digest)?;
    let (diff_id, layer_digest, layer_size) =
        store_layer(ingest, store, |sink: &mut LayerSink| {
            write_layer(sink).map_err(|source| ArchiveError::Read {
                path: "container changes".into(),
                source,
            })
        })?;
    let created = rfc3339_now();
    let Some(object) = image_config.as_object_mut() else {
        return Err(ArchiveError::Json {
            path: format!("config {}", parent.config.digest),
            source: serde::de::Error::custom("not an object"),
        });
    };
    object.insert("config".into(), Value::Object(config.config.clone()));
    object.insert("created".into(), json!(created));
    object.insert("container".into(), json!(config.container));
    if !config.author.is_empty() {
        object.insert("author".into(), json!(config.author));
    } else {
        object.remove("author");
    }
    let mut entry = json!({"created": created, "created_by": config.created_by});
    if !config.author.is_empty() {
        entry["author"] = json!(config.author);
    }
    if !config.comment.is_empty() {
        entry["comment"] = json!(config.comment);
    }
    match object.get_mut("history").and_then(Value::as_array_mut) {
        Some(history) => history.push(entry),
        None => {
            object.insert("history".into(), json!([entry]));
        }
    }
    let diff_ids = parent.diff_ids().into_iter().chain([diff_id]);
    object.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids.collect::<Vec<_>>()}),
    );
    let mut layers: Vec<Value> = parent
        .layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": oci_layer_type(&l.blob.media_type),
                "digest": l.blob.digest,
                "size": l.blob.size,
            })
        })
        .collect();
    layers.push(
        json!({"mediaType": MEDIA_TYPE_OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}),
    );
    store_image(ingest, store, metadata, &image_config, layers, reference)
}
