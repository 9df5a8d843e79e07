//! Fixture images: tar layers with every kind of entry a real image has
//! (`Tar`), busybox from `busybox-static`, gzip and zstd, configs,
//! manifests and indexes, pushed with Berth's registry client or written
//! as an OCI image layout (for `umoci` and `skopeo`).

use std::io::Write;
use std::path::Path;

use berth_core::{Digest, Reference, RegistryClient};
use bytes::Bytes;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

const MTIME: u64 = 1_700_000_000;

/// One blob of a fixture image.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub data: Bytes,
    pub media_type: String,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Self {
        Self {
            digest: Digest::of(&data),
            data: Bytes::from(data),
            media_type: media_type.to_owned(),
        }
    }
}

/// Builds an uncompressed layer tar.
pub struct Tar(tar::Builder<Vec<u8>>);

impl std::fmt::Debug for Tar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tar").finish_non_exhaustive()
    }
}

impl Default for Tar {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

impl Tar {
    pub fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.owned_file(path, mode, (0, 0), data)
    }

    pub fn owned_file(
        &mut self,
        path: &str,
        mode: u32,
        (uid, gid): (u64, u64),
        data: &[u8],
    ) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A file with `SCHILY.xattr.<name>` PAX records.
    pub fn xattr_file(&mut self, path: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> &mut Self {
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(n, v)| (format!("SCHILY.xattr.{n}"), *v))
            .collect();
        self.0
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self.file(path, 0o644, data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Fifo, 0o640, 0);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    /// A regular file whose name is written into the header as is, so it
    /// may contain `..` (the tar crate refuses to build such names).
    pub fn raw_name_file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// The tar, padded to a 10 KiB record as GNU tar does.
    pub fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        let mut tar = builder.into_inner().unwrap();
        tar.resize(tar.len().div_ceil(10240) * 10240, 0);
        tar
    }
}

pub fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(tar).unwrap();
    e.finish().unwrap()
}

pub fn zstd(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 3).unwrap()
}

/// busybox from `busybox-static` with a few applet symlinks.
pub fn busybox_tar() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut t = Tar::new();
    t.dir("bin/", 0o755).file("bin/busybox", 0o755, &busybox);
    for applet in ["sh", "ls", "cat", "echo"] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.finish()
}

/// An image: layers, config and manifest.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
    pub architecture: String,
}

impl TestImage {
    /// The amd64 image of `tars`, each compressed with `compress` and
    /// labelled `media_type`.
    pub fn build(tars: &[Vec<u8>], compress: fn(&[u8]) -> Vec<u8>, media_type: &str) -> Self {
        Self::build_for(tars, compress, media_type, "amd64")
    }

    /// [`TestImage::build`] for `architecture` (the layers are the same;
    /// the config, and so the manifest, differ).
    pub fn build_for(
        tars: &[Vec<u8>],
        compress: fn(&[u8]) -> Vec<u8>,
        media_type: &str,
        architecture: &str,
    ) -> Self {
        let layers = tars
            .iter()
            .map(|t| Blob::new(media_type, compress(t)))
            .collect();
        let diff_ids = tars.iter().map(|t| Digest::of(t)).collect();
        Self::from_layers(layers, diff_ids, architecture)
    }

    pub fn from_layers(layers: Vec<Blob>, diff_ids: Vec<Digest>, architecture: &str) -> Self {
        let diff_ids: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
        let config = serde_json::json!({
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = Blob::new(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
        let descriptors: Vec<_> = layers
            .iter()
            .map(|l: &Blob| {
                serde_json::json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.data.len()})
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest.to_string(), "size": config.data.len()},
            "layers": descriptors,
        });
        let manifest = Blob::new(OCI_MANIFEST, serde_json::to_vec_pretty(&manifest).unwrap());
        Self {
            layers,
            config,
            manifest,
            architecture: architecture.to_owned(),
        }
    }

    /// Pushes blobs and manifest, tagged with the reference's tag.
    pub async fn push(&self, client: &RegistryClient, reference: &Reference) {
        self.push_blobs(client, reference).await;
        let tag = reference.tag().unwrap_or("latest");
        let digest = client
            .put_manifest(reference, tag, OCI_MANIFEST, self.manifest.data.clone())
            .await
            .unwrap();
        assert_eq!(digest, self.manifest.digest);
    }

    pub async fn push_blobs(&self, client: &RegistryClient, reference: &Reference) {
        for blob in self.layers.iter().chain([&self.config]) {
            client
                .push_blob(reference, &blob.digest, blob.data.clone(), None)
                .await
                .unwrap();
        }
    }

    /// Writes an OCI image layout holding this image tagged `tag`.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for blob in self.layers.iter().chain([&self.config, &self.manifest]) {
            std::fs::write(blobs.join(blob.digest.hex()), &blob.data).unwrap();
        }
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": self.manifest.digest.to_string(),
                "size": self.manifest.data.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// An OCI index listing `images` as linux/<arch> entries (arm64 as v8).
pub fn index_of(images: &[&TestImage]) -> Blob {
    let manifests: Vec<_> = images
        .iter()
        .map(|i| {
            let mut platform = serde_json::json!({"os": "linux", "architecture": i.architecture});
            if i.architecture == "arm64" {
                platform["variant"] = "v8".into();
            }
            serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": i.manifest.digest.to_string(),
                "size": i.manifest.data.len(),
                "platform": platform,
            })
        })
        .collect();
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Blob::new(OCI_INDEX, serde_json::to_vec(&index).unwrap())
}

/// Writes an OCI image layout whose `tag` names the multi-platform `index`
/// over `images`.
pub fn write_oci_index_layout(dir: &Path, images: &[&TestImage], index: &Blob, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for image in images {
        for blob in image.layers.iter().chain([&image.config, &image.manifest]) {
            std::fs::write(blobs.join(blob.digest.hex()), &blob.data).unwrap();
        }
    }
    std::fs::write(blobs.join(index.digest.hex()), &index.data).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layout_index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_INDEX,
            "digest": index.digest.to_string(),
            "size": index.data.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&layout_index).unwrap(),
    )
    .unwrap();
}
