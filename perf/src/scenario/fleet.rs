//! The container engines the end-to-end scenarios drive, started the same
//! way for each of them ([`Fleet`]):
//!
//! - `berth`: Berth's CLI against a private berthd;
//! - `docker-berthd`: the real `docker` CLI against the same berthd;
//! - `docker`: the `docker` CLI against a private dockerd;
//! - `podman`: podman with a private store.
//!
//! Every engine gets the busybox image imported from one rootfs tarball.
//! dockerd and podman run inside a private network namespace, so their
//! bridge, veths and iptables rules live and die there and the host's
//! network is never touched. [`Fleet::shutdown`] removes what the engines
//! left and reports leaked cgroups.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::Context;
use crate::engine;
use crate::host;
use crate::peers::{self, Berthd, Dockerd, NetNs};
use crate::process::{self, Measured, run_measured};

/// The image as berthd and dockerd name it after `import`.
pub(super) const IMAGE: &str = "busybox:latest";
/// podman names an imported image under `localhost/`.
pub(super) const PODMAN_IMAGE: &str = "localhost/busybox:latest";

/// The daemons (and podman) of one scenario, each ready with the image, or
/// the reason it is not there.
#[derive(Debug)]
pub(super) struct Fleet {
    dir: PathBuf,
    pub(super) berth_cli: Result<PathBuf, String>,
    pub(super) docker_cli: Result<PathBuf, String>,
    pub(super) berthd: Result<Berthd, String>,
    pub(super) dockerd: Result<RunDockerd, String>,
    pub(super) podman: Result<Podman, String>,
    netns: Result<NetNs, String>,
    docker_cgroup: String,
    podman_cgroup: String,
    /// berthd puts a container's cgroup at /berth/<id>: what appears there
    /// during the scenario and stays is ours and leaked.
    berth_cgroups_before: BTreeSet<PathBuf>,
}

impl Fleet {
    /// Starts every engine found, with state under `dir`.
    pub(super) fn start(ctx: &Context, dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tarball = dir.join("busybox.tar");
        rootfs_tarball(&ctx.bundle.join("rootfs"), &tarball)?;
        let (docker_cli, berth_cli) = clients();
        let berth_cgroups_before = host::child_cgroups(&host::cgroup_dirs("berth"));
        let netns = NetNs::create(&format!("{}net", ctx.id_prefix)).map_err(|e| format!("{e:#}"));
        let docker_cgroup = format!("/{}docker", ctx.id_prefix);
        let podman_cgroup = format!("/{}podman", ctx.id_prefix);
        let dockerd = match &docker_cli {
            Ok(_) => start_dockerd(&dir.join("dockerd"), &tarball, &netns, &docker_cgroup),
            Err(why) => Err(why.clone()),
        };
        // After dockerd, so berthd's bridge picks a subnet clear of docker0's
        // route (berthd avoids routes; dockerd's docker0 may not).
        let berthd = start_berthd(
            &dir.join("berthd"),
            Some(&tarball),
            &berth_cli,
            &docker_cli,
            netns.as_ref().ok(),
        );
        let podman = engine::which("podman")
            .ok_or_else(|| "podman not installed".to_string())
            .and_then(|bin| {
                Podman::new(bin, &dir.join("podman"), &netns, &podman_cgroup)
                    .and_then(|p| p.import(&tarball, ctx.timeout).map(|()| p))
                    .map_err(|e| format!("{e:#}"))
            });
        Ok(Self {
            dir: dir.to_path_buf(),
            berth_cli,
            docker_cli,
            berthd,
            dockerd,
            podman,
            netns,
            docker_cgroup,
            podman_cgroup,
            berth_cgroups_before,
        })
    }

    /// Why berthd has no default bridge (it runs in the private namespace
    /// with `berth0` when there is one).
    pub(super) fn berthd_no_bridge(&self) -> Option<String> {
        self.netns.as_ref().err().map(|why| {
            format!(
                "no private network namespace ({why}); berthd runs with --bridge none so its \
                 berth0 and nftables table stay off the host"
            )
        })
    }

    /// The private network namespace the daemons run in, or why there is
    /// none.
    pub(super) fn netns_path(&self) -> Result<PathBuf, String> {
        self.netns.as_ref().map(NetNs::path).map_err(Clone::clone)
    }

    /// berthd's socket, or why there is none.
    pub(super) fn berthd_socket(&self) -> Result<PathBuf, String> {
        self.berthd
            .as_ref()
            .map(|b| b.socket().to_path_buf())
            .map_err(Clone::clone)
    }

    /// dockerd's socket, or why there is none.
    pub(super) fn dockerd_socket(&self) -> Result<PathBuf, String> {
        self.dockerd
            .as_ref()
            .map(|d| d.daemon.socket().to_path_buf())
            .map_err(Clone::clone)
    }

    /// Where the state of `daemon` (`berthd`, `dockerd` or `podman`) lives:
    /// every process of that engine names it on its command line.
    pub(super) fn state_dir(&self, daemon: &str) -> PathBuf {
        self.dir.join(daemon)
    }

    /// Notes on how the peers were set up, for the report.
    pub(super) fn setup_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.berthd.is_ok() && self.netns.is_ok() {
            notes.push(
                "berth, docker-berthd: berthd runs in the same private network namespace with \
                 its default bridge (berth0, the nftables table `ip berth`, all inside it)"
                    .into(),
            );
        }
        if let Ok(d) = &self.dockerd
            && d.no_bridge.is_none()
        {
            notes.push(
                "docker: dockerd runs in a private network namespace with its default bridge \
                 (docker0, iptables rules, IP forwarding all inside it); containers' cgroups \
                 under a private --cgroup-parent"
                    .into(),
            );
        }
        if self.podman.is_ok() {
            notes.push(
                "podman: private --root/--runroot/--tmpdir/--network-config-dir, overlay, \
                 `--cgroup-manager cgroupfs`, `--events-backend file`, \
                 `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (this host's hard limit), \
                 its default runtime (crun); run inside a private network namespace (setns \
                 before exec, for both metrics)"
                    .into(),
            );
        }
        notes
    }

    /// Removes containers left by failed runs, stops the daemons, removes
    /// the namespace their networks lived in, then looks for leaked
    /// cgroups; notes on whatever had to be cleaned.
    pub(super) fn shutdown(self, ctx: &Context) -> Vec<String> {
        let mut notes = Vec::new();
        if let (Ok(b), Ok(_)) = (&self.berthd, &self.docker_cli) {
            notes.extend(remove_containers("berthd", b.socket(), ctx.timeout));
        }
        if let Ok(d) = &self.dockerd {
            notes.extend(remove_containers("dockerd", d.daemon.socket(), ctx.timeout));
        }
        drop(self.berthd);
        drop(self.dockerd);
        drop(self.podman);
        drop(self.netns);
        crate::sys::reap_exited();
        let berth_cgroups_after = host::child_cgroups(&host::cgroup_dirs("berth"));
        for cg in berth_cgroups_after.difference(&self.berth_cgroups_before) {
            notes.push(leaked_cgroup(cg));
        }
        // The engines' cgroup parents: empty after a clean run, but for
        // the `conmon` cgroup podman (cgroupfs manager) never removes.
        let mut conmon = 0;
        for parent in [&self.docker_cgroup, &self.podman_cgroup]
            .into_iter()
            .flat_map(|p| host::cgroup_dirs(p))
        {
            for cg in host::child_cgroups(std::slice::from_ref(&parent)) {
                if parent.ends_with(self.podman_cgroup.trim_start_matches('/'))
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
        let _ = fs::remove_dir_all(&self.dir);
        notes
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

pub(super) fn both<A: Clone, B: Clone>(
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
/// with its default bridge when given, else with `--bridge none`.
/// The docker CLI and Berth's CLI (next to berth-perf, else on PATH), or
/// why each is missing.
pub(super) fn clients() -> (Result<PathBuf, String>, Result<PathBuf, String>) {
    let docker_cli =
        engine::which("docker").ok_or_else(|| "the docker CLI is not installed".to_string());
    let berth_cli = engine::sibling("berth")
        .or_else(|| engine::which("berth"))
        .ok_or_else(|| {
            "berth (CLI) not found next to berth-perf nor on PATH \
             (cargo build --release -p berth-cli)"
                .to_string()
        });
    (docker_cli, berth_cli)
}

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
pub(super) struct RunDockerd {
    pub(super) daemon: Dockerd,
    pub(super) no_bridge: Option<String>,
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
        Ok(ns) => peers::dockerd_bridge_command(dir, cgroup_parent)
            .and_then(|(mut cmd, socket)| {
                let ns = File::open(ns.path())
                    .with_context(|| format!("opening {}", ns.path().display()));
                match ns {
                    Ok(f) => crate::sys::enter_netns_on_exec(&mut cmd, f),
                    Err(e) => {
                        peers::unmount_under(dir);
                        return Err(e);
                    }
                }
                Dockerd::start_with(cmd, dir, socket)
            })
            .map(|daemon| RunDockerd {
                daemon,
                no_bridge: None,
            }),
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
pub(super) struct Podman {
    bin: PathBuf,
    dir: PathBuf,
    /// `/run/netns/<name>` to join, when there is one.
    netns: Option<PathBuf>,
    cgroup_parent: String,
    pub(super) no_bridge: Option<String>,
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
        peers::runtime_tmpfs(&dir.join("run"))?;
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
    pub(super) fn command(&self) -> anyhow::Result<Command> {
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
    pub(super) fn run(&self, network_none: bool) -> anyhow::Result<Command> {
        let network: &[&str] = if network_none {
            &["--network", "none"]
        } else {
            &[]
        };
        self.run_with(&["--rm"], network, &["true"])
    }

    /// `podman run <flags> <network> <image> <args>` with the flags this
    /// host needs.
    pub(super) fn run_with(
        &self,
        flags: &[&str],
        network: &[&str],
        args: &[&str],
    ) -> anyhow::Result<Command> {
        let mut c = self.command()?;
        c.arg("run")
            .args(flags)
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args(network)
            .arg(PODMAN_IMAGE)
            .args(args);
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
