//! The running side of a container: start (rootfs, bundle, shim), the
//! monitor that records the exit, wait conditions, stop and kill, attach,
//! and live restore after a berthd restart.
//!
//! Start mounts the writable snapshot at `<run_dir>/rootfs`, writes the
//! spec, and spawns `berth-shim`, which creates the container (not yet
//! running). Attach requests that came before the start (the docker CLI
//! attaches, then starts) are answered right then; the last of them
//! carries the start itself (one round trip to the shim, which reads the
//! output only after both), so no output is lost. One monitor thread per
//! running container blocks in the shim's `wait`; on exit it records the
//! status, shuts the shim down (runtime state and cgroup go), unmounts the
//! rootfs, wakes waiters, and removes the container for `AutoRemove`.
//!
//! Prelaunch: an `AutoRemove` container (`run --rm`) is started right after
//! its create by every client, so its launch (the slow half of a start)
//! begins at once, on its own thread, while the client is still busy with
//! its attach and wait requests; the start then finds the runtime's
//! container made and only starts it. Nothing of it shows in the API: the
//! container stays `created` until the start, with no pid. Only where the
//! launch changes nothing the API shows: network `none` or `host`, or the
//! default bridge without published ports or links, whose endpoint is
//! kept out of the record, and its `connect` event held, until the start
//! takes them (on user networks it would register DNS names, and ports
//! take the host's); no namespace of another container. What would make
//! the start build something else (an update of its limits, a copy into
//! it, a network connect) or removes it first drops the prelaunch (shim,
//! runtime container, endpoint, mounts), as does a start that has not
//! come within [`PRELAUNCH_TTL`]. After a berthd crash the restart removes
//! the container with its shim, as any `AutoRemove` container not running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_core::{mount_all, unmount};
use berth_shim::client::{Attach, LogOptions as ShimLogOptions, SpawnOptions};
use berth_shim::{Client, ClientError};
use berth_snapshotter::Snapshotter;
use tokio::sync::oneshot;

use super::network::{PreparedNetwork, port_specs};
use super::{
    Container, ContainerError, ContainerStore, Lifecycle, Record, Status, io_err, lock, now_nanos,
};
use crate::api::containers_types::validate::parse_signal;
use crate::engine::Engine;
use crate::engine::activity::ClientGone;
use crate::engine::networks::{Attachment, DEFAULT_NETWORK};
use crate::engine::spec::{self, SpecInput};
use crate::log;

/// An attach waiting for the container's next start.
#[derive(Debug)]
pub(crate) struct PendingAttach {
    pub(crate) stdin: bool,
    pub(crate) close_stdin: bool,
    pub(crate) reply: oneshot::Sender<Result<Attach, String>>,
}

/// How long a prelaunch waits for its start before it is dropped.
const PRELAUNCH_TTL: Duration = Duration::from_secs(10);

/// The outcome of a launch begun at create, taken by the start (or
/// dropped) under the container's `op` lock.
#[derive(Debug)]
pub(crate) struct Prelaunch {
    done: std::sync::mpsc::Receiver<Result<Launched, ContainerError>>,
    /// Dropped with this: tells the prelaunch's thread to stop waiting.
    _taken: std::sync::mpsc::Sender<()>,
}

/// A launched container's shim, and a prelaunch's endpoints that are not
/// yet in the record nor announced.
#[derive(Debug)]
pub(crate) struct Launched {
    client: Client,
    unannounced: Option<Vec<(String, Attachment)>>,
}

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub(crate) fn parse(text: &str) -> Result<WaitCondition, ContainerError> {
        match text {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ContainerError::InvalidConfig(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

fn shim_err(id: &str) -> impl FnOnce(ClientError) -> ContainerError {
    let id = id.to_owned();
    move |source| ContainerError::Shim { id, source }
}

impl ContainerStore {
    pub(super) fn rootfs_path(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("rootfs")
    }

    /// `<exec_root>/shim/<first 32 hex of the ID>`: short, because the
    /// shim's socket path must fit `sun_path` (108 bytes).
    pub(super) fn state_dir(&self, id: &str) -> PathBuf {
        self.shim_root.join(&id[..32.min(id.len())])
    }

    /// Starts a standby shim in the background unless one is waiting (the
    /// next start takes it). Called when a container has exited, so
    /// containers started and removed in turn (`run --rm`, CI jobs) skip
    /// the shim's start from the second one on.
    pub(super) fn refill_standby(self: &Arc<Self>) {
        if lock(&self.standby).is_some() || self.refilling.swap(true, Ordering::SeqCst) {
            return;
        }
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("standby-shim".into())
            .stack_size(256 << 10)
            .spawn(move || {
                match berth_shim::client::Standby::start(&store.shim_binary, &store.shim_root) {
                    Ok(standby) => *lock(&store.standby) = Some(standby),
                    Err(err) => log::warning!("starting a standby shim: {err}"),
                }
                store.refilling.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.refilling.store(false, Ordering::SeqCst);
        }
    }

    /// Refills the pools of spare network namespaces a container of
    /// `record`'s kind takes from.
    fn refill_network_spares(&self, record: &Record) {
        self.networks
            .refill_spares(crate::engine::networks::Refill::Now);
        if record.host_config.network_mode == "none" {
            self.networks.refill_loopback_spares();
        }
    }

    /// `<parent>/<id>`: the container's `CgroupParent`, else the daemon's.
    fn cgroup_path(&self, record: &Record) -> PathBuf {
        let own = record.host_config.cgroup_parent.trim_matches('/');
        let parent = if own.is_empty() {
            self.cgroup_parent.clone()
        } else {
            format!("/{own}")
        };
        Path::new(&parent).join(&record.id)
    }

    /// Mounts the rootfs, writes the bundle, spawns the shim. `early`: a
    /// prelaunch (see the module doc).
    fn launch(
        &self,
        container: &Container,
        record: &Record,
        early: bool,
    ) -> Result<Launched, ContainerError> {
        let PreparedNetwork {
            files: network_files,
            netns_path,
            held,
            mut unannounced,
        } = self.prepare_network(container, record, early)?;
        let id = &record.id;
        let rootfs = self.rootfs_path(id);
        std::fs::create_dir_all(&rootfs).map_err(io_err("creating directory", &rootfs))?;
        let _ = unmount(&rootfs);
        let mut mounts = self.images.snapshots.mounts(id)?;
        if record.host_config.auto_remove {
            // The writable layer goes with the container, so nothing in it
            // needs syncing: without `volatile` the unmount at exit syncs
            // the whole upper filesystem, on `run --rm`'s critical path.
            for m in mounts.iter_mut().filter(|m| m.kind == "overlay") {
                m.options.push("volatile".to_owned());
            }
            // An earlier volatile mount of it (a failed or dropped launch).
            clear_volatile_marker(&mounts);
        }
        mount_all(&mounts, &rootfs)?;
        let built = (|| {
            make_working_dir(&rootfs, &record.config.working_dir)?;
            let (extra_mounts, host) = self.prepare_mounts(record)?;
            let spec = spec::build_spec(&SpecInput {
                config: &record.config,
                host: &host,
                rootfs: &rootfs,
                cgroups_path: Some(self.cgroup_path(record)),
                cgroup_v2: Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
                network_files,
                extra_mounts,
                init_binary: self.init_binary.as_deref(),
                network_ns_path: netns_path,
            })?;
            let bundle = self.run_dir(id);
            let config_path = bundle.join("config.json");
            spec.save(&config_path).map_err(|e| ContainerError::Io {
                what: "writing",
                path: config_path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let state_dir = self.state_dir(id);
            let _ = std::fs::remove_dir_all(&state_dir);
            let log_config = &record.host_config.log_config.config;
            let max_size = log_config
                .get("max-size")
                .and_then(|s| parse_size(s))
                .unwrap_or(0);
            let max_files = log_config
                .get("max-file")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            let opts = SpawnOptions {
                binary: self.shim_binary.clone(),
                bundle,
                id: id.clone(),
                state_dir,
                runtime_root: Some(self.runtime_root.clone()),
                log: Some(ShimLogOptions {
                    path: self.log_path(id),
                    max_size,
                    max_files,
                }),
                tty: record.config.tty,
                stdin: record.config.open_stdin,
            };
            let standby = lock(&self.standby).take();
            match standby.map(|s| s.spawn(&opts)) {
                Some(Ok(spawned)) => spawned,
                // None waiting, or it died: a shim of its own.
                Some(Err(_)) | None => berth_shim::spawn(&opts),
            }
            .map_err(|err| match err {
                ClientError::Shim { message, .. } => ContainerError::Start {
                    id: id.clone(),
                    message,
                },
                other => shim_err(id)(other),
            })
        })();
        if built.is_err() {
            let _ = unmount(&rootfs);
            if let Some(mut endpoints) = unannounced.take() {
                self.networks
                    .disconnect_container(id, &mut endpoints, false);
            }
        }
        // The shim answers once the runtime's create is done: the
        // container is in its namespace.
        drop(held);
        built.map(|client| Launched {
            client,
            unannounced,
        })
    }

    /// Begins the launch of a new `AutoRemove` container on its own thread
    /// (see the module doc), where that shows nothing in the API.
    pub(super) fn prelaunch(self: &Arc<Self>, container: &Arc<Container>) {
        let record = container.record();
        if prelaunch_unseen(&record) {
            self.begin_prelaunch(container, record, false);
        }
    }

    /// Begins the launch on its own thread, which drops it if no start
    /// takes it within [`PRELAUNCH_TTL`] (a `spare`: within
    /// [`super::spare::SPARE_TTL`] while no create takes it, then as any
    /// prelaunch). `false`: no thread could be started.
    pub(super) fn begin_prelaunch(
        self: &Arc<Self>,
        container: &Arc<Container>,
        record: Record,
        spare: bool,
    ) -> bool {
        let (tx, done) = std::sync::mpsc::channel();
        let (taken, untaken) = std::sync::mpsc::channel();
        *lock(&container.prelaunch) = Some(Prelaunch {
            done,
            _taken: taken,
        });
        let (store, launching) = (self.clone(), container.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("prelaunch-{}", &container.id[..12]))
            .stack_size(256 << 10)
            .spawn(move || {
                let _ = tx.send(store.launch(&launching, &record, true));
                drop(tx);
                if spare {
                    // Made after an exit's refill, it took from the pools.
                    store.refill_network_spares(&record);
                }
                let mut waiting_as_spare = spare;
                loop {
                    let ttl = if waiting_as_spare {
                        super::spare::SPARE_TTL
                    } else {
                        PRELAUNCH_TTL
                    };
                    if untaken.recv_timeout(ttl) != Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    {
                        return; // taken by a start, or dropped
                    }
                    if waiting_as_spare {
                        if store.expire_spare(&launching) {
                            return;
                        }
                        // Taken by a create meanwhile: a prelaunch now.
                        waiting_as_spare = false;
                        continue;
                    }
                    let _op = lock(&launching.op);
                    store.drop_prelaunch(&launching);
                    return;
                }
            });
        if spawned.is_err() {
            // The start launches as usual.
            lock(&container.prelaunch).take();
        }
        spawned.is_ok()
    }

    /// The prelaunch's outcome, once it is done. Caller holds `op`.
    fn take_prelaunch(&self, container: &Container) -> Option<Result<Launched, ContainerError>> {
        let prelaunch = lock(&container.prelaunch).take()?;
        Some(
            prelaunch
                .done
                .recv()
                .unwrap_or(Err(ContainerError::Task("prelaunch"))),
        )
    }

    /// Undoes a prelaunch: its shim and runtime container, mounts,
    /// volumes. Caller holds `op`.
    pub(super) fn drop_prelaunch(&self, container: &Container) {
        let Some(launched) = self.take_prelaunch(container) else {
            return;
        };
        let unannounced = launched.ok().and_then(|launched| {
            *lock(&container.shim) = Some(launched.client);
            launched.unannounced
        });
        release_runtime(self, container);
        if let Some(mut endpoints) = unannounced {
            self.networks
                .disconnect_container(&container.id, &mut endpoints, false);
        }
        if let Ok(mounts) = self.images.snapshots.mounts(&container.id) {
            clear_volatile_marker(&mounts);
        }
        let _ = std::fs::remove_dir_all(self.state_dir(&container.id));
    }

    /// Starts a created or exited container. `Ok(false)`: it was running.
    pub(crate) fn start(
        self: &Arc<Self>,
        container: &Arc<Container>,
    ) -> Result<bool, ContainerError> {
        self.start_with(container, false)
    }

    /// A start by the user (clears a manual stop), or by the restart
    /// policy (`restart`: only if still `restarting` and not stopped by
    /// the user meanwhile; checked under the `op` lock).
    fn start_with(
        self: &Arc<Self>,
        container: &Arc<Container>,
        restart: bool,
    ) -> Result<bool, ContainerError> {
        let op = lock(&container.op);
        if container.lifecycle.borrow().removed {
            return Err(ContainerError::NotFound(container.id.clone()));
        }
        if restart {
            let status = container.record().state.status;
            if container.manual_stop.load(Ordering::SeqCst) || status != Status::Restarting {
                if status == Status::Restarting {
                    self.update(container, |r| r.state.status = Status::Exited)?;
                }
                return Ok(false);
            }
            self.update(container, |r| r.restart_count += 1)?;
        } else {
            container.manual_stop.store(false, Ordering::SeqCst);
        }
        let record = container.record();
        if matches!(record.state.status, Status::Running | Status::Paused) {
            return Ok(false);
        }
        let launched = match self.take_prelaunch(container) {
            Some(Ok(launched)) => {
                if let Some(endpoints) = launched.unannounced {
                    self.adopt_endpoints(container, endpoints);
                }
                Ok(launched.client)
            }
            Some(Err(_)) => {
                // Launched again for the start's own error and cleanup.
                release_host_resources(self, container);
                self.launch(container, &record, false).map(|l| l.client)
            }
            None => self.launch(container, &record, false).map(|l| l.client),
        };
        let started = launched.and_then(|client| {
            let mut pending: Vec<PendingAttach> =
                lock(&container.pending_attaches).drain(..).collect();
            // The last attach carries the start: one round trip for both.
            let last = pending.pop();
            for pending in pending {
                let attached = client
                    .attach(pending.stdin, pending.close_stdin)
                    .map_err(|e| e.to_string());
                let _ = pending.reply.send(attached);
            }
            let started = match last {
                Some(last) => {
                    let attached = client.attach_and_start(last.stdin, last.close_stdin);
                    let (reply, started) = match attached {
                        Ok(attach) => (Ok(attach), Ok(())),
                        Err(err) => (Err(err.to_string()), Err(err)),
                    };
                    let _ = last.reply.send(reply);
                    started
                }
                None => client.start(),
            };
            let pid = started.and_then(|()| match client.created_pid() {
                Some(pid) => Ok(pid),
                None => client.state().map(|state| state.pid),
            });
            match pid {
                Ok(pid) => Ok((client, pid)),
                Err(err) => {
                    let _ = client.shutdown();
                    let _ = unmount(&self.rootfs_path(&record.id));
                    Err(match err {
                        ClientError::Shim { message, .. } => ContainerError::Start {
                            id: record.id.clone(),
                            message,
                        },
                        other => shim_err(&record.id)(other),
                    })
                }
            }
        });
        let (client, pid) = match started {
            Ok(done) => done,
            Err(err) => {
                self.volumes.deactivate(&container.id);
                self.release_network(container);
                // Docker records a failed start as an exit: 127 for a
                // missing command, 126 for one that cannot run.
                let text = err.to_string();
                let code = if text.contains("executable file not found")
                    || text.contains("no such file or directory")
                {
                    127
                } else if text.contains("permission denied") {
                    126
                } else {
                    128
                };
                lock(&container.pending_attaches).clear();
                let record = self.update(container, |r| {
                    r.state.status = Status::Exited;
                    r.state.exit_code = code;
                    r.state.error = text.clone();
                    r.state.pid = 0;
                    r.state.finished_at = Some(now_nanos());
                });
                container.lifecycle.send_modify(|l| {
                    l.running = false;
                    l.exits += 1;
                    l.exit_code = code;
                });
                drop(op);
                if record.is_ok_and(|r| r.host_config.auto_remove)
                    && let Err(e) = self.remove(container, true)
                {
                    log::warning!("auto-removing container {}: {e}", container.id);
                }
                return Err(err);
            }
        };
        *lock(&container.shim) = Some(client.clone());
        // An AutoRemove container is removed after a machine crash anyway
        // (see `on_exit`), so its start need not be fsynced either.
        let durable = !record.host_config.auto_remove;
        let record = self.update_with(container, durable, |r| {
            r.state.status = Status::Running;
            r.state.pid = i64::from(pid);
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.started_at = Some(now_nanos());
        })?;
        container.lifecycle.send_modify(|l| l.running = true);
        self.publish("start", &record, &[]);
        drop(op);
        spawn_monitor(self.clone(), container.clone(), client);
        Ok(true)
    }

    /// Records an exit, releases the runtime, wakes waiters, auto-removes
    /// or restarts by the restart policy.
    fn on_exit(self: &Arc<Self>, container: &Arc<Container>, code: i64, finished_at: i64) {
        let record_exit = |r: &mut Record| {
            // `AutoRemove` goes straight to `removing`.
            r.state.status = if r.host_config.auto_remove {
                Status::Removing
            } else {
                Status::Exited
            };
            r.state.exit_code = code;
            r.state.pid = 0;
            r.state.finished_at = Some(finished_at);
        };
        // An AutoRemove container's exit is not written at all: after a
        // crash of berthd or the machine from here on, the restart finds
        // its record saying running and its shim gone (or exited), records
        // the exit and removes it all the same (see `restore`).
        let record = if container.record().host_config.auto_remove {
            let mut record = lock(&container.record);
            record_exit(&mut record);
            record.clone()
        } else {
            self.update(container, record_exit).unwrap_or_else(|err| {
                log::error!("recording the exit of container {}: {err}", container.id);
                container.record()
            })
        };
        self.publish("die", &record, &[("exitCode", code.to_string())]);
        let auto_remove = record.host_config.auto_remove;
        if !auto_remove {
            // (AutoRemove releases it as the first step of the removal.)
            let _op = lock(&container.op);
            release_runtime(self, container);
        }
        container.lifecycle.send_modify(|l| {
            l.running = false;
            l.exits += 1;
            l.exit_code = code;
        });
        // After the exit's work, not beside a start: on two cores a shim's
        // exec next to the container's start slowed that start down. The
        // same holds for spare network namespaces.
        let refill = || {
            self.refill_standby();
            self.refill_spare(container);
            self.refill_network_spares(&record);
        };
        if auto_remove {
            self.auto_remove(container, refill);
            return;
        }
        let manual = container.manual_stop.load(Ordering::SeqCst);
        if !manual && wants_restart(&record, code) {
            self.schedule_restart(container, &record);
        }
        refill();
    }

    /// Docker's restart delay: 100 ms doubling per restart, at most a
    /// minute; the container shows `restarting` meanwhile.
    fn schedule_restart(self: &Arc<Self>, container: &Arc<Container>, record: &Record) {
        let delay = Duration::from_millis(100u64 << record.restart_count.clamp(0, 10))
            .min(Duration::from_secs(60));
        if let Err(err) = self.update(container, |r| r.state.status = Status::Restarting) {
            log::warning!("restarting container {}: {err}", container.id);
        }
        let (store, container) = (self.clone(), container.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("restart-{}", &container.id[..12]))
            .stack_size(256 << 10)
            .spawn(move || {
                std::thread::sleep(delay);
                match store.start_with(&container, true) {
                    Ok(_) | Err(ContainerError::NotFound(_)) => {} // removed meanwhile
                    Err(err) => log::warning!("restarting container {}: {err}", container.id),
                }
            });
        if let Err(err) = spawned {
            log::error!("starting a restart thread: {err}");
        }
    }
}

/// Creates the working directory in the rootfs if it is missing, as
/// dockerd does (root-owned, 0755). Resolved beneath the rootfs, so a
/// symlink in the image cannot make it land on the host.
fn make_working_dir(rootfs: &Path, dir: &str) -> Result<(), ContainerError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let relative = dir.trim_start_matches('/');
    if relative.is_empty() {
        return Ok(());
    }
    let failed = |e: rustix::io::Errno| ContainerError::Io {
        what: "creating the working directory",
        path: PathBuf::from(dir),
        source: e.into(),
    };
    let open = |root: &rustix::fd::OwnedFd, path: &str| {
        rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed)?;
    match open(&root, relative) {
        Ok(_) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => {}
        Err(rustix::io::Errno::NOTDIR) => {
            return Err(ContainerError::InvalidConfig(format!(
                "Cannot mkdir: {dir} is not a directory"
            )));
        }
        Err(e) => return Err(failed(e)),
    }
    let mut parent = open(&root, ".").map_err(failed)?;
    let mut walked = String::new();
    for name in relative.split('/').filter(|n| !n.is_empty() && *n != ".") {
        if !walked.is_empty() {
            walked.push('/');
        }
        walked.push_str(name);
        match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(failed(e)),
        }
        parent = open(&root, &walked).map_err(|e| match e {
            rustix::io::Errno::NOTDIR => {
                ContainerError::InvalidConfig(format!("Cannot mkdir: {dir} is not a directory"))
            }
            e => failed(e),
        })?;
    }
    Ok(())
}

/// Overlayfs refuses to mount an upper directory again after a
/// `volatile` mount of it (see `launch`) until the marker it left in the
/// work directory is gone.
fn clear_volatile_marker(mounts: &[berth_core::Mount]) {
    let workdirs = mounts
        .iter()
        .filter(|m| m.kind == "overlay")
        .flat_map(|m| &m.options)
        .filter_map(|o| o.strip_prefix("workdir="));
    for workdir in workdirs {
        let marker = Path::new(workdir).join("work/incompat/volatile");
        if let Err(err) = std::fs::remove_dir_all(&marker)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            log::warning!("removing {}: {err}", marker.display());
        }
    }
}

/// Whether the restart policy restarts the container after this exit.
fn wants_restart(record: &Record, code: i64) -> bool {
    let policy = &record.host_config.restart_policy;
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0
                && (policy.maximum_retry_count <= 0
                    || record.restart_count < policy.maximum_retry_count)
        }
        _ => false,
    }
}

/// `10m`, `1g`, `512k`, plain bytes (docker's `max-size`).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().ok()?;
    let mult = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    Some(n * mult)
}

/// Shuts the shim down (the runtime deletes processes, state and cgroup),
/// then releases what the container held on the host. Caller holds the
/// container's `op` lock.
pub(super) fn release_runtime(store: &ContainerStore, container: &Container) {
    shut_down_runtime(store, container);
    release_host_resources(store, container);
}

/// The shim and the runtime's container: leftover processes, cgroups and
/// runtime state.
pub(super) fn shut_down_runtime(store: &ContainerStore, container: &Container) {
    let client = lock(&container.shim).take();
    let client = client.or_else(|| berth_shim::connect(&store.state_dir(&container.id)).ok());
    let shut_down = match client {
        Some(client) => match client.shutdown() {
            Ok(()) => true,
            Err(err) => {
                log::warning!("shutting down the shim of {}: {err}", container.id);
                false
            }
        },
        None => false,
    };
    // No shim (it was killed): delete through the runtime directly, which
    // kills what is left of the container and removes its cgroup.
    let root = berth_runtime::state::Root::new(store.runtime_root.clone());
    if !shut_down && root.container_dir(&container.id).exists() {
        if let Err(err) = berth_runtime::container::delete(&root, &container.id, true) {
            log::warning!("deleting container {} in the runtime: {err}", container.id);
        }
    }
}

/// The rootfs mount, volumes and network.
pub(super) fn release_host_resources(store: &ContainerStore, container: &Container) {
    unmount_rootfs(store, container);
    release_volumes_and_network(store, container);
}

pub(super) fn unmount_rootfs(store: &ContainerStore, container: &Container) {
    let rootfs = store.rootfs_path(&container.id);
    if rootfs.exists() {
        let _ = unmount(&rootfs);
    }
}

pub(super) fn release_volumes_and_network(store: &ContainerStore, container: &Container) {
    store.volumes.deactivate(&container.id);
    store.release_network(container);
}

/// Whether a launch at create shows nothing in the API until the start:
/// an `AutoRemove` container (every client starts it at once) on network
/// `none` or `host`, or on the default bridge without published ports or
/// links (its endpoint is then seen by nothing but the container until the
/// start; user networks register DNS names, ports take the host's ports,
/// links name other containers as they are), joining no other container's
/// namespaces (they are joined as they are at the start).
pub(super) fn prelaunch_unseen(record: &Record) -> bool {
    let host = &record.host_config;
    let joins_another = [&host.pid_mode, &host.ipc_mode, &host.network_mode]
        .iter()
        .any(|mode| mode.starts_with("container:"));
    let network_unseen = matches!(host.network_mode.as_str(), "none" | "host")
        || (matches!(record.networks.as_slice(), [(network, _)] if network == DEFAULT_NETWORK)
            && host.links.as_ref().is_none_or(Vec::is_empty)
            && port_specs(&record.config, host).is_ok_and(|p| p.is_empty()));
    host.auto_remove && network_unseen && !joins_another
}

fn spawn_monitor(store: Arc<ContainerStore>, container: Arc<Container>, client: Client) {
    let name = format!("monitor-{}", &container.id[..12]);
    let spawned = std::thread::Builder::new()
        .name(name)
        .stack_size(256 << 10)
        .spawn(move || {
            let (code, finished) = match client.wait() {
                Ok(exit) => (i64::from(exit.exit_code), parse_time(&exit.finished_at)),
                Err(err) => {
                    log::warning!("waiting for container {}: {err}", container.id);
                    match berth_shim::client::read_exit(client.state_dir()) {
                        Ok(Some(exit)) => {
                            (i64::from(exit.exit_code), parse_time(&exit.finished_at))
                        }
                        _ => (255, now_nanos()),
                    }
                }
            };
            store.on_exit(&container, code, finished);
        });
    if let Err(err) = spawned {
        log::error!("starting a monitor thread: {err}");
    }
}

fn parse_time(text: &str) -> i64 {
    humantime::parse_rfc3339_weak(text)
        .map(crate::engine::events::unix_nanos)
        .unwrap_or_else(|_| now_nanos())
}

/// Live restore of one container at startup: reconnect to its shim, or
/// record the exit its shim left behind.
pub(super) fn restore(store: &Arc<ContainerStore>, container: &Arc<Container>) {
    let record = container.record();
    if !record.state.status.is_running() {
        // AutoRemove takes the anonymous volumes, as `docker run --rm`
        // does; an interrupted `rm` leaves them (it may not have had -v).
        // As dockerd, an AutoRemove container that is not running goes at
        // a restart, created or exited (its unfsynced start may be what a
        // machine crash lost).
        if record.state.status == Status::Removing || record.host_config.auto_remove {
            let _ = store.remove(container, record.host_config.auto_remove);
        }
        return;
    }
    let state_dir = store.state_dir(&record.id);
    match berth_shim::connect(&state_dir) {
        Ok(client) => {
            *lock(&container.shim) = Some(client.clone());
            store.restore_network(&record);
            spawn_monitor(store.clone(), container.clone(), client);
        }
        Err(err) => {
            log::warning!(
                "container {} was running but its shim is gone ({err}); recording its exit",
                record.id
            );
            let (code, finished) = match berth_shim::client::read_exit(&state_dir) {
                Ok(Some(exit)) => (i64::from(exit.exit_code), parse_time(&exit.finished_at)),
                _ => (255, now_nanos()),
            };
            store.on_exit(container, code, finished);
        }
    }
}

impl Engine {
    /// `POST /containers/{id}/start`; `Ok(false)` if already running.
    pub(crate) async fn container_start(&self, reference: &str) -> Result<bool, ContainerError> {
        let container = self.containers.get(reference)?;
        self.containers_in_place("start", move |store| store.start(&container))
            .await
    }

    /// Subscribes now (so an exit that follows is not missed) and returns
    /// a future that resolves with the exit code when `condition` holds.
    /// `client`: the waiting client, whose exit an AutoRemove container's
    /// cleanup after `removed` waits for (see [`crate::engine::activity`]).
    pub(crate) fn container_wait(
        &self,
        reference: &str,
        condition: WaitCondition,
        client: Option<ClientGone>,
    ) -> Result<impl Future<Output = i64> + Send + 'static, ContainerError> {
        let container = self.containers.get(reference)?;
        if let (WaitCondition::Removed, Some(client)) = (condition, client) {
            lock(&container.removal_waiters).push(client);
        }
        let mut rx = container.subscribe();
        let initial = *rx.borrow();
        Ok(async move {
            let done = |l: &Lifecycle| match condition {
                WaitCondition::NotRunning => !l.running,
                WaitCondition::NextExit => l.exits > initial.exits || l.removed,
                WaitCondition::Removed => l.removed,
            };
            let waited = rx.wait_for(done).await.map(|l| l.exit_code);
            match waited {
                Ok(code) => code,
                Err(_) => rx.borrow().exit_code,
            }
        })
    }

    pub(super) fn running_shim(&self, container: &Container) -> Result<Client, ContainerError> {
        if !container.is_running() {
            return Err(ContainerError::NotRunning(container.id.clone()));
        }
        container
            .shim()
            .ok_or_else(|| ContainerError::NotRunning(container.id.clone()))
    }

    /// `POST /containers/{id}/kill`.
    pub(crate) async fn container_kill(
        &self,
        reference: &str,
        signal: Option<&str>,
    ) -> Result<(), ContainerError> {
        let container = self.containers.get(reference)?;
        let signal = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s).map_err(ContainerError::InvalidConfig)?,
            None => 9,
        };
        let client = self.running_shim(&container)?;
        container.mark_manual_stop();
        let id = container.id.clone();
        tokio::task::spawn_blocking(move || client.kill(i32::from(signal), false))
            .await
            .map_err(|_| ContainerError::Task("kill"))?
            .map_err(shim_err(&id))?;
        self.thaw_if_paused(&container).await?;
        self.containers.publish(
            "kill",
            &container.record(),
            &[("signal", signal.to_string())],
        );
        Ok(())
    }

    /// Sends `signal`, waits up to `timeout` for the exit; `true` if it exited.
    pub(crate) async fn container_kill_and_wait(
        &self,
        container: &Arc<Container>,
        signal: u8,
        timeout: Duration,
    ) -> Result<bool, ContainerError> {
        let mut rx = container.subscribe();
        if !rx.borrow().running {
            return Ok(true);
        }
        if let Some(client) = container.shim() {
            let sent = tokio::task::spawn_blocking(move || client.kill(i32::from(signal), false))
                .await
                .map_err(|_| ContainerError::Task("kill"))?;
            if let Err(err) = sent {
                log::debug!("signalling container {}: {err}", container.id);
            }
        }
        self.thaw_if_paused(container).await?;
        self.containers.publish(
            "kill",
            &container.record(),
            &[("signal", signal.to_string())],
        );
        let exited = tokio::time::timeout(timeout, rx.wait_for(|l| !l.running)).await;
        Ok(exited.is_ok())
    }

    /// `POST /containers/{id}/stop`; `Ok(false)` if it was not running.
    pub(crate) async fn container_stop(
        &self,
        reference: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<bool, ContainerError> {
        let container = self.containers.get(reference)?;
        if !container.is_running() {
            return Ok(false);
        }
        container.mark_manual_stop();
        // A restart by the policy that is under way finishes first, so the
        // kill below reaches the process it starts.
        let waited = container.clone();
        self.containers_blocking("stop", move |_| {
            drop(lock(&waited.op));
            Ok(())
        })
        .await?;
        let record = container.record();
        let signal_name = signal
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| Some(record.config.stop_signal.clone()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "SIGTERM".to_owned());
        let signal = parse_signal(&signal_name).map_err(ContainerError::InvalidConfig)?;
        let timeout = timeout.or(record.config.stop_timeout).unwrap_or(10);
        let grace = if timeout < 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_secs(timeout as u64)
        };
        if !self
            .container_kill_and_wait(&container, signal, grace)
            .await?
        {
            self.container_kill_and_wait(&container, 9, Duration::from_secs(30))
                .await?;
        }
        self.containers.publish("stop", &container.record(), &[]);
        Ok(true)
    }

    /// `POST /containers/{id}/restart`.
    pub(crate) async fn container_restart(
        &self,
        reference: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), ContainerError> {
        self.container_stop(reference, signal, timeout).await?;
        let container = self.containers.get(reference)?;
        self.container_start(reference).await?;
        self.containers.publish("restart", &container.record(), &[]);
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub(crate) async fn container_resize(
        &self,
        reference: &str,
        rows: u16,
        cols: u16,
    ) -> Result<(), ContainerError> {
        let container = self.containers.get(reference)?;
        let client = self.running_shim(&container)?;
        let id = container.id.clone();
        tokio::task::spawn_blocking(move || client.resize(rows, cols))
            .await
            .map_err(|_| ContainerError::Task("resize"))?
            .map_err(shim_err(&id))
    }

    /// Attaches to the container's output (and stdin): at once if it
    /// runs, else at its next start.
    pub(crate) async fn container_attach(
        &self,
        reference: &str,
        stdin: bool,
    ) -> Result<oneshot::Receiver<Result<Attach, String>>, ContainerError> {
        let container = self.containers.get(reference)?;
        // With a tty, docker never closes the container's stdin when an
        // attach ends: the shell must outlive a detach and take the next
        // attach's input.
        let config = &container.record().config;
        let close_stdin = stdin && config.stdin_once && !config.tty;
        self.containers.publish("attach", &container.record(), &[]);
        self.containers_blocking("attach", move |_store| {
            let _op = lock(&container.op);
            let (tx, rx) = oneshot::channel();
            match container.shim().filter(|_| container.is_running()) {
                Some(client) => {
                    let _ = tx.send(client.attach(stdin, close_stdin).map_err(|e| e.to_string()));
                }
                None => lock(&container.pending_attaches).push(PendingAttach {
                    stdin,
                    close_stdin,
                    reply: tx,
                }),
            }
            Ok(rx)
        })
        .await
    }

    /// The client of an attach typed its detach keys: docker's `detach`
    /// event (the container runs on).
    pub(crate) fn container_detached(&self, reference: &str) {
        if let Ok(container) = self.containers.get(reference) {
            self.containers.publish("detach", &container.record(), &[]);
        }
    }

    /// Resolves when the container is not running (now or later).
    pub(crate) fn container_stopped(
        &self,
        reference: &str,
    ) -> Result<impl Future<Output = ()> + Send + 'static, ContainerError> {
        let container = self.containers.get(reference)?;
        let mut rx = container.subscribe();
        Ok(async move {
            let _ = rx.wait_for(|l| !l.running).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("5x"), None);
    }

    #[test]
    fn wait_conditions_parse() {
        assert!(WaitCondition::parse("bogus").is_err());
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
    }
}
