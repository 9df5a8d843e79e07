//! Test fixtures for the registry client: a real `docker-registry` on a free
//! loopback port (killed on drop), a scriptable HTTP server for what a real
//! registry cannot be made to do, and a busybox image built from
//! `/bin/busybox`.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::Digest;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry serve` process with its own storage.
#[derive(Debug)]
pub struct TestRegistry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl TestRegistry {
    /// Starts a registry; with `htpasswd = Some((user, pass))` it requires Basic auth.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("storage").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut reg = Self {
            dir,
            port,
            child: None,
        };
        reg.spawn();
        reg
    }

    fn spawn(&mut self) {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A reference `127.0.0.1:PORT/<rest>`.
    pub fn reference(&self, rest: &str) -> berth_core::Reference {
        berth_core::Reference::parse(&format!("{}/{rest}", self.host())).unwrap()
    }

    /// Where the registry keeps the bytes of blob `digest`.
    pub fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .join("data")
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

pub type Handler = Arc<
    dyn Fn(Request<Bytes>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// A small HTTP/1 server on a free loopback port running `handler`; the
/// accept loop is aborted on drop.
pub struct TestServer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("port", &self.port)
            .finish()
    }
}

impl TestServer {
    pub async fn start(handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, Infallible>(handler(Request::from_parts(parts, body)).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { port, task }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards `req` to `upstream` (host:port), returning its response.
pub async fn proxy(upstream: &str, req: Request<Bytes>) -> Response<Full<Bytes>> {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{upstream}{path}").parse().unwrap();
    parts.headers.remove(http::header::HOST);
    parts.headers.remove(http::header::AUTHORIZATION);
    let resp = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, Full::new(body))
}

/// One blob of a fixture image.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub data: Bytes,
    pub media_type: &'static str,
}

impl Blob {
    fn new(media_type: &'static str, data: Vec<u8>) -> Self {
        Self {
            digest: Digest::of(&data),
            data: Bytes::from(data),
            media_type,
        }
    }
}

/// A busybox OCI image: one gzip'd layer, a config and a manifest.
#[derive(Debug, Clone)]
pub struct BusyboxImage {
    pub layer: Blob,
    pub config: Blob,
    pub manifest: Blob,
    pub architecture: String,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The gzip'd layer: `bin/busybox` plus a few applet symlinks.
pub fn busybox_layer() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    tar.append_data(&mut dir, "bin/", std::io::empty()).unwrap();
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o755);
    file.set_size(busybox.len() as u64);
    file.set_mtime(0);
    tar.append_data(&mut file, "bin/busybox", &busybox[..])
        .unwrap();
    for applet in ["sh", "ls", "cat", "echo"] {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_mode(0o777);
        link.set_size(0);
        link.set_mtime(0);
        tar.append_link(&mut link, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

impl BusyboxImage {
    /// Builds the image for `architecture` (the layer is the same; the
    /// config, and so the manifest, differ).
    pub fn build(layer: &[u8], architecture: &str) -> Self {
        let diff_id = {
            let mut raw = Vec::new();
            let mut gz = flate2::read::GzDecoder::new(layer);
            std::io::copy(&mut gz, &mut raw).unwrap();
            Digest::of(&raw)
        };
        let layer = Blob::new(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            layer.to_vec(),
        );
        let config = serde_json::json!({
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        });
        let config = Blob::new(
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(&config).unwrap(),
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config.media_type, "digest": config.digest.to_string(), "size": config.data.len()},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": layer.data.len()}],
        });
        let manifest = Blob::new(OCI_MANIFEST, serde_json::to_vec_pretty(&manifest).unwrap());
        Self {
            layer,
            config,
            manifest,
            architecture: architecture.to_owned(),
        }
    }

    /// An OCI index listing `images` as linux/<arch> entries.
    pub fn index(images: &[&BusyboxImage]) -> Blob {
        let manifests: Vec<_> = images
            .iter()
            .map(|i| {
                let mut platform =
                    serde_json::json!({"os": "linux", "architecture": i.architecture});
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

    /// Writes an OCI image layout holding this image tagged `tag`.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for blob in [&self.layer, &self.config, &self.manifest] {
            let mut f = std::fs::File::create(blobs.join(blob.digest.hex())).unwrap();
            f.write_all(&blob.data).unwrap();
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

/// Writes an OCI image layout whose `tag` names the multi-platform `index`
/// over `images`.
pub fn write_oci_index_layout(dir: &Path, images: &[&BusyboxImage], index: &Blob, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for image in images {
        for blob in [&image.layer, &image.config, &image.manifest] {
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

/// `skopeo copy <extra args> <src> docker://<dest>` to a plain-HTTP registry.
pub fn skopeo_copy(extra: &[&str], src: &str, dest: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .args(extra)
        .arg(src)
        .arg(format!("docker://{dest}"))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo copy {src} {dest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
