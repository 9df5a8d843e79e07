//! Domain operations and state of the daemon. Nothing here knows HTTP: the
//! `api` layer parses requests into calls on [`Engine`] and renders results.

pub(crate) mod activity;
pub(crate) mod build;
pub(crate) mod containers;
pub(crate) mod disk_usage;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod filters;
pub(crate) mod host;
pub(crate) mod images;
pub(crate) mod logs;
pub(crate) mod networks;
pub(crate) mod spec;
pub(crate) mod volumes;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

pub(crate) use error::{EngineError, ErrorKind};
pub(crate) use events::EventBus;
pub(crate) use host::HostFacts;
pub(crate) use images::ImageStore;

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub(crate) data_root: PathBuf,
    pub(crate) exec_root: PathBuf,
    /// Registries (`host[:port]`) spoken to over plain HTTP besides loopback.
    pub(crate) insecure_registries: Vec<String>,
    /// The default network's bridge; `None` (`--bridge none`): no default network.
    pub(crate) default_bridge: Option<String>,
    /// Parent of the containers' cgroups (`/berth`).
    pub(crate) cgroup_parent: String,
    /// Spare network namespaces per bridge network in use (0: none).
    pub(crate) network_pool: usize,
}

/// Container totals by state, for `GET /info`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ContainerCounts {
    pub(crate) running: usize,
    pub(crate) paused: usize,
    pub(crate) stopped: usize,
}

impl ContainerCounts {
    pub(crate) fn total(&self) -> usize {
        self.running + self.paused + self.stopped
    }
}

/// The daemon's state: the API layer holds it as `Arc<Engine>`.
#[derive(Debug)]
pub(crate) struct Engine {
    config: EngineConfig,
    id: String,
    host: HostFacts,
    events: Arc<EventBus>,
    images: ImageStore,
    networks: Arc<networks::Networks>,
    containers: Arc<containers::ContainerStore>,
    volumes: Arc<volumes::VolumeStore>,
    started: SystemTime,
    shutting_down: watch::Sender<bool>,
}

impl Engine {
    pub(crate) fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let id = load_or_create_engine_id(&config.data_root)?;
        let host = HostFacts::gather(&config.data_root);
        let images = ImageStore::open(&config.data_root).map_err(EngineError::Images)?;
        build::clean_stale(&config.data_root, images.stores());
        let events = Arc::new(EventBus::default());
        let volumes = volumes::VolumeStore::open(
            &config.data_root,
            images.stores().metadata.clone(),
            events.clone(),
        )
        .map_err(EngineError::Volumes)?;
        let networks = Arc::new(networks::Networks::new(
            &config.data_root,
            &config.exec_root,
            config.default_bridge.clone(),
            config.network_pool,
            events.clone(),
        ));
        networks
            .start()
            .map_err(|e| EngineError::Networks(Box::new(e)))?;
        let containers = containers::ContainerStore::open(
            &config.data_root,
            &config.exec_root,
            &config.cgroup_parent,
            events.clone(),
            images.stores().clone(),
            volumes.clone(),
            networks.clone(),
        )
        .map_err(|e| EngineError::Containers(Box::new(e)))?;
        Ok(Engine {
            config,
            id,
            host,
            events,
            images,
            networks,
            containers,
            volumes,
            started: SystemTime::now(),
            shutting_down: watch::channel(false).0,
        })
    }

    pub(crate) fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Stable identity of this daemon's data root (Docker's `ID` in `/info`).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn host(&self) -> &HostFacts {
        &self.host
    }

    pub(crate) fn networks(&self) -> &Arc<networks::Networks> {
        &self.networks
    }

    pub(crate) fn events(&self) -> &EventBus {
        &self.events
    }

    #[allow(dead_code)] // for uptime reporting once containers land
    pub(crate) fn started(&self) -> SystemTime {
        self.started
    }

    /// Containers by state.
    pub(crate) fn container_counts(&self) -> ContainerCounts {
        self.container_counts_now()
    }

    /// Number of images.
    pub(crate) fn image_count(&self) -> usize {
        self.images.count()
    }

    /// Tells long-running operations (event streams, later attach and logs
    /// follows) to finish so connections can close.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
    }

    /// Resolves once [`Engine::begin_shutdown`] was called.
    pub(crate) fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutting_down.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}

/// Reads `<data_root>/engine-id`, creating it with a random UUID the first time.
fn load_or_create_engine_id(data_root: &Path) -> Result<String, EngineError> {
    let path = data_root.join("engine-id");
    let io_err = |what, source| EngineError::Io {
        what,
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_err("reading", err)),
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| io_err("reading random bytes for", e))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // UUID version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let tmp = data_root.join("engine-id.tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(id.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| io_err("writing", e))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_id_is_a_uuid_and_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_engine_id(dir.path()).unwrap();
        assert_eq!(first.len(), 36);
        assert_eq!(first.as_bytes()[14], b'4');
        assert_eq!(load_or_create_engine_id(dir.path()).unwrap(), first);
    }
}
