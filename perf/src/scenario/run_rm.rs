//! `run-rm`: `run --rm busybox true` end to end, client to exit, through
//! every engine that runs containers on this host:
//!
//! - `berth`: Berth's CLI against a private berthd;
//! - `docker-berthd`: the real `docker` CLI against the same berthd;
//! - `docker`: the `docker` CLI against a private dockerd;
//! - `podman`: `podman run --rm` with a private store;
//! - `crun`: bare `crun run` of the shared busybox bundle, the floor.
//!
//! Metrics `none` (`--network none`) and `bridge` (the engine's default
//! network), each where the engine has it. dockerd and podman run inside a
//! private network namespace, so their bridge, veths and iptables rules
//! live and die there and the host's network is never touched. Engines
//! interleave within each round.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::fleet::{Client, Fleet, IMAGE, Podman, both, measure};
use super::{Context, Runtime, Sample, Scenario, rounds};
use crate::engine::BERTH;
use crate::report::ScenarioReport;

const NONE: &str = "none";
const BRIDGE: &str = "bridge";

#[derive(Debug)]
pub(crate) struct RunRm;

impl Scenario for RunRm {
    fn name(&self) -> &'static str {
        "run-rm"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "`run --rm busybox true`, spawn of the client to its exit: `berth` = Berth's CLI \
             and `docker-berthd` = the docker CLI, both against one private berthd; `docker` = \
             the docker CLI against a private dockerd; `podman` = podman with a private store \
             (crun, overlay, cgroupfs); `crun` = bare `crun run` of the busybox bundle (the \
             floor). Metrics `none` (`--network none`) and `bridge` (default network; dockerd \
             and podman run in a private network namespace). Images imported from the same \
             busybox rootfs tarball. {} runs per engine after {} warm-up, interleaved. Peak \
             RSS: the timed client process.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let fleet = Fleet::start(ctx, &ctx.work.join(self.name()))?;
        let log = ctx.work.join(self.name()).join("client.log");
        let mut notes = Vec::new();
        let crun = ctx
            .engines
            .iter()
            .find_map(|e| match e {
                Ok(e) if e.name == "crun" => Some(Ok(e)),
                Err(m) if m.name == "crun" => Some(Err(m.reason.clone())),
                _ => None,
            })
            .unwrap_or_else(|| Err("crun not looked for".into()))
            .and_then(|e| {
                Runtime::new(e, &ctx.work.join("run-rm-crun"), ctx.timeout)
                    .map_err(|e| format!("{e:#}"))
            });

        let berthd_socket = fleet.berthd_socket();
        let runners: Vec<(&'static str, Result<Runner<'_>, String>)> = vec![
            (
                BERTH,
                both(&fleet.berth_cli, &berthd_socket).map(|(bin, socket)| Runner::Client {
                    client: Client::Berth(bin),
                    socket,
                    no_bridge: fleet.berthd_no_bridge(),
                }),
            ),
            (
                "docker-berthd",
                both(&fleet.docker_cli, &berthd_socket).map(|(_, socket)| Runner::Client {
                    client: Client::Docker,
                    socket,
                    no_bridge: fleet.berthd_no_bridge(),
                }),
            ),
            (
                "docker",
                fleet
                    .dockerd
                    .as_ref()
                    .map_err(Clone::clone)
                    .map(|d| Runner::Client {
                        client: Client::Docker,
                        socket: d.daemon.socket().to_path_buf(),
                        no_bridge: d.no_bridge.clone(),
                    }),
            ),
            (
                "podman",
                fleet
                    .podman
                    .as_ref()
                    .map_err(Clone::clone)
                    .map(Runner::Podman),
            ),
            (
                "crun",
                crun.map(|runtime| Runner::Crun {
                    runtime,
                    bundle: ctx.bundle.to_string_lossy().into_owned(),
                }),
            ),
        ];
        for (name, runner) in &runners {
            if let Ok(r) = runner
                && let Some(why) = r.no_bridge()
            {
                notes.push(format!("{name}: {BRIDGE} not measured: {why}"));
            }
        }
        notes.extend(fleet.setup_notes());

        let engines = rounds(ctx, self.name(), runners, |runner, name| {
            let samples = runner.trial(ctx, name, &log);
            crate::sys::reap_exited();
            samples
        });

        notes.extend(fleet.shutdown(ctx));
        let _ = std::fs::remove_dir_all(ctx.work.join("run-rm-crun"));

        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// What one engine's trials run.
#[derive(Debug)]
enum Runner<'a> {
    /// A Docker API client against a daemon.
    Client {
        client: Client,
        socket: PathBuf,
        /// Why the daemon has no measurable bridge network, if it has none.
        no_bridge: Option<String>,
    },
    Podman(&'a Podman),
    /// A bare OCI runtime.
    Crun {
        runtime: Runtime<'a>,
        bundle: String,
    },
}

impl Runner<'_> {
    fn no_bridge(&self) -> Option<&str> {
        match self {
            Runner::Client { no_bridge, .. } => no_bridge.as_deref(),
            Runner::Podman(p) => p.no_bridge.as_deref(),
            Runner::Crun { .. } => Some(
                "a bare OCI runtime has no networks: the bundle gets an empty network \
                 namespace, i.e. `none`",
            ),
        }
    }

    /// One `run --rm` per metric the engine has.
    fn trial(&self, ctx: &Context, name: &str, log: &Path) -> anyhow::Result<Vec<Sample>> {
        let mut samples = Vec::new();
        for metric in [NONE, BRIDGE] {
            if metric == BRIDGE && self.no_bridge().is_some() {
                continue;
            }
            let m = match self {
                Runner::Crun { runtime, bundle } => {
                    let id = ctx.fresh_id(name);
                    runtime
                        .measure(&["run", "--bundle", bundle, &id])
                        .inspect_err(|_| {
                            let _ = runtime.output(&["delete", "--force", &id]);
                        })?
                }
                Runner::Client { client, socket, .. } => {
                    let mut cmd = client.command(socket);
                    cmd.args(["run", "--rm"]);
                    if metric == NONE {
                        cmd.args(["--network", "none"]);
                    }
                    cmd.args([IMAGE, "true"]);
                    measure(&mut cmd, log, ctx.timeout)
                        .with_context(|| format!("{name} {metric}"))?
                }
                Runner::Podman(p) => {
                    let mut cmd = p.run(metric == NONE)?;
                    measure(&mut cmd, log, ctx.timeout)
                        .with_context(|| format!("{name} {metric}"))?
                }
            };
            samples.push(Sample::of(metric, &m));
        }
        Ok(samples)
    }
}
