//! The seccomp section of the spec: Docker's default profile, or one the
//! client sent (`--security-opt seccomp=<file>` sends the file's content).

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Value, json};

use super::SpecError;

/// moby's default profile in OCI form, as dockerd hands it to the runtime
/// for the default capabilities on amd64 (Apache-2.0, from moby).
const DEFAULT_SECCOMP_PROFILE: &str = include_str!("seccomp-default.json");

/// Syscalls moby's default profile allows only with a capability (its
/// `includes.caps` rules), for amd64.
const CAPABILITY_SYSCALLS: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The seccomp section for a container with capabilities `caps`: Docker's
/// default, none for `unconfined`, or the given profile (Docker's format or
/// OCI's; see [`convert_seccomp_profile`]).
pub(crate) fn seccomp(
    profile: Option<&str>,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>, SpecError> {
    match profile {
        Some("unconfined") => Ok(None),
        None | Some("builtin") | Some("") => default_profile(caps).map(Some),
        Some(json) => convert_seccomp_profile(json, caps).map(Some),
    }
}

/// Docker's default profile opened up for the capabilities beyond the
/// default ones, as moby's conditional rules do: the syscalls of each
/// capability are allowed, and with `CAP_SYS_ADMIN` the argument-filtered
/// `clone` and the `ENOSYS` for `clone3` give way to plain allows.
fn default_profile(caps: &[String]) -> Result<LinuxSeccomp, SpecError> {
    let mut profile: Value =
        serde_json::from_str(DEFAULT_SECCOMP_PROFILE).map_err(SpecError::SeccompProfile)?;
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let mut extra: Vec<&str> = Vec::new();
    for (cap, syscalls) in CAPABILITY_SYSCALLS {
        if has(cap) {
            extra.extend(syscalls.iter().copied());
        }
    }
    if let Some(Value::Array(rules)) = profile.get_mut("syscalls") {
        if has("CAP_SYS_ADMIN") {
            rules.retain(|rule| {
                let names = rule.get("names").and_then(Value::as_array);
                !matches!(names.map(Vec::as_slice), Some([n]) if n == "clone" || n == "clone3")
            });
        }
        // Leave out what an unconditional allow already covers.
        let allowed: Vec<String> = rules
            .iter()
            .filter(|r| {
                r.get("action") == Some(&json!("SCMP_ACT_ALLOW")) && r.get("args").is_none()
            })
            .flat_map(|r| r["names"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        extra.retain(|name| !allowed.iter().any(|a| a == name));
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            rules.push(json!({"names": extra, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    serde_json::from_value(profile).map_err(SpecError::SeccompProfile)
}

/// Turns a Docker seccomp profile (what `--security-opt seccomp=file.json`
/// sends) into OCI form for amd64, as moby's `seccomp.setupSeccomp`: the
/// `archMap` entry of x86_64 gives the architectures, `name` joins `names`,
/// and rules whose `includes`/`excludes` ask for capabilities or arches are
/// kept when the container's capabilities and amd64 satisfy them. An OCI-form
/// profile passes through unchanged.
pub(crate) fn convert_seccomp_profile(
    json: &str,
    caps: &[String],
) -> Result<LinuxSeccomp, SpecError> {
    let mut profile: Value = serde_json::from_str(json).map_err(SpecError::SeccompProfile)?;
    let Some(object) = profile.as_object_mut() else {
        return serde_json::from_value(profile).map_err(SpecError::SeccompProfile);
    };
    if let Some(arch_map) = object.remove("archMap") {
        let native = arch_map.as_array().into_iter().flatten().find(|entry| {
            entry.get("architecture").and_then(Value::as_str) == Some("SCMP_ARCH_X86_64")
        });
        if let Some(native) = native {
            let mut arches = vec![json!("SCMP_ARCH_X86_64")];
            arches.extend(
                native
                    .get("subArchitectures")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            object.insert("architectures".to_owned(), Value::Array(arches));
        }
    }
    let applies = |filter: Option<&Value>, include: bool| -> bool {
        let Some(filter) = filter else { return true };
        let listed = |key: &str, have: &dyn Fn(&str) -> bool| -> Option<bool> {
            let items = filter.get(key)?.as_array()?;
            if items.is_empty() {
                return None;
            }
            Some(if include {
                items.iter().all(|i| i.as_str().is_some_and(have))
            } else {
                items.iter().any(|i| i.as_str().is_some_and(have))
            })
        };
        let cap = listed("caps", &|c| caps.iter().any(|have| have == c));
        let arch = listed("arches", &|a| matches!(a, "amd64" | "x86_64"));
        if include {
            cap.unwrap_or(true) && arch.unwrap_or(true)
        } else {
            !(cap.unwrap_or(false) || arch.unwrap_or(false))
        }
    };
    if let Some(Value::Array(rules)) = object.get_mut("syscalls") {
        rules.retain(|rule| {
            applies(rule.get("includes"), true) && applies(rule.get("excludes"), false)
        });
        for rule in rules.iter_mut() {
            let Some(rule) = rule.as_object_mut() else {
                continue;
            };
            rule.remove("includes");
            rule.remove("excludes");
            rule.remove("comment");
            if let Some(name) = rule.remove("name") {
                let names = rule.entry("names").or_insert_with(|| json!([]));
                if let Some(names) = names.as_array_mut() {
                    names.push(name);
                }
            }
        }
    }
    serde_json::from_value(profile).map_err(SpecError::SeccompProfile)
}
