//! Writing the common cgroup v1 limits straight into the control files.
//!
//! Why not libcgroups here: building its v1 manager costs about 1 ms on
//! every `create` (it reads `/proc/self/mountinfo` and `/proc/self/cgroup`
//! through a hardened procfs handle once per controller, ~600 system calls),
//! which was an eighth of a whole `berth-runtime run`. The limits every
//! engine sets (devices, memory, pids, cpu, cpuset, blkio weight) are one
//! write each into a directory we already know, so they are written here;
//! a spec with anything else falls back to libcgroups.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::CgroupError;
use super::layout::Hierarchy;

/// True if every resource in `r` is one [`apply`] writes.
pub(super) fn handles(r: &LinuxResources) -> bool {
    let memory_ok = r.memory().as_ref().is_none_or(|m| {
        m.kernel().is_none()
            && m.kernel_tcp().is_none()
            && m.use_hierarchy().is_none()
            && m.check_before_update().is_none()
    });
    let cpu_ok = r.cpu().as_ref().is_none_or(|c| c.idle().is_none());
    let blkio_ok = r.block_io().as_ref().is_none_or(|b| {
        b.leaf_weight().is_none()
            && b.weight_device().as_ref().is_none_or(Vec::is_empty)
            && b.throttle_read_bps_device()
                .as_ref()
                .is_none_or(Vec::is_empty)
            && b.throttle_write_bps_device()
                .as_ref()
                .is_none_or(Vec::is_empty)
            && b.throttle_read_iops_device()
                .as_ref()
                .is_none_or(Vec::is_empty)
            && b.throttle_write_iops_device()
                .as_ref()
                .is_none_or(Vec::is_empty)
    });
    memory_ok
        && cpu_ok
        && blkio_ok
        && r.hugepage_limits().as_ref().is_none_or(Vec::is_empty)
        && r.network().is_none()
        && r.rdma().as_ref().is_none_or(|m| m.is_empty())
        && r.unified().as_ref().is_none_or(|m| m.is_empty())
}

/// Writes `r` into the cgroup `rel` of each hierarchy.
pub(super) fn apply(
    hierarchies: &[Hierarchy],
    rel: &Path,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let dir = |controller: &str| {
        hierarchies
            .iter()
            .find(|h| !h.v2 && h.has(controller))
            .map(|h| h.mount.join(rel))
    };
    let write = |controller: &'static str, file: &str, value: String| -> Result<(), CgroupError> {
        let Some(d) = dir(controller) else {
            return Err(CgroupError::Unsupported {
                controller: controller.to_string(),
                reason: "no cgroup v1 hierarchy has this controller",
            });
        };
        write_file(controller, &d.join(file), &value)
    };

    if let Some(devices) = r.devices().as_ref().filter(|d| !d.is_empty()) {
        let Some(d) = dir("devices") else {
            return Err(CgroupError::Unsupported {
                controller: "devices".to_string(),
                reason: "no cgroup v1 hierarchy has this controller",
            });
        };
        // One rule per write(), each file opened once (Docker's list is
        // about twenty rules).
        let (mut allow, mut deny) = (None, None);
        for rule in devices {
            let (file, name) = if rule.allow() {
                (&mut allow, "devices.allow")
            } else {
                (&mut deny, "devices.deny")
            };
            let path = d.join(name);
            let value = device_rule(rule);
            let written = match file {
                Some(f) => Ok(f),
                None => OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(|f| file.insert(f)),
            }
            .and_then(|f: &mut std::fs::File| f.write_all(value.as_bytes()));
            written.map_err(|source| CgroupError::Write {
                controller: "devices".to_string(),
                path,
                value,
                source,
            })?;
        }
    }
    if let Some(m) = r.memory() {
        // memsw exists only with swap accounting; a limit of "no swap
        // limit" needs no file.
        let memsw = dir("memory").map(|d| d.join("memory.memsw.limit_in_bytes"));
        let has_memsw = memsw.as_ref().is_some_and(|p| p.exists());
        let swap = match m.swap() {
            Some(swap) if has_memsw => Some(swap),
            Some(-1) | None => None,
            Some(_) => {
                return Err(CgroupError::Unsupported {
                    controller: "memory".to_string(),
                    reason: "swap limits need swap accounting (memory.memsw), which this kernel lacks",
                });
            }
        };
        // The kernel keeps memory <= memsw at every write, so raising both
        // (an update) must write memsw first, as runc does; a new cgroup
        // (unlimited) takes the memory limit first.
        let swap_first = match (m.limit(), swap) {
            (Some(_), Some(-1)) => true,
            (Some(_), Some(swap)) => {
                let current = dir("memory")
                    .and_then(|d| std::fs::read_to_string(d.join("memory.limit_in_bytes")).ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                current.is_some_and(|c| i64::try_from(c).is_ok_and(|c| c < swap))
            }
            _ => false,
        };
        let write_swap =
            |swap: i64| write("memory", "memory.memsw.limit_in_bytes", swap.to_string());
        if swap_first && let Some(swap) = swap {
            write_swap(swap)?;
        }
        if let Some(limit) = m.limit() {
            write("memory", "memory.limit_in_bytes", limit.to_string())?;
        }
        if !swap_first && let Some(swap) = swap {
            write_swap(swap)?;
        }
        if let Some(v) = m.reservation() {
            write("memory", "memory.soft_limit_in_bytes", v.to_string())?;
        }
        if let Some(v) = m.swappiness() {
            write("memory", "memory.swappiness", v.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write("memory", "memory.oom_control", "1".to_string())?;
        }
    }
    if let Some(p) = r.pids() {
        let limit = p.limit();
        write(
            "pids",
            "pids.max",
            if limit > 0 {
                limit.to_string()
            } else {
                "max".to_string()
            },
        )?;
    }
    if let Some(c) = r.cpu() {
        // 0 means "not set" (dockerd's specs carry it); the kernel would
        // clamp a written 0 to 2, the least CPU weight there is.
        if let Some(v) = c.shares().filter(|v| *v != 0) {
            write("cpu", "cpu.shares", v.to_string())?;
        }
        // The period first: a quota is checked against the current period.
        if let Some(v) = c.period() {
            write("cpu", "cpu.cfs_period_us", v.to_string())?;
        }
        if let Some(v) = c.quota() {
            write("cpu", "cpu.cfs_quota_us", v.to_string())?;
        }
        if let Some(v) = c.realtime_period() {
            write("cpu", "cpu.rt_period_us", v.to_string())?;
        }
        if let Some(v) = c.realtime_runtime() {
            write("cpu", "cpu.rt_runtime_us", v.to_string())?;
        }
        if let Some(v) = c.cpus().as_ref().filter(|v| !v.is_empty()) {
            write("cpuset", "cpuset.cpus", v.clone())?;
        }
        if let Some(v) = c.mems().as_ref().filter(|v| !v.is_empty()) {
            write("cpuset", "cpuset.mems", v.clone())?;
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        write("blkio", "blkio.weight", w.to_string())?;
    }
    Ok(())
}

/// "c 1:3 rwm", with "*" for a missing number and "a" for all types.
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let kind = rule
        .typ()
        .map_or("a".to_string(), |t| t.as_str().to_string());
    let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    let access = rule.access().clone().unwrap_or_else(|| "rwm".to_string());
    format!(
        "{kind} {}:{} {access}",
        num(rule.major()),
        num(rule.minor())
    )
}

fn write_file(controller: &'static str, path: &PathBuf, value: &str) -> Result<(), CgroupError> {
    let result = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::Write {
        controller: controller.to_string(),
        path: path.clone(),
        value: value.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    #[test]
    fn formats_device_rules() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(device_rule(&deny_all), "a *:* rwm");
        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(device_rule(&null), "c 1:3 rw");
    }

    #[test]
    fn falls_back_for_what_it_does_not_write() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"memory": {"limit": 1}, "pids": {"limit": 2}}"#).unwrap();
        assert!(handles(&r));
        let r: LinuxResources =
            serde_json::from_str(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#)
                .unwrap();
        assert!(!handles(&r));
        let r: LinuxResources = serde_json::from_str(r#"{"memory": {"kernel": 1}}"#).unwrap();
        assert!(!handles(&r));
    }
}
