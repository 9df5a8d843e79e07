//! `runtime-concurrent`: [`CONTAINERS`] runs of the busybox `/bin/true`
//! bundle started at once (`<runtime> --root <tmp> run --bundle <b> <id>`,
//! spawned back to back from one thread, each with a unique id) for Berth's
//! runtime, crun and runc, interleaved. Metric `wall`: from the first spawn
//! until all of them have exited. A trial fails if any run fails; its
//! containers are then force-deleted.

use std::fs::File;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::{Context, Runtime, Sample, Scenario, interleaved};
use crate::process;
use crate::report::ScenarioReport;

/// Containers started at once per trial.
pub(crate) const CONTAINERS: usize = 50;

#[derive(Debug)]
pub(crate) struct RuntimeConcurrent;

impl Scenario for RuntimeConcurrent {
    fn name(&self) -> &'static str {
        "runtime-concurrent"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "{CONTAINERS} × `<runtime> --root <tmp> run --bundle <b> <unique id>` of the busybox \
             `/bin/true` bundle, all spawned at once (back to back from one thread); `wall` = \
             first spawn to last exit; {} runs per engine after {} warm-up, interleaved.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let bundle = ctx.bundle.to_string_lossy().into_owned();
        let (engines, notes) = interleaved(ctx, self.name(), |rt, id| {
            let ids: Vec<String> = (0..CONTAINERS).map(|i| format!("{id}-{i}")).collect();
            let outcome = burst(rt, &bundle, &ids, ctx);
            if outcome.is_err() {
                for id in &ids {
                    let _ = rt.output(&["delete", "--force", id]);
                }
            }
            outcome
        })?;
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// One trial: every `run` at once, then wait for all.
fn burst(
    rt: &Runtime<'_>,
    bundle: &str,
    ids: &[String],
    ctx: &Context,
) -> anyhow::Result<Vec<Sample>> {
    // One log per run (never a pipe: a container may hold it), next to
    // the engine's state root; kept until the next trial.
    let log = |i: usize| rt.root.with_file_name(format!("concurrent-{i}.log"));
    let mut cmds = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let path = log(i);
        let out = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut cmd = Command::new(&rt.engine.bin);
        cmd.arg("--root")
            .arg(&rt.root)
            .args(["run", "--bundle", bundle, id])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        cmds.push(cmd);
    }
    let all = process::run_together(&mut cmds, ctx.timeout)
        .with_context(|| format!("spawning {}", rt.engine.bin.display()))?;
    let failed: Vec<usize> = (0..all.each.len()).filter(|&i| !all.each[i].ok()).collect();
    if let Some(&first) = failed.first() {
        let m = &all.each[first];
        let why = if m.timed_out {
            format!("killed after {:?}", ctx.timeout)
        } else {
            m.status.to_string()
        };
        let text = std::fs::read_to_string(log(first)).unwrap_or_default();
        bail!(
            "{} of {} runs failed; `{} run {}` {why}: {}",
            failed.len(),
            ids.len(),
            rt.engine.name,
            ids[first],
            text.trim()
        );
    }
    Ok(vec![Sample::time("wall", all.wall.as_secs_f64() * 1e3)])
}
