//! `runtime-exec`: `<runtime> exec <id> /bin/true` into a running busybox
//! container, for Berth's runtime, crun and runc, interleaved. Each engine
//! gets one long-running container (`/bin/sleep 1000`, created with
//! `create --pid-file` and `start` in the engine's private `--root`, from a
//! bundle that shares the busybox rootfs), made on the engine's first trial
//! and not measured; the metric `exec` is the wall time of the `exec`
//! command from spawn to exit, with its peak RSS. The container is killed
//! and force-deleted at the end, and after a failed exec (the next trial
//! makes a new one), by a Drop guard.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::runtime_lifecycle::read_pid;
use super::{Context, Runtime, Sample, Scenario, interleaved};
use crate::fixture;
use crate::process;
use crate::report::ScenarioReport;
use crate::sys;

/// What the long-running container runs.
const SLEEPER: [&str; 2] = ["/bin/sleep", "1000"];

#[derive(Debug)]
pub(crate) struct RuntimeExec;

impl Scenario for RuntimeExec {
    fn name(&self) -> &'static str {
        "runtime-exec"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "`<runtime> --root <tmp> exec <id> /bin/true` into a running busybox container \
             (`sleep 1000`, one per engine, created and started before the measured runs), \
             wall time from spawn to exit; {} runs per engine after {} warm-up, interleaved. \
             Peak RSS: ru_maxrss of the exec process.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let bundle = sleeper_bundle(&ctx.bundle, &ctx.work.join("bundle-sleep"))?;
        let bundle = bundle.to_string_lossy().into_owned();
        let timeout = ctx.timeout;
        // Moved into the trial closure, so the containers are removed when
        // the rounds end, before `interleaved` cleans up.
        let mut running: HashMap<&'static str, Running> = HashMap::new();
        let (engines, notes) = interleaved(ctx, self.name(), move |rt, id| {
            let name = rt.engine.name;
            if !running.contains_key(name) {
                running.insert(name, Running::start(rt, &bundle, id, timeout)?);
            }
            let target = running[name].id.clone();
            match rt.measure(&["exec", &target, "/bin/true"]) {
                Ok(m) => Ok(vec![Sample::of("exec", &m)]),
                Err(e) => {
                    // Start over with a fresh container next time.
                    running.remove(name);
                    Err(e)
                }
            }
        })?;
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// A bundle in `dir` whose config is the shared bundle's with
/// `process.args` = [`SLEEPER`] and `root.path` pointing at the shared
/// bundle's rootfs (absolute), so the rootfs is not copied.
fn sleeper_bundle(shared: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let src = shared.join("config.json");
    let text = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
    let mut config = fixture::patch_config(serde_json::from_slice(&text)?, &SLEEPER)?;
    let rootfs = shared.join("rootfs");
    config
        .get_mut("root")
        .and_then(|r| r.as_object_mut())
        .with_context(|| format!("{} has no root object", src.display()))?
        .insert("path".into(), rootfs.to_string_lossy().into_owned().into());
    let dst = dir.join("config.json");
    fs::write(&dst, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", dst.display()))?;
    Ok(dir.to_path_buf())
}

/// A container left running for the exec trials; killed, reaped and
/// force-deleted on drop.
#[derive(Debug)]
struct Running {
    bin: PathBuf,
    root: PathBuf,
    id: String,
    /// The container's init, once known.
    pid: Option<u32>,
    timeout: Duration,
}

impl Running {
    /// `create --pid-file` + `start` of the sleeper bundle as `id`. The
    /// guard exists from the moment `create` succeeded, so a failing `start`
    /// leaves nothing behind.
    fn start(rt: &Runtime<'_>, bundle: &str, id: &str, timeout: Duration) -> anyhow::Result<Self> {
        let pid_file = rt.root.with_file_name(format!("{id}.pid"));
        let pid_arg = pid_file.to_string_lossy();
        rt.measure(&["create", "--bundle", bundle, "--pid-file", &pid_arg, id])?;
        let mut guard = Self {
            bin: rt.engine.bin.clone(),
            root: rt.root.clone(),
            id: id.to_string(),
            pid: None,
            timeout,
        };
        guard.pid = Some(read_pid(&pid_file)?);
        let _ = fs::remove_file(&pid_file);
        rt.measure(&["start", id])?;
        Ok(guard)
    }

    /// `<bin> --root <root> <args>`, unmeasured, best effort (output
    /// discarded).
    fn quietly(&self, args: &[&str]) {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root).args(args);
        let _ = process::output(&mut cmd, self.timeout);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.quietly(&["kill", &self.id, "KILL"]);
        // The init is our child (we are its subreaper since `create`
        // exited): reap it, so `delete` sees it stopped and no zombie stays.
        if let Some(pid) = self.pid {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(sys::try_reap(pid), Ok(false)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
        self.quietly(&["delete", "--force", &self.id]);
    }
}
