//! Scenarios: one benchmark each, run against every engine in the same
//! invocation.
//!
//! A scenario gets a [`Context`] (run counts, the shared busybox bundle, a
//! temp work dir, the engines that were found) and returns a
//! [`ScenarioReport`]. [`interleaved`] is the common driver of the runtime
//! scenarios: warm-up rounds first, then measured rounds, and in every round
//! one trial per engine (A, B, C, A, B, C, ...), so drift on a noisy machine
//! hits all engines alike. An engine whose warm-up fails is skipped with the
//! reason; a failed measured trial is recorded as an error, never as a
//! sample.

mod cli_ps;
mod daemon_idle;
mod density;
mod fleet;
mod port_throughput;
mod pull;
mod pull_cold;
mod pull_sizes;
mod run_concurrent;
mod run_rm;
mod runtime_concurrent;
mod runtime_exec;
mod runtime_lifecycle;
mod runtime_start;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::engine::{Engine, Missing};
use crate::host;
use crate::process::{self, Measured, run_measured};
use crate::report::{EngineResult, Growth, Metric, ScenarioReport, Status, Unit};

/// Give up on an engine after this many failed measured trials in a row.
const MAX_CONSECUTIVE_FAILURES: usize = 3;

/// What every scenario gets.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) runs: usize,
    pub(crate) warmup: usize,
    /// Longest a single command may take before it is killed.
    pub(crate) timeout: Duration,
    pub(crate) engines: Vec<Result<Engine, Missing>>,
    /// Temp dir for state roots and logs, removed at the end.
    pub(crate) work: PathBuf,
    /// The busybox bundle whose process is `/bin/true`.
    pub(crate) bundle: PathBuf,
    /// Prefix of every container id, unique to this process (`bp<pid>-`);
    /// also how leaked cgroups are found.
    pub(crate) id_prefix: String,
    /// Each timed run waits for a quiet machine first (see
    /// [`host::wait_until_quiet`]).
    pub(crate) quiet: bool,
    seq: AtomicUsize,
}

impl Context {
    pub(crate) fn new(
        runs: usize,
        warmup: usize,
        timeout: Duration,
        engines: Vec<Result<Engine, Missing>>,
        work: PathBuf,
        bundle: PathBuf,
    ) -> Self {
        let id_prefix = format!("bp{}-", std::process::id());
        Self {
            runs,
            warmup,
            timeout,
            engines,
            work,
            bundle,
            id_prefix,
            quiet: true,
            seq: AtomicUsize::new(0),
        }
    }

    /// A container id never used before in this process.
    pub(crate) fn fresh_id(&self, engine: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}{engine}-{n}", self.id_prefix)
    }
}

/// A benchmark.
pub(crate) trait Scenario {
    /// Name on the command line and in reports.
    fn name(&self) -> &'static str;
    /// One sentence for the report: what is measured, how.
    fn description(&self, ctx: &Context) -> String;
    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport>;
}

/// Every scenario, in the order `run` without names runs them.
pub(crate) fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(runtime_start::RuntimeStart),
        Box::new(runtime_lifecycle::RuntimeLifecycle),
        Box::new(runtime_exec::RuntimeExec),
        Box::new(runtime_concurrent::RuntimeConcurrent),
        Box::new(pull_cold::PullCold),
        Box::new(pull_sizes::PullSizes),
        Box::new(daemon_idle::DaemonIdle),
        Box::new(run_rm::RunRm),
        Box::new(run_concurrent::RunConcurrent),
        Box::new(cli_ps::CliPs),
        Box::new(density::Density),
        Box::new(port_throughput::PortThroughput),
    ]
}

/// The growth curve point a scenario gives its metric `metric`, for
/// reports written before metrics carried one.
pub(crate) fn growth_of(scenario: &str, metric: &str) -> Option<Growth> {
    match scenario {
        "density" => density::growth(metric),
        _ => None,
    }
}

/// Sets the `growth` of every metric in `engines` that `growth` places on a
/// curve.
pub(crate) fn place_on_curves(
    engines: &mut [EngineResult],
    growth: impl Fn(&str) -> Option<Growth>,
) {
    for m in engines.iter_mut().flat_map(|e| e.metrics.iter_mut()) {
        m.growth = growth(&m.name);
    }
}

/// One sample of one metric from one trial.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) metric: &'static str,
    pub(crate) unit: Unit,
    pub(crate) value: f64,
    /// Peak RSS of the one process the metric timed, if it was one.
    pub(crate) rss_kib: Option<u64>,
}

impl Sample {
    /// The wall time and peak RSS of one measured process.
    pub(crate) fn of(metric: &'static str, m: &Measured) -> Self {
        Self {
            rss_kib: Some(m.maxrss_kib),
            ..Self::time(metric, m.ms())
        }
    }

    /// A time in milliseconds that is not one process's.
    pub(crate) fn time(metric: &'static str, ms: f64) -> Self {
        Self {
            metric,
            unit: Unit::Ms,
            value: ms,
            rss_kib: None,
        }
    }

    /// A throughput in MB/s (10^6 bytes per second).
    pub(crate) fn throughput(metric: &'static str, mb_per_s: f64) -> Self {
        Self {
            metric,
            unit: Unit::MbPerS,
            value: mb_per_s,
            rss_kib: None,
        }
    }

    /// An amount of memory in KiB.
    pub(crate) fn memory(metric: &'static str, kib: u64) -> Self {
        Self {
            metric,
            unit: Unit::Kib,
            value: kib as f64,
            rss_kib: None,
        }
    }
}

/// Adds `sample` to its metric in `result`, creating the metric (in the
/// sample's unit) on first use.
pub(crate) fn record(result: &mut EngineResult, sample: Sample) {
    let idx = match result.metrics.iter().position(|m| m.name == sample.metric) {
        Some(i) => i,
        None => {
            result.metrics.push(Metric::new(sample.metric, sample.unit));
            result.metrics.len() - 1
        }
    };
    let m = &mut result.metrics[idx];
    debug_assert_eq!(m.unit, sample.unit, "metric {} changed unit", m.name);
    m.samples.push(sample.value);
    m.rss_kib.extend(sample.rss_kib);
}

/// An OCI runtime driven with a private `--root`, its output going to a log
/// file (never a pipe: a container's init inherits it and may outlive the
/// command).
#[derive(Debug)]
pub(crate) struct Runtime<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) root: PathBuf,
    log: PathBuf,
    timeout: Duration,
}

impl<'a> Runtime<'a> {
    fn new(engine: &'a Engine, dir: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let root = dir.join("root");
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Self {
            engine,
            root,
            log: dir.join("output.log"),
            timeout,
        })
    }

    /// `<bin> --root <root> <args>`, output to the log file (truncated).
    pub(crate) fn command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let log =
            File::create(&self.log).with_context(|| format!("creating {}", self.log.display()))?;
        let mut cmd = Command::new(&self.engine.bin);
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(cmd)
    }

    /// Runs and measures `<runtime> <args>`; an error (with the end of the
    /// output) unless it exits 0 in time.
    pub(crate) fn measure(&self, args: &[&str]) -> anyhow::Result<Measured> {
        let mut cmd = self.command(args)?;
        let m = run_measured(&mut cmd, self.timeout)
            .with_context(|| format!("spawning {}", self.engine.bin.display()))?;
        if !m.ok() {
            let why = if m.timed_out {
                format!("killed after {:?}", self.timeout)
            } else {
                m.status.to_string()
            };
            let verb = args.first().copied().unwrap_or("");
            bail!(
                "`{} {verb}` {why}: {}",
                self.engine.name,
                self.output_tail()
            );
        }
        Ok(m)
    }

    /// Runs `<runtime> <args>` and returns its stdout, unmeasured.
    pub(crate) fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.engine.bin);
        cmd.arg("--root").arg(&self.root).args(args);
        let (m, stdout, stderr) = process::output(&mut cmd, self.timeout)?;
        if !m.ok() {
            let why = if m.timed_out {
                "timed out".to_string()
            } else {
                m.status.to_string()
            };
            bail!(
                "`{} {}` {why}: {}",
                self.engine.name,
                args.join(" "),
                stderr.trim()
            );
        }
        Ok(stdout)
    }

    /// `delete --force` every container left in this root; best effort.
    pub(crate) fn delete_all(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut left = Vec::new();
        for id in entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
        {
            let _ = self.output(&["delete", "--force", &id]);
            left.push(id);
        }
        left
    }

    fn output_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let text = text.trim();
        let start = text.len().saturating_sub(400);
        let start = (start..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        if text.is_empty() {
            "(no output)".into()
        } else {
            text[start..].to_string()
        }
    }
}

/// One engine of [`rounds`]: its result so far and, while it is still
/// measured, what its trials run on.
struct Slot<T> {
    name: &'static str,
    result: EngineResult,
    subject: Option<T>,
    consecutive_failures: usize,
}

impl<T> Slot<T> {
    fn skip(&mut self, reason: String) {
        self.result.status = Status::Skipped;
        self.result.reason = Some(reason);
        self.subject = None;
    }

    fn record(&mut self, samples: Vec<Sample>) {
        for s in samples {
            record(&mut self.result, s);
        }
    }
}

/// The interleaving driver shared by all scenarios: `ctx.warmup` +
/// `ctx.runs` rounds, each running `trial` once per engine that is still
/// measured, in the order given. `engines` pairs each engine's name with
/// what its trials need, or the reason it cannot run (reported as
/// skipped). A failed warm-up skips the engine; a failed measured trial is
/// recorded as an error, and [`MAX_CONSECUTIVE_FAILURES`] in a row stop the
/// engine. `trial` (and whatever it owns) is dropped before this returns.
/// Summaries are not filled: see [`ScenarioReport::finish`].
pub(crate) fn rounds<T>(
    ctx: &Context,
    scenario: &str,
    engines: Vec<(&'static str, Result<T, String>)>,
    mut trial: impl FnMut(&T, &'static str) -> anyhow::Result<Vec<Sample>>,
) -> Vec<EngineResult> {
    let mut slots: Vec<Slot<T>> = engines
        .into_iter()
        .map(|(name, subject)| {
            let (status, reason, subject) = match subject {
                Ok(s) => (Status::Ok, None, Some(s)),
                Err(why) => (Status::Skipped, Some(why), None),
            };
            Slot {
                name,
                result: EngineResult {
                    engine: name.to_string(),
                    status,
                    reason,
                    errors: Vec::new(),
                    metrics: Vec::new(),
                },
                subject,
                consecutive_failures: 0,
            }
        })
        .collect();

    for round in 0..ctx.warmup + ctx.runs {
        let warm = round < ctx.warmup;
        if warm {
            eprintln!("[{scenario}] warm-up {}/{}", round + 1, ctx.warmup);
        } else {
            let n = round - ctx.warmup + 1;
            if n == 1 || n % 10 == 0 || n == ctx.runs {
                eprintln!("[{scenario}] run {n}/{}", ctx.runs);
            }
        }
        for slot in &mut slots {
            let Some(subject) = &slot.subject else {
                continue;
            };
            let name = slot.name;
            if ctx.quiet && !host::wait_until_quiet() && !warm {
                eprintln!(
                    "[{scenario}] {name}: the machine was not quiet after 1 s; measured anyway"
                );
            }
            match trial(subject, name) {
                Ok(samples) if !warm => {
                    slot.consecutive_failures = 0;
                    slot.record(samples);
                }
                Ok(_) => {}
                Err(e) if warm => {
                    eprintln!("[{scenario}] {name}: warm-up failed, skipping: {e:#}");
                    slot.skip(format!("warm-up run failed: {e:#}"));
                }
                Err(e) => {
                    let n = round - ctx.warmup + 1;
                    eprintln!("[{scenario}] {name}: run {n} failed: {e:#}");
                    slot.result.status = Status::Failed;
                    slot.result.errors.push(format!("run {n}: {e:#}"));
                    slot.consecutive_failures += 1;
                    if slot.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                        slot.result.errors.push(format!(
                            "gave up after {MAX_CONSECUTIVE_FAILURES} failed runs in a row"
                        ));
                        slot.subject = None;
                    }
                }
            }
        }
    }
    drop(trial);
    slots.into_iter().map(|s| s.result).collect()
}

/// [`rounds`] over the OCI runtimes: each engine gets a [`Runtime`] with
/// its own `--root` and every trial a fresh container id. A failed trial's
/// container is force-deleted; at the end leftover containers are
/// force-deleted and leaked cgroups reported in `notes`. `trial` is dropped
/// before that cleanup, so what it owns (e.g. a container kept running
/// across trials, with a Drop guard) goes first.
pub(crate) fn interleaved(
    ctx: &Context,
    scenario: &str,
    mut trial: impl FnMut(&Runtime<'_>, &str) -> anyhow::Result<Vec<Sample>>,
) -> anyhow::Result<(Vec<EngineResult>, Vec<String>)> {
    let mut engines = Vec::new();
    for found in &ctx.engines {
        engines.push(match found {
            Ok(engine) => {
                let dir = ctx.work.join("state").join(scenario).join(engine.name);
                (engine.name, Ok(Runtime::new(engine, &dir, ctx.timeout)?))
            }
            Err(missing) => (missing.name, Err(missing.reason.clone())),
        });
    }
    let results = rounds(ctx, scenario, engines, move |rt, _| {
        let id = ctx.fresh_id(rt.engine.name);
        let outcome = trial(rt, &id);
        if outcome.is_err() {
            // Leave nothing behind from a failed trial.
            let _ = rt.output(&["delete", "--force", &id]);
        }
        crate::sys::reap_exited();
        outcome
    });

    // Clean up and look for leaks. Skipped engines' roots are cleaned too.
    let mut notes = Vec::new();
    for found in ctx.engines.iter().flatten() {
        let dir = ctx.work.join("state").join(scenario).join(found.name);
        if let Ok(rt) = Runtime::new(found, &dir, ctx.timeout) {
            let left = rt.delete_all();
            if !left.is_empty() {
                notes.push(format!(
                    "{}: force-deleted leftover containers {left:?}",
                    found.name
                ));
            }
        }
    }
    crate::sys::reap_exited();
    for cg in host::cgroups_named(&ctx.id_prefix) {
        let removed = fs::remove_dir(&cg).is_ok();
        notes.push(format!(
            "leaked cgroup {} ({})",
            cg.display(),
            if removed {
                "removed"
            } else {
                "could not remove"
            }
        ));
    }
    Ok((results, notes))
}
