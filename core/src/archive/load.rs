//! `docker load`: docker-archive (legacy and blobs layouts) and OCI layout
//! tarballs.

use std::collections::HashMap;
use std::io::{self, Read};

use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::json;

use super::{ArchiveError, Ingest, Result};
use crate::content::ContentStore;
use crate::digest::{Digest, Digester};
use crate::image::{
    self, ConfigWire, DescriptorWire, Image, IndexWire, MAX_JSON_BLOB, MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER_ZSTD,
    MEDIA_TYPE_OCI_MANIFEST, Target,
};
use crate::metadata::MetadataStore;
use crate::reference::Reference;

/// Files outside `blobs/` are kept in memory when they are JSON (metadata
/// files, legacy `<id>.json` configs) up to [`MAX_JSON_BLOB`] or anything up
/// to this size; larger ones are streamed into the store.
const SMALL_FILE: u64 = 64 << 10;

/// One image a load recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image record.
    pub image: Image,
    /// The references now pointing at it (none: a dangling image).
    pub references: Vec<Reference>,
}

/// A `manifest.json` entry.
#[derive(Debug, Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// What the streaming pass saw.
#[derive(Debug, Default)]
struct Files {
    /// Small non-blob files, by normalised path.
    small: HashMap<String, Vec<u8>>,
    /// Files streamed into the store, by normalised path.
    stored: HashMap<String, (Digest, u64)>,
    /// Symbolic links (legacy layouts link duplicate layers), path -> target.
    links: HashMap<String, String>,
}

/// Reads an image archive from `input` and records its images; returns them.
/// On any error nothing is recorded and the blobs the load added are
/// removed again.
pub fn load(
    store: &ContentStore,
    metadata: &MetadataStore,
    input: impl Read,
) -> Result<Vec<LoadedImage>> {
    let mut ingest = Ingest::new(store, metadata)?;
    match load_inner(&mut ingest, store, metadata, input) {
        Ok(images) => {
            ingest.finish()?;
            Ok(images)
        }
        Err(e) => {
            ingest.rollback();
            Err(e)
        }
    }
}

fn load_inner(
    ingest: &mut Ingest<'_>,
    store: &ContentStore,
    metadata: &MetadataStore,
    input: impl Read,
) -> Result<Vec<LoadedImage>> {
    let files = read_entries(ingest, input)?;
    let mut images: Vec<LoadedImage> = Vec::new();
    if let Some(bytes) = files.small.get("manifest.json") {
        let entries: Vec<DockerEntry> = parse("manifest.json", bytes)?;
        // The OCI side of a Docker 25+ archive has the original manifests;
        // prefer them so a save/load round trip keeps every digest.
        // manifest.json is authoritative here: an OCI side that cannot be
        // read (e.g. an index whose other platforms were not saved) is
        // ignored, and the manifest is rebuilt from manifest.json instead.
        let oci = files
            .small
            .get("index.json")
            .and_then(|b| oci_manifests(store, &files, b).ok())
            .unwrap_or_default();
        for entry in entries {
            let (config, _) = resolve_file(ingest, &files, &entry.config, "manifest.json")?;
            let original = oci.iter().find(|(i, _)| i.config.digest == config).cloned();
            let image = match original {
                Some((image, _)) => image,
                None => build_manifest(ingest, store, &files, &entry)?,
            };
            let mut references = Vec::new();
            for tag in entry.repo_tags.unwrap_or_default() {
                let r = Reference::parse(&tag).map_err(|source| ArchiveError::InvalidName {
                    name: tag.clone(),
                    source,
                })?;
                references.push(r);
            }
            images.push(LoadedImage { image, references });
        }
    } else if let Some(bytes) = files.small.get("index.json") {
        for (image, references) in oci_manifests(store, &files, bytes)? {
            images.push(LoadedImage { image, references });
        }
    } else {
        return Err(ArchiveError::NoManifest);
    }
    for loaded in &images {
        for d in loaded.image.content_digests() {
            if !store.exists(&d) {
                return Err(ArchiveError::MissingBlob(d));
            }
        }
    }
    for loaded in &images {
        metadata.put_image(&loaded.image, &loaded.references, None)?;
    }
    Ok(images)
}

fn parse<T: for<'de> Deserialize<'de>>(path: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::Json {
        path: path.to_owned(),
        source,
    })
}

/// `./a//b` -> `a/b`; `..` components are resolved lexically.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The one pass over the tar: blobs go to the store as they stream by.
fn read_entries(ingest: &mut Ingest<'_>, input: impl Read) -> Result<Files> {
    let mut files = Files::default();
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(ArchiveError::NotATar)?;
    for entry in entries {
        let mut entry = entry.map_err(ArchiveError::NotATar)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalise(&raw_path);
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Ok(Some(target)) = entry.link_name() {
                let target = target.to_string_lossy().into_owned();
                let resolved = if kind.is_symlink() {
                    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                    normalise(&format!("{parent}/{target}"))
                } else {
                    normalise(&target)
                };
                files.links.insert(path, resolved);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        let read_err = |source| ArchiveError::Read {
            path: path.clone(),
            source,
        };
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            if let Ok(digest) = Digest::from_hex_str(hex) {
                ingest.copy_known(&mut entry, digest, size)?;
                files.stored.insert(path, (digest, size));
                continue;
            }
        }
        if size <= SMALL_FILE || (path.ends_with(".json") && size <= MAX_JSON_BLOB) {
            let mut buf = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut buf).map_err(read_err)?;
            files.small.insert(path, buf);
        } else {
            let stored = ingest.copy_unknown(&mut entry, &path)?;
            files.stored.insert(path, stored);
        }
    }
    Ok(files)
}

/// Finds `path` (following links), storing it first if it is a small file
/// held in memory; returns its digest and size.
fn resolve_file(
    ingest: &mut Ingest<'_>,
    files: &Files,
    path: &str,
    named_by: &str,
) -> Result<(Digest, u64)> {
    let mut path = normalise(path);
    for _ in 0..16 {
        match files.links.get(&path) {
            Some(target) => path = target.clone(),
            None => break,
        }
    }
    if let Some(found) = files.stored.get(&path) {
        return Ok(*found);
    }
    if let Some(bytes) = files.small.get(&path) {
        return Ok((ingest.put_bytes(bytes)?, bytes.len() as u64));
    }
    Err(ArchiveError::MissingFile {
        path,
        named_by: named_by.to_owned(),
    })
}

/// The images an OCI `index.json` names, with their names. Nested indexes
/// contribute their linux/amd64 manifest (or their only one).
fn oci_manifests(
    store: &ContentStore,
    files: &Files,
    index_bytes: &[u8],
) -> Result<Vec<(Image, Vec<Reference>)>> {
    let index: IndexWire = parse("index.json", index_bytes)?;
    let mut out: Vec<(Image, Vec<Reference>)> = Vec::new();
    for desc in index.manifests {
        let name = image_name(&desc)?;
        let (target, parent) = if image::is_index(&desc.media_type) {
            if !files.stored.values().any(|(d, _)| *d == desc.digest) && !store.exists(&desc.digest)
            {
                return Err(ArchiveError::MissingBlob(desc.digest));
            }
            let bytes = image::read_json_blob(store, "index", &desc.digest)?;
            let nested: IndexWire = image::parse_json("index", &desc.digest, &bytes)?;
            let Some(child) = pick_platform(nested.manifests) else {
                continue;
            };
            (child.into_target(), Some(desc.digest))
        } else {
            (desc.into_target(), None)
        };
        if !store.exists(&target.digest) {
            return Err(ArchiveError::MissingBlob(target.digest));
        }
        let image = Image::from_content(store, target, parent)?;
        match out
            .iter_mut()
            .find(|(i, _)| i.target.digest == image.target.digest)
        {
            Some((_, refs)) => refs.extend(name),
            None => out.push((image, name.into_iter().collect())),
        }
    }
    Ok(out)
}

/// The image's name from its index annotations: containerd's full name, or
/// `org.opencontainers.image.ref.name` when that is a full reference (a
/// bare tag names no repository, so the image stays dangling).
fn image_name(desc: &DescriptorWire) -> Result<Option<Reference>> {
    let Some(a) = &desc.annotations else {
        return Ok(None);
    };
    let full = a.get("io.containerd.image.name").or_else(|| {
        a.get("org.opencontainers.image.ref.name")
            .filter(|n| n.contains('/') || n.contains(':'))
    });
    match full {
        Some(n) => Reference::parse(n)
            .map(Some)
            .map_err(|source| ArchiveError::InvalidName {
                name: n.clone(),
                source,
            }),
        None => Ok(None),
    }
}

fn pick_platform(manifests: Vec<DescriptorWire>) -> Option<DescriptorWire> {
    if manifests.len() == 1 {
        return manifests.into_iter().next();
    }
    manifests.into_iter().find(|m| {
        m.platform.as_ref().is_some_and(|p| {
            p.get("architecture").and_then(|v| v.as_str()) == Some("amd64")
                && p.get("os").and_then(|v| v.as_str()) == Some("linux")
        })
    })
}

/// Builds and stores an OCI manifest for a docker-archive entry: the
/// layers are the archive's files (usually uncompressed tars, whose digest
/// is the diff ID; compressed ones are decompressed once to check it).
fn build_manifest(
    ingest: &mut Ingest<'_>,
    store: &ContentStore,
    files: &Files,
    entry: &DockerEntry,
) -> Result<Image> {
    let (config_digest, config_size) = resolve_file(ingest, files, &entry.config, "manifest.json")?;
    let config_bytes = image::read_json_blob(store, "config", &config_digest)?;
    let config: ConfigWire = image::parse_json("config", &config_digest, &config_bytes)?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != entry.layers.len() {
        return Err(ArchiveError::from(image::ImageError::LayerCountMismatch {
            manifest: config_digest,
            config: config_digest,
            layers: entry.layers.len(),
            diff_ids: diff_ids.len(),
        }));
    }
    let mut layers = Vec::new();
    for (path, expected) in entry.layers.iter().zip(diff_ids) {
        let (digest, size) = resolve_file(ingest, files, path, "manifest.json")?;
        let (media_type, diff_id) = layer_diff_id(store, &digest)?;
        if diff_id != *expected {
            return Err(ArchiveError::DiffIdMismatch {
                path: path.clone(),
                expected: *expected,
                actual: diff_id,
            });
        }
        layers.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let digest = ingest.put_bytes(&bytes)?;
    let target = Target {
        digest,
        media_type: MEDIA_TYPE_OCI_MANIFEST.to_owned(),
        size: bytes.len() as u64,
    };
    Ok(Image::from_content(store, target, None)?)
}

/// The layer's media type by its magic bytes, and its diff ID.
fn layer_diff_id(store: &ContentStore, digest: &Digest) -> Result<(&'static str, Digest)> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut store.reader(digest)?, &mut magic).map_err(|source| {
        ArchiveError::Read {
            path: format!("blob {digest}"),
            source,
        }
    })?;
    let hash = |r: &mut dyn Read| -> Result<Digest> {
        let mut d = Digester::new();
        io::copy(r, &mut d).map_err(|source| ArchiveError::Read {
            path: format!("layer {digest}"),
            source,
        })?;
        Ok(d.finish())
    };
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let mut r = GzDecoder::new(store.reader(digest)?);
        Ok((MEDIA_TYPE_OCI_LAYER_GZIP, hash(&mut r)?))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let mut r =
            zstd::Decoder::new(store.reader(digest)?).map_err(|source| ArchiveError::Read {
                path: format!("layer {digest}"),
                source,
            })?;
        Ok((MEDIA_TYPE_OCI_LAYER_ZSTD, hash(&mut r)?))
    } else {
        Ok((MEDIA_TYPE_OCI_LAYER, *digest))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise("./manifest.json"), "manifest.json");
        assert_eq!(normalise("a//b/./c"), "a/b/c");
        assert_eq!(normalise("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalise("../../x"), "x");
    }
}
