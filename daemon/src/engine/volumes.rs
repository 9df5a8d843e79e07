//! Named volumes with Docker's `local` driver.
//!
//! A volume is a directory, `<data_root>/volumes/<name>/_data`, plus a
//! record in the metadata database (`kv` table `volumes`, one redb commit
//! per change). The directory is made before its record commits and the
//! record deleted before its directory goes, so at open a directory without
//! a record is a half-made create or a half-done removal and is deleted.
//!
//! Volumes created with driver options (`type`, `device`, `o`, as moby's
//! local driver takes them: `-o type=tmpfs -o device=tmpfs -o o=size=64m`,
//! or `-o type=none -o o=bind -o device=/path`) are mounted on `_data` when
//! the first running container needs them and unmounted after the last one
//! stops.
//!
//! References: which containers (in any state) mount which volume is kept
//! in memory, rebuilt from the container records at start. A volume with
//! references cannot be removed (409 naming the containers); creating a
//! container takes its references under the same lock, so the check and
//! the use cannot interleave. Anonymous volumes (no name given) carry the
//! label `com.docker.volume.anonymous`, as in moby: `rm -v`, `--rm` and the
//! default `volume prune` (API >= 1.42) remove only those.
//!
//! [`mounts`] turns a create request's `Binds`, `Mounts`, `VolumesFrom` and
//! `Config.Volumes` into the container's mount points; [`copyup`] fills an
//! empty volume from the image when a container using it is created, the
//! way moby does.

pub(crate) mod copyup;
pub(crate) mod mounts;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_core::{MetadataError, MetadataStore};
use serde::{Deserialize, Serialize};

use super::events::{Event, EventType};
use super::filters::Filters;
use super::{ErrorKind, EventBus};
use crate::log;
pub(crate) use mounts::{MountKind, MountPoint};

/// The metadata table of volume records.
const TABLE: &str = "volumes";
/// moby's label on volumes created without a name.
pub(crate) const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
/// The only driver there is.
pub(crate) const LOCAL_DRIVER: &str = "local";
/// Options moby's local driver accepts.
const LOCAL_OPTIONS: &[&str] = &["type", "device", "o", "size"];

/// Why a volume operation failed; texts are moby's where clients see them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", refs.join(", "))]
    InUse { name: String, refs: Vec<String> },
    #[error("volume name is too short, names should be at least two alphanumeric characters")]
    NameTooShort,
    #[error(
        "{0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName(String),
    #[error("error looking up volume plugin {0}: plugin {0:?} not found")]
    UnknownDriver(String),
    #[error("invalid option: {0:?}")]
    InvalidOption(String),
    #[error("quota size requested but no quota support")]
    NoQuota,
    #[error("invalid filter '{0}={1}'")]
    InvalidFilter(&'static str, String),
    #[error(transparent)]
    Filter(#[from] super::filters::FilterError),
    #[error("volume {name}: mounting {device} ({kind}) on {}: {source}", path.display())]
    Mount {
        name: String,
        device: String,
        kind: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("internal error: volume {0} task failed")]
    Task(&'static str),
}

impl VolumeError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) | Self::UnknownDriver(_) => ErrorKind::NotFound,
            Self::InUse { .. } => ErrorKind::Conflict,
            Self::NameTooShort
            | Self::InvalidName(_)
            | Self::InvalidOption(_)
            | Self::NoQuota
            | Self::InvalidFilter(..)
            | Self::Filter(_) => ErrorKind::InvalidArgument,
            Self::Mount { .. } | Self::Metadata(_) | Self::Io { .. } | Self::Task(_) => {
                ErrorKind::Internal
            }
        }
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.to_owned();
    move |source| VolumeError::Io { what, path, source }
}

/// What is persisted per volume. `None` maps are Go's nil maps (`null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Volume {
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) options: Option<BTreeMap<String, String>>,
    /// Unix nanoseconds.
    pub(crate) created_at: i64,
}

impl Volume {
    pub(crate) fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }

    /// Mounted on `_data` while in use (a `type` driver option was given).
    fn needs_mount(&self) -> bool {
        self.options
            .as_ref()
            .is_some_and(|o| o.get("type").is_some_and(|t| !t.is_empty()))
    }
}

/// What `POST /volumes/create` (or a container's mount) asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateVolume {
    /// Empty: a random name and the anonymous label.
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) options: Option<BTreeMap<String, String>>,
}

/// A volume with how many containers reference it.
#[derive(Debug, Clone)]
pub(crate) struct VolumeUsage {
    pub(crate) volume: Volume,
    pub(crate) ref_count: usize,
}

#[derive(Debug, Default)]
struct State {
    volumes: BTreeMap<String, Volume>,
    /// Volume name -> IDs of the containers that mount it.
    refs: HashMap<String, BTreeSet<String>>,
    /// Volume name -> running containers, for volumes mounted while in use.
    active: HashMap<String, BTreeSet<String>>,
}

/// Every volume of the daemon.
#[derive(Debug)]
pub(crate) struct VolumeStore {
    /// `<data_root>/volumes`.
    root: PathBuf,
    metadata: Arc<MetadataStore>,
    events: Arc<EventBus>,
    state: Mutex<State>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// moby's local driver name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn validate_name(name: &str) -> Result<(), VolumeError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if name.len() == 1 && first_ok {
        return Err(VolumeError::NameTooShort);
    }
    if !first_ok || !rest_ok || name.len() < 2 {
        return Err(VolumeError::InvalidName(name.to_owned()));
    }
    Ok(())
}

fn validate_options(options: Option<&BTreeMap<String, String>>) -> Result<(), VolumeError> {
    for key in options.into_iter().flatten().map(|(k, _)| k) {
        if !LOCAL_OPTIONS.contains(&key.as_str()) {
            return Err(VolumeError::InvalidOption(key.clone()));
        }
        if key == "size" {
            return Err(VolumeError::NoQuota);
        }
    }
    Ok(())
}

/// `key` or `key=value` is among `labels`.
fn has_label(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(wanted),
    }
}

/// 64 random hex digits, as moby names anonymous volumes.
fn random_name() -> Result<String, VolumeError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading", Path::new("/dev/urandom")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_nanos() -> i64 {
    super::events::unix_nanos(std::time::SystemTime::now())
}

/// Whether `path` is the root of a mount (`STATX_ATTR_MOUNT_ROOT`, which
/// also sees a bind mount of a directory on the same filesystem; kernels
/// without it fall back to comparing devices with the parent).
fn is_mount_point(path: &Path) -> bool {
    use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
    if let Ok(stat) = rustix::fs::statx(
        CWD,
        path,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    ) && stat
        .stx_attributes_mask
        .contains(StatxAttributes::MOUNT_ROOT)
    {
        return stat.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
    }
    let (Ok(own), Some(Ok(parent))) = (
        std::fs::symlink_metadata(path),
        path.parent().map(std::fs::symlink_metadata),
    ) else {
        return false;
    };
    own.dev() != parent.dev()
}

/// Bytes used below `path` (regular files and symlinks, each inode once).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

impl VolumeStore {
    /// Loads the records and removes directories left without one.
    pub(crate) fn open(
        data_root: &Path,
        metadata: Arc<MetadataStore>,
        events: Arc<EventBus>,
    ) -> Result<Arc<VolumeStore>, VolumeError> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(io_err("creating directory", &root))?;
        let mut state = State::default();
        for (name, volume) in metadata.list_table::<Volume>(TABLE)? {
            let data = root.join(&name).join("_data");
            std::fs::create_dir_all(&data).map_err(io_err("creating directory", &data))?;
            state.volumes.insert(name, volume);
        }
        let entries = std::fs::read_dir(&root).map_err(io_err("listing", &root))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if state.volumes.contains_key(&name) {
                continue;
            }
            log::warning!("removing volume directory {name} that has no record");
            let data = entry.path().join("_data");
            if is_mount_point(&data) {
                let _ = berth_core::unmount(&data);
            }
            if let Err(err) = std::fs::remove_dir_all(entry.path()) {
                log::warning!("removing {}: {err}", entry.path().display());
            }
        }
        Ok(Arc::new(VolumeStore {
            root,
            metadata,
            events,
            state: Mutex::new(state),
        }))
    }

    /// `<data_root>/volumes/<name>/_data`: what containers mount.
    pub(crate) fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    fn publish(&self, action: &str, volume: &Volume, extra: &[(&str, String)]) {
        let mut attributes = BTreeMap::new();
        attributes.insert("driver".to_owned(), volume.driver.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), v.clone());
        }
        self.events.publish(Event::now(
            EventType::Volume,
            action,
            volume.name.clone(),
            attributes,
        ));
    }

    /// Creates the volume, or returns the one of that name.
    fn create_locked(
        &self,
        state: &mut State,
        request: CreateVolume,
    ) -> Result<(Volume, bool), VolumeError> {
        let driver = if request.driver.is_empty() {
            LOCAL_DRIVER.to_owned()
        } else {
            request.driver
        };
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::UnknownDriver(driver));
        }
        let mut labels = request.labels;
        let name = if request.name.is_empty() {
            labels
                .get_or_insert_with(BTreeMap::new)
                .insert(ANONYMOUS_LABEL.to_owned(), String::new());
            random_name()?
        } else {
            validate_name(&request.name)?;
            request.name
        };
        if let Some(existing) = state.volumes.get(&name) {
            return Ok((existing.clone(), false));
        }
        validate_options(request.options.as_ref())?;
        let volume = Volume {
            name: name.clone(),
            driver,
            labels,
            options: request.options,
            created_at: now_nanos(),
        };
        let data = self.data_path(&name);
        std::fs::create_dir_all(&data).map_err(io_err("creating directory", &data))?;
        if let Err(err) = self.metadata.put(TABLE, &name, &volume) {
            let _ = std::fs::remove_dir_all(self.root.join(&name));
            return Err(err.into());
        }
        state.volumes.insert(name, volume.clone());
        self.publish("create", &volume, &[]);
        Ok((volume, true))
    }

    /// `POST /volumes/create`.
    pub(crate) fn create(&self, request: CreateVolume) -> Result<Volume, VolumeError> {
        let mut state = lock(&self.state);
        Ok(self.create_locked(&mut state, request)?.0)
    }

    /// `GET /volumes/{name}`.
    pub(crate) fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        lock(&self.state)
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))
    }

    /// Every volume with its reference count, by name.
    pub(crate) fn list_all(&self) -> Vec<VolumeUsage> {
        let state = lock(&self.state);
        state
            .volumes
            .values()
            .map(|v| VolumeUsage {
                volume: v.clone(),
                ref_count: state.refs.get(&v.name).map_or(0, BTreeSet::len),
            })
            .collect()
    }

    /// `GET /volumes` with moby's filters `dangling`, `name`, `driver`, `label`.
    pub(crate) fn list(&self, filters: &Filters) -> Result<Vec<Volume>, VolumeError> {
        filters.validate(&["dangling", "name", "driver", "label"])?;
        let mut dangling = None;
        for value in filters.get("dangling") {
            dangling = Some(match value.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(VolumeError::InvalidFilter("dangling", value.to_owned())),
            });
        }
        Ok(self
            .list_all()
            .into_iter()
            .filter(|u| dangling.is_none_or(|d| d == (u.ref_count == 0)))
            .map(|u| u.volume)
            .filter(|v| {
                filters.any_or_absent("name", |n| v.name.contains(n))
                    && filters.any_or_absent("driver", |d| v.driver == d)
                    && filters.labels_match("label", &v.labels.clone().unwrap_or_default())
            })
            .collect())
    }

    /// Deletes record then directory; the caller checked references.
    fn remove_locked(&self, state: &mut State, name: &str) -> Result<(), VolumeError> {
        let Some(volume) = state.volumes.get(name).cloned() else {
            return Err(VolumeError::NotFound(name.to_owned()));
        };
        let data = self.data_path(name);
        if volume.needs_mount() && is_mount_point(&data) {
            berth_core::unmount(&data).map_err(|e| VolumeError::Io {
                what: "unmounting",
                path: data.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        self.metadata.delete(TABLE, name)?;
        state.volumes.remove(name);
        state.active.remove(name);
        let dir = self.root.join(name);
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            // The record is gone; the next start removes what is left.
            log::warning!("removing {}: {err}", dir.display());
        }
        self.publish("destroy", &volume, &[]);
        Ok(())
    }

    /// `DELETE /volumes/{name}`: `force` makes a missing volume no error
    /// (a volume in use is refused even then, as in moby).
    pub(crate) fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let mut state = lock(&self.state);
        if !state.volumes.contains_key(name) {
            return if force {
                Ok(())
            } else {
                Err(VolumeError::NotFound(name.to_owned()))
            };
        }
        if let Some(refs) = state.refs.get(name).filter(|r| !r.is_empty()) {
            return Err(VolumeError::InUse {
                name: name.to_owned(),
                refs: refs.iter().cloned().collect(),
            });
        }
        self.remove_locked(&mut state, name)
    }

    /// `POST /volumes/prune`: unused volumes, only anonymous ones unless
    /// the filter `all` is true; filters `label`, `label!`. Volumes with
    /// driver options are left alone (as in moby: pruning them frees no
    /// space here). Names removed and bytes freed.
    pub(crate) fn prune(&self, filters: &Filters) -> Result<(Vec<String>, u64), VolumeError> {
        filters.validate(&["label", "label!", "all"])?;
        let mut all = false;
        for value in filters.get("all") {
            all = match value.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(VolumeError::InvalidFilter("all", value.to_owned())),
            };
        }
        let mut state = lock(&self.state);
        let candidates: Vec<Volume> = state
            .volumes
            .values()
            .filter(|v| state.refs.get(&v.name).is_none_or(BTreeSet::is_empty))
            .filter(|v| all || v.is_anonymous())
            .filter(|v| v.options.as_ref().is_none_or(BTreeMap::is_empty))
            .filter(|v| {
                let labels = v.labels.clone().unwrap_or_default();
                filters.labels_match("label", &labels)
                    && !filters.get("label!").any(|l| has_label(&labels, l))
            })
            .cloned()
            .collect();
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for volume in candidates {
            let size = disk_usage(&self.data_path(&volume.name));
            match self.remove_locked(&mut state, &volume.name) {
                Ok(()) => {
                    reclaimed += size;
                    removed.push(volume.name);
                }
                Err(err) => log::warning!("pruning volume {}: {err}", volume.name),
            }
        }
        let mut attributes = BTreeMap::new();
        attributes.insert("reclaimed".to_owned(), reclaimed.to_string());
        self.events.publish(Event::now(
            EventType::Volume,
            "prune",
            String::new(),
            attributes,
        ));
        Ok((removed, reclaimed))
    }

    /// Takes the volumes `points` need for container `id`: creates the
    /// missing ones (anonymous ones get their random name here) and adds
    /// the references. On error nothing is taken and nothing made is left.
    /// Returns the volumes it created (named or anonymous), for the caller
    /// to remove if the container cannot be made after all.
    pub(crate) fn claim(
        &self,
        id: &str,
        points: &mut [MountPoint],
    ) -> Result<Vec<String>, VolumeError> {
        let mut state = lock(&self.state);
        let mut created = Vec::new();
        let mut result = Ok(());
        for point in points.iter_mut().filter(|p| p.kind == MountKind::Volume) {
            let request = CreateVolume {
                name: point.source.clone(),
                driver: point.driver.clone(),
                labels: point.volume_labels.clone(),
                options: point.volume_options.clone(),
            };
            match self.create_locked(&mut state, request) {
                Ok((volume, made)) => {
                    if made {
                        created.push(volume.name.clone());
                    }
                    point.source = volume.name;
                    point.driver = volume.driver;
                }
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        if let Err(err) = result {
            for name in &created {
                let _ = self.remove_locked(&mut state, name);
            }
            return Err(err);
        }
        for point in points.iter().filter(|p| p.kind == MountKind::Volume) {
            state
                .refs
                .entry(point.source.clone())
                .or_default()
                .insert(id.to_owned());
        }
        Ok(created)
    }

    /// Re-registers a stored container's references (at daemon start).
    pub(crate) fn register(&self, id: &str, points: &[MountPoint], running: bool) {
        let mut state = lock(&self.state);
        for point in points.iter().filter(|p| p.kind == MountKind::Volume) {
            state
                .refs
                .entry(point.source.clone())
                .or_default()
                .insert(id.to_owned());
            if running {
                state
                    .active
                    .entry(point.source.clone())
                    .or_default()
                    .insert(id.to_owned());
            }
        }
    }

    /// Drops container `id`'s references; with `remove_anonymous`, removes
    /// its anonymous volumes that nothing else uses (`rm -v`, `--rm`).
    pub(crate) fn release(&self, id: &str, points: &[MountPoint], remove_anonymous: bool) {
        let mut state = lock(&self.state);
        for point in points.iter().filter(|p| p.kind == MountKind::Volume) {
            if let Some(refs) = state.refs.get_mut(&point.source) {
                refs.remove(id);
                if refs.is_empty() {
                    state.refs.remove(&point.source);
                }
            }
        }
        if !remove_anonymous {
            return;
        }
        for point in points
            .iter()
            .filter(|p| p.kind == MountKind::Volume && !p.named)
        {
            let in_use = state.refs.contains_key(&point.source);
            let anonymous = state
                .volumes
                .get(&point.source)
                .is_some_and(Volume::is_anonymous);
            if !in_use
                && anonymous
                && let Err(err) = self.remove_locked(&mut state, &point.source)
            {
                log::warning!("removing volume {}: {err}", point.source);
            }
        }
    }

    /// Makes the volume of `point` ready for container `id` to start with:
    /// mounts it if it has driver options and is not mounted yet. Returns
    /// `_data`.
    pub(crate) fn activate(&self, point: &MountPoint, id: &str) -> Result<PathBuf, VolumeError> {
        let name = point.source.as_str();
        let mut state = lock(&self.state);
        let volume = state
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))?;
        let data = self.data_path(name);
        let in_use = state.active.get(name).is_some_and(|u| !u.is_empty());
        if volume.needs_mount() && !in_use && !is_mount_point(&data) {
            mount_local(&volume, &data)?;
        }
        state
            .active
            .entry(name.to_owned())
            .or_default()
            .insert(id.to_owned());
        self.publish(
            "mount",
            &volume,
            &[
                ("container", id.to_owned()),
                ("destination", point.destination.clone()),
                ("propagation", point.propagation.clone()),
                ("read/write", point.rw.to_string()),
            ],
        );
        Ok(data)
    }

    /// Container `id` stopped: unmounts the volumes it was the last user of.
    pub(crate) fn deactivate(&self, id: &str) {
        let mut state = lock(&self.state);
        let mut idle = Vec::new();
        let mut released = Vec::new();
        for (name, users) in state.active.iter_mut() {
            if users.remove(id) {
                released.push(name.clone());
                if users.is_empty() {
                    idle.push(name.clone());
                }
            }
        }
        for name in released {
            if let Some(volume) = state.volumes.get(&name) {
                self.publish("unmount", volume, &[("container", id.to_owned())]);
            }
        }
        for name in idle {
            state.active.remove(&name);
            let needs_mount = state.volumes.get(&name).is_some_and(Volume::needs_mount);
            let data = self.data_path(&name);
            if needs_mount
                && is_mount_point(&data)
                && let Err(err) = berth_core::unmount(&data)
            {
                log::warning!("unmounting volume {name}: {err}");
            }
        }
    }

    /// Unmounts volumes with driver options that no running container
    /// uses (left mounted by a daemon that crashed); called at start once
    /// the running containers are known.
    pub(crate) fn unmount_idle(&self) {
        let state = lock(&self.state);
        for volume in state.volumes.values().filter(|v| v.needs_mount()) {
            let data = self.data_path(&volume.name);
            if state
                .active
                .get(&volume.name)
                .is_none_or(BTreeSet::is_empty)
                && is_mount_point(&data)
                && let Err(err) = berth_core::unmount(&data)
            {
                log::warning!("unmounting idle volume {}: {err}", volume.name);
            }
        }
    }

    /// Fills volume `name` from `source` if it is empty (see [`copyup`]).
    /// A volume with driver options that nothing has mounted is mounted
    /// for the copy and unmounted after, as moby's populate does. Holds the
    /// store's lock throughout, so no start or second copy interleaves.
    pub(crate) fn copy_up(&self, name: &str, source: &Path) -> Result<(), VolumeError> {
        let state = lock(&self.state);
        let volume = state
            .volumes
            .get(name)
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))?;
        let data = self.data_path(name);
        let mount_here = volume.needs_mount() && !is_mount_point(&data);
        if mount_here {
            mount_local(volume, &data)?;
        }
        let copied = copyup::copy_if_empty(source, &data);
        if mount_here && let Err(err) = berth_core::unmount(&data) {
            log::warning!("unmounting volume {name}: {err}");
        }
        copied.map_err(|source| VolumeError::Io {
            what: "copying image content into volume",
            path: data,
            source,
        })
    }
}

/// Mounts a volume with moby's local driver options: `type`, `device`,
/// and `o` (mount flags such as `ro`, `bind`; the rest is filesystem data).
fn mount_local(volume: &Volume, target: &Path) -> Result<(), VolumeError> {
    use rustix::mount::MountFlags;
    let options = volume.options.clone().unwrap_or_default();
    let kind = options.get("type").cloned().unwrap_or_default();
    let device = options.get("device").cloned().unwrap_or_default();
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for option in options.get("o").into_iter().flat_map(|o| o.split(',')) {
        flags |= match option {
            "ro" => MountFlags::RDONLY,
            "rw" | "" | "defaults" => MountFlags::empty(),
            "nosuid" => MountFlags::NOSUID,
            "nodev" => MountFlags::NODEV,
            "noexec" => MountFlags::NOEXEC,
            "noatime" => MountFlags::NOATIME,
            "bind" => MountFlags::BIND,
            "rbind" => MountFlags::BIND | MountFlags::REC,
            _ => {
                data.push(option);
                MountFlags::empty()
            }
        };
    }
    let data = std::ffi::CString::new(data.join(","))
        .map_err(|_| VolumeError::InvalidOption("o".to_owned()))?;
    rustix::mount::mount(
        device.as_str(),
        target,
        kind.as_str(),
        flags,
        Some(data.as_c_str()),
    )
    .map_err(|e| VolumeError::Mount {
        name: volume.name.clone(),
        device,
        kind,
        path: target.to_owned(),
        source: e.into(),
    })
}

impl super::Engine {
    pub(crate) fn volumes(&self) -> &Arc<VolumeStore> {
        &self.volumes
    }

    /// Runs `f` on a blocking thread with the volume store.
    pub(crate) async fn volumes_blocking<T, F>(
        &self,
        what: &'static str,
        f: F,
    ) -> Result<T, VolumeError>
    where
        T: Send + 'static,
        F: FnOnce(&VolumeStore) -> Result<T, VolumeError> + Send + 'static,
    {
        let store = self.volumes.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| VolumeError::Task(what))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Arc<VolumeStore> {
        let metadata = Arc::new(MetadataStore::open(dir).unwrap());
        VolumeStore::open(dir, metadata, Arc::new(EventBus::default())).unwrap()
    }

    #[test]
    fn names_follow_the_local_driver_rule() {
        assert!(validate_name("data_1.x-y").is_ok());
        assert!(matches!(validate_name("a"), Err(VolumeError::NameTooShort)));
        for bad in ["", "-x", "a/b", "..", "a b", "/abs"] {
            assert!(
                matches!(validate_name(bad), Err(VolumeError::InvalidName(_))),
                "{bad}"
            );
        }
        assert_eq!(
            validate_name("a/b").unwrap_err().to_string(),
            "\"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    #[test]
    fn volumes_persist_and_references_block_removal() {
        let dir = tempfile::tempdir().unwrap();
        let volumes = store(dir.path());
        let made = volumes
            .create(CreateVolume {
                name: "keep".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(made.driver, "local");
        assert!(volumes.data_path("keep").is_dir());
        // A second create of the name returns the first.
        let again = volumes
            .create(CreateVolume {
                name: "keep".into(),
                labels: Some([("x".to_owned(), "y".to_owned())].into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(again, made);
        let mut points = vec![
            MountPoint::volume("", "/anon"),
            MountPoint::volume("keep", "/k"),
        ];
        points[1].named = true;
        let created = volumes.claim("c1", &mut points).unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(points[0].source.len(), 64);
        let err = volumes.remove("keep", true).unwrap_err();
        assert_eq!(err.to_string(), "remove keep: volume is in use - [c1]");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        drop(volumes);

        // Reopened: records are back, references come from containers.
        let volumes = store(dir.path());
        assert_eq!(volumes.list_all().len(), 2);
        volumes.register("c1", &points, false);
        assert!(volumes.remove("keep", false).is_err());
        volumes.release("c1", &points, true);
        assert!(volumes.get(&points[0].source).is_err(), "anonymous removed");
        volumes.remove("keep", false).unwrap();
        assert!(!dir.path().join("volumes/keep").exists());
        assert!(matches!(
            volumes.remove("keep", false),
            Err(VolumeError::NotFound(_))
        ));
        volumes.remove("keep", true).unwrap();
    }

    #[test]
    fn stray_directories_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("volumes/stray/_data")).unwrap();
        let volumes = store(dir.path());
        assert!(volumes.list_all().is_empty());
        assert!(!dir.path().join("volumes/stray").exists());
    }

    #[test]
    fn prune_takes_anonymous_unless_all_and_list_filters() {
        let dir = tempfile::tempdir().unwrap();
        let volumes = store(dir.path());
        let anon = volumes.create(CreateVolume::default()).unwrap();
        assert!(anon.is_anonymous());
        volumes
            .create(CreateVolume {
                name: "named".into(),
                labels: Some([("tier".to_owned(), "db".to_owned())].into()),
                ..Default::default()
            })
            .unwrap();
        std::fs::write(volumes.data_path(&anon.name).join("f"), b"12345").unwrap();
        let filters = Filters::parse(r#"{"label":["tier=db"]}"#).unwrap();
        let listed = volumes.list(&filters).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "named");
        let dangling = Filters::parse(r#"{"dangling":["maybe"]}"#).unwrap();
        assert_eq!(
            volumes.list(&dangling).unwrap_err().to_string(),
            "invalid filter 'dangling=maybe'"
        );
        let (removed, bytes) = volumes.prune(&Filters::default()).unwrap();
        assert_eq!(removed, vec![anon.name.clone()]);
        assert_eq!(bytes, 5);
        let all = Filters::parse(r#"{"all":["true"],"label!":["tier=db"]}"#).unwrap();
        assert!(volumes.prune(&all).unwrap().0.is_empty());
        let all = Filters::parse(r#"{"all":["1"]}"#).unwrap();
        assert_eq!(volumes.prune(&all).unwrap().0, vec!["named".to_owned()]);
    }

    #[test]
    fn bad_options_and_drivers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let volumes = store(dir.path());
        let err = volumes
            .create(CreateVolume {
                name: "v1".into(),
                driver: "nfs-plugin".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = volumes
            .create(CreateVolume {
                name: "v1".into(),
                options: Some([("colour".to_owned(), "red".to_owned())].into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid option: \"colour\"");
        assert!(volumes.list_all().is_empty());
    }
}
