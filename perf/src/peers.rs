//! Peers that run as daemons: a private dockerd (its own data root, exec
//! root and socket, no bridge, no iptables rules), started for a scenario
//! and stopped, with everything it mounted, on drop.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

#[derive(Debug)]
pub(crate) struct Dockerd {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Dockerd {
    /// Starts `dockerd` with all its state under `dir` and waits until its
    /// API answers.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)?;
        let socket = dir.join("docker.sock");
        let log = fs::File::create(dir.join("dockerd.log"))?;
        let child = Command::new("dockerd")
            .arg(format!("--data-root={}", dir.join("data").display()))
            .arg(format!("--exec-root={}", dir.join("exec").display()))
            .arg(format!("--pidfile={}", dir.join("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--storage-driver=overlay2",
                "--log-level=error",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting dockerd")?;
        let daemon = Self {
            child,
            dir: dir.to_path_buf(),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = daemon
                .cli()
                .args(["version", "--format", "{{.Server.Version}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return Ok(daemon);
            }
            if Instant::now() > deadline {
                bail!(
                    "dockerd did not answer within 60 s: {}",
                    fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `docker` CLI pointed at this daemon.
    pub(crate) fn cli(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg(format!("--host=unix://{}", self.socket.display()));
        c
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

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd's managed containerd is in the same process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        unmount_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
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
