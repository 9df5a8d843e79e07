//! `docker save`: one tar that is both a docker-archive and an OCI layout.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use serde_json::json;

use super::{ArchiveError, Result};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::image::{Image, MEDIA_TYPE_OCI_INDEX};
use crate::metadata::MetadataStore;
use crate::reference::Reference;

/// Writes the images `names` select to `out` as a tar stream, blobs
/// straight from `store`: for each image its manifest, config and layers
/// under `blobs/sha256/`, then `oci-layout`, `index.json`, `manifest.json`
/// and `repositories`. As in `docker save`, a tagged name saves that tag, a
/// bare repository name every tag of the repository, an ID (or unique
/// prefix, as [`MetadataStore::resolve`] takes it) the image with all its
/// tags. Nothing is written to disk.
pub fn save(
    store: &ContentStore,
    metadata: &MetadataStore,
    names: &[&str],
    out: impl Write,
) -> Result<()> {
    // Group the requested names by image, keeping the order of first mention.
    let mut images: Vec<(Image, Vec<Reference>)> = Vec::new();
    let all_refs = metadata.references()?;
    for name in names {
        for (image, tags) in select(metadata, &all_refs, name)? {
            match images
                .iter_mut()
                .find(|(i, _)| i.target.digest == image.target.digest)
            {
                Some((_, existing)) => {
                    for t in tags {
                        if !existing.contains(&t) {
                            existing.push(t);
                        }
                    }
                }
                None => images.push((image, tags)),
            }
        }
    }

    // Check every blob first, so a missing one fails before any output.
    for (image, _) in &images {
        for digest in image.content_digests().filter(|d| Some(*d) != image.index) {
            store.info(&digest)?;
        }
    }

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    let mut written: HashSet<Digest> = HashSet::new();
    for (image, _) in &images {
        for digest in [image.target.digest, image.config.digest]
            .into_iter()
            .chain(image.layers.iter().map(|l| l.blob.digest))
        {
            if written.insert(digest) {
                append_blob(&mut tar, store, &digest)?;
            }
        }
    }

    let oci_layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append_file(&mut tar, "oci-layout", oci_layout)?;
    append_file(&mut tar, "index.json", &index_json(&images))?;
    append_file(&mut tar, "manifest.json", &manifest_json(&images))?;
    append_file(&mut tar, "repositories", &repositories_json(&images))?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ArchiveError::Write)?;
    Ok(())
}

/// The images and tags one name selects, as `docker save` does: a bare
/// repository name (`busybox`) selects every tag of that repository; a
/// tagged name selects that tag; an ID or digest selects the image with all
/// its tags.
fn select(
    metadata: &MetadataStore,
    all_refs: &[(Reference, Digest)],
    name: &str,
) -> Result<Vec<(Image, Vec<Reference>)>> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let name_only = !last.contains(':') && !last.contains('@');
    if let (true, Ok(r)) = (name_only, Reference::parse(name)) {
        let repo = r.name();
        let mut out: Vec<(Image, Vec<Reference>)> = Vec::new();
        for (tag, digest) in all_refs {
            if tag.name() != repo || tag.tag().is_none() {
                continue;
            }
            let Some(image) = metadata.get_image(digest)? else {
                continue;
            };
            match out.iter_mut().find(|(i, _)| i.target.digest == *digest) {
                Some((_, tags)) => tags.push(tag.clone()),
                None => out.push((image, vec![tag.clone()])),
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    let image = metadata.resolve(name)?;
    let tags = match Reference::parse(name) {
        Ok(r) if r.tag().is_some() && metadata.get_by_ref(&r)?.as_ref() == Some(&image) => {
            vec![r]
        }
        _ => all_refs
            .iter()
            .filter(|(r, d)| *d == image.target.digest && r.tag().is_some())
            .map(|(r, _)| r.clone())
            .collect(),
    };
    Ok(vec![(image, tags)])
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn index_json(images: &[(Image, Vec<Reference>)]) -> Vec<u8> {
    let mut manifests = Vec::new();
    for (image, tags) in images {
        let descriptor = |annotations: Option<serde_json::Value>| {
            let mut d = json!({
                "mediaType": image.target.media_type,
                "digest": image.target.digest,
                "size": image.target.size,
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if tags.is_empty() {
            manifests.push(descriptor(None));
        }
        for t in tags {
            manifests.push(descriptor(Some(json!({
                "io.containerd.image.name": t.to_string(),
                "org.opencontainers.image.ref.name": t.tag().unwrap_or_default(),
            }))));
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&index).unwrap_or_default()
}

fn manifest_json(images: &[(Image, Vec<Reference>)]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = images
        .iter()
        .map(|(image, tags)| {
            json!({
                "Config": blob_path(&image.config.digest),
                "RepoTags": tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
                "Layers": image.layers.iter().map(|l| blob_path(&l.blob.digest)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_vec(&entries).unwrap_or_default()
}

/// The legacy `repositories` file: familiar name -> tag -> top layer.
fn repositories_json(images: &[(Image, Vec<Reference>)]) -> Vec<u8> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, tags) in images {
        let Some(top) = image.layers.last() else {
            continue;
        };
        for t in tags {
            repos.entry(t.familiar_name()).or_default().insert(
                t.tag().unwrap_or_default().to_owned(),
                top.blob.digest.hex(),
            );
        }
    }
    serde_json::to_vec(&repos).unwrap_or_default()
}

fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(0, tar::EntryType::Directory, 0o755);
    tar.append_data(&mut h, path, io::empty())
        .map_err(ArchiveError::Write)
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = header(data.len() as u64, tar::EntryType::Regular, 0o644);
    tar.append_data(&mut h, path, data)
        .map_err(ArchiveError::Write)
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &ContentStore,
    digest: &Digest,
) -> Result<()> {
    let size = store.info(digest)?;
    let file = store.reader(digest)?;
    let mut h = header(size, tar::EntryType::Regular, 0o444);
    // `take` guards the tar framing if the file were to grow under us.
    tar.append_data(&mut h, blob_path(digest), io::Read::take(file, size))
        .map_err(ArchiveError::Write)
}
