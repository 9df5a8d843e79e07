//! `pause`/`unpause` (the runtime freezes and thaws the container's
//! cgroup) and `top` (the container's processes, read from `/proc` rather
//! than by running `ps`: berthd never forks).

use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_runtime::state::Root;

use super::{Container, ContainerError, Status};
use crate::engine::Engine;

/// `GET /containers/{id}/top`: ps's default `-ef` columns.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Top {
    pub(crate) titles: Vec<String>,
    pub(crate) processes: Vec<Vec<String>>,
}

impl Engine {
    fn runtime_root(&self) -> Root {
        Root::new(self.containers.runtime_root.clone())
    }

    /// Thaws a paused container so signals (SIGKILL included) take effect.
    pub(super) async fn thaw_if_paused(&self, container: &Container) -> Result<(), ContainerError> {
        if container.record().state.status == Status::Paused {
            self.set_paused(container, false).await?;
        }
        Ok(())
    }

    async fn set_paused(&self, container: &Container, pause: bool) -> Result<(), ContainerError> {
        let root = self.runtime_root();
        let id = container.id.clone();
        tokio::task::spawn_blocking(move || {
            if pause {
                berth_runtime::container::pause(&root, &id)
            } else {
                berth_runtime::container::resume(&root, &id)
            }
            .map_err(|source| ContainerError::Runtime { id, source })
        })
        .await
        .map_err(|_| ContainerError::Task("pause"))??;
        let record = self.containers.update(container, |r| {
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
        })?;
        self.containers
            .publish(if pause { "pause" } else { "unpause" }, &record, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub(crate) async fn container_pause(
        &self,
        reference: &str,
        pause: bool,
    ) -> Result<(), ContainerError> {
        let container = self.containers.get(reference)?;
        let status = container.record().state.status;
        match (pause, status) {
            (true, Status::Paused) => Err(ContainerError::AlreadyPaused(container.id.clone())),
            (true, Status::Running) => self.set_paused(&container, true).await,
            (true, _) => Err(ContainerError::NotRunning(container.id.clone())),
            (false, Status::Paused) => self.set_paused(&container, false).await,
            (false, _) => Err(ContainerError::NotPaused(container.id.clone())),
        }
    }

    /// `GET /containers/{id}/top`.
    pub(crate) async fn container_top(&self, reference: &str) -> Result<Top, ContainerError> {
        let container = self.containers.get(reference)?;
        if !container.is_running() {
            return Err(ContainerError::NotRunning(container.id.clone()));
        }
        let root = self.runtime_root();
        let id = container.id.clone();
        tokio::task::spawn_blocking(move || {
            let pids = berth_runtime::container::pids(&root, &id)
                .map_err(|source| ContainerError::Runtime { id, source })?;
            Ok(Top {
                titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                    .map(str::to_owned)
                    .to_vec(),
                processes: pids.into_iter().filter_map(process_row).collect(),
            })
        })
        .await
        .map_err(|_| ContainerError::Task("top"))?
    }
}

/// One `ps -ef`-style row from `/proc/<pid>`; `None` if it is gone.
fn process_row(pid: i32) -> Option<Vec<String>> {
    let dir = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the parenthesized command name, which may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ppid = field(4)?;
    let ticks = 100; // USER_HZ on Linux
    let cpu_seconds = (field(14)? + field(15)?) / ticks;
    let start_ticks = field(22)?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let age = Duration::from_secs_f64((uptime - start_ticks as f64 / ticks as f64).max(0.0));
    let started = SystemTime::now() - age;
    let stime = humantime::format_rfc3339_seconds(started).to_string();
    let stime = stime.get(11..16).unwrap_or("").to_owned();
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let cmd = cmdline
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let time = format!(
        "{:02}:{:02}:{:02}",
        cpu_seconds / 3600,
        cpu_seconds / 60 % 60,
        cpu_seconds % 60
    );
    Some(vec![
        uid,
        pid.to_string(),
        ppid.to_string(),
        "0".to_owned(),
        stime,
        "?".to_owned(),
        time,
        cmd,
    ])
}
