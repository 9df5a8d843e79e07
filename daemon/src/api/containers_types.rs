//! Docker Engine API wire types for containers: the body of
//! `POST /containers/create` (as the docker CLI 28 and docker-py send it),
//! the `GET /containers/{id}/json` and `GET /containers/json` answers, and
//! Docker's validation of a create request with moby's error texts.
//!
//! Decoding follows Go's `encoding/json` as moby uses it: every field may be
//! absent or `null` (a Go zero value), unknown fields are ignored. Fields that
//! are slices, maps or pointers in moby stay `Option` so that inspect echoes
//! `null` where Docker does; scalars decode `null` as their zero value.

// The container routes and engine that use these types are the next step.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

/// A Go scalar: `null` or absent decodes as the zero value.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Moby's `strslice.StrSlice`: a JSON array of strings, or one string.
fn str_slice<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// `map[string]struct{}` in moby (`ExposedPorts`, `Volumes`).
pub(crate) type EmptySet = BTreeMap<String, EmptyObject>;

/// Go's `struct{}`: serializes as `{}`, accepts any object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EmptyObject {}

/// `POST /containers/create`: moby's `CreateRequest`, the container config
/// with `HostConfig` and `NetworkingConfig` beside it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CreateRequest {
    #[serde(flatten)]
    pub(crate) config: ContainerConfig,
    #[serde(rename = "HostConfig", default, deserialize_with = "nullable")]
    pub(crate) host_config: HostConfig,
    #[serde(rename = "NetworkingConfig", default)]
    pub(crate) networking_config: Option<NetworkingConfig>,
}

/// `POST /containers/create` answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateResponse {
    pub(crate) id: String,
    pub(crate) warnings: Vec<String>,
}

/// Moby's `container.Config`: what the container runs, portable across hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) domainname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) attach_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) attach_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exposed_ports: Option<EmptySet>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) stdin_once: bool,
    #[serde(default)]
    pub(crate) env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub(crate) cmd: Option<Vec<String>>,
    /// Accepted and echoed; health checks are not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) args_escaped: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) image: String,
    #[serde(default)]
    pub(crate) volumes: Option<EmptySet>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) working_dir: String,
    #[serde(default, deserialize_with = "str_slice")]
    pub(crate) entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) network_disabled: bool,
    #[serde(default)]
    pub(crate) on_build: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shell: Option<Vec<String>>,
}

/// Moby's `container.HostConfig` (with `Resources` flattened into it, as on
/// the wire): what depends on this host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HostConfig {
    #[serde(default)]
    pub(crate) binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile", default, deserialize_with = "nullable")]
    pub(crate) container_id_file: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) log_config: LogConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) network_mode: String,
    #[serde(default)]
    pub(crate) port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) auto_remove: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) volume_driver: String,
    #[serde(default)]
    pub(crate) volumes_from: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) console_size: Option<[u32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) cap_add: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) cap_drop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cgroupns_mode: String,
    #[serde(default)]
    pub(crate) dns: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) group_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) ipc_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cgroup: String,
    #[serde(default)]
    pub(crate) links: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) oom_score_adj: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) pid_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) privileged: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) publish_all_ports: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) readonly_rootfs: bool,
    #[serde(default)]
    pub(crate) security_opt: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) storage_opt: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode", default, deserialize_with = "nullable")]
    pub(crate) uts_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) userns_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) shm_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sysctls: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) runtime: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) isolation: String,
    // Resources.
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_shares: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) memory: i64,
    #[serde(rename = "NanoCpus", default, deserialize_with = "nullable")]
    pub(crate) nano_cpus: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cgroup_parent: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) blkio_weight: u16,
    #[serde(default)]
    pub(crate) blkio_weight_device: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub(crate) blkio_device_read_bps: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub(crate) blkio_device_write_bps: Option<Vec<serde_json::Value>>,
    #[serde(rename = "BlkioDeviceReadIOps", default)]
    pub(crate) blkio_device_read_iops: Option<Vec<serde_json::Value>>,
    #[serde(rename = "BlkioDeviceWriteIOps", default)]
    pub(crate) blkio_device_write_iops: Option<Vec<serde_json::Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_quota: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_realtime_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_realtime_runtime: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpuset_cpus: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpuset_mems: String,
    #[serde(default)]
    pub(crate) devices: Option<Vec<DeviceMapping>>,
    #[serde(default)]
    pub(crate) device_cgroup_rules: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) device_requests: Option<Vec<serde_json::Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) memory_reservation: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) memory_swap: i64,
    #[serde(default)]
    pub(crate) memory_swappiness: Option<i64>,
    #[serde(default)]
    pub(crate) oom_kill_disable: Option<bool>,
    #[serde(default)]
    pub(crate) pids_limit: Option<i64>,
    #[serde(default)]
    pub(crate) ulimits: Option<Vec<Ulimit>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps", default, deserialize_with = "nullable")]
    pub(crate) io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth", default, deserialize_with = "nullable")]
    pub(crate) io_maximum_bandwidth: u64,
    // Mounts and paths.
    /// `--mount` entries, accepted and echoed (not interpreted yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mounts: Option<Vec<serde_json::Value>>,
    /// `None`: Docker's defaults; `Some(empty)`: none (`systempaths=unconfined`).
    #[serde(default)]
    pub(crate) masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) readonly_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) init: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LogConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) r#type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RestartPolicy {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) maximum_retry_count: i64,
}

impl RestartPolicy {
    /// `""` and `"no"` both mean: never restart.
    pub(crate) fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortBinding {
    #[serde(rename = "HostIp", default, deserialize_with = "nullable")]
    pub(crate) host_ip: String,
    #[serde(rename = "HostPort", default, deserialize_with = "nullable")]
    pub(crate) host_port: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeviceMapping {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) path_on_host: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) path_in_container: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Ulimit {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) hard: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) soft: i64,
}

/// `NetworkingConfig`: endpoint settings per network name, accepted as they
/// come (`"default"` means the default bridge).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkingConfig {
    #[serde(default)]
    pub(crate) endpoints_config: Option<BTreeMap<String, Option<serde_json::Value>>>,
}

// ---------------------------------------------------------------------------
// Inspect and list.

/// `GET /containers/{id}/json` (moby `ContainerJSON`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerInspect {
    pub(crate) id: String,
    /// RFC 3339 with nanoseconds, see [`rfc3339_nano`].
    pub(crate) created: String,
    pub(crate) path: String,
    pub(crate) args: Vec<String>,
    pub(crate) state: ContainerState,
    /// The image id, `sha256:...`.
    pub(crate) image: String,
    pub(crate) resolv_conf_path: String,
    pub(crate) hostname_path: String,
    pub(crate) hosts_path: String,
    pub(crate) log_path: String,
    /// `/name`.
    pub(crate) name: String,
    pub(crate) restart_count: i64,
    pub(crate) driver: String,
    pub(crate) platform: String,
    pub(crate) mount_label: String,
    pub(crate) process_label: String,
    pub(crate) app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub(crate) exec_ids: Option<Vec<String>>,
    pub(crate) host_config: HostConfig,
    pub(crate) graph_driver: GraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) size_root_fs: Option<i64>,
    pub(crate) mounts: Vec<MountPoint>,
    pub(crate) config: ContainerConfig,
    pub(crate) network_settings: NetworkSettings,
}

/// `State` of container inspect.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerState {
    /// `created|running|paused|restarting|removing|exited|dead`.
    pub(crate) status: String,
    pub(crate) running: bool,
    pub(crate) paused: bool,
    pub(crate) restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub(crate) oom_killed: bool,
    pub(crate) dead: bool,
    pub(crate) pid: i64,
    pub(crate) exit_code: i64,
    pub(crate) error: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GraphDriver {
    pub(crate) name: String,
    pub(crate) data: BTreeMap<String, String>,
}

/// One entry of `Mounts` (inspect and list).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MountPoint {
    pub(crate) r#type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) destination: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) driver: String,
    pub(crate) mode: String,
    #[serde(rename = "RW")]
    pub(crate) rw: bool,
    pub(crate) propagation: String,
}

/// Minimal `NetworkSettings` of inspect: ports and networks by name.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkSettings {
    pub(crate) bridge: String,
    #[serde(rename = "SandboxID")]
    pub(crate) sandbox_id: String,
    pub(crate) sandbox_key: String,
    pub(crate) ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(rename = "EndpointID")]
    pub(crate) endpoint_id: String,
    pub(crate) gateway: String,
    #[serde(rename = "IPAddress")]
    pub(crate) ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub(crate) ip_prefix_len: u32,
    pub(crate) mac_address: String,
    pub(crate) networks: BTreeMap<String, EndpointSettings>,
}

/// One network a container is on.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub(crate) ipam_config: Option<serde_json::Value>,
    pub(crate) links: Option<Vec<String>>,
    pub(crate) aliases: Option<Vec<String>>,
    pub(crate) mac_address: String,
    #[serde(rename = "NetworkID")]
    pub(crate) network_id: String,
    #[serde(rename = "EndpointID")]
    pub(crate) endpoint_id: String,
    pub(crate) gateway: String,
    #[serde(rename = "IPAddress")]
    pub(crate) ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub(crate) ip_prefix_len: u32,
    #[serde(rename = "DNSNames")]
    pub(crate) dns_names: Option<Vec<String>>,
}

/// One item of `GET /containers/json` (moby `container.Summary`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerSummary {
    pub(crate) id: String,
    /// Each starts with `/` (the CLI strips the first byte).
    pub(crate) names: Vec<String>,
    pub(crate) image: String,
    #[serde(rename = "ImageID")]
    pub(crate) image_id: String,
    pub(crate) command: String,
    /// Unix seconds.
    pub(crate) created: i64,
    pub(crate) ports: Vec<SummaryPort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) size_root_fs: Option<i64>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) state: String,
    /// See [`status_text`].
    pub(crate) status: String,
    pub(crate) host_config: SummaryHostConfig,
    pub(crate) network_settings: SummaryNetworkSettings,
    pub(crate) mounts: Vec<MountPoint>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SummaryPort {
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub(crate) ip: String,
    #[serde(rename = "PrivatePort")]
    pub(crate) private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub(crate) public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub(crate) r#type: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SummaryHostConfig {
    pub(crate) network_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SummaryNetworkSettings {
    pub(crate) networks: BTreeMap<String, EndpointSettings>,
}

// ---------------------------------------------------------------------------
// Times and the human status.

/// What the status text of `docker ps` depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatusFacts {
    pub(crate) running: bool,
    pub(crate) paused: bool,
    pub(crate) restarting: bool,
    pub(crate) removing: bool,
    pub(crate) dead: bool,
    pub(crate) exit_code: i64,
    pub(crate) started_at: Option<SystemTime>,
    pub(crate) finished_at: Option<SystemTime>,
    /// `healthy`, `unhealthy`, `health: starting` when a health check runs.
    pub(crate) health: Option<String>,
}

/// Moby's `State.String()`: `Up 5 seconds`, `Up 2 minutes (Paused)`,
/// `Exited (0) 3 seconds ago`, `Created`, ...
pub(crate) fn status_text(facts: &StatusFacts, now: SystemTime) -> String {
    let since = |t: Option<SystemTime>| {
        human_duration(
            t.and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default(),
        )
    };
    if facts.running {
        if facts.paused {
            return format!("Up {} (Paused)", since(facts.started_at));
        }
        if facts.restarting {
            return format!(
                "Restarting ({}) {} ago",
                facts.exit_code,
                since(facts.finished_at)
            );
        }
        if let Some(health) = &facts.health {
            return format!("Up {} ({health})", since(facts.started_at));
        }
        return format!("Up {}", since(facts.started_at));
    }
    if facts.removing {
        return "Removal In Progress".to_owned();
    }
    if facts.dead {
        return "Dead".to_owned();
    }
    if facts.started_at.is_none() {
        return "Created".to_owned();
    }
    if facts.finished_at.is_none() {
        return String::new();
    }
    format!(
        "Exited ({}) {} ago",
        facts.exit_code,
        since(facts.finished_at)
    )
}

/// `go-units` `HumanDuration`.
pub(crate) fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go's `d.Round(time.Hour)`: halves round away from zero.
    let hours = (d.as_nanos() + 1_800_000_000_000) / 3_600_000_000_000;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// Go's zero `time.Time` as JSON: a container never started or stopped.
pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Go's `time.RFC3339Nano` in UTC (trailing zeros of the fraction dropped),
/// as `time.Time` marshals to JSON; `None` is Go's zero time.
pub(crate) fn rfc3339_nano(time: Option<SystemTime>) -> String {
    let Some(time) = time else {
        return ZERO_TIME.to_owned();
    };
    let fixed = humantime::format_rfc3339_nanos(time).to_string();
    // `2026-11-29T01:02:03.120000000Z` -> `2026-11-29T01:02:03.12Z`
    let Some(body) = fixed.strip_suffix('Z') else {
        return fixed;
    };
    let trimmed = body.trim_end_matches('0').trim_end_matches('.');
    format!("{trimmed}Z")
}

/// `Command` of the container list: moby (container/view.go) joins path and
/// args with spaces, wrapping each arg that contains a space in `'...'`.
pub(crate) fn summary_command(path: &str, args: &[String]) -> String {
    let mut command = path.to_owned();
    for arg in args {
        command.push(' ');
        if arg.contains(' ') {
            command.push('\'');
            command.push_str(arg);
            command.push('\'');
        } else {
            command.push_str(arg);
        }
    }
    command
}

/// Unix seconds, as `Created` of the container list.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

pub(crate) mod validate;

#[cfg(test)]
mod tests;
