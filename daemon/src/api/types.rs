//! Docker Engine API wire types for the system endpoints (field names as in
//! moby's `api/swagger.yaml`).

use std::collections::BTreeMap;

use serde::Serialize;

/// `GET /version` (`SystemVersion`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SystemVersion {
    pub(crate) platform: Platform,
    pub(crate) components: Vec<Component>,
    pub(crate) version: String,
    pub(crate) api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub(crate) min_api_version: String,
    pub(crate) git_commit: String,
    pub(crate) go_version: String,
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) kernel_version: String,
    pub(crate) build_time: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Platform {
    pub(crate) name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Component {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) details: BTreeMap<String, String>,
}

/// `GET /info` (`SystemInfo`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SystemInfo {
    #[serde(rename = "ID")]
    pub(crate) id: String,
    pub(crate) containers: usize,
    pub(crate) containers_running: usize,
    pub(crate) containers_paused: usize,
    pub(crate) containers_stopped: usize,
    pub(crate) images: usize,
    pub(crate) driver: String,
    /// Pairs, `[[name, value], ...]`.
    pub(crate) driver_status: Vec<[String; 2]>,
    pub(crate) plugins: PluginsInfo,
    pub(crate) memory_limit: bool,
    pub(crate) swap_limit: bool,
    pub(crate) cpu_cfs_period: bool,
    pub(crate) cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub(crate) cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub(crate) cpu_set: bool,
    pub(crate) pids_limit: bool,
    pub(crate) oom_kill_disable: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub(crate) ipv4_forwarding: bool,
    pub(crate) debug: bool,
    pub(crate) n_fd: usize,
    pub(crate) n_goroutines: usize,
    pub(crate) system_time: String,
    pub(crate) logging_driver: String,
    pub(crate) cgroup_driver: String,
    pub(crate) cgroup_version: String,
    pub(crate) n_events_listener: usize,
    pub(crate) kernel_version: String,
    pub(crate) operating_system: String,
    #[serde(rename = "OSVersion")]
    pub(crate) os_version: String,
    #[serde(rename = "OSType")]
    pub(crate) os_type: String,
    pub(crate) architecture: String,
    #[serde(rename = "NCPU")]
    pub(crate) ncpu: usize,
    pub(crate) mem_total: u64,
    pub(crate) index_server_address: String,
    pub(crate) registry_config: RegistryConfig,
    pub(crate) generic_resources: Option<()>,
    pub(crate) docker_root_dir: String,
    pub(crate) http_proxy: String,
    pub(crate) https_proxy: String,
    pub(crate) no_proxy: String,
    pub(crate) name: String,
    pub(crate) labels: Vec<String>,
    pub(crate) experimental_build: bool,
    pub(crate) server_version: String,
    pub(crate) runtimes: BTreeMap<String, Runtime>,
    pub(crate) default_runtime: String,
    pub(crate) swarm: SwarmInfo,
    pub(crate) live_restore_enabled: bool,
    pub(crate) isolation: String,
    pub(crate) init_binary: String,
    pub(crate) containerd_commit: Commit,
    pub(crate) runc_commit: Commit,
    pub(crate) init_commit: Commit,
    pub(crate) security_options: Vec<String>,
    #[serde(rename = "CDISpecDirs")]
    pub(crate) cdi_spec_dirs: Vec<String>,
    pub(crate) warnings: Vec<String>,
    /// Berth's own: the per-container supervisors (clients ignore fields
    /// they do not know).
    pub(crate) supervisors: SupervisorsInfo,
}

/// `Supervisors` of `GET /info`: `berth-shim` processes berthd holds for
/// containers, and standby ones started ahead of the next start.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SupervisorsInfo {
    pub(crate) running: usize,
    pub(crate) standby: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PluginsInfo {
    pub(crate) volume: Vec<String>,
    pub(crate) network: Vec<String>,
    pub(crate) authorization: Option<Vec<String>>,
    pub(crate) log: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RegistryConfig {
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub(crate) insecure_registry_cidrs: Vec<String>,
    pub(crate) index_configs: BTreeMap<String, IndexInfo>,
    pub(crate) mirrors: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct IndexInfo {
    pub(crate) name: String,
    pub(crate) mirrors: Vec<String>,
    pub(crate) secure: bool,
    pub(crate) official: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Runtime {
    pub(crate) path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub(crate) node_id: String,
    pub(crate) node_addr: String,
    pub(crate) local_node_state: String,
    pub(crate) control_available: bool,
    pub(crate) error: String,
    pub(crate) remote_managers: Option<()>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Commit {
    #[serde(rename = "ID")]
    pub(crate) id: String,
}

/// One message of `GET /events` (`EventMessage`), with the deprecated
/// `status`/`id`/`from` fields moby still fills for containers and images.
#[derive(Debug, Serialize)]
pub(crate) struct EventMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) from: Option<String>,
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    #[serde(rename = "Action")]
    pub(crate) action: String,
    #[serde(rename = "Actor")]
    pub(crate) actor: EventActor,
    pub(crate) scope: String,
    pub(crate) time: i64,
    #[serde(rename = "timeNano")]
    pub(crate) time_nano: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EventActor {
    #[serde(rename = "ID")]
    pub(crate) id: String,
    pub(crate) attributes: BTreeMap<String, String>,
}

/// `GET /system/df` (`SystemDataUsageResponse`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DiskUsage {
    pub(crate) layers_size: u64,
    pub(crate) images: Vec<super::images::ImageSummary>,
    pub(crate) containers: Vec<super::containers_types::ContainerSummary>,
    pub(crate) volumes: Vec<serde_json::Value>,
    pub(crate) build_cache: Vec<serde_json::Value>,
}
