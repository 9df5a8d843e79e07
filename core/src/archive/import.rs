//! `docker import`: a root file system tar becomes a one-layer image.
//!
//! The layer is stored gzip-compressed: that is the form every registry and
//! client accepts, so the image can be pushed without recompressing, and a
//! rootfs usually shrinks to a third. The uncompressed stream is hashed on
//! the way for the diff ID, so the input is read exactly once.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::json;

use super::{ArchiveError, HashingWriter, Ingest, Result};
use crate::content::ContentStore;
use crate::digest::Digester;
use crate::image::{
    Image, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST, Target,
};
use crate::metadata::MetadataStore;
use crate::reference::Reference;

/// The image config settings `docker import --change` can set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportConfig {
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `ENV`, as `KEY=value`.
    pub env: Vec<String>,
    /// `WORKDIR`.
    pub working_dir: Option<String>,
    /// `USER`.
    pub user: Option<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`: ports as `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// `VOLUME`s: paths that get a volume in every container.
    pub volumes: Vec<String>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
    /// The history comment (`docker import --message`); default
    /// `Imported from -`.
    pub message: Option<String>,
}

/// Reads a root file system tar (plain or gzip) from `rootfs`, stores it
/// as a gzip layer with an OCI config (linux/amd64) and manifest, and
/// records the image, tagged `reference` if given. The tar is checked
/// entry by entry while it streams; a broken one stores nothing.
pub fn import(
    store: &ContentStore,
    metadata: &MetadataStore,
    rootfs: impl Read,
    reference: Option<&Reference>,
    config: &ImportConfig,
) -> Result<Image> {
    let mut ingest = Ingest::new(store, metadata)?;
    match import_inner(&mut ingest, store, metadata, rootfs, reference, config) {
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

fn import_inner(
    ingest: &mut Ingest<'_>,
    store: &ContentStore,
    metadata: &MetadataStore,
    rootfs: impl Read,
    reference: Option<&Reference>,
    config: &ImportConfig,
) -> Result<Image> {
    let mut input = BufReader::with_capacity(1 << 20, rootfs);
    let head = input.fill_buf().map_err(|source| ArchiveError::Read {
        path: "rootfs".into(),
        source,
    })?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let tar_stream: Box<dyn Read + '_> = if gzip {
        Box::new(GzDecoder::new(input))
    } else {
        Box::new(input)
    };

    let (diff_id, layer_digest, layer_size) =
        store_layer(ingest, store, |sink| stream_tar(tar_stream, sink))?;

    let created = rfc3339_now();
    let mut cfg = serde_json::Map::new();
    if let Some(cmd) = &config.cmd {
        cfg.insert("Cmd".into(), json!(cmd));
    }
    if let Some(ep) = &config.entrypoint {
        cfg.insert("Entrypoint".into(), json!(ep));
    }
    if !config.env.is_empty() {
        cfg.insert("Env".into(), json!(config.env));
    }
    if let Some(wd) = &config.working_dir {
        cfg.insert("WorkingDir".into(), json!(wd));
    }
    if let Some(user) = &config.user {
        cfg.insert("User".into(), json!(user));
    }
    if !config.labels.is_empty() {
        cfg.insert("Labels".into(), json!(config.labels));
    }
    let set = |list: &[String]| -> serde_json::Map<String, serde_json::Value> {
        list.iter().map(|k| (k.clone(), json!({}))).collect()
    };
    if !config.exposed_ports.is_empty() {
        cfg.insert("ExposedPorts".into(), set(&config.exposed_ports).into());
    }
    if !config.volumes.is_empty() {
        cfg.insert("Volumes".into(), set(&config.volumes).into());
    }
    if let Some(signal) = &config.stop_signal {
        cfg.insert("StopSignal".into(), json!(signal));
    }
    let image_config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{
            "created": created,
            "created_by": "berth import",
            "comment": config.message.as_deref().unwrap_or("Imported from -"),
        }],
    });
    let layers = vec![
        json!({"mediaType": MEDIA_TYPE_OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}),
    ];
    store_image(ingest, store, metadata, &image_config, layers, reference)
}

/// Stores `image_config` and an OCI manifest of it and `layers` (already
/// stored), then records the image under `reference`.
pub(super) fn store_image(
    ingest: &mut Ingest<'_>,
    store: &ContentStore,
    metadata: &MetadataStore,
    image_config: &serde_json::Value,
    layers: Vec<serde_json::Value>,
    reference: Option<&Reference>,
) -> Result<Image> {
    let config_bytes = serde_json::to_vec(image_config).unwrap_or_default();
    let config_digest = ingest.put_bytes(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
        "layers": layers,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let manifest_digest = ingest.put_bytes(&manifest_bytes)?;
    let image = Image::from_content(
        store,
        Target {
            digest: manifest_digest,
            media_type: MEDIA_TYPE_OCI_MANIFEST.to_owned(),
            size: manifest_bytes.len() as u64,
        },
        None,
    )?;
    let refs: Vec<Reference> = reference.cloned().into_iter().collect();
    metadata.put_image(&image, &refs, None)?;
    Ok(image)
}

/// Stores the uncompressed layer that `write` produces into `sink` as a
/// gzip blob; returns its diff ID, blob digest and blob size. A failed
/// `write` leaves no ingest behind.
pub(super) fn store_layer(
    ingest: &mut Ingest<'_>,
    store: &ContentStore,
    write: impl FnOnce(&mut LayerSink) -> Result<()>,
) -> Result<(crate::digest::Digest, crate::digest::Digest, u64)> {
    // uncompressed tar -> diff-id digester -> gzip -> hashing blob writer
    let ref_name = ingest.ingest_ref();
    let blob = HashingWriter {
        inner: store.writer(&ref_name, None)?,
        digester: Digester::new(),
    };
    let mut sink = LayerSink {
        diff: Digester::new(),
        gz: GzEncoder::new(blob, Compression::default()),
    };
    let written = write(&mut sink);
    let finished = written.and_then(|()| {
        sink.gz.try_finish().map_err(|source| ArchiveError::Read {
            path: "layer".into(),
            source,
        })
    });
    if let Err(e) = finished {
        drop(sink);
        store.abort_ingest(&ref_name)?;
        return Err(e);
    }
    let diff_id = sink.diff.finish();
    let blob = sink.gz.finish().map_err(|source| ArchiveError::Read {
        path: "layer".into(),
        source,
    })?;
    let (layer_digest, layer_size) = ingest.commit_hashed(blob)?;
    Ok((diff_id, layer_digest, layer_size))
}

/// Reads `tar_stream` to its end through `sink`, checking that it is a
/// well-formed tar on the way.
fn stream_tar(tar_stream: impl Read, sink: &mut LayerSink) -> Result<()> {
    let mut tee = TeeReader {
        inner: tar_stream,
        sink,
    };
    {
        let mut archive = tar::Archive::new(&mut tee);
        for entry in archive.entries().map_err(ArchiveError::NotATar)? {
            entry.map_err(ArchiveError::NotATar)?;
        }
    }
    // Whatever follows the end-of-archive blocks is part of the layer too.
    io::copy(&mut tee, &mut io::sink()).map_err(|source| ArchiveError::Read {
        path: "rootfs".into(),
        source,
    })?;
    Ok(())
}

/// Receives the uncompressed layer: hashes it for the diff ID and gzips it
/// into the blob writer.
pub(super) struct LayerSink {
    diff: Digester,
    gz: GzEncoder<HashingWriter<crate::content::Writer>>,
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.gz.write_all(buf)?;
        self.diff.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.gz.flush()
    }
}

/// Copies everything read from `inner` into `sink`.
struct TeeReader<'a, R> {
    inner: R,
    sink: &'a mut LayerSink,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Now as RFC 3339 UTC (`2026-11-29T00:22:51Z`).
pub(super) fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil-from-days (Howard Hinnant's algorithm), valid after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let now = super::rfc3339_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
