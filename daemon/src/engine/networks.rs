//! Networks as Docker users see them, on top of `berth-network`.
//!
//! [`Networks`] owns the host side: the [`Networking`] facade (bridges,
//! veths, IPAM, the `ip berth` nftables table), Docker's view of each
//! network (ID, driver, labels, created time) and, per running container,
//! what must live as long as it does (published ports' host sockets, the
//! embedded DNS server). Its methods block: they are called from the
//! container store's blocking threads and from `spawn_blocking` in the
//! API, and drive the async netlink work on the daemon's runtime.
//!
//! State: `<data_root>/network/` holds berth-network's files
//! (`networks/`, `ipam/`) and `docker/<name>.json` (Docker's fields);
//! container namespaces are bind-mounted at `<exec_root>/netns/<id>`.
//!
//! Spare endpoints (`--network-pool`, see `berth_network::Spare`) are
//! made by a `netpool` thread after a container's exit, or once starts
//! pause, never beside a start: on two cores, making namespaces next to
//! a start slowed that start down.
//!
//! Networking is opened at start when there is something to restore or
//! the default bridge is enabled (the nft table is rebuilt then: crash
//! cleanup), else on the first `network create`: a daemon started with
//! `--bridge none` and no networks never touches the host's network.

mod endpoints;

pub(crate) use endpoints::{Attachment, ContainerNames, EndpointState, FilesInput, write_files};

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use berth_network::{DnsRegistry, Ipv4Net, NetNs, NetworkInfo, NetworkSpec, Networking};
use serde::{Deserialize, Serialize};

use super::events::{Event, EventType, unix_nanos};
use super::{ErrorKind, EventBus};
use crate::log;

/// The default network's name, as in Docker.
pub(crate) const DEFAULT_NETWORK: &str = "bridge";
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// Why a network operation failed; texts are moby's where clients match.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    NameExists(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse { name: String, id: String },
    #[error("plugin \"{0}\" not found")]
    Driver(String),
    #[error("{0}")]
    Invalid(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error(
        "container sharing network namespace with another container or host cannot be connected to any other network"
    )]
    NoOwnNamespace,
    #[error(transparent)]
    Net(#[from] berth_network::NetworkError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl NetError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::NameExists(_)
            | Self::Predefined(_)
            | Self::InUse { .. }
            | Self::AlreadyConnected { .. } => ErrorKind::Conflict,
            Self::Driver(_) => ErrorKind::NotFound,
            Self::Invalid(_) | Self::NotConnected { .. } | Self::NoOwnNamespace => {
                ErrorKind::InvalidArgument
            }
            Self::Net(e) => e.kind().into(),
            Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.to_owned();
    move |source| NetError::Io { what, path, source }
}

/// Docker's fields of a network, persisted beside berth-network's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct NetworkMeta {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `bridge`, `host` or `null`.
    pub(crate) driver: String,
    /// Unix nanoseconds.
    pub(crate) created: i64,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) options: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) internal: bool,
    #[serde(default)]
    pub(crate) attachable: bool,
}

/// A network with its addressing (bridge networks only).
#[derive(Debug, Clone)]
pub(crate) struct NetworkView {
    pub(crate) meta: NetworkMeta,
    pub(crate) info: Option<NetworkInfo>,
}

impl NetworkView {
    pub(crate) fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.meta.name.as_str())
    }
}

/// What `network create` asks for, decoded by the API layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateNetwork {
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) subnet: Option<String>,
    pub(crate) gateway: Option<String>,
    pub(crate) internal: bool,
    pub(crate) attachable: bool,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) options: BTreeMap<String, String>,
}

/// What lives as long as a running container's network.
#[derive(Debug, Default)]
struct Live {
    /// By network name.
    endpoints: HashMap<String, berth_network::Endpoint>,
    dns: Option<berth_network::EmbeddedDns>,
    /// Where the embedded DNS relays other names.
    upstream: Vec<std::net::SocketAddr>,
}

/// Host-side networking of berthd (see the module docs).
#[derive(Debug)]
pub(crate) struct Networks {
    handle: tokio::runtime::Handle,
    state_dir: PathBuf,
    netns_dir: PathBuf,
    default_bridge: Option<String>,
    /// Spare endpoints per network in use (`--network-pool`).
    pool_size: usize,
    /// Wakes the `netpool` thread (present once networking is open).
    refill: Mutex<Option<Sender<Refill>>>,
    net: Mutex<Option<Arc<Networking>>>,
    /// Serialises network create/remove (name checks, meta files).
    changes: Mutex<()>,
    dns: DnsRegistry,
    live: Mutex<HashMap<String, Live>>,
    events: Arc<EventBus>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// 64 random hex digits (network and endpoint IDs).
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        // Never reached on Linux; fall back to the clock so IDs still differ.
        let now = unix_nanos(SystemTime::now()).to_le_bytes();
        bytes[..8].copy_from_slice(&now);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Networks {
    /// Opens the network state; bridges and rules come back at [`Networks::start`].
    pub(crate) fn new(
        data_root: &Path,
        exec_root: &Path,
        default_bridge: Option<String>,
        pool_size: usize,
        events: Arc<EventBus>,
    ) -> Networks {
        Networks {
            handle: tokio::runtime::Handle::current(),
            state_dir: data_root.join("network"),
            netns_dir: exec_root.join("netns"),
            default_bridge,
            pool_size,
            refill: Mutex::new(None),
            net: Mutex::new(None),
            changes: Mutex::new(()),
            dns: DnsRegistry::new(),
            live: Mutex::new(HashMap::new()),
            events,
        }
    }

    /// Runs async networking work from a blocking caller.
    fn block<F: Future>(&self, future: F) -> F::Output {
        tokio::task::block_in_place(|| self.handle.block_on(future))
    }

    fn meta_dir(&self) -> PathBuf {
        self.state_dir.join("docker")
    }

    /// Daemon start: the predefined networks' records, then (if anything
    /// needs it) networking with its crash cleanup and the default bridge.
    pub(crate) fn start(&self) -> Result<(), NetError> {
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if self.meta(name)?.is_none() {
                self.save_meta(&NetworkMeta {
                    id: random_hex(),
                    name: name.to_owned(),
                    driver: driver.to_owned(),
                    created: unix_nanos(SystemTime::now()),
                    ..NetworkMeta::default()
                })?;
            }
        }
        let has_bridges = self.metas()?.iter().any(|m| m.driver == "bridge");
        if self.default_bridge.is_none() && !has_bridges {
            return Ok(());
        }
        let net = self.networking()?;
        if let Some(bridge) = &self.default_bridge
            && net.network(DEFAULT_NETWORK)?.is_none()
        {
            let spec = NetworkSpec {
                name: DEFAULT_NETWORK.to_owned(),
                bridge: bridge.clone(),
                ..NetworkSpec::default()
            };
            self.block(net.create_network(&spec))?;
            let mut options = BTreeMap::new();
            options.insert("com.docker.network.bridge.name".to_owned(), bridge.clone());
            options.insert(
                "com.docker.network.bridge.default_bridge".to_owned(),
                "true".to_owned(),
            );
            self.save_meta(&NetworkMeta {
                id: random_hex(),
                name: DEFAULT_NETWORK.to_owned(),
                driver: "bridge".to_owned(),
                created: unix_nanos(SystemTime::now()),
                options,
                ..NetworkMeta::default()
            })?;
        }
        if self.default_bridge.is_some() {
            net.want_spares(DEFAULT_NETWORK);
            self.refill_spares(Refill::Now);
        }
        Ok(())
    }

    /// Networking, opened (and its table rebuilt) on first use.
    fn networking(&self) -> Result<Arc<Networking>, NetError> {
        let mut slot = lock(&self.net);
        if let Some(net) = &*slot {
            return Ok(net.clone());
        }
        let host = NetNs::current()?;
        let net = self.block(async {
            let net = Networking::open(host, &self.state_dir, &self.netns_dir)
                .await?
                .with_spares(self.pool_size);
            net.start().await?;
            Ok::<_, berth_network::NetworkError>(net)
        })?;
        let net = Arc::new(net);
        *slot = Some(net.clone());
        if self.pool_size > 0 {
            let (tx, rx) = std::sync::mpsc::channel();
            let (handle, for_thread) = (self.handle.clone(), net.clone());
            let spawned = std::thread::Builder::new()
                .name("netpool".into())
                .spawn(move || refill_loop(&handle, &for_thread, &rx));
            match spawned {
                Ok(_) => *lock(&self.refill) = Some(tx),
                Err(err) => log::warning!("starting the network pool thread: {err}"),
            }
        }
        Ok(net)
    }

    /// Asks the `netpool` thread to make the spares that are missing.
    pub(crate) fn refill_spares(&self, when: Refill) {
        if let Some(tx) = &*lock(&self.refill) {
            let _ = tx.send(when);
        }
    }

    fn opened(&self) -> Option<Arc<Networking>> {
        lock(&self.net).clone()
    }

    fn meta(&self, name: &str) -> Result<Option<NetworkMeta>, NetError> {
        let path = self.meta_dir().join(format!("{name}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io_err("parsing", &path)(std::io::Error::other(e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }

    fn metas(&self) -> Result<Vec<NetworkMeta>, NetError> {
        let dir = self.meta_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = name.strip_suffix(".json")
                && let Some(meta) = self.meta(name)?
            {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn save_meta(&self, meta: &NetworkMeta) -> Result<(), NetError> {
        let dir = self.meta_dir();
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let path = dir.join(format!("{}.json", meta.name));
        let tmp = dir.join(format!("{}.json.tmp", meta.name));
        let bytes = serde_json::to_vec_pretty(meta).expect("network meta serialises");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(io_err("writing", &path))
    }

    fn view(&self, meta: NetworkMeta) -> Result<NetworkView, NetError> {
        let info = match (meta.driver.as_str(), self.opened()) {
            ("bridge", Some(net)) => net.network(&meta.name)?,
            _ => None,
        };
        Ok(NetworkView { meta, info })
    }

    /// Every network, predefined ones included.
    pub(crate) fn list(&self) -> Result<Vec<NetworkView>, NetError> {
        self.metas()?.into_iter().map(|m| self.view(m)).collect()
    }

    /// Moby's lookup: full ID, then name, then a unique ID prefix.
    pub(crate) fn find(&self, reference: &str) -> Result<NetworkView, NetError> {
        let metas = self.metas()?;
        let found = metas
            .iter()
            .find(|m| m.id == reference)
            .or_else(|| metas.iter().find(|m| m.name == reference))
            .cloned()
            .or_else(|| {
                let mut prefixed = metas
                    .iter()
                    .filter(|m| !reference.is_empty() && m.id.starts_with(reference));
                match (prefixed.next(), prefixed.next()) {
                    (Some(m), None) => Some(m.clone()),
                    _ => None,
                }
            });
        match found {
            Some(meta) => self.view(meta),
            None => Err(NetError::NotFound(reference.to_owned())),
        }
    }

    fn publish(&self, action: &str, meta: &NetworkMeta, container: Option<&str>) {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_owned(), meta.name.clone());
        attributes.insert("type".to_owned(), meta.driver.clone());
        if let Some(id) = container {
            attributes.insert("container".to_owned(), id.to_owned());
        }
        self.events.publish(Event::now(
            EventType::Network,
            action,
            meta.id.clone(),
            attributes,
        ));
    }

    /// `POST /networks/create`.
    pub(crate) fn create(&self, request: CreateNetwork) -> Result<NetworkView, NetError> {
        let driver = if request.driver.is_empty() {
            "bridge"
        } else {
            request.driver.as_str()
        };
        if driver != "bridge" {
            return Err(NetError::Driver(driver.to_owned()));
        }
        let _changes = lock(&self.changes);
        if PREDEFINED.contains(&request.name.as_str()) || self.meta(&request.name)?.is_some() {
            return Err(NetError::NameExists(request.name));
        }
        let subnet = request
            .subnet
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse::<Ipv4Net>)
            .transpose()?;
        let gateway = match request.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| {
                NetError::Invalid(format!(
                    "invalid gateway address {text:?}: not an IPv4 address"
                ))
            })?),
            None => None,
        };
        if gateway.is_some() && subnet.is_none() {
            return Err(NetError::Invalid(
                "a gateway needs a subnet (--subnet) to go with it".to_owned(),
            ));
        }
        let id = random_hex();
        let bridge = request
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        let net = self.networking()?;
        let info = self.block(net.create_network(&NetworkSpec {
            name: request.name.clone(),
            bridge,
            subnet,
            gateway,
            internal: request.internal,
        }))?;
        let meta = NetworkMeta {
            id,
            name: request.name,
            driver: "bridge".to_owned(),
            created: unix_nanos(SystemTime::now()),
            labels: request.labels,
            options: request.options,
            internal: request.internal,
            attachable: request.attachable,
        };
        if let Err(err) = self.save_meta(&meta) {
            let _ = self.block(net.remove_network(&meta.name));
            return Err(err);
        }
        self.publish("create", &meta, None);
        Ok(NetworkView {
            meta,
            info: Some(info),
        })
    }

    /// `DELETE /networks/{id}`.
    pub(crate) fn remove(&self, reference: &str) -> Result<(), NetError> {
        let _changes = lock(&self.changes);
        let view = self.find(reference)?;
        if view.is_predefined() {
            return Err(NetError::Predefined(view.meta.name));
        }
        if let Some(net) = self.opened().or_else(|| self.networking().ok()) {
            match self.block(net.remove_network(&view.meta.name)) {
                Ok(()) | Err(berth_network::NetworkError::NetworkNotFound(_)) => {}
                Err(berth_network::NetworkError::NetworkInUse { .. }) => {
                    return Err(NetError::InUse {
                        name: view.meta.name,
                        id: view.meta.id,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let path = self.meta_dir().join(format!("{}.json", view.meta.name));
        std::fs::remove_file(&path).map_err(io_err("removing", &path))?;
        self.publish("destroy", &view.meta, None);
        Ok(())
    }

    /// Names of networks with at least one container endpoint.
    pub(crate) fn in_use(&self) -> Vec<String> {
        let live = lock(&self.live);
        let mut names: Vec<String> = live
            .values()
            .flat_map(|l| l.endpoints.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Where container `id`'s namespace is mounted while it has endpoints.
    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// `connect` and `disconnect` events.
    pub(crate) fn publish_connect(&self, action: &str, meta: &NetworkMeta, container: &str) {
        self.publish(action, meta, Some(container));
    }

    /// The same, by network name (endpoints made and removed at start and exit).
    fn publish_endpoint(&self, action: &str, network: &str, container: &str) {
        if let Ok(Some(meta)) = self.meta(network) {
            self.publish(action, &meta, Some(container));
        }
    }
}

/// When the `netpool` thread should make spares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refill {
    /// A container exited (or the daemon started): at once.
    Now,
    /// A start took a spare: once starts pause for [`REFILL_QUIET`], or
    /// at the next exit, whichever comes first (at most
    /// [`REFILL_MAX_WAIT`] after the first such start).
    Later,
}

/// How long after the last start a [`Refill::Later`] waits.
const REFILL_QUIET: Duration = Duration::from_millis(100);
/// Starts that never pause still get their spares back this often.
const REFILL_MAX_WAIT: Duration = Duration::from_secs(1);

fn refill_loop(handle: &tokio::runtime::Handle, net: &Networking, rx: &Receiver<Refill>) {
    while let Ok(mut when) = rx.recv() {
        let deadline = Instant::now() + REFILL_MAX_WAIT;
        while when == Refill::Later {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(REFILL_QUIET.min(left)) {
                Ok(next) => when = next,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        while rx.try_recv().is_ok() {}
        if let Err(err) = handle.block_on(net.refill_spares()) {
            log::warning!("making spare network namespaces: {err}");
        }
    }
}

/// One `NetworkingConfig.EndpointsConfig` entry: aliases and `--ip`.
fn endpoint_config(
    value: Option<&serde_json::Value>,
) -> Result<(Vec<String>, Option<Ipv4Addr>), NetError> {
    let Some(value) = value else {
        return Ok((Vec::new(), None));
    };
    let aliases = value["Aliases"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let ipv4 = match value["IPAMConfig"]["IPv4Address"].as_str() {
        Some(text) if !text.is_empty() => Some(
            text.parse()
                .map_err(|_| NetError::Invalid(format!("invalid IPv4 address: {text}")))?,
        ),
        _ => None,
    };
    Ok((aliases, ipv4))
}

impl Networks {
    /// The networks a new container joins, primary (its `NetworkMode`)
    /// first, from `NetworkMode` and `NetworkingConfig.EndpointsConfig`.
    pub(crate) fn attachments_for(
        &self,
        mode: &str,
        endpoints: Option<&BTreeMap<String, Option<serde_json::Value>>>,
    ) -> Result<Vec<(String, Attachment)>, NetError> {
        let empty = BTreeMap::new();
        let endpoints = endpoints.unwrap_or(&empty);
        let own_namespace = !(mode == "host" || mode == "none" || mode.starts_with("container:"));
        let mut out: Vec<(String, Attachment)> = Vec::new();
        let mut add =
            |reference: &str, config: Option<&serde_json::Value>| -> Result<(), NetError> {
                let view = self.find(reference)?;
                if view.meta.driver != "bridge" {
                    return Err(NetError::Invalid(format!(
                        "container cannot be connected to network {} (driver {}) and to others",
                        view.meta.name, view.meta.driver
                    )));
                }
                let (aliases, ipv4) = endpoint_config(config)?;
                if view.meta.name == DEFAULT_NETWORK && !aliases.is_empty() {
                    return Err(NetError::Invalid(
                    "network-scoped alias is supported only for containers in user defined networks"
                        .to_owned(),
                ));
                }
                if view.meta.name == DEFAULT_NETWORK && ipv4.is_some() {
                    return Err(NetError::Invalid(
                        "user specified IP address is supported on user defined networks only"
                            .to_owned(),
                    ));
                }
                if !out.iter().any(|(name, _)| *name == view.meta.name) {
                    out.push((
                        view.meta.name.clone(),
                        Attachment {
                            network_id: view.meta.id,
                            aliases,
                            ipv4,
                            endpoint: None,
                        },
                    ));
                }
                Ok(())
            };
        if !own_namespace {
            if let Some(other) = endpoints
                .keys()
                .find(|k| k.as_str() != mode && k.as_str() != "default")
            {
                return Err(NetError::Invalid(format!(
                    "conflicting options: {mode} network mode cannot be combined with network {other}"
                )));
            }
            return Ok(out);
        }
        // The CLI names the default network `default` in EndpointsConfig.
        let endpoints: BTreeMap<&str, Option<&serde_json::Value>> = endpoints
            .iter()
            .map(|(k, v)| {
                let k = if k == "default" {
                    DEFAULT_NETWORK
                } else {
                    k.as_str()
                };
                (k, v.as_ref())
            })
            .collect();
        let primary_config = endpoints.get(mode).copied().flatten();
        if mode == DEFAULT_NETWORK {
            // `--bridge none`: no default network, an empty namespace.
            if self
                .meta(DEFAULT_NETWORK)?
                .is_some_and(|m| m.driver == "bridge")
            {
                add(DEFAULT_NETWORK, primary_config)?;
            }
        } else {
            add(mode, primary_config)?;
        }
        for (name, config) in endpoints {
            if name != mode {
                add(name, config)?;
            }
        }
        Ok(out)
    }
}
