//! Spare containers: a container made ahead for a create that repeats.
//!
//! CI runners, serverless hosts and benchmarks run the same `run --rm`
//! again and again. When an eligible create (see [`Key::of`]) asks for the
//! same as one of the last [`RECENT`] creates, the exit of its container
//! makes a spare for it, as the create and the prelaunch would: a record
//! with an ID of its own, the writable layer, and the launch (the shim and
//! the runtime's container, waiting for its start). It is not in the
//! table: nothing of it shows in the API and no event is published. The
//! next create asking for exactly the same (the same request but for the
//! name, the same image ID) takes it: it gets its name and creation time,
//! its record is written, `create` is published, and from there it is a
//! prelaunched container (see [`super::run`]) whose launch is done.
//!
//! Eligible is what a prelaunch launches unseen (`AutoRemove`; network
//! `none`, `host`, or the default bridge without published ports or links,
//! whose endpoint stays out of the record and its `connect` event held
//! until the start; no other container's namespaces) and has no volumes,
//! binds or mounts. On the bridge its address is taken while it waits,
//! as a prelaunch's is. At most [`MAX_SPARES`] wait (then no more are made);
//! one not taken within [`SPARE_TTL`] goes, as do all of them when an image
//! is removed and at shutdown. A crash leaves a container directory
//! without a record, whose remains (shim, mount, writable layer) the
//! restart removes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::{Container, ContainerError, ContainerStore, lock, now_nanos, random_id};
use crate::api::containers_types::{ContainerConfig, CreateRequest, HostConfig, NetworkingConfig};
use crate::engine::HostFacts;
use crate::engine::images::ImageDetails;
use crate::log;

/// How many of the last creates are remembered to see one repeat.
const RECENT: usize = 8;
/// How many spares may wait or be in the making at once (one per
/// distinct request). When that many do, none is made (rather than one
/// dropped for another: a few requests taking turns would have each spare
/// made and dropped unused).
const MAX_SPARES: usize = 4;
/// How long a spare waits for a create to take it.
pub(super) const SPARE_TTL: Duration = Duration::from_secs(60);

/// What a create asks for, but for the name: equal keys make equal
/// containers.
#[derive(Debug)]
pub(crate) struct Key {
    config: ContainerConfig,
    host_config: HostConfig,
    networking_config: Option<NetworkingConfig>,
    image_id: String,
    /// Not compared: what the spare's create needs of the host.
    host: HostFacts,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.image_id == other.image_id
            && self.config == other.config
            && self.host_config == other.host_config
            && self.networking_config == other.networking_config
    }
}

impl Key {
    /// The key of a create that may be eligible: `AutoRemove`, no volumes,
    /// binds or mounts. The rest of the rule (that of a prelaunch, see
    /// [`super::run::prelaunch_unseen`]) is checked on the planned record
    /// when a spare is made.
    pub(super) fn of(
        request: &CreateRequest,
        image: &ImageDetails,
        host: &HostFacts,
    ) -> Option<Arc<Key>> {
        let h = &request.host_config;
        let eligible = h.auto_remove
            && none(&h.binds)
            && none(&h.mounts)
            && none(&h.volumes_from)
            && request.config.volumes.as_ref().is_none_or(|v| v.is_empty());
        eligible.then(|| {
            Arc::new(Key {
                config: request.config.clone(),
                host_config: request.host_config.clone(),
                networking_config: request.networking_config.clone(),
                image_id: image.image.id().to_string(),
                host: host.clone(),
            })
        })
    }

    fn request(&self) -> CreateRequest {
        CreateRequest {
            config: self.config.clone(),
            host_config: self.host_config.clone(),
            networking_config: self.networking_config.clone(),
        }
    }
}

fn none<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_none_or(Vec::is_empty)
}

/// A spare waiting to be taken.
#[derive(Debug)]
struct Spare {
    key: Arc<Key>,
    container: Arc<Container>,
    warnings: Vec<String>,
    /// The host's resolver configuration when the spare's files were
    /// written: a change makes the spare stale.
    resolv_conf: Option<FileStamp>,
}

/// The recent creates and the spares made for them.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    recent: VecDeque<Arc<Key>>,
    ready: Vec<Spare>,
    /// Keys whose spare is being made.
    making: Vec<Arc<Key>>,
    /// Counts [`ContainerStore::drop_spares`]: a spare begun before one
    /// is not kept.
    generation: u64,
}

/// Identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    modified: i64,
    modified_nanos: i64,
    size: u64,
}

fn resolv_conf_stamp() -> Option<FileStamp> {
    let stat = rustix::fs::stat("/etc/resolv.conf").ok()?;
    Some(FileStamp {
        inode: stat.st_ino,
        modified: stat.st_mtime,
        modified_nanos: stat.st_mtime_nsec as i64,
        size: stat.st_size as u64,
    })
}

impl ContainerStore {
    /// Remembers an eligible create, and which container it made: its exit
    /// makes a spare if the create repeats one of the last few.
    pub(super) fn note_create(&self, container: &Container, key: Arc<Key>) {
        let _ = container.spare_key.set(key.clone());
        let mut spares = lock(&self.spares);
        if spares.recent.len() == RECENT {
            spares.recent.pop_front();
        }
        spares.recent.push_back(key);
    }

    /// Takes the spare made for `key`, if one waits: names it, writes its
    /// record, publishes `create` and adds it to the table. Returns its ID
    /// and the create's warnings.
    pub(super) fn adopt_spare(
        self: &Arc<Self>,
        key: &Arc<Key>,
        requested_name: Option<&str>,
    ) -> Result<Option<(String, Vec<String>)>, ContainerError> {
        let spare = {
            let mut spares = lock(&self.spares);
            let Some(at) = spares.ready.iter().position(|s| *s.key == **key) else {
                return Ok(None);
            };
            spares.ready.remove(at)
        };
        if spare.resolv_conf != resolv_conf_stamp() {
            // Its copy of the host's resolv.conf is out of date.
            self.destroy_spare(&spare.container);
            return Ok(None);
        }
        let container = spare.container;
        let id = container.id.clone();
        let name = match requested_name {
            Some(name) => match self.reserve_name(name, &id) {
                Ok(()) => name.to_owned(),
                Err(err) => {
                    self.destroy_spare(&container);
                    return Err(err);
                }
            },
            None => self.reserve_generated_name(&id),
        };
        let record = {
            let mut record = lock(&container.record);
            record.name = name.clone();
            record.created = now_nanos();
            record.clone()
        };
        // No volumes: the start writes the record (see `written_at_create`).
        self.publish("create", &record, &[]);
        self.note_create(&container, key.clone());
        lock(&self.table).by_id.insert(id.clone(), container);
        Ok(Some((id, spare.warnings)))
    }

    /// After the exit of a container whose create repeated a recent one:
    /// makes a spare for that create on its own thread, unless one waits
    /// or is being made.
    pub(super) fn refill_spare(self: &Arc<Self>, container: &Container) {
        let Some(key) = container.spare_key.get() else {
            return;
        };
        let generation = {
            let mut spares = lock(&self.spares);
            let repeated = spares.recent.iter().filter(|k| ***k == **key).count() >= 2;
            let present = spares.ready.iter().any(|s| *s.key == **key)
                || spares.making.iter().any(|k| **k == **key);
            if !repeated || present || spares.ready.len() + spares.making.len() >= MAX_SPARES {
                return;
            }
            spares.making.push(key.clone());
            spares.generation
        };
        let (store, key) = (self.clone(), key.clone());
        let making = key.clone();
        let spawned = std::thread::Builder::new()
            .name("spare-container".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let made = store.make_spare(&key);
                let stale = {
                    let mut spares = lock(&store.spares);
                    spares.making.retain(|k| !Arc::ptr_eq(k, &key));
                    match made {
                        Ok(spare) if spares.generation != generation => Some(spare),
                        Ok(spare) => {
                            spares.ready.push(spare);
                            None
                        }
                        Err(err) => {
                            log::debug!("making a spare container: {err}");
                            None
                        }
                    }
                };
                if let Some(spare) = stale {
                    store.destroy_spare(&spare.container);
                }
            });
        if spawned.is_err() {
            lock(&self.spares)
                .making
                .retain(|k| !Arc::ptr_eq(k, &making));
        }
    }

    /// Makes what the create and the prelaunch of `key` would, out of the
    /// table.
    fn make_spare(self: &Arc<Self>, key: &Arc<Key>) -> Result<Spare, ContainerError> {
        let image = self.images.resolve(&key.config.image)?;
        if image.image.id().to_string() != key.image_id {
            return Err(ContainerError::InvalidConfig(format!(
                "image {} was changed",
                key.config.image
            )));
        }
        let id = random_id()?;
        let (record, warnings) = self.plan(key.request(), &image, &key.host, &id)?;
        if !record.mount_points.is_empty() || !super::run::prelaunch_unseen(&record) {
            // Anonymous volumes of the image, a network endpoint others
            // see: they would show in the API.
            return Err(ContainerError::InvalidConfig(
                "not launched unseen".to_owned(),
            ));
        }
        if let Err(err) = self.make_files(&record, &image.image) {
            self.remove_files(&id);
            return Err(err);
        }
        let resolv_conf = resolv_conf_stamp();
        let container = Arc::new(Container::new(record.clone()));
        let _ = container.spare_key.set(key.clone());
        if !self.begin_prelaunch(&container, record, true) {
            self.remove_files(&id);
            return Err(ContainerError::Task("spare container"));
        }
        Ok(Spare {
            key: key.clone(),
            container,
            warnings,
            resolv_conf,
        })
    }

    /// Called by a spare's launch thread after [`SPARE_TTL`]: removes the
    /// spare if it still waits. `false`: it was taken meanwhile.
    pub(super) fn expire_spare(&self, container: &Container) -> bool {
        let spare = {
            let mut spares = lock(&self.spares);
            let Some(at) = spares
                .ready
                .iter()
                .position(|s| std::ptr::eq(&*s.container, container))
            else {
                return false;
            };
            spares.ready.remove(at)
        };
        self.destroy_spare(&spare.container);
        true
    }

    /// Removes every waiting spare: before an image goes, and at shutdown.
    pub(crate) fn drop_spares(&self) {
        let ready = {
            let mut spares = lock(&self.spares);
            spares.generation += 1;
            std::mem::take(&mut spares.ready)
        };
        for spare in ready {
            self.destroy_spare(&spare.container);
        }
    }

    /// Undoes a spare that is out of the table: its launch, mounts,
    /// writable layer and directories.
    fn destroy_spare(&self, container: &Container) {
        let _op = lock(&container.op);
        // A spare always has its prelaunch (the launch's outcome, either
        // way); dropping it releases the runtime and host resources.
        self.drop_prelaunch(container);
        self.remove_files(&container.id);
    }
}
