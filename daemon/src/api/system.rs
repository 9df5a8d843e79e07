//! System routes: `/_ping`, `/version`, `/info`, `/events`, `/system/df`,
//! `/build/prune`.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Response, StatusCode, header};
use tokio::sync::broadcast::error::RecvError;

use super::containers_types::ContainerSummary;
use super::response::{empty_body, full_body, json, json_lines};
use super::types::{
    Commit, Component, DiskUsage, EventActor, EventMessage, IndexInfo, Platform, PluginsInfo,
    RegistryConfig, Runtime, SupervisorsInfo, SwarmInfo, SystemInfo, SystemVersion,
};
use super::{API_VERSION, ApiResult, Call, ENGINE_VERSION, MIN_API_VERSION, Router};
use crate::engine::events::{EVENT_FILTERS, Event, EventType, unix_nanos};
use crate::engine::{EngineError, HostFacts};
use crate::log;

pub(crate) fn routes(router: &mut Router) {
    router
        .get("/_ping", ping)
        .add(Method::HEAD, "/_ping", ping)
        .get("/version", version)
        .get("/info", info)
        .get("/events", events)
        .get("/system/df", disk_usage)
        .add(Method::POST, "/build/prune", build_prune);
}

/// `POST /build/prune` (`docker builder prune`, and the last step of
/// `docker system prune`): forgets the classic builder's cache entries.
/// Their layers belong to images, so no space is reclaimed here.
async fn build_prune(call: Call) -> ApiResult {
    let removed = call.engine.build_cache_prune().await?;
    Ok(json(
        &serde_json::json!({"CachesDeleted": removed, "SpaceReclaimed": 0}),
    ))
}

const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};
const BUILD_TIME: &str = match option_env!("BERTH_BUILD_TIME") {
    Some(time) => time,
    None => "unknown",
};

/// `HEAD|GET /_ping`: the headers the CLI negotiates from, and `OK`.
async fn ping(call: Call) -> ApiResult {
    let head = call.req.method() == Method::HEAD;
    let mut response = Response::new(if head { empty_body() } else { full_body("OK") });
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("Builder-Version", HeaderValue::from_static("1"));
    headers.insert("Swarm", HeaderValue::from_static("inactive"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if head {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    Ok(response)
}

/// `GET /version`.
async fn version(call: Call) -> ApiResult {
    let kernel = call.engine.host().kernel_version.clone();
    let details: BTreeMap<String, String> = [
        ("ApiVersion", API_VERSION.to_string()),
        ("MinAPIVersion", MIN_API_VERSION.to_string()),
        ("GitCommit", GIT_COMMIT.to_owned()),
        ("GoVersion", "rust".to_owned()),
        ("Os", "linux".to_owned()),
        ("Arch", "amd64".to_owned()),
        ("KernelVersion", kernel.clone()),
        ("BuildTime", BUILD_TIME.to_owned()),
        ("Experimental", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(json(&SystemVersion {
        platform: Platform {
            name: format!("Berth Engine {}", env!("CARGO_PKG_VERSION")),
        },
        components: vec![Component {
            name: "Engine".to_owned(),
            version: ENGINE_VERSION.to_owned(),
            details,
        }],
        version: ENGINE_VERSION.to_owned(),
        api_version: API_VERSION.to_string(),
        min_api_version: MIN_API_VERSION.to_string(),
        git_commit: GIT_COMMIT.to_owned(),
        go_version: "rust".to_owned(),
        os: "linux".to_owned(),
        arch: "amd64".to_owned(),
        kernel_version: kernel,
        build_time: BUILD_TIME.to_owned(),
    }))
}

fn runtime_path() -> String {
    // berth-runtime is installed next to berthd.
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("berth-runtime")))
        .filter(|path| path.exists())
        .map_or_else(|| "berth-runtime".to_owned(), |p| p.display().to_string())
}

fn cgroup_warnings(host: &HostFacts) -> Vec<String> {
    let c = host.cgroup;
    [
        (c.memory_limit, "WARNING: No memory limit support"),
        (c.swap_limit, "WARNING: No swap limit support"),
        (c.cpu_cfs, "WARNING: No cpu cfs quota support"),
        (c.cpu_cfs, "WARNING: No cpu cfs period support"),
        (c.cpu_shares, "WARNING: No cpu shares support"),
        (c.cpuset, "WARNING: No cpuset support"),
        (c.pids_limit, "WARNING: No pids limit support"),
    ]
    .into_iter()
    .filter(|(supported, _)| !supported)
    .map(|(_, warning)| warning.to_owned())
    .collect()
}

/// `GET /info`.
async fn info(call: Call) -> ApiResult {
    let engine = &call.engine;
    let host = engine.host();
    let counts = engine.container_counts();
    let supervisors = engine.supervisor_counts();
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count());
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let mut index_configs = BTreeMap::new();
    index_configs.insert(
        "docker.io".to_owned(),
        IndexInfo {
            name: "docker.io".to_owned(),
            mirrors: vec![],
            secure: true,
            official: true,
        },
    );
    let mut runtimes = BTreeMap::new();
    runtimes.insert(
        "berth".to_owned(),
        Runtime {
            path: runtime_path(),
        },
    );
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    Ok(json(&SystemInfo {
        id: engine.id().to_owned(),
        containers: counts.total(),
        containers_running: counts.running,
        containers_paused: counts.paused,
        containers_stopped: counts.stopped,
        images: engine.image_count(),
        // "overlay2": the snapshotter stores layers as overlayfs lower dirs
        // the way Docker's overlay2 driver does, and tools branch on this
        // name (moby's integration suite, GraphDriver consumers); the CLI
        // only prints it.
        driver: "overlay2".to_owned(),
        driver_status: vec![
            [
                "Backing Filesystem".to_owned(),
                host.backing_filesystem.clone(),
            ],
            // Layers are fetched and unpacked whole before a container
            // can use them; no lazy (on-demand) pull.
            ["Lazy Pull".to_owned(), "no".to_owned()],
        ],
        plugins: PluginsInfo {
            volume: vec!["local".to_owned()],
            network: vec!["bridge".to_owned(), "host".to_owned(), "none".to_owned()],
            authorization: None,
            log: vec!["json-file".to_owned()],
        },
        memory_limit: host.cgroup.memory_limit,
        swap_limit: host.cgroup.swap_limit,
        cpu_cfs_period: host.cgroup.cpu_cfs,
        cpu_cfs_quota: host.cgroup.cpu_cfs,
        cpu_shares: host.cgroup.cpu_shares,
        cpu_set: host.cgroup.cpuset,
        pids_limit: host.cgroup.pids_limit,
        oom_kill_disable: host.cgroup.oom_kill_disable,
        ipv4_forwarding: host.ipv4_forwarding,
        debug: crate::log::enabled(crate::config::LogLevel::Debug),
        n_fd: open_fds,
        n_goroutines: tasks,
        system_time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        logging_driver: "json-file".to_owned(),
        cgroup_driver: "cgroupfs".to_owned(),
        cgroup_version: host.cgroup_version.to_owned(),
        n_events_listener: engine.events().listeners(),
        kernel_version: host.kernel_version.clone(),
        operating_system: host.operating_system.clone(),
        os_version: host.os_version.clone(),
        os_type: "linux".to_owned(),
        architecture: "x86_64".to_owned(),
        ncpu: host.ncpu,
        mem_total: host.mem_total,
        index_server_address: "https://index.docker.io/v1/".to_owned(),
        registry_config: RegistryConfig {
            insecure_registry_cidrs: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            index_configs,
            mirrors: vec![],
        },
        generic_resources: None,
        docker_root_dir: engine.config().data_root.display().to_string(),
        http_proxy: env("HTTP_PROXY"),
        https_proxy: env("HTTPS_PROXY"),
        no_proxy: env("NO_PROXY"),
        name: HostFacts::hostname(),
        labels: vec![],
        experimental_build: false,
        server_version: ENGINE_VERSION.to_owned(),
        runtimes,
        default_runtime: "berth".to_owned(),
        swarm: SwarmInfo {
            node_id: String::new(),
            node_addr: String::new(),
            local_node_state: "inactive".to_owned(),
            control_available: false,
            error: String::new(),
            remote_managers: None,
        },
        // Always: containers outlive berthd through their shims, and a
        // restarted berthd reconnects to them.
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: String::new(),
        containerd_commit: Commit { id: String::new() },
        runc_commit: Commit { id: String::new() },
        init_commit: Commit { id: String::new() },
        security_options: vec!["name=seccomp,profile=builtin".to_owned()],
        cdi_spec_dirs: vec![],
        warnings: cgroup_warnings(host),
        supervisors: SupervisorsInfo {
            running: supervisors.running,
            standby: supervisors.standby,
        },
    }))
}

/// Docker's event shape, including the legacy fields.
fn event_message(event: &Event) -> EventMessage {
    let legacy = matches!(event.kind, EventType::Container | EventType::Image);
    EventMessage {
        status: legacy.then(|| event.action.clone()),
        id: legacy.then(|| event.actor_id.clone()),
        from: (event.kind == EventType::Container)
            .then(|| event.attributes.get("image").cloned())
            .flatten(),
        kind: event.kind.as_str().to_owned(),
        action: event.action.clone(),
        actor: EventActor {
            id: event.actor_id.clone(),
            attributes: event.attributes.clone(),
        },
        scope: "local".to_owned(),
        time: event.time_nano.div_euclid(1_000_000_000),
        time_nano: event.time_nano,
    }
}

/// `GET /events`: replays recorded events in `[since, until]`, then follows
/// live ones until `until` passes, the client leaves, or the daemon stops.
/// An `until` in the past ends the stream after the replay.
async fn events(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    filters.validate(EVENT_FILTERS)?;
    let since = call.query.timestamp_nanos("since")?;
    let until = call.query.timestamp_nanos("until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(EngineError::SinceAfterUntil {
            since: call.query.get("since").unwrap_or_default().to_owned(),
            until: call.query.get("until").unwrap_or_default().to_owned(),
        }
        .into());
    }
    let now = unix_nanos(SystemTime::now());
    let only_past = until.is_some_and(|u| u <= now);
    // As moby: a replay happens when either bound is given.
    let replay_from = since.or(until.map(|_| i64::MIN));
    let in_range = move |event: &Event| until.is_none_or(|u| event.time_nano <= u);

    let engine = call.engine.clone();
    let (past, mut live) = engine.events().subscribe(replay_from);
    let (tx, mut response) = json_lines::<EventMessage>(64);
    *response.status_mut() = StatusCode::OK;
    let shutdown = engine.shutdown_signal();
    tokio::spawn(async move {
        for event in past.iter().filter(|e| in_range(e) && e.matches(&filters)) {
            if tx.send(event_message(event)).await.is_err() {
                return;
            }
        }
        if only_past {
            return;
        }
        let deadline = until.map(|u| Duration::from_nanos(u.saturating_sub(now).max(0) as u64));
        let mut deadline = pin!(async move {
            match deadline {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        });
        let mut shutdown = pin!(shutdown);
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = &mut shutdown => return,
                _ = &mut deadline => return,
                received = live.recv() => match received {
                    Ok(event) => {
                        if in_range(&event)
                            && event.matches(&filters)
                            && tx.send(event_message(&event)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        log::warning!("an events listener fell behind and missed {missed} events");
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(response)
}

/// `GET /system/df`: images (stored blob sizes, shared ones, containers
/// made from each), containers (their writable layer's size) and volumes
/// with their sizes. The build cache is not listed.
async fn disk_usage(call: Call) -> ApiResult {
    let (layers_size, images) = call.engine.image_disk_usage().await?;
    let images = images
        .iter()
        .map(|usage| super::images::usage_summary(usage, call.version))
        .collect();
    let containers = call
        .engine
        .container_disk_usage()
        .await?
        .into_iter()
        .map(|usage| ContainerSummary {
            size_rw: Some(usage.size_rw as i64),
            ..super::containers::summary_of(&call.engine, usage.record)
        })
        .collect();
    Ok(json(&DiskUsage {
        layers_size,
        images,
        containers,
        volumes: super::volumes::disk_usage_volumes(&call.engine).await?,
        build_cache: vec![],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_carry_the_legacy_fields_and_others_do_not() {
        let mut attributes = BTreeMap::new();
        attributes.insert("image".to_owned(), "busybox".to_owned());
        attributes.insert("name".to_owned(), "web".to_owned());
        let mut event = Event::now(EventType::Container, "start", "abc", attributes);
        event.time_nano = 1_700_000_000_123_456_789;
        let wire = serde_json::to_value(event_message(&event)).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({
                "status": "start", "id": "abc", "from": "busybox",
                "Type": "container", "Action": "start",
                "Actor": {"ID": "abc", "Attributes": {"image": "busybox", "name": "web"}},
                "scope": "local", "time": 1_700_000_000i64, "timeNano": 1_700_000_000_123_456_789i64
            })
        );
        event.kind = EventType::Network;
        let wire = serde_json::to_value(event_message(&event)).unwrap();
        assert!(wire.get("status").is_none() && wire.get("from").is_none());
    }
}
