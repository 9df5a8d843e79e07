//! Docker's checks of a create request with moby's messages (moby
//! daemon/container.go `verifyContainerSettings`, daemon/daemon_unix.go
//! `verifyPlatformContainerResources`, oci/caps), and the parsers they share
//! with the spec builder (capabilities, signals, security options).

use std::collections::BTreeSet;

use super::{CreateRequest, HostConfig, RestartPolicy};
use crate::engine::host::HostFacts;

/// Docker's lower bound for memory limits and reservations.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Every capability Linux 6.x knows, as moby's `caps.GetAllCapabilities`.
pub(crate) const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The ulimit names docker accepts (`go-units` `ulimitNameMapping`).
pub(crate) const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Moby's `caps.NormalizeLegacyCapabilities`: upper case, `CAP_` prefix,
/// `ALL` kept as is; an unknown name is an error.
pub(crate) fn normalize_capabilities(caps: &[String]) -> Result<Vec<String>, String> {
    caps.iter()
        .map(|cap| {
            let cap = cap.to_ascii_uppercase();
            if cap == "ALL" {
                return Ok(cap);
            }
            let cap = if cap.starts_with("CAP_") {
                cap
            } else {
                format!("CAP_{cap}")
            };
            if ALL_CAPABILITIES.contains(&cap.as_str()) {
                Ok(cap)
            } else {
                Err(format!("unknown capability: {cap:?}"))
            }
        })
        .collect()
}

/// Linux signal names without `SIG`, numbered as on x86_64.
const SIGNALS: &[(&str, u8)] = &[
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
];

const SIGRTMIN: u8 = 34;
const SIGRTMAX: u8 = 64;

/// Moby's `signal.ParseSignal`: a number (1-255) or a name with or without
/// `SIG`, any case (`RTMIN+3`, `RTMAX-1` included).
pub(crate) fn parse_signal(raw: &str) -> Result<u8, String> {
    let invalid = || format!("Invalid signal: {raw}");
    if let Ok(number) = raw.parse::<u8>() {
        return if number == 0 {
            Err(invalid())
        } else {
            Ok(number)
        };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, number)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(number);
    }
    let realtime = |base: u8, rest: &str, plus: bool| -> Option<u8> {
        if rest.is_empty() {
            return Some(base);
        }
        let offset: u8 = rest
            .strip_prefix(if plus { '+' } else { '-' })?
            .parse()
            .ok()?;
        let number = if plus {
            base.checked_add(offset)?
        } else {
            base.checked_sub(offset)?
        };
        (1..=14).contains(&offset).then_some(number)
    };
    let number = if let Some(rest) = name.strip_prefix("RTMIN") {
        realtime(SIGRTMIN, rest, true)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        realtime(SIGRTMAX, rest, false)
    } else {
        None
    };
    number.ok_or_else(invalid)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// What `--security-opt` entries ask for (moby `parseSecurityOpt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SecurityOptions {
    pub(crate) no_new_privileges: bool,
    /// `None`: the default profile; `Some("unconfined")`; or the profile's
    /// JSON (the CLI sends the file's content).
    pub(crate) seccomp_profile: Option<String>,
    pub(crate) apparmor_profile: Option<String>,
    pub(crate) label_opts: Vec<String>,
}

/// Parses `HostConfig.SecurityOpt` with moby's rules and errors.
pub(crate) fn parse_security_opts(opts: &[String]) -> Result<SecurityOptions, String> {
    let mut parsed = SecurityOptions::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            parsed.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            parsed.label_opts.push("disable".to_owned());
            continue;
        }
        // `:` is moby's deprecated separator, still accepted.
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(format!("invalid --security-opt 1: {opt:?}"));
        };
        match key {
            "label" => parsed.label_opts.push(value.to_owned()),
            "apparmor" => parsed.apparmor_profile = Some(value.to_owned()),
            "seccomp" => parsed.seccomp_profile = Some(value.to_owned()),
            "no-new-privileges" => {
                parsed.no_new_privileges = parse_go_bool(value)
                    .ok_or_else(|| format!("invalid --security-opt 2: {opt:?}"))?;
            }
            _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
        }
    }
    Ok(parsed)
}

/// A cpuset list like `0-3,5` as the set it names (moby
/// `parsers.ParseUintList`); `None` if it is not one.
fn parse_cpuset(list: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (lo.parse::<u32>().ok()?, hi.parse::<u32>().ok()?);
                if lo > hi || hi - lo > 65_536 {
                    return None;
                }
                set.extend(lo..=hi);
            }
            None => {
                set.insert(part.parse::<u32>().ok()?);
            }
        }
    }
    Some(set)
}

fn valid_cpuset(list: &str) -> bool {
    parse_cpuset(list).is_some()
}

impl CreateRequest {
    /// Docker's checks of a create request, with its messages (all are
    /// invalid-parameter errors, HTTP 400). `ncpu` bounds `--cpus`. Returns
    /// the warnings Docker would give.
    pub(crate) fn validate(&self, ncpu: usize) -> Result<Vec<String>, String> {
        let config = &self.config;
        let host = &self.host_config;
        let mut warnings = Vec::new();

        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            ));
        }
        for env in config.env.iter().flatten() {
            if env
                .split_once('=')
                .map_or(env.as_str(), |(key, _)| key)
                .is_empty()
            {
                return Err(format!("invalid environment variable: {env}"));
            }
        }
        if !config.stop_signal.is_empty() {
            parse_signal(&config.stop_signal)?;
        }
        if let Some(timeout) = config.stop_timeout
            && timeout < -1
        {
            return Err(format!("invalid stop timeout: {timeout}"));
        }
        validate_restart_policy(&host.restart_policy)?;
        if host.auto_remove && !host.restart_policy.is_none() {
            return Err("can't create 'AutoRemove' container with restart policy".to_owned());
        }
        normalize_capabilities(host.cap_add.as_deref().unwrap_or_default())?;
        normalize_capabilities(host.cap_drop.as_deref().unwrap_or_default())?;
        parse_security_opts(host.security_opt.as_deref().unwrap_or_default())?;
        if host.cgroup_parent.split('/').any(|c| c == "..") || host.cgroup_parent.contains('\0') {
            return Err(format!("invalid cgroup parent: {:?}", host.cgroup_parent));
        }

        validate_resources(host, ncpu, false)?;
        if !(-1000..=1000).contains(&host.oom_score_adj) {
            return Err(format!(
                "Invalid value {}, range for oom score adj is [-1000, 1000]",
                host.oom_score_adj
            ));
        }
        if host.shm_size < 0 {
            return Err("SHM size can not be less than 0".to_owned());
        }
        for ulimit in host.ulimits.iter().flatten() {
            if !ULIMIT_NAMES.contains(&ulimit.name.as_str()) {
                return Err(format!("invalid ulimit type: {}", ulimit.name));
            }
            if ulimit.soft > ulimit.hard {
                return Err(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    ulimit.soft, ulimit.hard
                ));
            }
        }
        for path in host.tmpfs.iter().flat_map(|t| t.keys()) {
            if !path.starts_with('/') {
                return Err(format!(
                    "invalid mount config for type \"tmpfs\": invalid mount path: '{path}' mount path must be absolute"
                ));
            }
        }
        match host.log_config.r#type.as_str() {
            "" | "json-file" | "none" => {}
            other => {
                return Err(format!(
                    "logger: no log driver named '{other}' is registered"
                ));
            }
        }
        if host.oom_kill_disable == Some(true) && host.memory == 0 {
            warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_owned());
        }
        Ok(warnings)
    }

    /// What moby fills in at create (`adaptContainerSettings` and the
    /// create route): the name-derived hostname (`id[..12]`, or the host's
    /// with host networking), `bridge` for the default network, `no`
    /// restart policy, the json-file log driver, 64 MiB of `/dev/shm`, swap
    /// twice the memory limit, and CPU shares clamped to the kernel's range.
    pub(crate) fn apply_defaults(&mut self, id: &str, host_hostname: &str) {
        let host = &mut self.host_config;
        if host.network_mode.is_empty() || host.network_mode == "default" {
            host.network_mode = "bridge".to_owned();
        }
        if self.config.hostname.is_empty() {
            self.config.hostname = if host.network_mode == "host" {
                host_hostname.to_owned()
            } else {
                id.chars().take(12).collect()
            };
        }
        if host.restart_policy.name.is_empty() {
            host.restart_policy.name = "no".to_owned();
        }
        if host.log_config.r#type.is_empty() {
            host.log_config.r#type = "json-file".to_owned();
        }
        if host.shm_size == 0 && host.ipc_mode != "host" && host.ipc_mode != "none" {
            host.shm_size = 64 * 1024 * 1024;
        }
        if host.memory > 0 && host.memory_swap == 0 {
            host.memory_swap = host.memory * 2;
        }
        if host.cpu_shares > 0 {
            host.cpu_shares = host.cpu_shares.clamp(2, 262_144);
        }
        if host.oom_kill_disable.is_none() {
            host.oom_kill_disable = Some(false);
        }
    }
}

/// The resource checks of moby's `verifyPlatformContainerResources`, for a
/// create and (`update`) for `POST /containers/{id}/update`, where a swap
/// limit may come without a memory limit.
pub(crate) fn validate_resources(
    host: &HostConfig,
    ncpu: usize,
    update: bool,
) -> Result<(), String> {
    if host.memory != 0 && host.memory < MIN_MEMORY {
        return Err("Minimum memory limit allowed is 6MB".to_owned());
    }
    if host.memory > 0 && host.memory_swap > 0 && host.memory_swap < host.memory {
        return Err(
            "Minimum memoryswap limit should be larger than memory limit, see usage".to_owned(),
        );
    }
    if host.memory == 0 && host.memory_swap > 0 && !update {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
                .to_owned(),
        );
    }
    if let Some(swappiness) = host.memory_swappiness
        && swappiness != -1
        && !(0..=100).contains(&swappiness)
    {
        return Err(format!(
            "Invalid value: {swappiness}, valid memory swappiness range is 0-100"
        ));
    }
    if host.memory_reservation != 0 && host.memory_reservation < MIN_MEMORY {
        return Err("Minimum memory reservation allowed is 6MB".to_owned());
    }
    if host.memory > 0 && host.memory_reservation > 0 && host.memory < host.memory_reservation {
        return Err(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
                .to_owned(),
        );
    }
    if host.nano_cpus > 0 && host.cpu_period > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".to_owned());
    }
    if host.nano_cpus > 0 && host.cpu_quota > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".to_owned());
    }
    if host.nano_cpus < 0 || host.nano_cpus > ncpu as i64 * 1_000_000_000 {
        return Err(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        ));
    }
    if host.cpu_period != 0 && !(1000..=1_000_000).contains(&host.cpu_period) {
        return Err(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .to_owned(),
        );
    }
    if host.cpu_quota > 0 && host.cpu_quota < 1000 {
        return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".to_owned());
    }
    if !host.cpuset_cpus.is_empty() && !valid_cpuset(&host.cpuset_cpus) {
        return Err(format!(
            "Invalid value {} for cpuset cpus",
            host.cpuset_cpus
        ));
    }
    if !host.cpuset_mems.is_empty() && !valid_cpuset(&host.cpuset_mems) {
        return Err(format!(
            "Invalid value {} for cpuset mems",
            host.cpuset_mems
        ));
    }
    if host.blkio_weight > 0 && !(10..=1000).contains(&host.blkio_weight) {
        return Err("Range of blkio weight is from 10 to 1000".to_owned());
    }
    if host.memory_swap < -1 {
        return Err(format!(
            "invalid memoryswap limit {}: use -1 for unlimited swap",
            host.memory_swap
        ));
    }
    if host.cpu_shares < 0 {
        return Err(format!(
            "invalid CPU shares ({}): shares can not be negative",
            host.cpu_shares
        ));
    }
    Ok(())
}

/// Moby's adjustments to what this host's cgroups can enforce: a limit it
/// cannot apply is discarded with Docker's warning, and cpuset lists must
/// name CPUs and memory nodes that exist.
pub(crate) fn adapt_resources_to_host(
    host: &mut HostConfig,
    facts: &HostFacts,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let features = facts.cgroup;
    if host.memory > 0 && host.memory_swap != -1 && !features.swap_limit {
        warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".to_owned());
        host.memory_swap = -1;
    }
    if host.blkio_weight > 0 && !features.blkio_weight {
        warnings.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
                .to_owned(),
        );
        host.blkio_weight = 0;
    }
    for (requested, available, what, nodes) in [
        (&host.cpuset_cpus, &facts.cpuset_cpus, "cpus", "CPUs"),
        (
            &host.cpuset_mems,
            &facts.cpuset_mems,
            "mems",
            "memory nodes",
        ),
    ] {
        if requested.is_empty() {
            continue;
        }
        let wanted = parse_cpuset(requested)
            .ok_or_else(|| format!("Invalid value {requested} for cpuset {what}"))?;
        if let Some(have) = parse_cpuset(available)
            && !wanted.is_subset(&have)
        {
            return Err(format!(
                "Requested {nodes} are not available - requested {requested}, available: {available}"
            ));
        }
    }
    Ok(warnings)
}

/// Moby's `container.ValidateRestartPolicy`.
pub(crate) fn validate_restart_policy(policy: &RestartPolicy) -> Result<(), String> {
    match policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if policy.maximum_retry_count != 0 {
                return Err("invalid restart policy: maximum retry count can only be used with 'on-failure'".to_owned());
            }
        }
        "on-failure" => {
            if policy.maximum_retry_count < 0 {
                return Err(
                    "invalid restart policy: maximum retry count cannot be negative".to_owned(),
                );
            }
        }
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ));
        }
    }
    Ok(())
}
