//! `daemon-idle`: what a freshly started, idle daemon costs, for Berth's
//! `berthd` and Docker's `dockerd` (with the `containerd` it starts). Each
//! trial starts a fresh daemon with private state under the work dir and
//! stops it afterwards; engines interleave. Metrics:
//!
//! - `start` (ms): from spawn to the first `GET /_ping` on its unix socket
//!   that answers 200 (polled every 2 ms);
//! - `pss` (KiB): [`SETTLE`] after that answer, the sum of `Pss` from
//!   `/proc/<pid>/smaps_rollup` over the daemon and all its descendants.
//!   PSS splits shared pages among the processes mapping them, so the sum
//!   does not count shared libraries twice (unlike RSS).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Context, Sample, Scenario, rounds};
use crate::engine::{self, BERTH};
use crate::peers::{self, Daemon};
use crate::report::ScenarioReport;

/// How long the daemon idles after its first answer before its memory is
/// read: lets start-up work that runs after serving begins settle.
const SETTLE: Duration = Duration::from_secs(1);
/// Longest a daemon may take to answer its first ping.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct DaemonIdle;

/// How to start one engine's daemon.
#[derive(Debug)]
enum Kind {
    Berthd(PathBuf),
    Dockerd,
}

impl Scenario for DaemonIdle {
    fn name(&self) -> &'static str {
        "daemon-idle"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "a fresh daemon per trial (private data root, exec root and socket), `berth` = \
             berthd, `docker` = dockerd + the containerd it starts. `start`: spawn to the first \
             200 answer of `GET /_ping` on its unix socket; `pss`: {} s later, the sum of `Pss` \
             (/proc/<pid>/smaps_rollup) over the daemon's process tree. {} runs per engine \
             after {} warm-up, interleaved.",
            SETTLE.as_secs(),
            ctx.runs,
            ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let berthd = engine::sibling("berthd")
            .or_else(|| engine::which("berthd"))
            .map(Kind::Berthd)
            .ok_or_else(|| {
                "berthd not found next to berth-perf nor on PATH \
                 (cargo build --release -p berth-daemon)"
                    .to_string()
            });
        let dockerd = engine::which("dockerd")
            .map(|_| Kind::Dockerd)
            .ok_or_else(|| "dockerd (docker.io) not installed".to_string());
        let base = ctx.work.join(self.name());
        let mut seq = 0usize;
        // The processes counted in the first measured trial, per engine.
        let mut counted: Vec<(&'static str, String)> = Vec::new();
        let engines = rounds(
            ctx,
            self.name(),
            vec![(BERTH, berthd), ("docker", dockerd)],
            |kind, name| {
                seq += 1;
                let dir = base.join(format!("{name}-{seq}"));
                let (samples, procs) = trial(name, kind, &dir)?;
                if !counted.iter().any(|(e, _)| *e == name) {
                    counted.push((name, procs));
                }
                Ok(samples)
            },
        );
        let notes = counted
            .into_iter()
            .map(|(engine, procs)| format!("{engine}: pss sums {procs}"))
            .collect();
        let _ = fs::remove_dir_all(&base);
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// One start, settle, measure, stop. Returns the samples and a list of the
/// processes whose PSS was summed (`name pid: KiB`).
fn trial(name: &'static str, kind: &Kind, dir: &Path) -> anyhow::Result<(Vec<Sample>, String)> {
    let (cmd, socket, bin) = match kind {
        Kind::Berthd(bin) => {
            let (cmd, socket) = peers::berthd_command(bin, dir)?;
            (cmd, socket, "berthd")
        }
        Kind::Dockerd => {
            let (cmd, socket) = peers::dockerd_command(dir)?;
            (cmd, socket, "dockerd")
        }
    };
    let mut daemon = Daemon::spawn(bin, cmd, dir, socket)?;
    let start = daemon.wait_until_up(START_TIMEOUT)?;
    thread::sleep(SETTLE);
    daemon.ensure_running()?;
    let mut total = 0;
    let mut parts = Vec::new();
    for pid in process_tree(daemon.pid()) {
        // A process may exit between the listing and the read.
        let Ok(kib) = pss_kib(pid) else { continue };
        total += kib;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        parts.push(format!("{} {pid}: {kib} KiB", comm.trim()));
    }
    if parts.is_empty() {
        bail!(
            "{name}: could not read the PSS of any process of pid {}",
            daemon.pid()
        );
    }
    drop(daemon);
    // Children of the daemon orphaned by its stop were reparented to us
    // (subreaper): reap them.
    crate::sys::reap_exited();
    Ok((
        vec![
            Sample::memory("pss", total),
            Sample::time("start", start.as_secs_f64() * 1e3),
        ],
        parts.join(" + "),
    ))
}

/// `root` and all its descendants, root first, from the parent pids in
/// `/proc/<pid>/stat`.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parent_pid(&s))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, ppid)| ppid == p)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    tree
}

/// The parent pid from the text of `/proc/<pid>/stat`: the field after the
/// state, which follows the last `)` (the command name may hold spaces and
/// parentheses).
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `Pss` of a process in KiB, from `/proc/<pid>/smaps_rollup`.
pub(super) fn pss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_pss(&text).with_context(|| format!("no Pss line in {path}"))
}

fn parse_pss(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup.lines().find_map(|l| {
        let v = l.strip_prefix("Pss:")?.trim().strip_suffix("kB")?;
        v.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_pid("42 (dockerd) S 1 42 42 0 -1"), Some(1));
        assert_eq!(parent_pid("7 (a) b) (c) R 3 7 7 0"), Some(3));
        assert_eq!(parent_pid("garbage"), None);
    }

    #[test]
    fn pss_is_read_from_smaps_rollup() {
        let text = "55d0c0a00000-7ffd1 ---p 00000000 00:00 0 [rollup]\n\
                    Rss:               12880 kB\n\
                    Pss:                9133 kB\n\
                    Pss_Anon:           4512 kB\n";
        assert_eq!(parse_pss(text), Some(9133));
        assert_eq!(parse_pss("Rss: 1 kB\n"), None);
        // Our own process: a real file, a positive value.
        assert!(pss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn the_tree_of_a_process_holds_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let tree = process_tree(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(tree[0], std::process::id());
        assert!(tree.contains(&child.id()), "{tree:?}");
    }
}
