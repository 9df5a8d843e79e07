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

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Context, Runtime, Sample, Scenario, rounds};
use crate::engine::{self, BERTH};
use crate::host;
use crate::peers::{self, Berthd, Dockerd, NetNs};
use crate::process::{self, Measured, run_measured};
use crate::report::ScenarioReport;

/// The image as berthd and dockerd name it after `import`.
const IMAGE: &str = "busybox:latest";
/// podman names an imported image under `localhost/`.
const PODMAN_IMAGE: &str = "localhost/busybox:latest";
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
        let dir = ctx.work.join(self.name());
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join("client.log");
        let tarball = dir.join("busybox.tar");
        rootfs_tarball(&ctx.bundle.join("rootfs"), &tarball)?;
        let mut notes = Vec::new();

        let docker_cli =
            engine::which("docker").ok_or_else(|| "the docker CLI is not installed".to_string());
        let berth_cli = engine::sibling("berth")
            .or_else(|| engine::which("berth"))
            .ok_or_else(|| {
                "berth (CLI) not found next to berth-perf nor on PATH \
                 (cargo build --release -p berth-cli)"
                    .to_string()
            });

        // berthd puts a container's cgroup at /berth/<id>: what appears
        // there during the run and stays is ours and leaked.
        let berth_cgroups_before = host::child_cgroups(&host::cgroup_dirs("berth"));
        let netns = NetNs::create(&format!("{}net", ctx.id_prefix)).map_err(|e| format!("{e:#}"));
        let berthd = start_berthd(
            &dir.join("berthd"),
            Some(&tarball),
            &berth_cli,
            &docker_cli,
            netns.as_ref().ok(),
        );
        // berthd's bridge lives in the private namespace, or is not measured.
        let berthd_no_bridge = netns.as_ref().err().map(|why| {
            format!(
                "no private network namespace ({why}); berthd's bridge would add berth0 and its \
                 nftables table to the host"
            )
        });
        let docker_cgroup = format!("/{}docker", ctx.id_prefix);
        let podman_cgroup = format!("/{}podman", ctx.id_prefix);
        let dockerd = match &docker_cli {
            Ok(_) => start_dockerd(&dir.join("dockerd"), &tarball, &netns, &docker_cgroup),
            Err(why) => Err(why.clone()),
        };
        let podman = engine::which("podman")
            .ok_or_else(|| "podman not installed".to_string())
            .and_then(|bin| {
                Podman::new(bin, &dir.join("podman"), &netns, &podman_cgroup)
                    .and_then(|p| p.import(&tarball, ctx.timeout).map(|()| p))
                    .map_err(|e| format!("{e:#}"))
            });
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
                Runtime::new(e, &dir.join("crun"), ctx.timeout).map_err(|e| format!("{e:#}"))
            });

        let berthd_socket = berthd
            .as_ref()
            .map(|b| b.socket().to_path_buf())
            .map_err(Clone::clone);
        let runners: Vec<(&'static str, Result<Runner<'_>, String>)> = vec![
            (
                BERTH,
                both(&berth_cli, &berthd_socket).map(|(bin, socket)| Runner::Client {
                    client: Client::Berth(bin),
                    socket,
                    no_bridge: berthd_no_bridge.clone(),
                }),
            ),
            (
                "docker-berthd",
                both(&docker_cli, &berthd_socket).map(|(_, socket)| Runner::Client {
                    client: Client::Docker,
                    socket,
                    no_bridge: berthd_no_bridge.clone(),
                }),
            ),
            (
                "docker",
                dockerd
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
                podman.as_ref().map_err(Clone::clone).map(Runner::Podman),
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
        if berthd.is_ok() && netns.is_ok() {
            notes.push(
                "berth, docker-berthd: berthd runs in the same private network namespace with \
                 its default bridge (berth0, nftables table ip berth)"
                    .into(),
            );
        }
        if let Ok(d) = &dockerd
            && d.no_bridge.is_none()
        {
            notes.push(
                "docker: dockerd runs in a private network namespace with its default bridge \
                 (docker0, iptables rules, IP forwarding all inside it); containers' cgroups \
                 under a private --cgroup-parent"
                    .into(),
            );
        }
        if podman.is_ok() {
            notes.push(
                "podman: private --root/--runroot/--tmpdir/--network-config-dir, overlay, \
                 `--cgroup-manager cgroupfs`, `--events-backend file`, \
                 `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (this host's hard limit), \
                 its default runtime (crun); run inside a private network namespace (setns \
                 before exec, for both metrics)"
                    .into(),
            );
        }

        let engines = rounds(ctx, self.name(), runners, |runner, name| {
            let samples = runner.trial(ctx, name, &log);
            crate::sys::reap_exited();
            samples
        });

        // Clean up: containers left by failed runs, then the daemons, then
        // the namespace their networks lived in; then look for leaks.
        if let (Ok(b), Ok(_)) = (&berthd, &docker_cli) {
            notes.extend(remove_containers("berthd", b.socket(), ctx.timeout));
        }
        if let Ok(d) = &dockerd {
            notes.extend(remove_containers("dockerd", d.daemon.socket(), ctx.timeout));
        }
        drop(berthd);
        drop(dockerd);
        drop(podman);
        drop(netns);
        crate::sys::reap_exited();
        let berth_cgroups_after = host::child_cgroups(&host::cgroup_dirs("berth"));
        for cg in berth_cgroups_after.difference(&berth_cgroups_before) {
            notes.push(leaked_cgroup(cg));
        }
        // The engines' cgroup parents: empty after a clean run, but for
        // the `conmon` cgroup podman (cgroupfs manager) never removes.
        let mut conmon = 0;
        for parent in [&docker_cgroup, &podman_cgroup]
            .into_iter()
            .flat_map(|p| host::cgroup_dirs(p))
        {
            for cg in host::child_cgroups(std::slice::from_ref(&parent)) {
                if parent.ends_with(podman_cgroup.trim_start_matches('/'))
                    && cg.ends_with("conmon")
                    && host::remove_cgroup_tree(&cg).is_ok()
                {
                    conmon += 1;
                } else {
                    notes.push(leaked_cgroup(&cg));
                }
            }
            let _ = host::remove_cgroup_tree(&parent);
        }
        if conmon > 0 {
            notes.push(format!(
                "podman: removed the `conmon` cgroup it leaves under its cgroup parent \
                 ({conmon} hierarchies)"
            ));
        }
        // crun's containers and podman's cgroup parent carry the run's id
        // prefix.
        for cg in host::cgroups_named(&ctx.id_prefix) {
            notes.push(leaked_cgroup(&cg));
        }
        let _ = fs::remove_dir_all(&dir);

        let mut report = ScenarioReport {
            name: self.name().into(),
            description: self.description(ctx),
            baseline: None,
            engines,
            notes,
        };
        report.finish();
        Ok(report)
    }
}

/// A Docker API client command line.
#[derive(Debug)]
pub(super) enum Client {
    /// Berth's CLI at this path.
    Berth(PathBuf),
    /// The `docker` CLI from PATH.
    Docker,
}

impl Client {
    /// `<client> -H unix://<socket>`, ready for a subcommand.
    pub(super) fn command(&self, socket: &Path) -> Command {
        match self {
            Client::Berth(bin) => {
                let mut c = Command::new(bin);
                c.arg("-H").arg(format!("unix://{}", socket.display()));
                c
            }
            Client::Docker => peers::docker_cli(socket),
        }
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

/// Runs and measures `cmd`, its output to `log` (a file: a container may
/// hold a pipe open); an error with the end of the output unless it exits 0
/// within `timeout`.
pub(super) fn measure(
    cmd: &mut Command,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<Measured> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let m =
        run_measured(cmd, timeout).with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    if !m.ok() {
        let why = if m.timed_out {
            format!("killed after {timeout:?}")
        } else {
            m.status.to_string()
        };
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{why}: {}", tail.join(" | "));
    }
    Ok(m)
}

/// Runs `cmd` unmeasured; an error with its stderr unless it exits 0.
pub(super) fn run_ok(cmd: &mut Command, what: &str, timeout: Duration) -> anyhow::Result<String> {
    let (m, stdout, stderr) =
        process::output(cmd, timeout).with_context(|| format!("spawning {what}"))?;
    if !m.ok() {
        bail!("{what} failed ({}): {}", m.status, stderr.trim());
    }
    Ok(stdout)
}

fn both<A: Clone, B: Clone>(
    a: &Result<A, String>,
    b: &Result<B, String>,
) -> Result<(A, B), String> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a.clone(), b.clone())),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

/// `tar -c` of the busybox rootfs, the image every engine imports.
fn rootfs_tarball(rootfs: &Path, tarball: &Path) -> anyhow::Result<()> {
    let status = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .arg("-cf")
        .arg(tarball)
        .arg(".")
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar of {} failed: {status}", rootfs.display());
    }
    Ok(())
}

/// A private berthd, with the busybox image imported from `tarball` if
/// given (with Berth's CLI if built, else the docker CLI); inside `netns`
/// with its default bridge when given, else without a default network.
pub(super) fn start_berthd(
    dir: &Path,
    tarball: Option<&Path>,
    berth_cli: &Result<PathBuf, String>,
    docker_cli: &Result<PathBuf, String>,
    netns: Option<&NetNs>,
) -> Result<Berthd, String> {
    let bin = engine::sibling("berthd")
        .or_else(|| engine::which("berthd"))
        .ok_or_else(|| {
            "berthd not found next to berth-perf nor on PATH (cargo build --release -p \
             berth-daemon)"
                .to_string()
        })?;
    let berthd = match netns {
        Some(ns) => Berthd::start_in(&bin, dir, ns),
        None => Berthd::start(&bin, dir),
    }
    .map_err(|e| format!("{e:#}"))?;
    let Some(tarball) = tarball else {
        return Ok(berthd);
    };
    let client = match (berth_cli, docker_cli) {
        (Ok(bin), _) => Client::Berth(bin.clone()),
        (Err(_), Ok(_)) => Client::Docker,
        (Err(why), Err(_)) => return Err(why.clone()),
    };
    import(&client, berthd.socket(), tarball).map_err(|e| format!("berthd: {e:#}"))?;
    Ok(berthd)
}

fn import(client: &Client, socket: &Path, tarball: &Path) -> anyhow::Result<()> {
    let mut cmd = client.command(socket);
    cmd.arg("import").arg(tarball).arg(IMAGE);
    run_ok(
        &mut cmd,
        "import of the busybox image",
        Duration::from_secs(60),
    )?;
    Ok(())
}

/// The private dockerd of `run-rm`, and why it has no bridge if it has
/// none.
#[derive(Debug)]
struct RunDockerd {
    daemon: Dockerd,
    no_bridge: Option<String>,
}

/// dockerd with its default bridge inside `netns` when there is one, else
/// without a bridge (as in the other scenarios); the image imported.
fn start_dockerd(
    dir: &Path,
    tarball: &Path,
    netns: &Result<NetNs, String>,
    cgroup_parent: &str,
) -> Result<RunDockerd, String> {
    engine::which("dockerd").ok_or_else(|| "dockerd (docker.io) not installed".to_string())?;
    let started = match netns {
        Ok(ns) => {
            let (mut cmd, socket) = peers::dockerd_bridge_command(dir, cgroup_parent);
            File::open(ns.path())
                .with_context(|| format!("opening {}", ns.path().display()))
                .map(|f| crate::sys::enter_netns_on_exec(&mut cmd, f))
                .and_then(|()| Dockerd::start_with(cmd, dir, socket))
                .map(|daemon| RunDockerd {
                    daemon,
                    no_bridge: None,
                })
        }
        Err(why) => Dockerd::start(dir).map(|daemon| RunDockerd {
            daemon,
            no_bridge: Some(format!(
                "no private network namespace ({why}); dockerd's bridge would change the \
                 host's network and firewall, so dockerd runs with --bridge=none"
            )),
        }),
    };
    let d = started.map_err(|e| format!("{e:#}"))?;
    import(&Client::Docker, d.daemon.socket(), tarball).map_err(|e| format!("dockerd: {e:#}"))?;
    Ok(d)
}

/// `rm --force` of every container a daemon still has; a note naming them
/// if there were any.
fn remove_containers(daemon: &str, socket: &Path, timeout: Duration) -> Option<String> {
    let mut ps = peers::docker_cli(socket);
    ps.args(["ps", "--all", "--quiet", "--no-trunc"]);
    let ids: Vec<String> = run_ok(&mut ps, "docker ps", timeout)
        .ok()?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return None;
    }
    let mut rm = peers::docker_cli(socket);
    rm.args(["rm", "--force"]).args(&ids);
    let _ = run_ok(&mut rm, "docker rm", timeout);
    Some(format!("{daemon}: removed leftover containers {ids:?}"))
}

/// Removes a leaked cgroup (and any below it) and says so.
fn leaked_cgroup(cg: &Path) -> String {
    let removed = host::remove_cgroup_tree(cg).is_ok();
    format!(
        "leaked cgroup {} ({})",
        cg.display(),
        if removed {
            "removed"
        } else {
            "could not remove"
        }
    )
}

/// podman with a private store, tmpdir, network config and cgroup parent,
/// run inside the scenario's network namespace. On drop its containers and
/// images are removed, its mounts undone, its directory and cgroups
/// removed.
#[derive(Debug)]
struct Podman {
    bin: PathBuf,
    dir: PathBuf,
    /// `/run/netns/<name>` to join, when there is one.
    netns: Option<PathBuf>,
    cgroup_parent: String,
    no_bridge: Option<String>,
}

impl Podman {
    fn new(
        bin: PathBuf,
        dir: &Path,
        netns: &Result<NetNs, String>,
        cgroup_parent: &str,
    ) -> anyhow::Result<Self> {
        fs::create_dir_all(dir.join("networks"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let (netns, no_bridge) = match netns {
            Ok(ns) => (Some(ns.path()), None),
            Err(why) => (
                None,
                Some(format!(
                    "no private network namespace ({why}); podman's bridge would add the \
                     podman0 bridge and netavark's iptables chains to the host"
                )),
            ),
        };
        Ok(Self {
            bin,
            dir: dir.to_path_buf(),
            netns,
            cgroup_parent: cgroup_parent.into(),
            no_bridge,
        })
    }

    /// `podman` with the private store flags, in the namespace.
    fn command(&self) -> anyhow::Result<Command> {
        let d = &self.dir;
        let mut c = Command::new(&self.bin);
        // conmon fails in a working directory that no longer exists.
        c.current_dir(d);
        c.arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--network-config-dir")
            .arg(d.join("networks"))
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--storage-driver",
                "overlay",
            ]);
        if let Some(ns) = &self.netns {
            let f = File::open(ns).with_context(|| format!("opening {}", ns.display()))?;
            crate::sys::enter_netns_on_exec(&mut c, f);
        }
        Ok(c)
    }

    fn import(&self, tarball: &Path, timeout: Duration) -> anyhow::Result<()> {
        let mut c = self.command()?;
        c.arg("import").arg(tarball).arg(PODMAN_IMAGE);
        run_ok(
            &mut c,
            "podman import",
            timeout.max(Duration::from_secs(60)),
        )?;
        Ok(())
    }

    /// `podman run --rm` of `true`, with the flags this host needs.
    fn run(&self, network_none: bool) -> anyhow::Result<Command> {
        let mut c = self.command()?;
        c.args(["run", "--rm"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent);
        if network_none {
            c.args(["--network", "none"]);
        }
        c.args([PODMAN_IMAGE, "true"]);
        Ok(c)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let t = Duration::from_secs(60);
        if let Ok(mut c) = self.command() {
            let _ = run_ok(
                c.args(["rm", "--all", "--force", "--time", "0"]),
                "podman rm",
                t,
            );
        }
        if let Ok(mut c) = self.command() {
            let _ = run_ok(c.args(["rmi", "--all", "--force"]), "podman rmi", t);
        }
        peers::unmount_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
