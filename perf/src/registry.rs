//! A real registry on loopback for the pull scenarios: Debian's
//! `docker-registry` (the reference distribution server) serving a temp
//! dir, seeded with `skopeo copy` from OCI layouts. Killed on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::engine;

#[derive(Debug)]
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub(crate) addr: String,
}

impl Registry {
    /// Starts `docker-registry` on a free loopback port with its storage
    /// in `dir`, and waits until it answers.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = engine::which("docker-registry")
            .context("docker-registry is not installed (berth-perf setup)")?;
        fs::create_dir_all(dir.join("storage"))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )?;
        let log = fs::File::create(dir.join("registry.log"))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        let registry = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&registry.addr).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {} within 15 s: {}",
                    registry.addr,
                    fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// Pushes the image tagged `latest` in the OCI layout `layout` as
    /// `<repo>:<tag>`, blobs as they are (no recompression).
    pub(crate) fn push_layout(&self, layout: &Path, repo: &str, tag: &str) -> anyhow::Result<()> {
        let status = Command::new("skopeo")
            // Without --preserve-digests skopeo may substitute a layer the
            // registry already has in another compression (the zstd image
            // would be pushed with the gzip variant's blobs).
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .status()
            .context("running skopeo (berth-perf setup installs it)")?;
        if !status.success() {
            bail!(
                "skopeo copy of {} to {repo}:{tag} failed: {status}",
                layout.display()
            );
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A layer of an image in an OCI layout: its digest, media type and
/// (compressed) size.
#[derive(Debug, Clone)]
pub(crate) struct LayerRef {
    pub(crate) digest: String,
    pub(crate) media_type: String,
    pub(crate) size: u64,
}

/// The layers of the image tagged `latest` in an OCI layout, in order.
pub(crate) fn layout_layers(layout: &Path) -> anyhow::Result<Vec<LayerRef>> {
    let read_json = |p: PathBuf| -> anyhow::Result<serde_json::Value> {
        let text = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        layout.join("blobs/sha256").join(hex)
    };
    let index = read_json(layout.join("index.json"))?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json has no manifest")?;
    let manifest = read_json(blob(manifest_digest))?;
    let layers = manifest["layers"]
        .as_array()
        .context("manifest has no layers")?;
    layers
        .iter()
        .map(|l| {
            Ok(LayerRef {
                digest: l["digest"].as_str().context("layer without digest")?.into(),
                media_type: l["mediaType"].as_str().unwrap_or_default().into(),
                size: l["size"].as_u64().context("layer without size")?,
            })
        })
        .collect()
}
