//! What the host gives the benchmarks: machine facts for the report, the
//! cgroup layout, the hybrid-cgroup fix crun 1.8 needs, and a scan for
//! cgroups a run left behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::report::Machine;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const HUGETLB_V1: &str = "/sys/fs/cgroup/hugetlb";

/// Facts about this machine for the report.
pub(crate) fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    // /proc/sys/kernel/{osrelease,version} are what uname(2) reports as
    // release and version.
    let read = |p: &str| {
        fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    let mem_total_kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let mut load_avg = [0.0; 3];
    for (slot, v) in load_avg
        .iter_mut()
        .zip(read("/proc/loadavg").split_whitespace())
    {
        *slot = v.parse().unwrap_or(0.0);
    }
    Machine {
        load_avg,
        cpu_model,
        cores,
        mem_total_kib,
        kernel_release: read("/proc/sys/kernel/osrelease"),
        kernel_version: read("/proc/sys/kernel/version"),
        os,
        cgroups: cgroup_mode().to_string(),
    }
}

struct MountEntry {
    mount_point: String,
    fs_type: String,
    super_options: String,
}

fn mounts() -> Vec<MountEntry> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            // id parent maj:min root mount-point options [optional...] - type source super-options
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?.to_string();
            let mut r = right.split(' ');
            let fs_type = r.next()?.to_string();
            let _source = r.next();
            let super_options = r.next().unwrap_or("").to_string();
            Some(MountEntry {
                mount_point,
                fs_type,
                super_options,
            })
        })
        .collect()
}

/// `v1`, `v2`, `hybrid` or `none`.
pub(crate) fn cgroup_mode() -> &'static str {
    let m = mounts();
    let v1 = m.iter().any(|e| e.fs_type == "cgroup");
    let v2 = m.iter().any(|e| e.fs_type == "cgroup2");
    match (v1, v2) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    }
}

/// Whether crun 1.8 will refuse this host: hybrid cgroups with hugetlb
/// sitting on the v2 hierarchy and no v1 hugetlb hierarchy mounted.
pub(crate) fn needs_hugetlb_fix() -> bool {
    if cgroup_mode() != "hybrid" {
        return false;
    }
    let m = mounts();
    let v1_hugetlb = m
        .iter()
        .any(|e| e.fs_type == "cgroup" && e.super_options.split(',').any(|o| o == "hugetlb"));
    if v1_hugetlb {
        return false;
    }
    m.iter().filter(|e| e.fs_type == "cgroup2").any(|e| {
        fs::read_to_string(Path::new(&e.mount_point).join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"))
    })
}

/// Binds hugetlb to a v1 hierarchy at /sys/fs/cgroup/hugetlb when needed
/// (ENVIRONMENT.md). Idempotent: returns `false` when nothing was needed.
pub(crate) fn apply_hugetlb_fix() -> anyhow::Result<bool> {
    if !needs_hugetlb_fix() {
        return Ok(false);
    }
    fs::create_dir_all(HUGETLB_V1).with_context(|| format!("creating {HUGETLB_V1}"))?;
    let status = Command::new("mount")
        .args(["-t", "cgroup", "-o", "hugetlb", "cgroup", HUGETLB_V1])
        .status()
        .context("running mount")?;
    if !status.success() {
        bail!("mount -t cgroup -o hugetlb cgroup {HUGETLB_V1} failed: {status}");
    }
    Ok(true)
}

/// Cgroup directories under /sys/fs/cgroup (up to four levels deep) whose
/// name contains `needle`: what a run leaked.
pub(crate) fn cgroups_named(needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    scan(Path::new(CGROUP_ROOT), needle, 0, &mut found);
    found
}

/// `<hierarchy>/<rel>` in every cgroup hierarchy where it exists (each v1
/// controller's mount, the v2 mount, or the root of a v2-only host).
pub(crate) fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let mut hierarchies = vec![root.to_path_buf()];
    if let Ok(entries) = fs::read_dir(root) {
        hierarchies.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    hierarchies
        .into_iter()
        .map(|h| h.join(rel.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

/// The child cgroups (directories) of every dir in `dirs`.
pub(crate) fn child_cgroups(dirs: &[PathBuf]) -> BTreeSet<PathBuf> {
    dirs.iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes the cgroup `dir` and every cgroup below it, deepest first (a
/// cgroup can only be removed once it has no children and no processes).
pub(crate) fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path())?;
            }
        }
    }
    fs::remove_dir(dir)
}

fn scan(dir: &Path, needle: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(needle) {
            found.push(path);
        } else {
            scan(&path, needle, depth + 1, found);
        }
    }
}

/// How long a window must show the machine quiet, and how busy it may be
/// (CPU time of all tasks, all CPUs) to count as quiet.
const QUIET_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);
const QUIET_BUSY: std::time::Duration = std::time::Duration::from_micros(1000);
/// A machine that never gets quiet is measured anyway after this.
const QUIET_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// CPU time used by every task so far: the root cgroup's (v1 `cpuacct`,
/// or v2 `cpu.stat`), `None` where neither is readable.
fn cpu_used() -> Option<std::time::Duration> {
    if let Ok(ns) = fs::read_to_string(Path::new(CGROUP_ROOT).join("cpuacct/cpuacct.usage")) {
        return ns.trim().parse().ok().map(std::time::Duration::from_nanos);
    }
    let stat = fs::read_to_string(Path::new(CGROUP_ROOT).join("cpu.stat")).ok()?;
    let usec = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::Duration::from_micros(usec))
}

/// Waits until the machine is quiet: at most [`QUIET_BUSY`] of CPU time
/// used in a [`QUIET_WINDOW`], or [`QUIET_MAX_WAIT`] passed. Each timed
/// run starts so, whichever engine ran before it: the background work an
/// engine leaves after its client exits (a daemon's cleanup, podman's
/// cleanup process) is not charged to the next engine's run. Returns
/// whether it got quiet.
pub(crate) fn wait_until_quiet() -> bool {
    let deadline = std::time::Instant::now() + QUIET_MAX_WAIT;
    let Some(mut before) = cpu_used() else {
        return false;
    };
    while std::time::Instant::now() < deadline {
        std::thread::sleep(QUIET_WINDOW);
        let Some(now) = cpu_used() else {
            return false;
        };
        if now.saturating_sub(before) <= QUIET_BUSY {
            return true;
        }
        before = now;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The machine-wide CPU time counts this thread's spinning.
    #[test]
    fn cpu_used_counts_a_busy_thread() {
        let Some(before) = cpu_used() else {
            panic!("neither cpuacct.usage nor cpu.stat is readable under {CGROUP_ROOT}");
        };
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = cpu_used().unwrap().saturating_sub(before);
        assert!(
            used >= std::time::Duration::from_millis(25),
            "30 ms of spinning counted as {used:?}"
        );
    }
}
