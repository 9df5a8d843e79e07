//! The OCI runtime spec of a container, built the way dockerd builds it
//! (moby `oci/defaults.go` and `daemon/oci_linux.go`): Docker's default
//! mounts, masked and read-only paths, capabilities, device rules and
//! seccomp profile, adjusted by the container's config and `HostConfig`.
//!
//! Two steps, as in moby: [`merge_image_config`] folds the image's config
//! into the container's at create time (so inspect shows the merged result),
//! and [`build_spec`] turns a merged config into a [`Spec`] at start time.
//!
//! Checked against the `config.json` Debian's dockerd 20.10 wrote for the
//! same flags (`daemon/tests/fixtures/dockerd-20.10-specs/`). Deliberate
//! differences: moby 28's masked paths (adds `/sys/devices/virtual/powercap`)
//! and seccomp profile; host networking leaves out the network namespace
//! instead of joining a path to the host's; `memory.swap` is omitted for
//! `-1`, `blockIO` for weight 0.
//!
//! Order of use at create: `CreateRequest::validate`, then
//! `CreateRequest::apply_defaults` (hostname, swap, shm size...), then
//! [`merge_image_config`]; at start, [`build_spec`]. Networking (bridge
//! setup, port bindings), volumes and binds are the caller's: it passes the
//! resolved mounts in [`SpecInput::extra_mounts`] and the per-container
//! `resolv.conf`, `hostname` and `hosts` in [`SpecInput::network_files`].
//!
//! Seccomp: the default profile is moby's for the default capabilities
//! (`spec/seccomp-default.json`, from `runtime/tests/fixtures`), opened up
//! for added capabilities as moby's conditional rules do; `seccomp=<json>`
//! takes Docker's profile format (or OCI's).
//!
//! `--init`: when `HostConfig.Init` is set and the caller passes
//! [`SpecInput::init_binary`], the binary is bind-mounted read-only at
//! `/sbin/docker-init` and the command becomes `/sbin/docker-init -- cmd...`,
//! as dockerd does with `docker-init` (tini, found on `PATH` like dockerd).
//! Without one, `Init` is refused with dockerd's error.

// The container engine that calls this is the next step.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capability, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroup, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use super::ErrorKind;
use crate::api::containers_types::validate::{
    ALL_CAPABILITIES, normalize_capabilities, parse_security_opts,
};
use crate::api::containers_types::{ContainerConfig, HostConfig};

/// Docker's `PATH` when the image sets none (`oci.DefaultPathEnv`).
pub(crate) const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default `/dev/shm` size (`config.DefaultShmSize`).
pub(crate) const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// Where dockerd mounts its init inside the container.
pub(crate) const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

/// moby's `caps.DefaultCapabilities()`, in its order.
pub(crate) const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub(crate) const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub(crate) const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Errors building a spec; messages name what was wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpecError {
    #[error("No command specified")]
    NoCommand,
    /// `--init` on a host without `docker-init` (dockerd's wording).
    #[error("exec: \"docker-init\": executable file not found in $PATH")]
    NoInit,
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    #[error("reading {path} in the container's rootfs: {source}")]
    RootfsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid tmpfs option {0:?}")]
    TmpfsOption(String),
    #[error("{0}")]
    InvalidOption(String),
    #[error("decoding seccomp profile: {0}")]
    SeccompProfile(serde_json::Error),
    #[error("error gathering device information while adding custom device {path:?}: {source}")]
    Device {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("building the runtime spec: {0}")]
    Oci(#[from] OciSpecError),
}

impl SpecError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            SpecError::RootfsFile { .. } | SpecError::Oci(_) => ErrorKind::Internal,
            SpecError::NoCommand
            | SpecError::NoInit
            | SpecError::UserNotFound(_)
            | SpecError::GroupNotFound(_)
            | SpecError::TmpfsOption(_)
            | SpecError::InvalidOption(_)
            | SpecError::SeccompProfile(_)
            | SpecError::Device { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// The parts of an image's config a container inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageDefaults {
    pub(crate) user: String,
    pub(crate) env: Vec<String>,
    pub(crate) cmd: Option<Vec<String>>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) working_dir: String,
    pub(crate) stop_signal: String,
    pub(crate) exposed_ports: Vec<String>,
    pub(crate) volumes: Vec<String>,
    pub(crate) labels: HashMap<String, String>,
}

impl From<&oci_spec::image::Config> for ImageDefaults {
    fn from(config: &oci_spec::image::Config) -> Self {
        ImageDefaults {
            user: config.user().clone().unwrap_or_default(),
            env: config.env().clone().unwrap_or_default(),
            cmd: config.cmd().clone(),
            entrypoint: config.entrypoint().clone(),
            working_dir: config.working_dir().clone().unwrap_or_default(),
            stop_signal: config.stop_signal().clone().unwrap_or_default(),
            exposed_ports: config.exposed_ports().clone().unwrap_or_default(),
            volumes: config.volumes().clone().unwrap_or_default(),
            labels: config.labels().clone().unwrap_or_default(),
        }
    }
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

/// moby's `runconfig.Merge`: what the create request leaves empty comes
/// from the image. An explicit entrypoint (even `--entrypoint ""`) drops
/// the image's `Cmd` as well as its entrypoint.
pub(crate) fn merge_image_config(config: &mut ContainerConfig, image: &ImageDefaults) {
    if config.user.is_empty() {
        config.user = image.user.clone();
    }
    if !image.exposed_ports.is_empty() {
        let ports = config.exposed_ports.get_or_insert_with(Default::default);
        for port in &image.exposed_ports {
            ports.entry(port.clone()).or_default();
        }
    }
    let env = config.env.get_or_insert_with(Vec::new);
    for image_env in &image.env {
        if !env.iter().any(|e| env_key(e) == env_key(image_env)) {
            env.push(image_env.clone());
        }
    }
    let labels = config.labels.get_or_insert_with(Default::default);
    for (key, value) in &image.labels {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    if config.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            config.cmd = image.cmd.clone();
        }
        if config.entrypoint.is_none() {
            config.entrypoint = image.entrypoint.clone();
        }
    }
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone();
    }
    if !image.volumes.is_empty() {
        let volumes = config.volumes.get_or_insert_with(Default::default);
        for volume in &image.volumes {
            volumes.entry(volume.clone()).or_default();
        }
    }
    if config.stop_signal.is_empty() {
        config.stop_signal = image.stop_signal.clone();
    }
}

/// moby's `getEntrypointAndArgs`: the container's `Path` and `Args`. An
/// entrypoint of just `""` (`--entrypoint ""`) counts as none.
pub(crate) fn command_of(config: &ContainerConfig) -> Result<(String, Vec<String>), SpecError> {
    let entrypoint = match config.entrypoint.as_deref() {
        Some([only]) if only.is_empty() => &[][..],
        Some(entrypoint) => entrypoint,
        None => &[][..],
    };
    let cmd = config.cmd.as_deref().unwrap_or_default();
    let mut all = entrypoint.iter().chain(cmd).cloned();
    let path = all.next().ok_or(SpecError::NoCommand)?;
    Ok((path, all.collect()))
}

/// moby's `CreateDaemonEnvironment`: `PATH`, `HOSTNAME`, `TERM` (tty), then
/// the container's env replacing by key (`KEY` alone unsets).
pub(crate) fn container_env(config: &ContainerConfig) -> Vec<String> {
    let mut env = vec![
        DEFAULT_PATH_ENV.to_owned(),
        format!("HOSTNAME={}", config.hostname),
    ];
    if config.tty {
        env.push("TERM=xterm".to_owned());
    }
    let mut removed = Vec::new();
    for entry in config.env.iter().flatten() {
        let key = env_key(entry);
        let existing = env.iter().position(|e| env_key(e) == key);
        match (entry.contains('='), existing) {
            (true, Some(i)) => env[i] = entry.clone(),
            (true, None) => env.push(entry.clone()),
            (false, Some(i)) => removed.push(i),
            (false, None) => {}
        }
    }
    env.into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(_, e)| e)
        .collect()
}

/// Files berthd prepares per container and binds in, as dockerd does.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkFiles {
    pub(crate) resolv_conf: Option<PathBuf>,
    pub(crate) hostname: Option<PathBuf>,
    pub(crate) hosts: Option<PathBuf>,
}

/// Everything [`build_spec`] needs besides the container's config.
#[derive(Debug, Clone)]
pub(crate) struct SpecInput<'a> {
    /// Merged with the image (see [`merge_image_config`]); `hostname` set.
    pub(crate) config: &'a ContainerConfig,
    pub(crate) host: &'a HostConfig,
    /// The container's mounted root filesystem: `/etc/passwd` and
    /// `/etc/group` are read from it to resolve user and group names.
    pub(crate) rootfs: &'a Path,
    /// `linux.cgroupsPath`, e.g. `/berth/<id>`.
    pub(crate) cgroups_path: Option<PathBuf>,
    /// Whether the host's cgroups are v2 only (gives a cgroup namespace).
    pub(crate) cgroup_v2: bool,
    pub(crate) network_files: NetworkFiles,
    /// Binds and volumes, already resolved to OCI mounts.
    pub(crate) extra_mounts: Vec<Mount>,
    /// The static init for `--init`, see the module docs.
    pub(crate) init_binary: Option<&'a Path>,
    /// The namespace to join: the one berthd made for the container's
    /// endpoints, or the other container's for `container:<id>`.
    pub(crate) network_ns_path: Option<PathBuf>,
}

fn namespace(typ: LinuxNamespaceType) -> Result<LinuxNamespace, SpecError> {
    Ok(LinuxNamespaceBuilder::default().typ(typ).build()?)
}

/// Builds the runtime spec for a container (see the module docs).
pub(crate) fn build_spec(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let config = input.config;
    let host = input.host;
    let security = parse_security_opts(host.security_opt.as_deref().unwrap_or_default())
        .map_err(SpecError::InvalidOption)?;
    let net_mode = host.network_mode.as_str();
    let host_network = net_mode == "host";
    let host_uts = host.uts_mode == "host";

    // Process.
    let (path, args) = command_of(config)?;
    let mut argv = vec![path];
    argv.extend(args);
    let mut init_mount = None;
    if host.init == Some(true) {
        let init = input.init_binary.ok_or(SpecError::NoInit)?;
        argv.splice(0..0, [INIT_PATH_IN_CONTAINER.to_owned(), "--".to_owned()]);
        init_mount = Some(
            MountBuilder::default()
                .destination(INIT_PATH_IN_CONTAINER)
                .typ("bind")
                .source(init)
                .options(vec!["bind".to_owned(), "ro".to_owned()])
                .build()?,
        );
    }
    let identity = user::resolve_user(
        input.rootfs,
        &config.user,
        host.group_add.as_deref().unwrap_or_default(),
    )?;
    let caps = capabilities(host)?;
    let cap_set = |names: &[String]| -> HashSet<Capability> {
        names
            .iter()
            .filter_map(|name| Capability::from_str(name.strip_prefix("CAP_")?).ok())
            .collect()
    };
    let bounding = cap_set(&caps);
    // Docker gives a non-root user only the bounding set (observed on dockerd).
    let granted = if identity.uid == 0 {
        bounding.clone()
    } else {
        HashSet::new()
    };
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(bounding)
        .effective(granted.clone())
        .permitted(granted)
        .build()?;
    // oci-spec's defaults would add inheritable and ambient sets; Docker has none.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let rlimits = rlimits(host)?;
    // Builders start from oci-spec's `Default`s (youki's, not Docker's), so
    // every optional field Docker leaves out is cleared explicitly.
    let mut process = ProcessBuilder::default()
        .terminal(config.tty)
        .user(
            UserBuilder::default()
                .uid(identity.uid)
                .gid(identity.gid)
                .additional_gids(identity.additional_gids)
                .build()?,
        )
        .args(argv)
        .env(container_env(config))
        .cwd(if config.working_dir.is_empty() {
            "/"
        } else {
            &config.working_dir
        })
        .capabilities(capabilities)
        .oom_score_adj(host.oom_score_adj as i32)
        .build()?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(security.no_new_privileges.then_some(true));
    process.set_console_size(None);
    if config.tty
        && let Some([height, width]) = host.console_size
        && height > 0
        && width > 0
    {
        process.set_console_size(Some(
            oci_spec::runtime::BoxBuilder::default()
                .height(height as u64)
                .width(width as u64)
                .build()?,
        ));
    }

    // Mounts.
    let mounts = mounts::spec_mounts(input, init_mount)?;

    // Namespaces.
    let mut namespaces = vec![namespace(LinuxNamespaceType::Mount)?];
    if !host_network {
        let mut net = namespace(LinuxNamespaceType::Network)?;
        // A bridge endpoint's namespace, or `container:<id>`'s.
        if input.network_ns_path.is_some() {
            net.set_path(input.network_ns_path.clone());
        }
        namespaces.push(net);
    }
    if !host_uts {
        namespaces.push(namespace(LinuxNamespaceType::Uts)?);
    }
    if host.pid_mode != "host" {
        namespaces.push(namespace(LinuxNamespaceType::Pid)?);
    }
    if host.ipc_mode != "host" {
        namespaces.push(namespace(LinuxNamespaceType::Ipc)?);
    }
    let cgroupns_private = match host.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        _ => input.cgroup_v2,
    };
    if cgroupns_private {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup)?);
    }

    // Sysctls: unprivileged ping and low ports in a private netns (moby 28).
    let mut sysctl = HashMap::new();
    if !host_network {
        sysctl.insert(
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "0".to_owned(),
        );
        sysctl.insert(
            "net.ipv4.ping_group_range".to_owned(),
            "0 2147483647".to_owned(),
        );
    }
    for (key, value) in host.sysctls.iter().flatten() {
        sysctl.insert(key.clone(), value.clone());
    }

    let (devices, device_rules) = devices::spec_devices(host)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .sysctl(sysctl)
        .resources(resources(host, device_rules)?)
        .devices(devices)
        .build()?;
    if linux.sysctl().as_ref().is_some_and(HashMap::is_empty) {
        linux.set_sysctl(None);
    }
    linux.set_cgroups_path(input.cgroups_path.clone());
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    if !host.privileged {
        let paths = |custom: &Option<Vec<String>>, default: &[&str]| {
            custom
                .clone()
                .unwrap_or_else(|| default.iter().map(|p| p.to_string()).collect())
        };
        let masked = paths(&host.masked_paths, MASKED_PATHS);
        let readonly = paths(&host.readonly_paths, READONLY_PATHS);
        if !masked.is_empty() {
            linux.set_masked_paths(Some(masked));
        }
        if !readonly.is_empty() {
            linux.set_readonly_paths(Some(readonly));
        }
        linux.set_seccomp(seccomp::seccomp(
            security.seccomp_profile.as_deref(),
            &caps,
        )?);
    }

    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .process(process)
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(host.readonly_rootfs)
                .build()?,
        )
        .mounts(mounts)
        .linux(linux)
        .build()?;
    spec.set_hostname(None);
    spec.set_annotations(None);
    if !host_uts && !host_network {
        spec.set_hostname(Some(config.hostname.clone()));
        if !config.domainname.is_empty() {
            spec.set_domainname(Some(config.domainname.clone()));
        }
    }
    if let Some(annotations) = &host.annotations {
        spec.set_annotations(Some(annotations.clone().into_iter().collect()));
    }
    Ok(spec)
}

/// moby's `caps.TweakCapabilities`: privileged gets all; `ALL` in `CapAdd`
/// means all but the dropped; `ALL` in `CapDrop` means only the added.
pub(crate) fn capabilities(host: &HostConfig) -> Result<Vec<String>, SpecError> {
    let all = || ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    if host.privileged {
        return Ok(all());
    }
    let add = normalize_capabilities(host.cap_add.as_deref().unwrap_or_default())
        .map_err(SpecError::InvalidOption)?;
    let drop = normalize_capabilities(host.cap_drop.as_deref().unwrap_or_default())
        .map_err(SpecError::InvalidOption)?;
    let has = |list: &[String], cap: &str| list.iter().any(|c| c == cap);
    let caps: Vec<String> = if has(&add, "ALL") {
        ALL_CAPABILITIES
            .iter()
            .filter(|c| !has(&drop, c))
            .map(|c| c.to_string())
            .collect()
    } else if has(&drop, "ALL") {
        add
    } else {
        let mut caps: Vec<String> = DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !has(&drop, c))
            .map(|c| c.to_string())
            .collect();
        for cap in add {
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        caps
    };
    Ok(caps)
}

fn rlimits(host: &HostConfig) -> Result<Vec<PosixRlimit>, SpecError> {
    host.ulimits
        .iter()
        .flatten()
        .map(|ulimit| {
            let name = format!("RLIMIT_{}", ulimit.name.to_ascii_uppercase());
            let typ = PosixRlimitType::from_str(&name).map_err(|_| {
                SpecError::InvalidOption(format!("invalid ulimit type: {}", ulimit.name))
            })?;
            Ok(PosixRlimitBuilder::default()
                .typ(typ)
                .hard(ulimit.hard as u64)
                .soft(ulimit.soft as u64)
                .build()?)
        })
        .collect()
}

fn resources(
    host: &HostConfig,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    let mut memory =
        LinuxMemoryBuilder::default().disable_oom_killer(host.oom_kill_disable.unwrap_or(false));
    if host.memory > 0 {
        memory = memory.limit(host.memory);
    }
    if host.memory_swap > 0 {
        memory = memory.swap(host.memory_swap);
    }
    if host.memory_reservation > 0 {
        memory = memory.reservation(host.memory_reservation);
    }
    if let Some(swappiness) = host.memory_swappiness
        && swappiness >= 0
    {
        memory = memory.swappiness(swappiness as u64);
    }
    let mut cpu = LinuxCpuBuilder::default().shares(host.cpu_shares.max(0) as u64);
    if host.nano_cpus > 0 {
        // moby: a 100ms period and the matching quota.
        let period: i64 = 100_000;
        cpu = cpu
            .period(period as u64)
            .quota(host.nano_cpus * period / 1_000_000_000);
    } else {
        if host.cpu_period > 0 {
            cpu = cpu.period(host.cpu_period as u64);
        }
        if host.cpu_quota != 0 {
            cpu = cpu.quota(host.cpu_quota);
        }
    }
    if host.cpu_realtime_period > 0 {
        cpu = cpu.realtime_period(host.cpu_realtime_period as u64);
    }
    if host.cpu_realtime_runtime != 0 {
        cpu = cpu.realtime_runtime(host.cpu_realtime_runtime);
    }
    if !host.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(host.cpuset_cpus.clone());
    }
    if !host.cpuset_mems.is_empty() {
        cpu = cpu.mems(host.cpuset_mems.clone());
    }
    // dockerd writes `shares: 0` and `weight: 0` for "unset"; the runtime
    // leaves a 0 alone, as runc does.
    let block_io = LinuxBlockIoBuilder::default()
        .weight(host.blkio_weight)
        .build()?;
    let mut resources = LinuxResourcesBuilder::default()
        .devices(device_rules)
        .memory(memory.build()?)
        .cpu(cpu.build()?)
        .block_io(block_io);
    if let Some(limit) = host.pids_limit
        && limit > 0
    {
        resources = resources.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }
    Ok(resources.build()?)
}

mod devices;
mod mounts;
mod seccomp;
pub(crate) mod user;

#[cfg(test)]
mod tests;
