//! `density`: what keeping idle containers costs. Through each engine of
//! the [`Fleet`] (Berth's CLI against berthd, the docker CLI against
//! dockerd, podman), `run -d --network none busybox sleep 1d` until
//! [`LEVELS`] containers run (1, then 50, then 200; started
//! [`BATCH`] at a time), and at each level, [`SETTLE`] after the last
//! start, the PSS (`/proc/<pid>/smaps_rollup`) of:
//!
//! - `shim@N`: the per-container supervisors (berth-shim,
//!   containerd-shim-runc-v2, conmon), summed and divided by N: the memory
//!   each container's supervision costs;
//! - `daemon@N`: the daemons (berthd; dockerd + containerd), summed.
//!
//! Both are growth curves over the container count (`growth` of the
//! metrics, see [`growth`]), plotted one line per engine.
//!
//! An engine's processes are told apart by the private state directory on
//! their command line. The containers' own processes are not counted. A
//! trial fails unless exactly one supervisor per container is found. All
//! containers are removed after each trial.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::daemon_idle::pss_kib;
use super::fleet::{Client, Fleet, IMAGE, Podman, run_ok};
use super::{Context, Sample, Scenario, place_on_curves, rounds};
use crate::engine::BERTH;
use crate::process;
use crate::report::{Growth, ScenarioReport, XUnit};

/// Container counts measured, with their metrics' names.
const LEVELS: [(usize, &str, &str); 3] = [
    (1, "shim@1", "daemon@1"),
    (50, "shim@50", "daemon@50"),
    (200, "shim@200", "daemon@200"),
];
/// The growth curves the metrics lie on.
const SHIM_SERIES: &str = "shim PSS per container";
const DAEMON_SERIES: &str = "daemon PSS";
/// Containers started at once.
const BATCH: usize = 10;
/// Idle time between the last start and the reading.
const SETTLE: Duration = Duration::from_secs(2);

/// Process names (`/proc/<pid>/comm`, at most 15 bytes) of supervisors.
const SUPERVISORS: [&str; 3] = ["berth-shim", "containerd-shim", "conmon"];
/// Process names of daemons.
const DAEMONS: [&str; 3] = ["berthd", "dockerd", "containerd"];

#[derive(Debug)]
pub(crate) struct Density;

/// How one engine starts and removes its containers.
enum Engine<'a> {
    Client {
        client: Client,
        socket: &'a Path,
        /// The daemon, as [`Fleet::state_dir`] names it.
        daemon: &'static str,
    },
    Podman(&'a Podman),
}

impl Engine<'_> {
    /// What [`Fleet::state_dir`] calls this engine.
    fn state_name(&self) -> &'static str {
        match self {
            Engine::Client { daemon, .. } => daemon,
            Engine::Podman(_) => "podman",
        }
    }

    fn start_idle(&self) -> anyhow::Result<Command> {
        match self {
            Engine::Client { client, socket, .. } => {
                let mut c = client.command(socket);
                c.args(["run", "-d", "--network", "none", IMAGE, "sleep", "1d"]);
                Ok(c)
            }
            Engine::Podman(p) => p.run_with(&["-d"], &["--network", "none"], &["sleep", "1d"]),
        }
    }

    fn remove_all(&self, timeout: Duration) -> anyhow::Result<()> {
        match self {
            Engine::Client { client, socket, .. } => {
                let mut ps = client.command(socket);
                ps.args(["ps", "--all", "--quiet"]);
                let ids = run_ok(&mut ps, "ps", timeout)?;
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut rm = client.command(socket);
                    rm.args(["rm", "--force"]).args(&ids);
                    run_ok(&mut rm, "rm --force", timeout * 4)?;
                }
            }
            Engine::Podman(p) => {
                let mut rm = p.command()?;
                rm.args(["rm", "--all", "--force", "--time", "0"]);
                run_ok(&mut rm, "podman rm", timeout * 4)?;
            }
        }
        Ok(())
    }
}

impl Scenario for Density {
    fn name(&self) -> &'static str {
        "density"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "idle containers (`run -d --network none busybox sleep 1d`, {BATCH} started at \
             once) at 1, 50 and 200 per engine: `berth` = Berth's CLI against a private \
             berthd, `docker` = the docker CLI against a private dockerd, `podman` = podman \
             with a private store. {}s after the last start: `shim@N` = PSS of the \
             per-container supervisors (berth-shim / containerd-shim-runc-v2 / conmon) summed \
             and divided by N; `daemon@N` = PSS of the daemons (berthd / dockerd + \
             containerd). {} runs per engine after {} warm-up, interleaved.",
            SETTLE.as_secs(),
            ctx.runs,
            ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let dir = ctx.work.join(self.name());
        let fleet = Fleet::start(ctx, &dir)?;
        let mut notes = fleet.setup_notes();
        let berthd = fleet.berthd_socket();
        let dockerd = fleet.dockerd_socket();
        let engines: Vec<(&'static str, Result<Engine<'_>, String>)> = vec![
            (
                BERTH,
                match (&fleet.berth_cli, &berthd) {
                    (Ok(bin), Ok(socket)) => Ok(Engine::Client {
                        client: Client::Berth(bin.clone()),
                        socket,
                        daemon: "berthd",
                    }),
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                },
            ),
            (
                "docker",
                match (&fleet.docker_cli, &dockerd) {
                    (Ok(_), Ok(socket)) => Ok(Engine::Client {
                        client: Client::Docker,
                        socket,
                        daemon: "dockerd",
                    }),
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                },
            ),
            (
                "podman",
                fleet
                    .podman
                    .as_ref()
                    .map(Engine::Podman)
                    .map_err(Clone::clone),
            ),
        ];
        let logs = dir.join("logs");
        fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let mut engines = rounds(ctx, self.name(), engines, |engine, name| {
            let state = fleet.state_dir(engine.state_name());
            let outcome = trial(engine, &state, name, &logs, ctx);
            let removed = engine.remove_all(ctx.timeout);
            crate::sys::reap_exited();
            let samples = outcome?;
            removed.with_context(|| format!("{name}: removing the containers"))?;
            Ok(samples)
        });
        notes.extend(fleet.shutdown(ctx));
        place_on_curves(&mut engines, growth);
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// Where a metric of this scenario lies: `shim@N` on the per-container
/// supervisor curve, `daemon@N` on the daemons' curve, both at N containers.
pub(super) fn growth(metric: &str) -> Option<Growth> {
    LEVELS.iter().find_map(|&(count, shim, daemon)| {
        let series = match metric {
            m if m == shim => SHIM_SERIES,
            m if m == daemon => DAEMON_SERIES,
            _ => return None,
        };
        Some(Growth {
            series: series.into(),
            x: count as f64,
            x_unit: XUnit::Containers,
        })
    })
}

/// Starts containers up to each level and measures there.
fn trial(
    engine: &Engine<'_>,
    state: &Path,
    name: &str,
    logs: &Path,
    ctx: &Context,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    let mut running = 0;
    for (level, shim_metric, daemon_metric) in LEVELS {
        while running < level {
            let n = BATCH.min(level - running);
            start_batch(engine, n, name, logs, ctx)?;
            running += n;
        }
        thread::sleep(SETTLE);
        let found = engine_processes(state);
        if found.supervisors.len() != level {
            bail!(
                "{name}: {} supervisors found for {level} containers",
                found.supervisors.len()
            );
        }
        let shims: u64 = found
            .supervisors
            .iter()
            .filter_map(|&p| pss_kib(p).ok())
            .sum();
        samples.push(Sample::memory(shim_metric, shims / level as u64));
        if !found.daemons.is_empty() {
            let daemons = found.daemons.iter().filter_map(|&p| pss_kib(p).ok()).sum();
            samples.push(Sample::memory(daemon_metric, daemons));
        }
    }
    Ok(samples)
}

fn start_batch(
    engine: &Engine<'_>,
    n: usize,
    name: &str,
    logs: &Path,
    ctx: &Context,
) -> anyhow::Result<()> {
    let log = |i: usize| logs.join(format!("{name}-{i}.log"));
    let mut cmds = Vec::with_capacity(n);
    for i in 0..n {
        let out = File::create(log(i)).with_context(|| format!("creating {}", log(i).display()))?;
        let mut cmd = engine.start_idle()?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        cmds.push(cmd);
    }
    let all = process::run_together(&mut cmds, ctx.timeout * 4)
        .with_context(|| format!("spawning {name}'s clients"))?;
    if let Some(i) = (0..all.each.len()).find(|&i| !all.each[i].ok()) {
        let text = fs::read_to_string(log(i)).unwrap_or_default();
        bail!(
            "{name}: run -d failed ({}): {}",
            all.each[i].status,
            text.trim()
        );
    }
    Ok(())
}

/// The pids of one engine's supervisors and daemons.
#[derive(Debug, Default)]
struct Found {
    supervisors: Vec<u32>,
    daemons: Vec<u32>,
}

/// Every process whose command line names `state`, sorted by its name.
fn engine_processes(state: &Path) -> Found {
    let needle = state.as_os_str().as_encoded_bytes();
    let mut found = Found::default();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !cmdline.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim();
        if SUPERVISORS.iter().any(|s| comm.starts_with(s)) {
            found.supervisors.push(pid);
        } else if DAEMONS.contains(&comm) {
            found.daemons.push(pid);
        }
    }
    found
}
