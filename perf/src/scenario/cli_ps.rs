//! `cli-ps`: `ps` against an idle daemon with no containers, client spawn to
//! exit: Berth's CLI and the `docker` CLI against one private berthd, and
//! the `docker` CLI against a private dockerd. What a trivial API round
//! trip costs, client start-up included. Engines interleave.

use std::fs;
use std::path::PathBuf;

use anyhow::Context as _;

use super::fleet::{Client, measure, start_berthd};
use super::{Context, Sample, Scenario, rounds};
use crate::engine::{self, BERTH};
use crate::peers::Dockerd;
use crate::report::ScenarioReport;

#[derive(Debug)]
pub(crate) struct CliPs;

impl Scenario for CliPs {
    fn name(&self) -> &'static str {
        "cli-ps"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "`ps` against an idle daemon with no containers, spawn of the client to its exit: \
             `berth` = Berth's CLI and `docker-berthd` = the docker CLI, both against one \
             private berthd; `docker` = the docker CLI against a private dockerd. Metric `ps`; \
             {} runs per engine after {} warm-up, interleaved. Peak RSS: the client process.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let dir = ctx.work.join(self.name());
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join("client.log");

        let (docker_cli, berth_cli) = super::fleet::clients();
        // ps needs no image: berthd is started without importing one.
        let berthd = start_berthd(&dir.join("berthd"), None, &berth_cli, &docker_cli, None);
        let dockerd = match (&docker_cli, engine::which("dockerd")) {
            (Err(why), _) => Err(why.clone()),
            (Ok(_), None) => Err("dockerd (docker.io) not installed".to_string()),
            (Ok(_), Some(_)) => Dockerd::start(&dir.join("dockerd")).map_err(|e| format!("{e:#}")),
        };

        let berthd_socket = berthd
            .as_ref()
            .map(|b| b.socket().to_path_buf())
            .map_err(Clone::clone);
        let dockerd_socket = dockerd
            .as_ref()
            .map(|d| d.socket().to_path_buf())
            .map_err(Clone::clone);
        let docker = || docker_cli.clone().map(|_| Client::Docker);
        let clients = vec![
            (
                BERTH,
                pair(berth_cli.clone().map(Client::Berth), &berthd_socket),
            ),
            ("docker-berthd", pair(docker(), &berthd_socket)),
            ("docker", pair(docker(), &dockerd_socket)),
        ];
        let engines = rounds(ctx, self.name(), clients, |(client, socket), name| {
            let mut cmd = client.command(socket);
            cmd.arg("ps");
            let m = measure(&mut cmd, &log, ctx.timeout).with_context(|| format!("{name} ps"))?;
            Ok(vec![Sample::of("ps", &m)])
        });
        drop(berthd);
        drop(dockerd);
        crate::sys::reap_exited();
        let _ = fs::remove_dir_all(&dir);

        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            Vec::new(),
        ))
    }
}

/// A client and the socket of the daemon it talks to, or why not.
fn pair(
    client: Result<Client, String>,
    socket: &Result<PathBuf, String>,
) -> Result<(Client, PathBuf), String> {
    match (client, socket) {
        (Ok(c), Ok(s)) => Ok((c, s.clone())),
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(e.clone()),
    }
}
