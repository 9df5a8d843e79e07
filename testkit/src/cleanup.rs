//! The fallback cleanup of a test's temp dir: what a daemon could not
//! remove itself (containers, shims, mounts) goes, even when the test
//! failed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Processes other than this one whose command line mentions `needle`
/// (a test's unique temp dir: shims, containerd, daemons).
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(needle)
        {
            pids.push(pid);
        }
    }
    pids
}

/// [`pids_mentioning`] without idle standby shims (`berth-shim --standby`),
/// which a daemon keeps for its next container start: what a container
/// left behind.
pub fn container_pids_mentioning(needle: &str) -> Vec<i32> {
    pids_mentioning(needle)
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !cmdline.split(|b| *b == 0).any(|arg| arg == b"--standby")
        })
        .collect()
}

/// Removes cgroup `name` (e.g. an engine's `--cgroup-parent`) and what is
/// below it from every hierarchy, children first (cgroups go with rmdir
/// only). A busy or missing one is left alone.
pub fn remove_cgroup_tree(name: &str) {
    fn remove(dir: &Path) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&entry.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    let name = name.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    for hierarchy in std::fs::read_dir(root).into_iter().flatten().flatten() {
        remove(&hierarchy.path().join(name));
    }
    remove(&root.join(name));
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(PathBuf::from)
        .collect()
}

/// Deletes every container the runtime still knows under `runtime_root`
/// (kills its processes, removes its cgroup), kills every process naming
/// `dir`, then lazily unmounts everything under `dir`, deepest first.
pub fn remove_leftovers(dir: &Path, runtime_root: Option<&Path>) {
    if let Some(runtime_root) = runtime_root
        && let Ok(entries) = std::fs::read_dir(runtime_root)
    {
        let root = berth_runtime::state::Root::new(runtime_root);
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = berth_runtime::container::delete(&root, &id, true);
        }
    }
    for pid in pids_mentioning(&dir.to_string_lossy()) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let mut mounts = mounts_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for mount in mounts {
        let _ = Command::new("umount").arg("-l").arg(&mount).status();
    }
}

/// Sends SIGTERM to `child` and reaps it; SIGKILL when it is still there
/// after 20 s.
pub fn stop(mut child: Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
