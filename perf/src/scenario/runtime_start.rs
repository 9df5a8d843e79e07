//! `runtime-start`: the busybox `/bin/true` bundle run to completion by
//! `<runtime> --root <tmp> run --bundle <bundle> <fresh id>`, for Berth's
//! runtime, crun and runc. Metric `run`: wall time from spawn to exit of the
//! runtime command, and its peak RSS (`ru_maxrss` via `wait4`, which also
//! covers the descendants the runtime reaped itself, e.g. the container's
//! init).

use super::{Context, Sample, Scenario, interleaved};
use crate::report::ScenarioReport;

#[derive(Debug)]
pub(crate) struct RuntimeStart;

impl Scenario for RuntimeStart {
    fn name(&self) -> &'static str {
        "runtime-start"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "busybox `/bin/true` bundle, `<runtime> --root <tmp> run --bundle <b> <fresh id>`, \
             wall time from spawn to exit; {} runs per engine after {} warm-up, interleaved. \
             Ratio: engine median / baseline median, 95% bootstrap CI. Peak RSS: ru_maxrss of \
             the runtime process.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let bundle = ctx.bundle.to_string_lossy().into_owned();
        let (engines, notes) = interleaved(ctx, self.name(), |rt, id| {
            let m = rt.measure(&["run", "--bundle", &bundle, id])?;
            Ok(vec![Sample::of("run", &m)])
        })?;
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}
