//! The image model: what Berth records about one stored image (one platform
//! manifest), and the OCI rule that turns layer diff IDs into chain IDs.
//!
//! An [`Image`] is built from content already in the [`ContentStore`]
//! ([`Image::from_content`]): the manifest names the config and the
//! compressed layers, the config names each layer's uncompressed digest
//! (diff ID). Docker calls the config digest the image ID.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::digest::{Digest, Digester};
use crate::error::ErrorKind;

/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema 2 manifest.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Largest manifest or config Berth will parse; real ones are a few KiB.
pub const MAX_JSON_BLOB: u64 = 8 << 20;

/// Why an image record could not be built from stored content.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A manifest or config blob could not be read.
    #[error("reading {what} {digest}: {source}")]
    Content {
        /// `"manifest"` or `"config"`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The content store error.
        source: Box<ContentError>,
    },
    /// A manifest or config blob is not the JSON it should be.
    #[error("{what} {digest} is not valid JSON: {source}")]
    Json {
        /// `"manifest"` or `"config"`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A manifest or config blob is larger than [`MAX_JSON_BLOB`].
    #[error("{what} {digest} is {size} bytes, larger than the {MAX_JSON_BLOB} allowed")]
    TooLarge {
        /// `"manifest"` or `"config"`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// The manifest lists a different number of layers than the config's
    /// `rootfs.diff_ids`.
    #[error(
        "manifest {manifest} has {layers} layers but its config {config} lists {diff_ids} diff ids"
    )]
    LayerCountMismatch {
        /// The manifest.
        manifest: Digest,
        /// Its config.
        config: Digest,
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// The manifest is an index or has a media type that is not an image
    /// manifest.
    #[error("manifest {digest} has media type {media_type:?}, not an image manifest")]
    NotAManifest {
        /// The blob.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
}

impl ImageError {
    /// The error's kind, for mapping to API statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Content { source, .. } => source.kind(),
            Self::Json { .. }
            | Self::TooLarge { .. }
            | Self::LayerCountMismatch { .. }
            | Self::NotAManifest { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The blob's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The stored blob (possibly compressed).
    pub blob: Target,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Chain ID: identifies this layer together with every layer below it.
    pub chain_id: Digest,
}

/// What Berth records about one stored image: one platform manifest and
/// everything it references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The image manifest.
    pub target: Target,
    /// The index the manifest was chosen from, if any.
    pub index: Option<Digest>,
    /// The config blob; its digest is the image ID.
    pub config: Target,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
    /// The config's `created` time (RFC 3339), if any.
    pub created: Option<String>,
    /// The config's `architecture`, e.g. `amd64`.
    pub architecture: String,
    /// The config's `os`, e.g. `linux`.
    pub os: String,
    /// Manifest + config + layer blob sizes, in bytes.
    pub size: u64,
}

impl Image {
    /// The image ID as Docker shows it: the config digest.
    pub fn id(&self) -> Digest {
        self.config.digest
    }

    /// The diff IDs, bottom layer first.
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id).collect()
    }

    /// Every blob digest the image needs: index (if any), manifest, config
    /// and layers.
    pub fn content_digests(&self) -> impl Iterator<Item = Digest> + '_ {
        self.index
            .iter()
            .copied()
            .chain([self.target.digest, self.config.digest])
            .chain(self.layers.iter().map(|l| l.blob.digest))
    }

    /// Builds the record for the image manifest `target`, reading the
    /// manifest and its config from `store`. The layers need not be present.
    pub fn from_content(
        store: &ContentStore,
        target: Target,
        index: Option<Digest>,
    ) -> Result<Self, ImageError> {
        let manifest_bytes = read_json_blob(store, "manifest", &target.digest)?;
        let manifest: ManifestWire = parse_json("manifest", &target.digest, &manifest_bytes)?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| target.media_type.clone());
        if !is_image_manifest(&media_type) || manifest.layers.is_none() {
            return Err(ImageError::NotAManifest {
                digest: target.digest,
                media_type,
            });
        }
        let config_bytes = read_json_blob(store, "config", &manifest.config.digest)?;
        let config: ConfigWire = parse_json("config", &manifest.config.digest, &config_bytes)?;
        let layers_wire = manifest.layers.unwrap_or_default();
        if layers_wire.len() != config.rootfs.diff_ids.len() {
            return Err(ImageError::LayerCountMismatch {
                manifest: target.digest,
                config: manifest.config.digest,
                layers: layers_wire.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        let chain = chain_ids(&config.rootfs.diff_ids);
        let layers: Vec<Layer> = layers_wire
            .into_iter()
            .zip(config.rootfs.diff_ids.iter().zip(chain))
            .map(|(blob, (diff_id, chain_id))| Layer {
                blob: blob.into_target(),
                diff_id: *diff_id,
                chain_id,
            })
            .collect();
        let size =
            target.size + manifest.config.size + layers.iter().map(|l| l.blob.size).sum::<u64>();
        Ok(Self {
            target: Target {
                media_type,
                ..target
            },
            index,
            config: manifest.config.into_target(),
            layers,
            created: config.created,
            architecture: config.architecture.unwrap_or_default(),
            os: config.os.unwrap_or_default(),
            size,
        })
    }
}

/// Chain IDs for a stack of diff IDs (bottom first), by the OCI rule:
/// the first chain ID is the first diff ID, each next one is
/// `sha256(parent_chain_id + " " + diff_id)` over their string forms.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => *diff_id,
            Some(parent) => {
                let mut d = Digester::new();
                d.update(parent.to_string().as_bytes());
                d.update(b" ");
                d.update(diff_id.to_string().as_bytes());
                d.finish()
            }
        };
        out.push(next);
    }
    out
}

/// True for the OCI and Docker schema 2 image manifest media types.
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// True for the OCI index and Docker manifest list media types.
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

/// Reads a whole manifest or config blob, refusing absurd sizes.
pub(crate) fn read_json_blob(
    store: &ContentStore,
    what: &'static str,
    digest: &Digest,
) -> Result<Vec<u8>, ImageError> {
    let content = |source| ImageError::Content {
        what,
        digest: *digest,
        source: Box::new(source),
    };
    let size = store.info(digest).map_err(content)?;
    if size > MAX_JSON_BLOB {
        return Err(ImageError::TooLarge {
            what,
            digest: *digest,
            size,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    store
        .reader(digest)
        .map_err(content)?
        .read_to_end(&mut buf)
        .map_err(|source| ImageError::Content {
            what,
            digest: *digest,
            source: Box::new(ContentError::Io {
                op: "reading",
                path: store.blob_path(digest),
                source,
            }),
        })?;
    Ok(buf)
}

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what,
        digest: *digest,
        source,
    })
}

/// A descriptor as manifests and indexes write it; unknown fields ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescriptorWire {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<serde_json::Value>,
}

impl DescriptorWire {
    pub(crate) fn into_target(self) -> Target {
        Target {
            digest: self.digest,
            media_type: self.media_type,
            size: self.size,
        }
    }
}

/// An image manifest or index, parsed leniently: `layers` is present on
/// manifests, `manifests` on indexes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestWire {
    #[serde(default)]
    pub(crate) media_type: Option<String>,
    pub(crate) config: DescriptorWire,
    #[serde(default)]
    pub(crate) layers: Option<Vec<DescriptorWire>>,
}

/// An image index (OCI `index.json` or a Docker manifest list).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexWire {
    pub(crate) manifests: Vec<DescriptorWire>,
}

/// The parts of an image config Berth reads.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigWire {
    #[serde(default)]
    pub(crate) architecture: Option<String>,
    #[serde(default)]
    pub(crate) os: Option<String>,
    #[serde(default)]
    pub(crate) created: Option<String>,
    pub(crate) rootfs: RootFsWire,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RootFsWire {
    #[serde(default)]
    pub(crate) diff_ids: Vec<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = Digest::of(b"c");
        let ids = chain_ids(&[a, b, c]);
        assert_eq!(ids[0], a);
        let ab = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], ab);
        assert_eq!(ids[2], Digest::of(format!("{ab} {c}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}
