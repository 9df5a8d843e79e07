//! `run-concurrent`: [`CONTAINERS`] × `run --rm --network none busybox
//! true` started at once through each engine of the [`Fleet`] (Berth's CLI
//! and the docker CLI against berthd, the docker CLI against dockerd,
//! podman), interleaved. Metric `none`: from the first client's spawn until
//! every client has exited. A trial fails if any run fails.

use std::fs::File;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::fleet::{Client, Fleet, IMAGE, both};
use super::runtime_concurrent::CONTAINERS;
use super::{Context, Sample, Scenario, rounds};
use crate::engine::BERTH;
use crate::process;
use crate::report::ScenarioReport;

#[derive(Debug)]
pub(crate) struct RunConcurrent;

/// Builds one client command of an engine.
type MakeClient<'a> = Box<dyn Fn() -> anyhow::Result<Command> + 'a>;

impl Scenario for RunConcurrent {
    fn name(&self) -> &'static str {
        "run-concurrent"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "{CONTAINERS} × `run --rm --network none busybox true` spawned at once (back to \
             back from one thread): `berth` = Berth's CLI and `docker-berthd` = the docker CLI \
             against one private berthd, `docker` = the docker CLI against a private dockerd, \
             `podman` = podman with a private store; `none` = first spawn to last exit; {} \
             runs per engine after {} warm-up, interleaved.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let dir = ctx.work.join(self.name());
        let fleet = Fleet::start(ctx, &dir)?;
        let mut notes = fleet.setup_notes();
        let berthd = fleet.berthd_socket();
        let dockerd = fleet.dockerd_socket();
        // Each engine: how to build one client command.
        let engines: Vec<(&'static str, Result<MakeClient<'_>, String>)> = vec![
            (
                BERTH,
                both(&fleet.berth_cli, &berthd).map(|(bin, socket)| {
                    let client = Client::Berth(bin);
                    Box::new(move || Ok(run_rm_none(client.command(&socket), IMAGE))) as Box<_>
                }),
            ),
            (
                "docker-berthd",
                both(&fleet.docker_cli, &berthd).map(|(_, socket)| {
                    Box::new(move || Ok(run_rm_none(Client::Docker.command(&socket), IMAGE)))
                        as Box<_>
                }),
            ),
            (
                "docker",
                both(&fleet.docker_cli, &dockerd).map(|(_, socket)| {
                    Box::new(move || Ok(run_rm_none(Client::Docker.command(&socket), IMAGE)))
                        as Box<_>
                }),
            ),
            (
                "podman",
                fleet
                    .podman
                    .as_ref()
                    .map_err(Clone::clone)
                    .map(|p| Box::new(move || p.run(true)) as Box<_>),
            ),
        ];
        let engines = rounds(ctx, self.name(), engines, |make, name| {
            let samples = burst(make, name, &dir, ctx);
            crate::sys::reap_exited();
            samples
        });
        notes.extend(fleet.shutdown(ctx));
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// `<client> run --rm --network none <image> true`.
fn run_rm_none(mut client: Command, image: &str) -> Command {
    client.args(["run", "--rm", "--network", "none", image, "true"]);
    client
}

/// One trial: every client at once, then wait for all.
fn burst(
    make: &MakeClient<'_>,
    name: &str,
    dir: &std::path::Path,
    ctx: &Context,
) -> anyhow::Result<Vec<Sample>> {
    // One log per client (never a pipe: a container may hold it).
    let log = |i: usize| dir.join(format!("{name}-{i}.log"));
    let mut cmds = Vec::with_capacity(CONTAINERS);
    for i in 0..CONTAINERS {
        let path = log(i);
        let out = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut cmd = make()?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        cmds.push(cmd);
    }
    let all = process::run_together(&mut cmds, ctx.timeout * 4)
        .with_context(|| format!("spawning {name}'s clients"))?;
    let failed: Vec<usize> = (0..all.each.len()).filter(|&i| !all.each[i].ok()).collect();
    if let Some(&first) = failed.first() {
        let m = &all.each[first];
        let why = if m.timed_out {
            "killed on timeout".to_string()
        } else {
            m.status.to_string()
        };
        let text = std::fs::read_to_string(log(first)).unwrap_or_default();
        bail!(
            "{} of {CONTAINERS} runs failed; run {first} {why}: {}",
            failed.len(),
            text.trim()
        );
    }
    Ok(vec![Sample::time("none", all.wall.as_secs_f64() * 1e3)])
}
