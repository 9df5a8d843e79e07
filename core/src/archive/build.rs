//! `docker build`: an image made of a base image's layers plus the layers
//! of a build's steps, under one lease for the whole build.
//!
//! A build adds layers one step at a time and needs each intermediate
//! state as an [`Image`] (its `RUN` containers start from it) long before
//! the final image is recorded. The session stores every blob (layers,
//! intermediate configs and manifests) under one lease, so garbage
//! collection leaves them alone meanwhile; only the final image gets a
//! record. The intermediate configs and manifests are collected once the
//! lease is gone.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::import::{LayerSink, store_layer};
use super::{ArchiveError, Ingest, Result};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::image::{Image, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST, Target};
use crate::metadata::MetadataStore;
use crate::reference::Reference;

/// Leases of builds expire after this long, so a crashed build does not
/// pin its blobs forever.
const BUILD_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A layer a build step stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuiltLayer {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The stored (gzip) blob.
    pub blob: Target,
}

/// The blobs of one build, held by one lease until [`BuildSession::finish`].
#[derive(Debug)]
pub struct BuildSession {
    lease: String,
    added: Vec<Digest>,
    seq: u64,
}

impl BuildSession {
    /// Starts a build: takes its lease.
    pub fn begin(metadata: &MetadataStore) -> Result<BuildSession> {
        Ok(BuildSession {
            lease: metadata.create_lease(BUILD_LEASE_TTL)?,
            added: Vec::new(),
            seq: 0,
        })
    }

    fn with_ingest<'a, T>(
        &mut self,
        store: &'a ContentStore,
        metadata: &'a MetadataStore,
        f: impl FnOnce(&mut Ingest<'a>) -> Result<T>,
    ) -> Result<T> {
        let mut ingest = Ingest {
            store,
            metadata,
            lease: self.lease.clone(),
            added: Vec::new(),
            seq: self.seq,
        };
        let out = f(&mut ingest);
        self.seq = ingest.seq;
        self.added.append(&mut ingest.added);
        out
    }

    /// Stores the uncompressed layer tar `write_layer` writes as a gzip blob.
    pub fn add_layer(
        &mut self,
        store: &ContentStore,
        metadata: &MetadataStore,
        write_layer: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<BuiltLayer> {
        let (diff_id, digest, size) = self.with_ingest(store, metadata, |ingest| {
            store_layer(ingest, store, |sink: &mut LayerSink| {
                write_layer(sink).map_err(|source| ArchiveError::Read {
                    path: "build step changes".into(),
                    source,
                })
            })
        })?;
        Ok(BuiltLayer {
            diff_id,
            blob: Target {
                digest,
                media_type: crate::image::MEDIA_TYPE_OCI_LAYER_GZIP.to_owned(),
                size,
            },
        })
    }

    /// Takes a layer an earlier build stored (a build cache hit) into
    /// this build: leased first, then checked; `false` if the blob is
    /// gone (collected since), and the layer must be made again.
    pub fn reuse_layer(
        &mut self,
        store: &ContentStore,
        metadata: &MetadataStore,
        layer: &BuiltLayer,
    ) -> Result<bool> {
        metadata.lease_add(&self.lease, &[layer.blob.digest])?;
        Ok(store.exists(&layer.blob.digest))
    }

    /// Stores `config` (a whole image config, its `rootfs` set from
    /// `layers`) and its manifest; returns the image without recording it.
    pub fn image(
        &mut self,
        store: &ContentStore,
        metadata: &MetadataStore,
        config: &Value,
        layers: &[BuiltLayer],
    ) -> Result<Image> {
        let mut config = config.clone();
        if let Some(object) = config.as_object_mut() {
            let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
            object.insert(
                "rootfs".into(),
                json!({"type": "layers", "diff_ids": diff_ids}),
            );
        }
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let manifest_layers: Vec<Value> = layers
            .iter()
            .map(|l| {
                json!({"mediaType": l.blob.media_type, "digest": l.blob.digest, "size": l.blob.size})
            })
            .collect();
        self.with_ingest(store, metadata, |ingest| {
            let config_digest = ingest.put_bytes(&config_bytes)?;
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
                "layers": manifest_layers,
            });
            let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
            let manifest_digest = ingest.put_bytes(&manifest_bytes)?;
            Ok(Image::from_content(
                store,
                Target {
                    digest: manifest_digest,
                    media_type: MEDIA_TYPE_OCI_MANIFEST.to_owned(),
                    size: manifest_bytes.len() as u64,
                },
                None,
            )?)
        })
    }

    /// Records `image` (made by [`BuildSession::image`]) under `references`.
    pub fn record(
        &mut self,
        metadata: &MetadataStore,
        image: &Image,
        references: &[Reference],
    ) -> Result<()> {
        metadata.put_image(image, references, None)?;
        Ok(())
    }

    /// The build is over: drop the lease (the recorded image holds what
    /// it needs; the rest is garbage).
    pub fn finish(&mut self, metadata: &MetadataStore) -> Result<()> {
        self.added.clear();
        metadata.delete_lease(&self.lease)?;
        Ok(())
    }

    /// The build failed: drop the lease and remove the blobs it added that
    /// nothing else holds.
    pub fn rollback(&mut self, store: &ContentStore, metadata: &MetadataStore) {
        let ingest = Ingest {
            store,
            metadata,
            lease: self.lease.clone(),
            added: std::mem::take(&mut self.added),
            seq: self.seq,
        };
        ingest.rollback();
    }
}
