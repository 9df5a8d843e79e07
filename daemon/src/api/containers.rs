//! Container routes: create, inspect, list, remove, start, stop, kill,
//! restart, wait, logs, resize, rename, and exec create/inspect. The
//! hijacked ones (attach, exec start) are in [`hijack`].

mod hijack;

use std::collections::BTreeMap;
use std::convert::Infallible;

use futures_util::StreamExt;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Serialize;
use serde_json::json;

use crate::engine::activity::ClientGone;

use super::body::{MAX_JSON_BODY, read_json};
use super::containers_types::{
    ContainerInspect, ContainerState, ContainerSummary, CreateRequest, CreateResponse,
    EndpointSettings, GraphDriver, HostConfig, NetworkSettings, PortBinding, SummaryHostConfig,
    SummaryNetworkSettings, SummaryPort, rfc3339_nano, summary_command, unix_seconds,
};
use super::error::status_for;
use super::response::{empty_body, json, json_lines, json_with_status};
use super::{ApiError, ApiResult, ApiVersion, Call, Router};
use crate::engine::Engine;
use crate::engine::containers::exec::ExecConfig;
use crate::engine::containers::run::WaitCondition;
use crate::engine::containers::{ContainerError, ListOptions, Record, Status, from_nanos};
use crate::engine::logs::{LogOptions, log_stream};
use crate::engine::networks::DEFAULT_NETWORK;

pub(crate) fn routes(router: &mut Router) {
    router
        .get("/containers/json", list)
        .add(Method::POST, "/containers/create", create)
        .add(Method::POST, "/containers/prune", prune)
        .get("/containers/{id}/json", inspect)
        .get("/containers/{id}/logs", logs)
        .add(Method::POST, "/containers/{id}/start", start)
        .add(Method::POST, "/containers/{id}/stop", stop)
        .add(Method::POST, "/containers/{id}/restart", restart)
        .add(Method::POST, "/containers/{id}/kill", kill)
        .add(Method::POST, "/containers/{id}/wait", wait)
        .add(Method::POST, "/containers/{id}/attach", hijack::attach)
        .add(Method::POST, "/containers/{id}/resize", resize)
        .add(Method::POST, "/containers/{id}/rename", rename)
        .add(Method::POST, "/containers/{id}/update", update)
        .add(Method::POST, "/containers/{id}/pause", pause)
        .add(Method::POST, "/containers/{id}/unpause", unpause)
        .get("/containers/{id}/top", top)
        .get("/containers/{id}/stats", stats)
        .add(Method::POST, "/containers/{id}/exec", exec_create)
        .add(Method::DELETE, "/containers/{id}", remove)
        .add(Method::POST, "/exec/{id}/start", hijack::exec_start)
        .add(Method::POST, "/exec/{id}/resize", exec_resize)
        .get("/exec/{id}/json", exec_inspect);
}

impl From<ContainerError> for ApiError {
    fn from(err: ContainerError) -> ApiError {
        ApiError::new(status_for(err.kind()), err.to_string())
    }
}

/// The first version whose non-tty streams say they are multiplexed.
const MULTIPLEXED_CONTENT_TYPE: ApiVersion = ApiVersion {
    major: 1,
    minor: 42,
};

fn stream_content_type(version: ApiVersion, tty: bool) -> &'static str {
    if !tty && version >= MULTIPLEXED_CONTENT_TYPE {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

fn id(call: &Call) -> String {
    call.params.get("id").unwrap_or_default().to_owned()
}

fn no_content() -> Response<super::Body> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn not_modified() -> Response<super::Body> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response
}

async fn create(call: Call) -> ApiResult {
    let name = call.query.get("name").map(str::to_owned);
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    let request: CreateRequest = read_json(&parts.headers, body, MAX_JSON_BODY)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request("config cannot be empty in order to create a container")
        })?;
    let (id, warnings) = engine.container_create(name, request).await?;
    Ok(json_with_status(
        StatusCode::CREATED,
        &CreateResponse { id, warnings },
    ))
}

/// The first version whose update requests may carry `PidsLimit`.
const UPDATE_PIDS_LIMIT: ApiVersion = ApiVersion {
    major: 1,
    minor: 40,
};

/// `POST /containers/{id}/update`. Moby's `UpdateConfig` is `Resources`
/// plus `RestartPolicy`, all of them `HostConfig` fields with the same wire
/// names, so the body decodes as a `HostConfig` and the rest is ignored.
async fn update(call: Call) -> ApiResult {
    let reference = id(&call);
    let engine = call.engine.clone();
    let version = call.version;
    let (parts, body) = call.req.into_parts();
    let mut request: HostConfig = read_json(&parts.headers, body, MAX_JSON_BODY)
        .await?
        .unwrap_or_default();
    if version < UPDATE_PIDS_LIMIT {
        request.pids_limit = None;
    }
    // Moby's router: 0 and any negative value mean "unlimited".
    if let Some(limit) = request.pids_limit
        && limit < 0
    {
        request.pids_limit = Some(0);
    }
    let warnings = engine.container_update(&reference, request).await?;
    Ok(json(&json!({ "Warnings": warnings })))
}

fn networks(engine: &Engine, record: &Record) -> BTreeMap<String, EndpointSettings> {
    let mode = record.host_config.network_mode.as_str();
    let mut networks = BTreeMap::new();
    if matches!(mode, "host" | "none") {
        let network_id = engine
            .networks()
            .find(mode)
            .map(|v| v.meta.id)
            .unwrap_or_default();
        networks.insert(
            mode.to_owned(),
            EndpointSettings {
                network_id,
                ..EndpointSettings::default()
            },
        );
    }
    let short_id = &record.id[..12.min(record.id.len())];
    for (name, attachment) in &record.networks {
        let endpoint = attachment.endpoint.as_ref();
        let user = name != DEFAULT_NETWORK;
        let mut dns_names = vec![
            record.name.trim_start_matches('/').to_owned(),
            short_id.to_owned(),
        ];
        dns_names.extend(attachment.aliases.iter().cloned());
        networks.insert(
            name.clone(),
            EndpointSettings {
                ipam_config: attachment
                    .ipv4
                    .map(|ip| json!({ "IPv4Address": ip.to_string() })),
                links: None,
                aliases: (!attachment.aliases.is_empty()).then(|| attachment.aliases.clone()),
                mac_address: String::new(),
                network_id: attachment.network_id.clone(),
                endpoint_id: endpoint.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
                gateway: endpoint
                    .and_then(|e| e.gateway)
                    .map(|g| g.to_string())
                    .unwrap_or_default(),
                ip_address: endpoint.map(|e| e.address.to_string()).unwrap_or_default(),
                ip_prefix_len: endpoint.map_or(0, |e| u32::from(e.subnet.prefix())),
                dns_names: (user && endpoint.is_some()).then_some(dns_names),
            },
        );
    }
    networks
}

/// Published ports as `docker port` reads them: every exposed or bound
/// port, with its host bindings while the container runs.
fn ports(record: &Record) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut ports: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    let key = |k: &str| {
        if k.contains('/') {
            k.to_owned()
        } else {
            format!("{k}/tcp")
        }
    };
    for k in record.config.exposed_ports.iter().flat_map(|p| p.keys()) {
        ports.insert(key(k), None);
    }
    for k in record
        .host_config
        .port_bindings
        .iter()
        .flat_map(|p| p.keys())
    {
        ports.insert(key(k), None);
    }
    for (_, attachment) in &record.networks {
        for p in attachment.endpoint.iter().flat_map(|e| &e.ports) {
            ports
                .entry(format!("{}/{}", p.container_port, p.protocol))
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.to_string(),
                    host_port: p.host_port.to_string(),
                });
        }
    }
    ports
}

fn network_settings(engine: &Engine, record: &Record) -> NetworkSettings {
    let mut settings = NetworkSettings {
        networks: networks(engine, record),
        ports: ports(record),
        ..NetworkSettings::default()
    };
    if record.networks.iter().any(|(_, a)| a.endpoint.is_some()) {
        settings.sandbox_id = record.id.clone();
        settings.sandbox_key = engine
            .networks()
            .netns_path(&record.id)
            .display()
            .to_string();
    }
    // The deprecated top-level fields describe the default bridge only.
    if let Some(endpoint) = record
        .networks
        .iter()
        .find(|(n, _)| n == DEFAULT_NETWORK)
        .and_then(|(_, a)| a.endpoint.as_ref())
    {
        settings.bridge = String::new();
        settings.endpoint_id = endpoint.endpoint_id.clone();
        settings.ip_address = endpoint.address.to_string();
        settings.ip_prefix_len = u32::from(endpoint.subnet.prefix());
        settings.gateway = endpoint.gateway.map(|g| g.to_string()).unwrap_or_default();
    }
    settings
}

/// `Ports` of the container list.
fn summary_ports(record: &Record) -> Vec<SummaryPort> {
    let mut out = Vec::new();
    for (key, bindings) in ports(record) {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let private_port = port.parse().unwrap_or(0);
        match bindings {
            Some(list) => out.extend(list.into_iter().map(|b| SummaryPort {
                ip: b.host_ip,
                private_port,
                public_port: b.host_port.parse().ok(),
                r#type: proto.to_owned(),
            })),
            None => out.push(SummaryPort {
                ip: String::new(),
                private_port,
                public_port: None,
                r#type: proto.to_owned(),
            }),
        }
    }
    out
}

pub(super) fn inspect_of(engine: &Engine, record: Record) -> ContainerInspect {
    let store = engine.containers();
    // The network files live in the run dir (the exec root), rewritten at
    // each start.
    let dir = store.run_dir(&record.id);
    let state = &record.state;
    let mut host_config = record.host_config.clone();
    if host_config.log_config.r#type.is_empty() {
        host_config.log_config.r#type = "json-file".to_owned();
    }
    let exec_ids = engine.exec_ids(&record.id);
    ContainerInspect {
        id: record.id.clone(),
        created: rfc3339_nano(Some(from_nanos(record.created))),
        path: record.path.clone(),
        args: record.args.clone(),
        state: ContainerState {
            status: state.status.as_str().to_owned(),
            running: state.status.is_running(),
            paused: state.status == Status::Paused,
            restarting: state.status == Status::Restarting,
            oom_killed: false,
            dead: state.status == Status::Dead,
            pid: state.pid,
            exit_code: state.exit_code,
            error: state.error.clone(),
            started_at: rfc3339_nano(state.started_at.map(from_nanos)),
            finished_at: rfc3339_nano(state.finished_at.map(from_nanos)),
        },
        image: record.image_id.clone(),
        resolv_conf_path: dir.join("resolv.conf").display().to_string(),
        hostname_path: dir.join("hostname").display().to_string(),
        hosts_path: dir.join("hosts").display().to_string(),
        log_path: store.log_path(&record.id).display().to_string(),
        name: record.name.clone(),
        restart_count: record.restart_count,
        driver: "overlay2".to_owned(),
        platform: "linux".to_owned(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: (!exec_ids.is_empty()).then_some(exec_ids),
        host_config,
        graph_driver: GraphDriver {
            name: "overlay2".to_owned(),
            data: BTreeMap::new(),
        },
        size_rw: None,
        size_root_fs: None,
        mounts: super::volumes::mounts_of(engine, &record),
        network_settings: network_settings(engine, &record),
        config: record.config,
    }
}

async fn inspect(call: Call) -> ApiResult {
    let record = call.engine.container_get(&id(&call))?;
    Ok(json(&inspect_of(&call.engine, record)))
}

async fn list(call: Call) -> ApiResult {
    let opts = ListOptions {
        all: call.query.bool("all"),
        limit: call.query.int("limit")?,
        filters: call.query.filters()?,
    };
    let records = call.engine.container_list(opts).await?;
    let summaries: Vec<ContainerSummary> = if call.query.bool("size") {
        // SizeRw only: the image's unpacked size (SizeRootFs) is not counted
        call.engine
            .layer_usage(records)
            .await?
            .into_iter()
            .map(|usage| ContainerSummary {
                size_rw: Some(usage.size_rw as i64),
                ..summary_of(&call.engine, usage.record)
            })
            .collect()
    } else {
        records
            .into_iter()
            .map(|record| summary_of(&call.engine, record))
            .collect()
    };
    Ok(json(&summaries))
}

/// One container of `GET /containers/json` (and of `/system/df`).
pub(super) fn summary_of(engine: &Engine, record: Record) -> ContainerSummary {
    ContainerSummary {
        id: record.id.clone(),
        names: vec![record.name.clone()],
        image: record.config.image.clone(),
        image_id: record.image_id.clone(),
        command: summary_command(&record.path, &record.args),
        created: unix_seconds(from_nanos(record.created)),
        ports: summary_ports(&record),
        size_rw: None,
        size_root_fs: None,
        labels: record
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        state: record.state.status.as_str().to_owned(),
        status: record.status_text(),
        host_config: SummaryHostConfig {
            network_mode: record.host_config.network_mode.clone(),
            annotations: None,
        },
        network_settings: SummaryNetworkSettings {
            networks: networks(engine, &record),
        },
        mounts: super::volumes::mounts_of(engine, &record),
    }
}

async fn remove(call: Call) -> ApiResult {
    call.engine
        .container_delete(&id(&call), call.query.bool("force"), call.query.bool("v"))
        .await?;
    Ok(no_content())
}

async fn prune(call: Call) -> ApiResult {
    let removed = call.engine.container_prune(call.query.filters()?).await?;
    Ok(json(&json!({
        "ContainersDeleted": (!removed.is_empty()).then_some(removed),
        "SpaceReclaimed": 0,
    })))
}

async fn start(call: Call) -> ApiResult {
    if call.engine.container_start(&id(&call)).await? {
        Ok(no_content())
    } else {
        Ok(not_modified())
    }
}

fn timeout(call: &Call) -> Result<Option<i64>, ApiError> {
    match call.query.int("t")? {
        Some(t) => Ok(Some(t)),
        None => call.query.int("timeout"),
    }
}

async fn stop(call: Call) -> ApiResult {
    let t = timeout(&call)?;
    let stopped = call
        .engine
        .container_stop(&id(&call), call.query.get("signal"), t)
        .await?;
    Ok(if stopped {
        no_content()
    } else {
        not_modified()
    })
}

async fn restart(call: Call) -> ApiResult {
    let t = timeout(&call)?;
    call.engine
        .container_restart(&id(&call), call.query.get("signal"), t)
        .await?;
    Ok(no_content())
}

async fn kill(call: Call) -> ApiResult {
    call.engine
        .container_kill(&id(&call), call.query.get("signal"))
        .await?;
    Ok(no_content())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WaitResponse {
    status_code: i64,
    error: Option<WaitError>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WaitError {
    message: String,
}

/// Answers with headers at once (the CLI starts the container only after
/// they arrive) and the status when the condition holds.
async fn wait(call: Call) -> ApiResult {
    let condition = WaitCondition::parse(call.query.get("condition").unwrap_or(""))?;
    let client = call.req.extensions().get::<ClientGone>().cloned();
    let exited = call.engine.container_wait(&id(&call), condition, client)?;
    let (tx, response) = json_lines::<WaitResponse>(1);
    let shutdown = call.engine.shutdown_signal();
    tokio::spawn(async move {
        tokio::select! {
            code = exited => {
                let _ = tx.send(WaitResponse { status_code: code, error: None }).await;
            }
            () = tx.closed() => {}
            () = shutdown => {}
        }
    });
    Ok(response)
}

async fn logs(call: Call) -> ApiResult {
    let reference = id(&call);
    let record = call.engine.container_get(&reference)?;
    let query = &call.query;
    let opts = LogOptions {
        stdout: query.bool("stdout"),
        stderr: query.bool("stderr"),
        since: query.timestamp_nanos("since")?.filter(|s| *s > 0),
        until: query.timestamp_nanos("until")?.filter(|u| *u > 0),
        timestamps: query.bool("timestamps"),
        tail: match query.get("tail").map(str::trim) {
            None | Some("") | Some("all") => None,
            Some(n) => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| n as usize),
        },
        follow: query.bool("follow"),
        tty: record.config.tty,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let stopped = call.engine.container_stopped(&reference)?;
    let shutdown = call.engine.shutdown_signal();
    let stopped = async move {
        tokio::select! {
            () = stopped => {}
            () = shutdown => {}
        }
    };
    let path = call.engine.containers().log_path(&record.id);
    let frames = log_stream(path, opts, stopped).filter_map(|item| async move {
        item.ok()
            .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stream_content_type(call.version, record.config.tty)),
    );
    Ok(response)
}

fn size_param(call: &Call, key: &str) -> Result<u16, ApiError> {
    let value = call
        .query
        .int(key)?
        .ok_or_else(|| ApiError::bad_request(format!("missing parameter: {key}")))?;
    u16::try_from(value)
        .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {value}")))
}

async fn resize(call: Call) -> ApiResult {
    let (rows, cols) = (size_param(&call, "h")?, size_param(&call, "w")?);
    call.engine.container_resize(&id(&call), rows, cols).await?;
    Ok(Response::new(empty_body()))
}

async fn rename(call: Call) -> ApiResult {
    let name = call.query.get("name").unwrap_or("").to_owned();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    call.engine.container_rename(&id(&call), &name)?;
    Ok(no_content())
}

async fn pause(call: Call) -> ApiResult {
    call.engine.container_pause(&id(&call), true).await?;
    Ok(no_content())
}

async fn unpause(call: Call) -> ApiResult {
    call.engine.container_pause(&id(&call), false).await?;
    Ok(no_content())
}

/// Without `ps_args` (or with `-ef`) the rows are ps's `-ef` columns read
/// from `/proc`; other `ps_args` run the host's `ps`.
async fn top(call: Call) -> ApiResult {
    let ps_args = call.query.get("ps_args");
    Ok(json(&call.engine.container_top(&id(&call), ps_args).await?))
}

/// One sample (`stream=0`), or one per second until the client goes or
/// the container stops. Each carries the previous one as `precpu_stats`;
/// without `one-shot`, a single sample waits a second for a real previous.
async fn stats(call: Call) -> ApiResult {
    let reference = id(&call);
    let stream = call.query.get("stream").is_none() || call.query.bool("stream");
    let one_shot = call.query.bool("one-shot");
    let engine = call.engine.clone();
    let (first, running) = engine.container_stats_sample(&reference).await?;
    let (tx, response) = json_lines::<serde_json::Value>(1);
    let shutdown = engine.shutdown_signal();
    tokio::spawn(async move {
        let zero_cpu = json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}});
        let mut previous = (zero_cpu, rfc3339_nano(None));
        let mut sample = first;
        let mut running = running;
        if !stream && !one_shot && running {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            previous = (
                sample["cpu_stats"].clone(),
                sample["read"].as_str().unwrap_or("").to_owned(),
            );
            match engine.container_stats_sample(&reference).await {
                Ok((next, still)) => (sample, running) = (next, still),
                Err(_) => return,
            }
        }
        tokio::pin!(shutdown);
        loop {
            sample["precpu_stats"] = previous.0.clone();
            sample["preread"] = json!(previous.1);
            if tx.send(sample.clone()).await.is_err() || !stream || !running {
                return;
            }
            previous = (
                sample["cpu_stats"].clone(),
                sample["read"].as_str().unwrap_or("").to_owned(),
            );
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                () = tx.closed() => return,
                () = &mut shutdown => return,
            }
            match engine.container_stats_sample(&reference).await {
                Ok((next, still)) => (sample, running) = (next, still),
                Err(_) => return,
            }
        }
    });
    Ok(response)
}

async fn exec_create(call: Call) -> ApiResult {
    let reference = id(&call);
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    let config: ExecConfig = read_json(&parts.headers, body, MAX_JSON_BODY)
        .await?
        .unwrap_or_default();
    let exec_id = engine.exec_create(&reference, config)?;
    Ok(json_with_status(
        StatusCode::CREATED,
        &json!({ "Id": exec_id }),
    ))
}

async fn exec_resize(call: Call) -> ApiResult {
    let (rows, cols) = (size_param(&call, "h")?, size_param(&call, "w")?);
    // The pty of a tty exec keeps the size it was started with.
    let _ = (rows, cols);
    call.engine.exec_get(&id(&call))?;
    Ok(Response::new(empty_body()))
}

async fn exec_inspect(call: Call) -> ApiResult {
    let instance = call.engine.exec_get(&id(&call))?;
    let state = instance.state();
    let config = &instance.config;
    let cmd = config.cmd.clone().unwrap_or_default();
    Ok(json(&json!({
        "ID": instance.id,
        "ContainerID": instance.container_id,
        "Running": state.running,
        "ExitCode": state.exit_code,
        "Pid": state.pid,
        "OpenStdin": config.attach_stdin,
        "OpenStdout": config.attach_stdout,
        "OpenStderr": config.attach_stderr,
        "CanRemove": false,
        "DetachKeys": config.detach_keys.clone().unwrap_or_default(),
        "ProcessConfig": {
            "tty": config.tty,
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": config.privileged,
            "user": config.user.clone().unwrap_or_default(),
        },
    })))
}
