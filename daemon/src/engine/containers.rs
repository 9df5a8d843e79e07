//! The container store: one record per container, persisted as
//! `<data_root>/containers/<id>/config.json` (temp file, fsync, rename),
//! unique names, Docker's lookup rules (full ID, then name, then unique ID
//! prefix), and the lifecycle operations in the submodules:
//! [`run`] (start, wait, stop, kill, attach, exit handling, live restore)
//! and [`exec`]; files in and out (cp, export, diff, commit) in [`archive`].
//!
//! Runtime layout: `<exec_root>/containers/<id>/` holds the OCI bundle
//! (`config.json`, the mounted `rootfs/`); `<exec_root>/shim/<id[..32]>`
//! is the shim's state directory (its socket and `exit.json`, a short path
//! for `sun_path`), so a restarted berthd finds the shims of running
//! containers again. The container's writable layer is the active
//! snapshot keyed by the container ID, on the image's init layer
//! ([`init_layer`]; on the image's top layer for containers made before
//! it existed); its json-file log is
//! `<data_root>/containers/<id>/<id>-json.log`.
//!
//! Locks: the table lock is held only to look up or change the maps; each
//! container's record has its own lock, and `op` serializes the heavy
//! steps (start, cleanup after exit, removal) of one container. Blocking
//! work (snapshots, mounts, shim calls) runs on blocking threads.

pub(crate) mod archive;
pub(crate) mod exec;
pub(crate) mod fstree;
pub(crate) mod init_layer;
mod list;
mod mounts;
pub(crate) mod network;
pub(crate) mod pause;
pub(crate) mod run;
mod spare;
mod stats;
mod update;

pub(crate) use list::ListOptions;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_core::Digest;
use berth_snapshotter::{Compression, SnapshotError, Snapshotter, UnpackError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::events::{Event, EventType};
use super::images::{ImageError, Stores};
use super::logs::LogError;
use super::spec::{self, ImageDefaults, SpecError};
use super::volumes::{self, MountPoint, VolumeError, VolumeStore};
use super::{ContainerCounts, Engine, ErrorKind, EventBus};
use crate::api::containers_types::validate::adapt_resources_to_host;
use crate::api::containers_types::{
    ContainerConfig, CreateRequest, HostConfig, StatusFacts, status_text,
};
use crate::log;

/// Why a container operation failed; texts are Docker's where clients
/// match on them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    #[error(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// Moby's validation text for a create request or query parameter.
    #[error("{0}")]
    InvalidConfig(String),
    #[error(
        "cannot remove container \"{name}\": container is running: stop the container before removing or force remove"
    )]
    RemoveRunning { name: String },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    /// Moby's refusal of an exec into a paused container (it names the
    /// container as the client did).
    #[error("Container {0} is paused, unpause the container before exec")]
    ExecPaused(String),
    #[error("container {id}: {source}")]
    Runtime {
        id: String,
        source: berth_runtime::RuntimeError,
    },
    /// Docker's refusal of an update that conflicts with the container's
    /// settings (or of a container being removed).
    #[error("Cannot update container {id}: {reason}")]
    CannotUpdate { id: String, reason: String },
    /// Writing the new limits into the running container's cgroup failed.
    #[error("Cannot update container {id}: {source}")]
    UpdateFailed {
        id: String,
        source: berth_runtime::RuntimeError,
    },
    /// `top` with `ps_args`: the host's ps failed, or its output had no
    /// PID column (moby's texts).
    #[error("{0}")]
    Ps(String),
    #[error("No such exec instance: {0}")]
    ExecNotFound(String),
    /// The container's process could not be started (the shim's text, e.g.
    /// `exec: "x": executable file not found in $PATH`).
    #[error("failed to start container {id}: {message}")]
    Start { id: String, message: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Mount(#[from] berth_core::MountError),
    #[error(transparent)]
    Logs(#[from] LogError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("shim of container {id}: {source}")]
    Shim {
        id: String,
        source: berth_shim::ClientError,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("internal error: container {0} task failed")]
    Task(&'static str),
    #[error(transparent)]
    Network(Box<super::networks::NetError>),
}

impl ContainerError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) | Self::ExecNotFound(_) => ErrorKind::NotFound,
            Self::Ambiguous(_)
            | Self::InvalidName(_)
            | Self::InvalidConfig(_)
            | Self::Start { .. } => ErrorKind::InvalidArgument,
            Self::NameInUse { .. }
            | Self::RemoveRunning { .. }
            | Self::NotRunning(_)
            | Self::AlreadyPaused(_)
            | Self::NotPaused(_)
            | Self::ExecPaused(_)
            | Self::CannotUpdate { .. } => ErrorKind::Conflict,
            Self::UpdateFailed { source, .. } => match source.kind() {
                berth_runtime::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                berth_runtime::ErrorKind::Conflict => ErrorKind::Conflict,
                berth_runtime::ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Internal,
            },
            Self::Runtime { .. } | Self::Ps(_) => ErrorKind::Internal,
            Self::Image(e) => e.kind(),
            Self::Spec(e) => e.kind(),
            Self::Snapshot(e) => e.kind().into(),
            Self::Unpack(e) => e.kind().into(),
            Self::Mount(e) => e.kind().into(),
            Self::Logs(e) => e.kind(),
            Self::Volume(e) => e.kind(),
            Self::Shim { source, .. } => match source.kind() {
                berth_shim::protocol::ErrorKind::NotFound => ErrorKind::NotFound,
                berth_shim::protocol::ErrorKind::Conflict => ErrorKind::Conflict,
                berth_shim::protocol::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            Self::Io { .. } | Self::Task(_) => ErrorKind::Internal,
            Self::Network(e) => e.kind(),
        }
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_owned();
    move |source| ContainerError::Io { what, path, source }
}

/// See [`Engine::supervisor_counts`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SupervisorCounts {
    pub(crate) running: usize,
    pub(crate) standby: usize,
}

/// Docker's container states (`State.Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        [
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Restarting,
            Status::Removing,
            Status::Exited,
            Status::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub(crate) fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The persisted state of a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) status: Status,
    pub(crate) pid: i64,
    pub(crate) exit_code: i64,
    pub(crate) error: String,
    /// Unix nanoseconds.
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
}

/// What is persisted per container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    /// With the leading `/`.
    pub(crate) name: String,
    /// Unix nanoseconds.
    pub(crate) created: i64,
    pub(crate) path: String,
    pub(crate) args: Vec<String>,
    /// Merged with the image's config.
    pub(crate) config: ContainerConfig,
    pub(crate) host_config: HostConfig,
    /// `sha256:...`.
    pub(crate) image_id: String,
    /// The image's top chain ID: the parent of the writable snapshot.
    #[serde(default)]
    pub(crate) top_layer: Option<String>,
    pub(crate) state: State,
    #[serde(default)]
    pub(crate) restart_count: i64,
    /// Binds, volumes and `--mount`s, resolved at create.
    #[serde(default)]
    pub(crate) mount_points: Vec<MountPoint>,
    /// The networks it is on, primary first, with live endpoints.
    #[serde(default)]
    pub(crate) networks: Vec<(String, super::networks::Attachment)>,
}

impl Record {
    pub(crate) fn status_facts(&self) -> StatusFacts {
        StatusFacts {
            running: self.state.status.is_running(),
            paused: self.state.status == Status::Paused,
            restarting: self.state.status == Status::Restarting,
            removing: self.state.status == Status::Removing,
            dead: self.state.status == Status::Dead,
            exit_code: self.state.exit_code,
            started_at: self.state.started_at.map(from_nanos),
            finished_at: self.state.finished_at.map(from_nanos),
            health: None,
        }
    }

    pub(crate) fn status_text(&self) -> String {
        status_text(&self.status_facts(), SystemTime::now())
    }
}

pub(crate) fn from_nanos(nanos: i64) -> SystemTime {
    if nanos >= 0 {
        UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(nanos.unsigned_abs())
    }
}

pub(crate) fn now_nanos() -> i64 {
    super::events::unix_nanos(SystemTime::now())
}

/// What waiters watch: changes with every start, exit and removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lifecycle {
    pub(crate) running: bool,
    /// How many times the container exited (or failed to start).
    pub(crate) exits: u64,
    pub(crate) exit_code: i64,
    pub(crate) removed: bool,
}

/// One container in memory.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) id: String,
    record: Mutex<Record>,
    shim: Mutex<Option<berth_shim::Client>>,
    lifecycle: watch::Sender<Lifecycle>,
    /// Serializes start, the cleanup after an exit, and removal.
    op: Mutex<()>,
    /// Attach requests waiting for the next start (see [`run`]).
    pending_attaches: Mutex<Vec<run::PendingAttach>>,
    /// Set by stop, kill and forced removal: the restart policy does not
    /// apply to this exit. Cleared by a start.
    manual_stop: std::sync::atomic::AtomicBool,
    /// A launch begun right after the create (see [`run::Prelaunch`]).
    prelaunch: Mutex<Option<run::Prelaunch>>,
    /// What its create asked for, when a spare could be made for it (see
    /// [`spare`]).
    spare_key: std::sync::OnceLock<Arc<spare::Key>>,
    /// Clients waiting for its removal, whose exit the cleanup after an
    /// AutoRemove waits for (see [`super::activity`]).
    removal_waiters: Mutex<Vec<super::activity::ClientGone>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    fn new(record: Record) -> Container {
        let lifecycle = Lifecycle {
            running: record.state.status.is_running(),
            exits: 0,
            exit_code: record.state.exit_code,
            removed: false,
        };
        Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            shim: Mutex::new(None),
            lifecycle: watch::channel(lifecycle).0,
            op: Mutex::new(()),
            pending_attaches: Mutex::new(Vec::new()),
            manual_stop: std::sync::atomic::AtomicBool::new(false),
            prelaunch: Mutex::new(None),
            spare_key: std::sync::OnceLock::new(),
            removal_waiters: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn record(&self) -> Record {
        lock(&self.record).clone()
    }

    pub(crate) fn name(&self) -> String {
        lock(&self.record).name.clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Lifecycle> {
        self.lifecycle.subscribe()
    }

    pub(crate) fn shim(&self) -> Option<berth_shim::Client> {
        lock(&self.shim).clone()
    }

    fn mark_manual_stop(&self) {
        self.manual_stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_running(&self) -> bool {
        lock(&self.record).state.status.is_running()
    }
}

#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<String, Arc<Container>>,
    /// `/name` -> id.
    names: HashMap<String, String>,
}

/// Every container, and where their files live.
#[derive(Debug)]
pub(crate) struct ContainerStore {
    /// `<data_root>/containers`.
    root: PathBuf,
    /// `<exec_root>/containers`.
    run_root: PathBuf,
    /// berth-runtime's state root.
    runtime_root: PathBuf,
    /// `<exec_root>/shim`: the shims' state directories.
    shim_root: PathBuf,
    /// Parent of the containers' cgroups unless they name their own.
    cgroup_parent: String,
    shim_binary: PathBuf,
    /// A shim started ahead of the next container start (see
    /// [`berth_shim::client::Standby`]), and whether one is being started.
    standby: Mutex<Option<berth_shim::client::Standby>>,
    refilling: AtomicBool,
    /// The static init bound in for `--init`, if this host has one.
    init_binary: Option<PathBuf>,
    events: Arc<EventBus>,
    images: Arc<Stores>,
    volumes: Arc<VolumeStore>,
    networks: Arc<super::networks::Networks>,
    table: Mutex<Table>,
    execs: Mutex<HashMap<String, Arc<exec::ExecInstance>>>,
    /// Held while an init layer is made (see [`init_layer`]).
    init_layers: Mutex<()>,
    /// Containers made ahead for creates that repeat (see [`spare`]).
    spares: Mutex<spare::Spares>,
    /// Requests and clients coming and going (see [`super::activity`]).
    activity: Arc<super::activity::Activity>,
}

/// The shim executable: `$BERTH_SHIM_BINARY`, else `berth-shim` next to
/// berthd, else `berth-shim` from `PATH`.
fn shim_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTH_SHIM_BINARY") {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let next_to_us = dir.join("berth-shim");
        if next_to_us.exists() {
            return next_to_us;
        }
    }
    PathBuf::from("berth-shim")
}

/// The init for `--init`, as dockerd finds it: `docker-init` from `PATH`
/// (Debian's docker.io and tini packages link it to `tini-static`).
fn init_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("docker-init"))
        .find(|candidate| candidate.is_file())
}

impl ContainerStore {
    /// Loads every record under `<data_root>/containers` and reconnects to
    /// the shims of running containers (see [`run`] for live restore).
    pub(crate) fn open(
        data_root: &Path,
        exec_root: &Path,
        cgroup_parent: &str,
        events: Arc<EventBus>,
        images: Arc<Stores>,
        volumes: Arc<VolumeStore>,
        networks: Arc<super::networks::Networks>,
    ) -> Result<Arc<ContainerStore>, ContainerError> {
        let root = data_root.join("containers");
        let run_root = exec_root.join("containers");
        for dir in [&root, &run_root] {
            std::fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
        }
        let store = Arc::new(ContainerStore {
            root,
            run_root,
            runtime_root: exec_root.join("runtime"),
            shim_root: exec_root.join("shim"),
            cgroup_parent: cgroup_parent.to_owned(),
            shim_binary: shim_binary(),
            standby: Mutex::new(None),
            refilling: AtomicBool::new(false),
            init_binary: init_binary(),
            events,
            images,
            volumes,
            networks,
            table: Mutex::new(Table::default()),
            execs: Mutex::new(HashMap::new()),
            init_layers: Mutex::new(()),
            spares: Mutex::new(spare::Spares::default()),
            activity: Arc::default(),
        });
        let entries = std::fs::read_dir(&store.root).map_err(io_err("listing", &store.root))?;
        for entry in entries.flatten() {
            let path = entry.path().join("config.json");
            let bytes = match std::fs::read(&path) {
                Ok(bytes) if !bytes.is_empty() => bytes,
                // An AutoRemove container's record is written without
                // fsync, and first at its start if it has no volumes (see
                // `written_at_create`): a crash can leave its directory
                // without one. Nothing can run it again; its remains go.
                Ok(_) => {
                    store.remove_remains(&entry.file_name().to_string_lossy());
                    continue;
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    store.remove_remains(&entry.file_name().to_string_lossy());
                    continue;
                }
                Err(err) => {
                    log::warning!("skipping container record {}: {err}", path.display());
                    continue;
                }
            };
            let mut record: Record = match serde_json::from_slice(&bytes) {
                Ok(record) => record,
                Err(err) => {
                    log::warning!("skipping container record {}: {err}", path.display());
                    continue;
                }
            };
            if record.mount_points.is_empty() {
                record.mount_points = volumes::mounts::legacy_binds(&record.host_config);
            }
            store.volumes.register(
                &record.id,
                &record.mount_points,
                record.state.status.is_running(),
            );
            let mut table = lock(&store.table);
            table.names.insert(record.name.clone(), record.id.clone());
            table
                .by_id
                .insert(record.id.clone(), Arc::new(Container::new(record)));
        }
        store.remove_stray_init_mounts();
        store.remove_stray_snapshots();
        let all: Vec<Arc<Container>> = lock(&store.table).by_id.values().cloned().collect();
        for container in all {
            run::restore(&store, &container);
        }
        store.volumes.unmount_idle();
        let running = store
            .all()
            .into_iter()
            .filter(|c| c.is_running())
            .map(|c| c.id.clone())
            .collect();
        store.networks.reconcile(&running);
        Ok(store)
    }

    /// Removes what a container without a record left: its directories
    /// and writable layer (see [`Self::open`]).
    fn remove_remains(&self, id: &str) {
        log::warning!("removing the remains of container {id}, which has no record");
        // A spare container (see `spare`) may still be launched: its shim
        // and runtime container, and the mount of its rootfs.
        if let Ok(client) = berth_shim::connect(&self.state_dir(id)) {
            let _ = client.shutdown();
        }
        let root = berth_runtime::state::Root::new(self.runtime_root.clone());
        if root.container_dir(id).exists()
            && let Err(err) = berth_runtime::container::delete(&root, id, true)
        {
            log::warning!("deleting container {id} in the runtime: {err}");
        }
        let rootfs = self.rootfs_path(id);
        if rootfs.exists() {
            let _ = berth_core::unmount(&rootfs);
        }
        match self.images.snapshots.remove(id) {
            Ok(()) | Err(SnapshotError::NotFound { .. }) => {}
            Err(err) => log::warning!("removing the writable layer of {id}: {err}"),
        }
        for dir in [self.dir(id), self.run_dir(id), self.state_dir(id)] {
            if let Err(err) = std::fs::remove_dir_all(&dir)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                log::warning!("removing {}: {err}", dir.display());
            }
        }
    }

    /// Removes writable layers keyed by a container ID that has no
    /// container (a crash between a create's layer and its record), and
    /// init layers a crash left half made.
    fn remove_stray_snapshots(&self) {
        let snapshots = match self.images.snapshots.list() {
            Ok(list) => list,
            Err(err) => {
                log::warning!("listing snapshots: {err}");
                return;
            }
        };
        let table = lock(&self.table);
        let stray: Vec<String> = snapshots
            .into_iter()
            .filter(|info| info.kind == berth_snapshotter::Kind::Active)
            .map(|info| info.name)
            .filter(|key| {
                key.starts_with(init_layer::INIT_PREFIX)
                    || (is_container_id(key) && !table.by_id.contains_key(key))
            })
            .collect();
        drop(table);
        for key in stray {
            if key.starts_with(init_layer::INIT_PREFIX) {
                if let Err(err) = self.images.snapshots.remove(&key) {
                    log::warning!("removing the half-made init layer {key}: {err}");
                }
            } else {
                self.remove_remains(&key);
            }
        }
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// `<exec_root>/containers/<id>`: the bundle, the rootfs mount point and
    /// the network files (hostname, hosts, resolv.conf), which every start
    /// rewrites: runtime state, on a tmpfs on a standard host.
    pub(crate) fn run_dir(&self, id: &str) -> PathBuf {
        self.run_root.join(id)
    }

    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    /// Writes the record atomically: temp file, fsync if `durable`, rename.
    /// Without the fsync the rename still makes the write atomic for a
    /// crash of berthd, and only a machine crash can lose it.
    fn write_record(&self, record: &Record, durable: bool) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        let path = dir.join("config.json");
        let tmp = dir.join("config.json.tmp");
        let bytes = serde_json::to_vec(record).map_err(|e| ContainerError::Io {
            what: "serializing",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                if durable { f.sync_all() } else { Ok(()) }
            })
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(io_err("writing", &path))
    }

    /// Changes the record under its lock and persists it.
    fn update(
        &self,
        container: &Container,
        change: impl FnOnce(&mut Record),
    ) -> Result<Record, ContainerError> {
        self.update_with(container, true, change)
    }

    /// [`Self::update`], durable or not (see [`Self::write_record`]).
    fn update_with(
        &self,
        container: &Container,
        durable: bool,
        change: impl FnOnce(&mut Record),
    ) -> Result<Record, ContainerError> {
        let mut record = lock(&container.record);
        change(&mut record);
        let snapshot = record.clone();
        drop(record);
        self.write_record(&snapshot, durable)?;
        Ok(snapshot)
    }

    /// Docker's lookup: full ID, then name, then a unique ID prefix.
    pub(crate) fn get(&self, reference: &str) -> Result<Arc<Container>, ContainerError> {
        let table = lock(&self.table);
        if reference.is_empty() {
            return Err(ContainerError::NotFound(reference.to_owned()));
        }
        if let Some(c) = table.by_id.get(reference) {
            return Ok(c.clone());
        }
        let name = if reference.starts_with('/') {
            reference.to_owned()
        } else {
            format!("/{reference}")
        };
        if let Some(c) = table.names.get(&name).and_then(|id| table.by_id.get(id)) {
            return Ok(c.clone());
        }
        let mut found = table
            .by_id
            .iter()
            .filter(|(id, _)| id.starts_with(reference));
        match (found.next(), found.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(ContainerError::Ambiguous(reference.to_owned())),
            _ => Err(ContainerError::NotFound(reference.to_owned())),
        }
    }

    fn all(&self) -> Vec<Arc<Container>> {
        lock(&self.table).by_id.values().cloned().collect()
    }

    fn publish(&self, action: &str, record: &Record, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> = record
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attributes.insert(
            "name".to_owned(),
            record.name.trim_start_matches('/').into(),
        );
        attributes.insert("image".to_owned(), record.config.image.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), v.clone());
        }
        self.events.publish(Event::now(
            EventType::Container,
            action,
            record.id.clone(),
            attributes,
        ));
    }

    /// Reserves `name` for `id`, or reports who holds it.
    fn reserve_name(&self, name: &str, id: &str) -> Result<(), ContainerError> {
        let mut table = lock(&self.table);
        if let Some(holder) = table.names.get(name) {
            return Err(ContainerError::NameInUse {
                name: name.to_owned(),
                id: holder.clone(),
            });
        }
        table.names.insert(name.to_owned(), id.to_owned());
        Ok(())
    }

    fn release_name(&self, name: &str, id: &str) {
        let mut table = lock(&self.table);
        if table.names.get(name).is_some_and(|holder| holder == id) {
            table.names.remove(name);
        }
    }

    /// Picks a free name like dockerd's `adjective_surname` from the ID's
    /// bytes and reserves it under the same lock: concurrent creates
    /// never pick the same one.
    fn reserve_generated_name(&self, id: &str) -> String {
        const LEFT: &[&str] = &[
            "brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "lucid", "merry",
            "nimble", "proud", "quiet", "sharp", "tender", "vivid", "witty",
        ];
        const RIGHT: &[&str] = &[
            "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler",
            "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yalow",
        ];
        let bytes = hex_bytes(id);
        let mut table = lock(&self.table);
        let mut name = format!("/berth_{}", &id[..12]);
        for attempt in 0..16usize {
            let left = LEFT[(bytes[attempt % bytes.len()] as usize) % LEFT.len()];
            let right = RIGHT[(bytes[(attempt + 1) % bytes.len()] as usize) % RIGHT.len()];
            let candidate = if attempt < 4 {
                format!("/{left}_{right}")
            } else {
                format!("/{left}_{right}{attempt}")
            };
            if !table.names.contains_key(&candidate) {
                name = candidate;
                break;
            }
        }
        table.names.insert(name.clone(), id.to_owned());
        name
    }

    /// Creates the record and the writable layer; returns the ID and
    /// moby's warnings. A create that repeats an earlier one may take a
    /// spare container made ahead for it (see [`spare`]).
    pub(crate) fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        request: CreateRequest,
        image: super::images::ImageDetails,
        host: &super::HostFacts,
    ) -> Result<(String, Vec<String>), ContainerError> {
        let requested_name = match name {
            Some(name) if !name.is_empty() => {
                let bare = name.strip_prefix('/').unwrap_or(name);
                if !valid_name(bare) {
                    return Err(ContainerError::InvalidName(name.to_owned()));
                }
                Some(format!("/{bare}"))
            }
            _ => None,
        };
        let key = spare::Key::of(&request, &image, host);
        if let Some(key) = &key
            && let Some(adopted) = self.adopt_spare(key, requested_name.as_deref())?
        {
            return Ok(adopted);
        }
        let id = random_id()?;
        let (mut record, warnings) = self.plan(request, &image, host, &id)?;
        let name = match requested_name {
            Some(name) => {
                self.reserve_name(&name, &id)?;
                name
            }
            None => self.reserve_generated_name(&id),
        };
        record.name = name.clone();
        let made_volumes = match self.volumes.claim(&id, &mut record.mount_points) {
            Ok(created) => created,
            Err(err) => {
                self.release_name(&name, &id);
                return Err(err.into());
            }
        };
        let made = self.make_files(&record, &image.image).and_then(|()| {
            if written_at_create(&record) {
                // AutoRemove: see `Self::open` for what a machine crash
                // leaves without the fsync.
                self.write_record(&record, !record.host_config.auto_remove)
            } else {
                Ok(())
            }
        });
        if let Err(err) = made {
            self.remove_files(&id);
            self.release_name(&name, &id);
            self.volumes.release(&id, &record.mount_points, false);
            for volume in made_volumes {
                let _ = self.volumes.remove(&volume, true);
            }
            return Err(err);
        }
        self.publish("create", &record, &[]);
        let container = Arc::new(Container::new(record));
        if let Some(key) = key {
            self.note_create(&container, key);
        }
        lock(&self.table)
            .by_id
            .insert(id.clone(), container.clone());
        self.prelaunch(&container);
        Ok((id, warnings))
    }

    /// The record (without a name) a create request makes under `id`, and
    /// moby's warnings; checks the request but changes nothing.
    fn plan(
        &self,
        mut request: CreateRequest,
        image: &super::images::ImageDetails,
        host: &super::HostFacts,
        id: &str,
    ) -> Result<(Record, Vec<String>), ContainerError> {
        let mut warnings = adapt_resources_to_host(&mut request.host_config, host)
            .map_err(ContainerError::InvalidConfig)?;
        warnings.extend(
            request
                .validate(host.ncpu)
                .map_err(ContainerError::InvalidConfig)?,
        );
        let host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        request.apply_defaults(id, &host_hostname);
        let image_config: oci_spec::image::Config = image
            .config
            .config
            .clone()
            .map(|map| serde_json::from_value(serde_json::Value::Object(map)))
            .transpose()
            .map_err(|e| ContainerError::InvalidConfig(format!("image config: {e}")))?
            .unwrap_or_default();
        spec::merge_image_config(&mut request.config, &ImageDefaults::from(&image_config));
        let (path, args) = spec::command_of(&request.config)?;
        // Bad port bindings are refused here, as dockerd does, not at start.
        network::port_specs(&request.config, &request.host_config)?;
        let mount_points = self.plan_mounts(&request)?;
        let networks = self.networks.attachments_for(
            &request.host_config.network_mode,
            request
                .networking_config
                .as_ref()
                .and_then(|n| n.endpoints_config.as_ref()),
        )?;
        let record = Record {
            id: id.to_owned(),
            name: String::new(),
            created: now_nanos(),
            path,
            args,
            config: request.config,
            host_config: request.host_config,
            image_id: image.image.id().to_string(),
            top_layer: image.image.layers.last().map(|l| l.chain_id.to_string()),
            state: State::default(),
            restart_count: 0,
            mount_points,
            networks,
        };
        Ok((record, warnings))
    }

    /// The new container's writable layer, volume contents and directory.
    fn make_files(&self, record: &Record, image: &berth_core::Image) -> Result<(), ContainerError> {
        self.prepare_layer(record, image)?;
        self.populate_volumes(record)?;
        let dir = self.dir(&record.id);
        std::fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))
    }

    /// Undoes [`Self::make_files`] (and the bundle directory, if any).
    fn remove_files(&self, id: &str) {
        let _ = self.images.snapshots.remove(id);
        let _ = std::fs::remove_dir_all(self.dir(id));
        let _ = std::fs::remove_dir_all(self.run_dir(id));
    }

    /// The new container's mount points (see [`volumes::mounts`]).
    fn plan_mounts(&self, request: &CreateRequest) -> Result<Vec<MountPoint>, ContainerError> {
        let mut from = Vec::new();
        for spec in request.host_config.volumes_from.iter().flatten() {
            let (reference, read_only) =
                volumes::mounts::parse_volumes_from(spec).map_err(ContainerError::InvalidConfig)?;
            from.push((self.get(reference)?.record().mount_points, read_only));
        }
        volumes::mounts::plan(&request.config, &request.host_config, from)
            .map_err(ContainerError::InvalidConfig)
    }

    /// Unpacks the image's layers that have no snapshot yet, then prepares
    /// the container's writable snapshot on the image's init layer (made
    /// if missing).
    fn prepare_layer(
        &self,
        record: &Record,
        image: &berth_core::Image,
    ) -> Result<(), ContainerError> {
        unpack_layers(&self.images, image)?;
        let parent = match &record.top_layer {
            Some(top) => Some(self.init_layer(top)?),
            None => None,
        };
        self.images
            .snapshots
            .prepare(&record.id, parent.as_deref())?;
        Ok(())
    }

    /// Removes a stopped container: shim, mounts, writable layer, files,
    /// name, volume references (and its anonymous volumes with `volumes`).
    fn remove(&self, container: &Container, volumes: bool) -> Result<(), ContainerError> {
        let _op = lock(&container.op);
        self.drop_prelaunch(container);
        let Some(record) = self.begin_removal(container)? else {
            return Ok(());
        };
        self.purge(&record)?;
        self.forget(container, &record, volumes);
        Ok(())
    }

    /// `AutoRemove` after an exit: as [`Self::remove`] with anonymous
    /// volumes, but waiters (`docker run --rm` waits for `removed`) are
    /// answered before the writable layer and files are deleted, which is
    /// disk work nobody needs to wait for. The record goes last, so a crash
    /// in between finishes the removal at the next start.
    ///
    /// In its own PID namespace nothing of the container runs once its
    /// init is reaped (the kernel kills and waits for the rest first), so
    /// the runtime's cleanup of cgroups and state, and the unmount of its
    /// rootfs (which no namespace uses any more), also follow the answer.
    /// Volumes and network are released before it, so a client that goes
    /// on (`docker volume rm`) finds them free.
    ///
    /// `refill` (the standby shim and spare namespaces) runs before the
    /// disk work, so the next start, which may come at once, finds them.
    fn auto_remove(&self, container: &Container, refill: impl FnOnce()) {
        let _op = lock(&container.op);
        let record = match self.mark_removing(container) {
            Ok(Some(record)) => record,
            Ok(None) => return refill(),
            Err(err) => {
                log::warning!("auto-removing container {}: {err}", container.id);
                return refill();
            }
        };
        let own_pid_namespace = record.host_config.pid_mode != "host";
        if own_pid_namespace {
            run::release_volumes_and_network(self, container);
        } else {
            run::release_runtime(self, container);
        }
        self.forget(container, &record, true);
        if own_pid_namespace {
            run::unmount_rootfs(self, container);
        }
        // The answer is out: the rest waits for the client's exit.
        let clients = std::mem::take(&mut *lock(&container.removal_waiters));
        self.activity
            .wait_for_clients(&clients, super::activity::CLIENT_EXIT_CAP);
        if own_pid_namespace {
            run::shut_down_runtime(self, container);
        }
        refill();
        if let Err(err) = self.purge(&record) {
            log::warning!(
                "auto-removing container {}: {err}; retried at the next start",
                record.id
            );
        }
    }

    /// Marks the container `removing` (persisted, so a restart finishes the
    /// job) and releases its runtime, mounts and network. `None`: already
    /// removed. Caller holds the `op` lock.
    fn begin_removal(&self, container: &Container) -> Result<Option<Record>, ContainerError> {
        let record = self.mark_removing(container)?;
        if record.is_some() {
            run::release_runtime(self, container);
        }
        Ok(record)
    }

    /// The `removing` record (persisted), or `None` if already removed.
    fn mark_removing(&self, container: &Container) -> Result<Option<Record>, ContainerError> {
        if container.lifecycle.borrow().removed {
            return Ok(None);
        }
        Ok(Some(match container.record() {
            record if record.state.status == Status::Removing => record,
            _ => self.update(container, |r| r.state.status = Status::Removing)?,
        }))
    }

    /// Deletes the writable layer, then the container's files: the record
    /// last, so what a failure leaves is still known and removed later.
    fn purge(&self, record: &Record) -> Result<(), ContainerError> {
        match self.images.snapshots.remove(&record.id) {
            Ok(()) | Err(SnapshotError::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        let dir = self.dir(&record.id);
        std::fs::remove_dir_all(&dir).map_err(io_err("removing", &dir))?;
        let _ = std::fs::remove_dir_all(self.run_dir(&record.id));
        let _ = std::fs::remove_dir_all(self.state_dir(&record.id));
        Ok(())
    }

    /// Drops the container from the API: name, execs, volume references,
    /// the `destroy` event, and wakes `removed` waiters.
    fn forget(&self, container: &Container, record: &Record, volumes: bool) {
        {
            let mut table = lock(&self.table);
            table.by_id.remove(&record.id);
            if table.names.get(&record.name) == Some(&record.id) {
                table.names.remove(&record.name);
            }
        }
        lock(&self.execs).retain(|_, e| e.container_id != record.id);
        self.volumes
            .release(&record.id, &record.mount_points, volumes);
        self.publish("destroy", record, &[]);
        container.lifecycle.send_modify(|l| {
            l.removed = true;
            l.running = false;
        });
    }
}

/// Unpacks the image's layers that have no snapshot yet (an image loaded
/// with `docker load`, or made by commit or build, has only blobs); returns
/// the top layer's chain ID.
pub(crate) fn unpack_layers(
    images: &Stores,
    image: &berth_core::Image,
) -> Result<Option<String>, ContainerError> {
    let snapshots = &*images.snapshots;
    let mut parent: Option<String> = None;
    for layer in &image.layers {
        let chain_id = layer.chain_id.to_string();
        if !snapshots.is_committed(&chain_id) {
            let file = images
                .content
                .reader(&layer.blob.digest)
                .map_err(|e| ContainerError::Image(ImageError::Content(e)))?;
            let mut reader = std::io::BufReader::new(file);
            let compression = match Compression::from_media_type(&layer.blob.media_type) {
                Some(c) => c,
                None => Compression::detect(&mut reader)
                    .map_err(io_err("reading layer", Path::new(&chain_id)))?,
            };
            berth_snapshotter::unpack::unpack_layer(
                snapshots,
                &chain_id,
                parent.as_deref(),
                reader,
                compression,
                Some(layer.diff_id),
            )?;
        }
        parent = Some(chain_id);
    }
    Ok(parent)
}

/// 64 lowercase hex digits, as [`random_id`] makes them.
fn is_container_id(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn hex_bytes(id: &str) -> Vec<u8> {
    (0..id.len() / 2)
        .filter_map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Whether a create writes the record. Not for an `AutoRemove` container
/// without volumes: a restart would remove it unless it runs, and its
/// start writes the record; a directory without one is removed whole at a
/// restart (`remove_remains`), as the record would have made it. Its
/// anonymous volumes would not be, so with volumes it is written.
fn written_at_create(record: &Record) -> bool {
    !record.host_config.auto_remove || !record.mount_points.is_empty()
}

/// 64 hex digits from the kernel's RNG; like moby, never all digits in
/// the short form (it would read as a number).
pub(crate) fn random_id() -> Result<String, ContainerError> {
    loop {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io_err("reading", Path::new("/dev/urandom")))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

impl Engine {
    /// Requests and clients coming and going (see [`super::activity`]).
    pub(crate) fn activity(&self) -> &Arc<super::activity::Activity> {
        &self.containers.activity
    }

    pub(crate) fn containers(&self) -> &Arc<ContainerStore> {
        &self.containers
    }

    /// Runs `f` on this thread, taken out of the async runtime's workers
    /// for the time (`block_in_place`), so the answer goes out from here:
    /// no hand-off to a blocking thread and back. The hand-back after a
    /// start waited for a core while the container's process started on
    /// it (0.1-0.7 ms on two cores). A single-threaded runtime (unit tests)
    /// has no such mode: a blocking thread then.
    pub(crate) async fn containers_in_place<T, F>(
        &self,
        what: &'static str,
        f: F,
    ) -> Result<T, ContainerError>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<ContainerStore>) -> Result<T, ContainerError> + Send + 'static,
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
            tokio::task::block_in_place(|| f(&self.containers))
        } else {
            self.containers_blocking(what, f).await
        }
    }

    /// Runs `f` on a blocking thread with the container store.
    pub(crate) async fn containers_blocking<T, F>(
        &self,
        what: &'static str,
        f: F,
    ) -> Result<T, ContainerError>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<ContainerStore>) -> Result<T, ContainerError> + Send + 'static,
    {
        let store = self.containers.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| ContainerError::Task(what))?
    }

    /// Removes the spare containers (see [`spare`]): before an image goes,
    /// and at shutdown.
    pub(crate) async fn drop_spare_containers(&self) {
        let dropped = self
            .containers_blocking("dropping spare containers", |store| {
                store.drop_spares();
                Ok(())
            })
            .await;
        if let Err(err) = dropped {
            log::warning!("{err}");
        }
    }

    /// Containers by state, for `GET /info`.
    pub(crate) fn container_counts_now(&self) -> ContainerCounts {
        let mut counts = ContainerCounts::default();
        for c in self.containers.all() {
            match lock(&c.record).state.status {
                Status::Running | Status::Restarting => counts.running += 1,
                Status::Paused => counts.paused += 1,
                _ => counts.stopped += 1,
            }
        }
        counts
    }

    /// The `berth-shim` supervisors berthd holds: one per container whose
    /// process runs (or has exited and awaits cleanup), and whether a
    /// standby shim waits for the next start (`GET /info`).
    pub(crate) fn supervisor_counts(&self) -> SupervisorCounts {
        SupervisorCounts {
            running: self
                .containers
                .all()
                .iter()
                .filter(|c| lock(&c.shim).is_some())
                .count(),
            standby: usize::from(lock(&self.containers.standby).is_some()),
        }
    }

    /// Short IDs of the containers created from `image_id`.
    pub(crate) fn containers_of_image(&self, image_id: &Digest) -> Vec<String> {
        let wanted = image_id.to_string();
        self.containers
            .all()
            .into_iter()
            .filter(|c| lock(&c.record).image_id == wanted)
            .map(|c| c.id[..12].to_owned())
            .collect()
    }

    /// `POST /containers/create`.
    pub(crate) async fn container_create(
        &self,
        name: Option<String>,
        request: CreateRequest,
    ) -> Result<(String, Vec<String>), ContainerError> {
        if let Some(name) = &name
            && !name.is_empty()
            && !valid_name(name.strip_prefix('/').unwrap_or(name))
        {
            return Err(ContainerError::InvalidName(name.clone()));
        }
        if request.config.image.is_empty() {
            return Err(ContainerError::InvalidConfig(
                "config cannot be empty in order to create a container".to_owned(),
            ));
        }
        let host = self.host().clone();
        // One trip to the blocking pool: the image is looked up there too.
        self.containers_blocking("create", move |store| {
            let image = store.images.resolve(&request.config.image)?;
            store.create(name.as_deref(), request, image, &host)
        })
        .await
    }

    /// `GET /containers/{id}/json`.
    pub(crate) fn container_get(&self, reference: &str) -> Result<Record, ContainerError> {
        Ok(self.containers.get(reference)?.record())
    }

    /// `DELETE /containers/{id}`: `force` kills a running container first;
    /// `volumes` removes its anonymous volumes (`rm -v`).
    pub(crate) async fn container_delete(
        &self,
        reference: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let container = self.containers.get(reference)?;
        if container.is_running() {
            if !force {
                return Err(ContainerError::RemoveRunning {
                    name: container.name(),
                });
            }
            container.mark_manual_stop();
            self.container_kill_and_wait(&container, 9, Duration::from_secs(30))
                .await?;
        }
        self.containers_blocking("remove", move |store| store.remove(&container, volumes))
            .await
    }

    /// `POST /containers/{id}/rename`.
    pub(crate) fn container_rename(
        &self,
        reference: &str,
        new_name: &str,
    ) -> Result<(), ContainerError> {
        let bare = new_name.strip_prefix('/').unwrap_or(new_name);
        if !valid_name(bare) {
            return Err(ContainerError::InvalidName(new_name.to_owned()));
        }
        let container = self.containers.get(reference)?;
        let new_name = format!("/{bare}");
        let old_name = container.name();
        if old_name == new_name {
            return Err(ContainerError::InvalidConfig(format!(
                "Renaming a container with the same name as its current name: {bare}"
            )));
        }
        self.containers.reserve_name(&new_name, &container.id)?;
        match self
            .containers
            .update(&container, |r| r.name = new_name.clone())
        {
            Ok(record) => {
                self.containers.release_name(&old_name, &container.id);
                self.containers.rename_network_names(&record);
                self.containers
                    .publish("rename", &record, &[("oldName", old_name.clone())]);
                Ok(())
            }
            Err(err) => {
                self.containers.release_name(&new_name, &container.id);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests;
