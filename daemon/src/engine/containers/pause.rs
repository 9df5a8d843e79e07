//! `pause`/`unpause` (the runtime freezes and thaws the container's
//! cgroup) and `top` (the container's processes: ps's `-ef` columns read
//! from `/proc`, or, when the client gives `ps_args`, the host's `ps` with
//! them, its rows kept for the container's pids, as moby does).

use std::collections::HashMap;
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

    /// `GET /containers/{id}/top[?ps_args=...]`.
    pub(crate) async fn container_top(
        &self,
        reference: &str,
        ps_args: Option<&str>,
    ) -> Result<Top, ContainerError> {
        let ps_args = ps_args.filter(|a| !a.is_empty() && *a != "-ef");
        if let Some(args) = ps_args {
            validate_ps_args(args)?;
        }
        let container = self.containers.get(reference)?;
        if !container.is_running() {
            return Err(ContainerError::NotRunning(container.id.clone()));
        }
        let root = self.runtime_root();
        let id = container.id.clone();
        let ps_args = ps_args.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let pids = berth_runtime::container::pids(&root, &id)
                .map_err(|source| ContainerError::Runtime { id, source })?;
            match ps_args {
                Some(args) => run_ps(&args, &pids),
                None => Ok(Top {
                    titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                        .map(str::to_owned)
                        .to_vec(),
                    processes: {
                        let users = host_user_names();
                        pids.into_iter()
                            .filter_map(|pid| process_row(pid, &users))
                            .collect()
                    },
                }),
            }
        })
        .await
        .map_err(|_| ContainerError::Task("top"))?
    }
}

/// Moby's check: a `key=PID...` column rename is only allowed for `pid`,
/// since the rows are matched on the PID column.
fn validate_ps_args(args: &str) -> Result<(), ContainerError> {
    for word in args.split_whitespace() {
        if let Some((key, value)) = word.split_once('=')
            && value.starts_with("PID")
            && key != "pid"
        {
            return Err(ContainerError::InvalidConfig(format!(
                "specifying \"{key}={value}\" is not allowed"
            )));
        }
    }
    Ok(())
}

/// The host's `ps <args> -q <pids>` (or `ps <args>` when ps refuses `-q`
/// with them, as for `f`), rows kept for `pids`; moby's texts on failure.
fn run_ps(args: &str, pids: &[i32]) -> Result<Top, ContainerError> {
    let args: Vec<&str> = args.split(' ').filter(|a| !a.is_empty()).collect();
    let pid_list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let ps = |extra: &[&str]| {
        std::process::Command::new("ps")
            .args(&args)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let mut output = ps(&["-q", &pid_list]);
    if !output.as_ref().is_ok_and(|o| o.status.success()) {
        output = ps(&[]);
    }
    let output = output.map_err(|e| ContainerError::Ps(format!("ps: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        return Err(ContainerError::Ps(if first.is_empty() {
            format!("ps: {}", output.status)
        } else {
            format!("ps: {first}")
        }));
    }
    parse_ps_output(&String::from_utf8_lossy(&output.stdout), pids)
}

/// Moby's `parsePSOutput`: titles from the first line, rows whose PID
/// column is one of `pids`, overhanging fields merged into the last column.
fn parse_ps_output(output: &str, pids: &[i32]) -> Result<Top, ContainerError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ContainerError::Ps("Couldn't find PID field in ps output".to_owned()))?;
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        let pid: i32 = pid
            .parse()
            .map_err(|e| ContainerError::Ps(format!("Unexpected pid '{pid}': {e}")))?;
        if pids.contains(&pid) {
            let last = titles.len() - 1;
            let mut row: Vec<String> = fields[..last.min(fields.len())]
                .iter()
                .map(|f| (*f).to_owned())
                .collect();
            row.push(fields.get(last..).unwrap_or_default().join(" "));
            processes.push(row);
        }
    }
    Ok(Top { titles, processes })
}

/// User names by uid from the host's `/etc/passwd`, as the host's `ps -ef`
/// (what dockerd's `top` runs) shows them: the first entry of a uid wins,
/// and a name wider than ps's 8 columns stays a number.
fn host_user_names() -> HashMap<String, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut names = HashMap::new();
    for line in passwd.lines() {
        let mut fields = line.split(':');
        if let (Some(name), Some(uid)) = (fields.next(), fields.nth(1))
            && name.len() <= 8
        {
            names
                .entry(uid.to_owned())
                .or_insert_with(|| name.to_owned());
        }
    }
    names
}

/// One `ps -ef`-style row from `/proc/<pid>`; `None` if it is gone.
fn process_row(pid: i32, users: &HashMap<String, String>) -> Option<Vec<String>> {
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
        .unwrap_or("?");
    let uid = users.get(uid).cloned().unwrap_or_else(|| uid.to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_keeps_the_containers_rows_and_merges_the_command() {
        let out = "  PID USER     COMMAND\n    1 root     init\n   42 root     sleep 300\n   43 nobody   sh -c x\n";
        let top = parse_ps_output(out, &[42, 43]).unwrap();
        assert_eq!(top.titles, ["PID", "USER", "COMMAND"]);
        assert_eq!(
            top.processes,
            [["42", "root", "sleep 300"], ["43", "nobody", "sh -c x"]]
        );
        assert!(matches!(
            parse_ps_output("USER COMMAND\nroot init\n", &[1]),
            Err(ContainerError::Ps(m)) if m == "Couldn't find PID field in ps output"
        ));
    }

    #[test]
    fn only_pid_may_be_renamed_to_a_pid_column() {
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        assert!(matches!(
            validate_ps_args("-o user=PID"),
            Err(ContainerError::InvalidConfig(m)) if m == "specifying \"user=PID\" is not allowed"
        ));
    }
}
