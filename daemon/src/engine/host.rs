//! Facts about the host that `GET /info` and `GET /version` report, read once
//! at start from /proc, /sys and /etc.

use std::path::Path;

/// What the kernel and distribution look like.
#[derive(Debug, Clone)]
pub(crate) struct HostFacts {
    pub(crate) kernel_version: String,
    pub(crate) operating_system: String,
    pub(crate) os_version: String,
    pub(crate) ncpu: usize,
    pub(crate) mem_total: u64,
    /// `"1"` or `"2"` (a hybrid host counts as 1, as for moby).
    pub(crate) cgroup_version: &'static str,
    /// Docker's name for the filesystem under the data root (`extfs`, `xfs`...).
    pub(crate) backing_filesystem: String,
    pub(crate) cgroup: CgroupFeatures,
    /// The CPUs and memory nodes containers may be pinned to (`0-3`).
    pub(crate) cpuset_cpus: String,
    pub(crate) cpuset_mems: String,
    pub(crate) ipv4_forwarding: bool,
}

/// Which resource limits the cgroup setup can enforce.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CgroupFeatures {
    pub(crate) memory_limit: bool,
    pub(crate) swap_limit: bool,
    pub(crate) cpu_cfs: bool,
    pub(crate) cpu_shares: bool,
    pub(crate) cpuset: bool,
    pub(crate) pids_limit: bool,
    pub(crate) oom_kill_disable: bool,
    pub(crate) blkio_weight: bool,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

impl HostFacts {
    pub(crate) fn gather(data_root: &Path) -> HostFacts {
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let cgroup_v2 = fs_magic(Path::new("/sys/fs/cgroup")) == Some(CGROUP2_SUPER_MAGIC);
        HostFacts {
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            operating_system: os_release_field(&os_release, "PRETTY_NAME")
                .unwrap_or_else(|| "Linux".to_owned()),
            os_version: os_release_field(&os_release, "VERSION_ID").unwrap_or_default(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            cgroup_version: if cgroup_v2 { "2" } else { "1" },
            backing_filesystem: backing_filesystem(data_root),
            cgroup: if cgroup_v2 {
                cgroup_v2_features()
            } else {
                cgroup_v1_features()
            },
            cpuset_cpus: read_trimmed(if cgroup_v2 {
                "/sys/fs/cgroup/cpuset.cpus.effective"
            } else {
                "/sys/fs/cgroup/cpuset/cpuset.cpus"
            }),
            cpuset_mems: read_trimmed(if cgroup_v2 {
                "/sys/fs/cgroup/cpuset.mems.effective"
            } else {
                "/sys/fs/cgroup/cpuset/cpuset.mems"
            }),
            ipv4_forwarding: read_trimmed("/proc/sys/net/ipv4/ip_forward") == "1",
        }
    }

    /// The host name now (it may change while the daemon runs).
    pub(crate) fn hostname() -> String {
        read_trimmed("/proc/sys/kernel/hostname")
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn fs_magic(path: &Path) -> Option<i64> {
    // `f_type`'s integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).ok().map(|s| s.f_type as i64)
}

fn backing_filesystem(path: &Path) -> String {
    // Docker's names for the magic numbers (moby:daemon/graphdriver/driver_linux.go).
    match fs_magic(path) {
        Some(0xEF53) => "extfs".to_owned(),
        Some(0x5846_5342) => "xfs".to_owned(),
        Some(0x9123_683E) => "btrfs".to_owned(),
        Some(0x0102_1994) => "tmpfs".to_owned(),
        Some(0x794C_7630) => "overlayfs".to_owned(),
        Some(0x2FC1_2FC1) => "zfs".to_owned(),
        Some(0xF2F5_2010) => "f2fs".to_owned(),
        Some(other) => format!("<unknown> ({other:#x})"),
        None => "<unknown>".to_owned(),
    }
}

fn cgroup_v1_features() -> CgroupFeatures {
    let exists = |p: &str| Path::new("/sys/fs/cgroup").join(p).exists();
    CgroupFeatures {
        memory_limit: exists("memory/memory.limit_in_bytes"),
        swap_limit: exists("memory/memory.memsw.limit_in_bytes"),
        cpu_cfs: exists("cpu/cpu.cfs_quota_us"),
        cpu_shares: exists("cpu/cpu.shares"),
        cpuset: exists("cpuset/cpuset.cpus"),
        pids_limit: exists("pids"),
        oom_kill_disable: exists("memory/memory.oom_control"),
        // The weight file exists only with the CFQ scheduler (and BFQ's own
        // `blkio.bfq.weight` is not what runtimes write).
        blkio_weight: exists("blkio/blkio.weight"),
    }
}

fn cgroup_v2_features() -> CgroupFeatures {
    let controllers = read_trimmed("/sys/fs/cgroup/cgroup.controllers");
    let has = |name: &str| controllers.split_whitespace().any(|c| c == name);
    CgroupFeatures {
        memory_limit: has("memory"),
        swap_limit: has("memory"),
        cpu_cfs: has("cpu"),
        cpu_shares: has("cpu"),
        cpuset: has("cpuset"),
        pids_limit: has("pids"),
        oom_kill_disable: false,
        blkio_weight: has("io"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_release_field(text, "PRETTY_NAME").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_release_field(text, "VERSION_ID").as_deref(), Some("12"));
        assert_eq!(os_release_field(text, "VERSION"), None);
    }

    #[test]
    fn gathered_facts_describe_this_host() {
        let facts = HostFacts::gather(Path::new("/"));
        assert!(!facts.kernel_version.is_empty());
        assert!(facts.mem_total > 0);
        assert!(facts.ncpu >= 1);
        assert!(
            !facts.backing_filesystem.starts_with("<unknown>"),
            "{}",
            facts.backing_filesystem
        );
    }
}
