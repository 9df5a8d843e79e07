//! `runtime-lifecycle`: the same bundle through the split lifecycle,
//! `create --pid-file` + `start` + wait for the container to exit +
//! `delete`, each verb timed on its own (metrics `create`, `start`,
//! `delete`; `total` is all four steps, wall clock).
//!
//! Waiting for the exit: `create` leaves the container's init orphaned, and
//! berth-perf makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`, set
//! in `main` before any scenario), so the init is reparented to us and we
//! `wait4` for the pid from the pid file. If that pid is not our child
//! (a runtime that keeps a monitor process as its parent), we fall back to
//! polling `state <id>` until it reports `stopped`.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Context, Runtime, Sample, Scenario, interleaved};
use crate::report::ScenarioReport;
use crate::sys;

#[derive(Debug)]
pub(crate) struct RuntimeLifecycle;

impl Scenario for RuntimeLifecycle {
    fn name(&self) -> &'static str {
        "runtime-lifecycle"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "busybox `/bin/true` bundle through `create --pid-file`, `start`, wait for exit \
             (as subreaper), `delete`; each verb timed alone, `total` = all four steps; {} runs \
             per engine after {} warm-up, interleaved. Peak RSS: ru_maxrss of that verb's \
             process.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let bundle = ctx.bundle.to_string_lossy().into_owned();
        let (engines, notes) = interleaved(ctx, self.name(), |rt, id| {
            lifecycle(rt, &bundle, id, ctx.timeout)
        })?;
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

fn lifecycle(
    rt: &Runtime<'_>,
    bundle: &str,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<Sample>> {
    let pid_file = rt.root.with_file_name(format!("{id}.pid"));
    let pid_arg = pid_file.to_string_lossy();
    let started = Instant::now();
    let create = rt.measure(&["create", "--bundle", bundle, "--pid-file", &pid_arg, id])?;
    let pid = read_pid(&pid_file)?;
    let _ = fs::remove_file(&pid_file);
    let start = rt.measure(&["start", id])?;
    wait_for_exit(rt, id, pid, timeout)?;
    let delete = rt.measure(&["delete", id])?;
    let total = started.elapsed().as_secs_f64() * 1e3;
    Ok(vec![
        Sample::of("create", &create),
        Sample::of("start", &start),
        Sample::of("delete", &delete),
        Sample::time("total", total),
    ])
}

pub(super) fn read_pid(path: &Path) -> anyhow::Result<u32> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("bad pid {text:?} in {}", path.display()))
}

/// Waits for the container's init to exit: reap it as its subreaper, or poll
/// `state` if it is not our child.
fn wait_for_exit(rt: &Runtime<'_>, id: &str, pid: u32, timeout: Duration) -> anyhow::Result<()> {
    match sys::wait4(pid) {
        Ok(reaped) => {
            if !reaped.status.success() {
                bail!("container process exited with {}", reaped.status);
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => poll_stopped(rt, id, timeout),
        Err(e) => Err(e).context("waiting for the container's init"),
    }
}

fn poll_stopped(rt: &Runtime<'_>, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let state: serde_json::Value = serde_json::from_str(&rt.output(&["state", id])?)
            .context("parsing the output of state")?;
        if state["status"] == "stopped" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("container {id} still {} after {timeout:?}", state["status"]);
        }
        thread::sleep(Duration::from_millis(1));
    }
}
