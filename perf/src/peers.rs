//! Engines that run as daemons, each private to berth-perf (its own data
//! root, exec root and socket): dockerd (no bridge, no iptables rules) and
//! Berth's berthd. [`Daemon`] starts one, waits for `GET /_ping` to answer
//! and stops it, with everything it mounted, on drop.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A daemon started by berth-perf with all its state under `dir`, its
/// output in `dir/<name>.log`, in a process group of its own. On drop it
/// gets SIGTERM (20 s to exit), then its whole group SIGKILL, and whatever
/// it mounted under `dir` is unmounted and `dir` removed.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    spawned_at: Instant,
}

impl Daemon {
    /// Spawns `cmd` (which must make the daemon serve the Docker API on
    /// `socket`); does not wait for it to answer.
    pub(crate) fn spawn(
        name: &'static str,
        mut cmd: Command,
        dir: &Path,
        socket: PathBuf,
    ) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log_path = dir.join(format!("{name}.log"));
        let log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let spawned_at = Instant::now();
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                // What the command's builder mounted for it (a runtime tmpfs).
                unmount_under(dir);
                return Err(e)
                    .with_context(|| format!("starting {name} ({:?})", cmd.get_program()));
            }
        };
        Ok(Self {
            name,
            child,
            dir: dir.to_path_buf(),
            socket,
            spawned_at,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `GET /_ping` on the socket until it answers 200, and returns
    /// the time from spawn to that answer. An error if the daemon exits or
    /// `timeout` passes first.
    pub(crate) fn wait_until_up(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = self.spawned_at + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if ping(&self.socket, left.min(Duration::from_secs(5))) {
                return Ok(self.spawned_at.elapsed());
            }
            self.ensure_running()?;
            if left.is_zero() {
                bail!(
                    "{} did not answer on {} within {timeout:?}: {}",
                    self.name,
                    self.socket.display(),
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// An error, with the end of the log, if the daemon has exited.
    pub(crate) fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}): {}", self.name, self.log_tail());
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text =
            fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
        if tail.is_empty() {
            "(no output)".into()
        } else {
            tail
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What the daemon started in its group (dockerd's containerd).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        unmount_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether the Docker API on the unix socket answers `GET /_ping` with 200
/// within `wait` (a daemon that listens before it serves keeps the
/// connection pending, so a long wait catches the first answer).
pub(crate) fn ping(socket: &Path, wait: Duration) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let wait = wait.max(Duration::from_millis(10));
    if stream.set_read_timeout(Some(wait)).is_err() || stream.set_write_timeout(Some(wait)).is_err()
    {
        return false;
    }
    if stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: berth-perf\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok()
        && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}

/// `dockerd` with all its state under `dir` (data root, exec root, pid
/// file, socket), no bridge and no iptables rules, and the socket path.
pub(crate) fn dockerd_command(dir: &Path) -> anyhow::Result<(Command, PathBuf)> {
    let (mut cmd, socket) = dockerd_base_command(dir)?;
    cmd.args(["--bridge=none", "--iptables=false", "--ip-masq=false"]);
    Ok((cmd, socket))
}

/// `dockerd` as [`dockerd_command`] but with its default bridge network
/// (`docker0`, its iptables rules, IP forwarding) and its containers'
/// cgroups under `cgroup_parent`. Only start it inside a private network
/// namespace ([`NetNs`]): what it changes in the network then goes away
/// with the namespace, never touching the host's.
pub(crate) fn dockerd_bridge_command(
    dir: &Path,
    cgroup_parent: &str,
) -> anyhow::Result<(Command, PathBuf)> {
    let (mut cmd, socket) = dockerd_base_command(dir)?;
    cmd.arg(format!("--cgroup-parent={cgroup_parent}"));
    Ok((cmd, socket))
}

fn dockerd_base_command(dir: &Path) -> anyhow::Result<(Command, PathBuf)> {
    let socket = dir.join("docker.sock");
    let exec_root = runtime_tmpfs(&dir.join("exec"))?;
    let mut cmd = Command::new("dockerd");
    cmd.arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", exec_root.display()))
        .arg(format!("--pidfile={}", dir.join("dockerd.pid").display()))
        .arg(format!("--host=unix://{}", socket.display()))
        .args(["--storage-driver=overlay2", "--log-level=error"]);
    Ok((cmd, socket))
}

/// Berth's daemon `bin` with all its state under `dir` and an empty config
/// file (so a host's /etc/berth/berthd.toml does not apply), and the socket
/// path.
pub(crate) fn berthd_command(bin: &Path, dir: &Path) -> anyhow::Result<(Command, PathBuf)> {
    // No default network: berthd runs in the host's namespace here and
    // must not add its bridge and nftables table there.
    berthd_command_with_bridge(bin, dir, "none")
}

/// [`berthd_command`] with the default network on bridge `bridge`.
pub(crate) fn berthd_command_with_bridge(
    bin: &Path,
    dir: &Path,
    bridge: &str,
) -> anyhow::Result<(Command, PathBuf)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = dir.join("berthd.toml");
    fs::write(&config, "").with_context(|| format!("writing {}", config.display()))?;
    let socket = dir.join("berthd.sock");
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(runtime_tmpfs(&dir.join("exec"))?)
        .args(["--log-level", "error", "--bridge", bridge]);
    Ok((cmd, socket))
}

/// A private dockerd for a scenario (pull-cold), with its `docker` CLI.
#[derive(Debug)]
pub(crate) struct Dockerd {
    /// Only held: dropping it stops dockerd.
    _daemon: Daemon,
    socket: PathBuf,
}

impl Dockerd {
    /// Starts `dockerd` with all its state under `dir` and waits until its
    /// API answers.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Self> {
        let (cmd, socket) = dockerd_command(dir)?;
        Self::start_with(cmd, dir, socket)
    }

    /// Starts `cmd` (a [`dockerd_command`] or [`dockerd_bridge_command`]
    /// for `dir`, serving on `socket`) and waits until its API answers.
    pub(crate) fn start_with(cmd: Command, dir: &Path, socket: PathBuf) -> anyhow::Result<Self> {
        let mut daemon = Daemon::spawn("dockerd", cmd, dir, socket.clone())?;
        daemon.wait_until_up(Duration::from_secs(60))?;
        Ok(Self {
            _daemon: daemon,
            socket,
        })
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The `docker` CLI pointed at this daemon.
    pub(crate) fn cli(&self) -> Command {
        docker_cli(&self.socket)
    }

    /// `docker rmi --force` of every image, so the next pull is cold.
    pub(crate) fn remove_all_images(&self) -> anyhow::Result<()> {
        let out = self
            .cli()
            .args(["images", "--all", "--quiet", "--no-trunc"])
            .output()
            .context("docker images")?;
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let status = self
            .cli()
            .args(["rmi", "--force"])
            .args(&ids)
            .stdout(Stdio::null())
            .status()
            .context("docker rmi")?;
        if !status.success() {
            bail!("docker rmi failed: {status}");
        }
        Ok(())
    }
}

/// The `docker` CLI pointed at the Docker API on `socket`.
pub(crate) fn docker_cli(socket: &Path) -> Command {
    let mut c = Command::new("docker");
    c.arg(format!("--host=unix://{}", socket.display()));
    c
}

/// A private berthd with its socket.
#[derive(Debug)]
pub(crate) struct Berthd {
    /// Only held: dropping it stops berthd.
    _daemon: Daemon,
    socket: PathBuf,
}

impl Berthd {
    /// Starts berthd `bin` with all its state under `dir` and waits until
    /// its API answers. berthd finds `berth-shim` next to itself, then on
    /// `PATH`.
    pub(crate) fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        let (cmd, socket) = berthd_command(bin, dir)?;
        Self::start_with(cmd, dir, socket)
    }

    /// berthd inside `netns` with its default bridge (`berth0`): the
    /// bridge, veths and nftables table stay in that namespace.
    pub(crate) fn start_in(bin: &Path, dir: &Path, netns: &NetNs) -> anyhow::Result<Self> {
        let (mut cmd, socket) = berthd_command_with_bridge(bin, dir, "berth0")?;
        let ns = fs::File::open(netns.path())
            .with_context(|| format!("opening {}", netns.path().display()))?;
        crate::sys::enter_netns_on_exec(&mut cmd, ns);
        Self::start_with(cmd, dir, socket)
    }

    fn start_with(cmd: Command, dir: &Path, socket: PathBuf) -> anyhow::Result<Self> {
        let mut daemon = Daemon::spawn("berthd", cmd, dir, socket.clone())?;
        daemon.wait_until_up(Duration::from_secs(60))?;
        Ok(Self {
            _daemon: daemon,
            socket,
        })
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

/// A named network namespace (`ip netns add`), deleted on drop. A daemon
/// started in it (see [`crate::sys::enter_netns_on_exec`]) keeps its
/// bridge, veths and iptables rules there; they vanish with the namespace
/// once its last process is gone.
#[derive(Debug)]
pub(crate) struct NetNs {
    name: String,
}

impl NetNs {
    pub(crate) fn create(name: &str) -> anyhow::Result<Self> {
        let out = Command::new("ip")
            .args(["netns", "add", name])
            .output()
            .context("running ip netns add")?;
        if !out.status.success() {
            bail!(
                "ip netns add {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let ns = Self { name: name.into() };
        // Loopback up, as in any container or host namespace.
        let _ = Command::new("ip")
            .args(["-n", name, "link", "set", "lo", "up"])
            .status();
        Ok(ns)
    }

    pub(crate) fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Makes `dir` a fresh tmpfs for a daemon's runtime state (exec root,
/// runroot), as /run is on a standard host. Here / and /run can be one ext4
/// without a journal, where creating a file costs 0.1-0.4 ms while many are
/// created and deleted (the allocator skips recently freed inodes); every
/// engine gets the same. Unmounted by [`unmount_under`] of a parent.
pub(crate) fn runtime_tmpfs(dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0711", "tmpfs"])
        .arg(dir)
        .status()
        .context("running mount")?;
    if !status.success() {
        bail!("mounting a tmpfs on {}: {status}", dir.display());
    }
    Ok(dir.to_path_buf())
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
pub(crate) fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}
