//! `berth-perf`: runs Berth and its peers side by side on the same machine,
//! in the same invocation, and writes the results as JSON plus a Markdown
//! table (see perf/README.md for the schema).
//!
//! A scenario ([`scenario::Scenario`]) measures one thing (starting a
//! container with an OCI runtime, ...) for every engine, interleaving the
//! engines run by run; [`stats`] turns samples into medians and bootstrap
//! confidence intervals of ratios to Berth; [`report`] writes the results.

#![deny(unsafe_code)]

mod compare;
mod engine;
mod fixture;
mod host;
mod peers;
mod plot;
mod process;
mod registry;
mod report;
mod scenario;
mod setup;
mod stats;
// The only module with unsafe code: the raw syscalls, each with a SAFETY note.
#[allow(unsafe_code)]
mod sys;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::report::{EngineInfo, Report, SCHEMA_VERSION};
use crate::scenario::Context;

#[derive(Parser, Debug)]
#[command(
    name = "berth-perf",
    version,
    about = "Benchmarks Berth against its peers, side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run scenarios (all of them when none is named) and write a report.
    Run {
        /// Scenarios to run (see `berth-perf list`); all when none is named.
        scenarios: Vec<String>,
        /// Measured runs per engine.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Warm-up runs per engine, not measured; an engine failing one is
        /// skipped.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Directory for the JSON and Markdown reports.
        #[arg(long, default_value = "target/perf-results")]
        out: PathBuf,
        /// Berth's OCI runtime (default: berth-runtime next to this binary,
        /// then on PATH).
        #[arg(long)]
        runtime_bin: Option<PathBuf>,
        /// Seconds after which a single runtime command is killed.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Start each timed run right after the one before, not once the
        /// machine is quiet.
        #[arg(long)]
        no_quiet: bool,
    },
    /// Prepare the host: install runc, crun, busybox-static; apply the
    /// hybrid-cgroup fix crun needs.
    Setup,
    /// List the scenarios.
    List,
    /// Turn JSON reports into one Markdown page with their tables and SVG
    /// plots (written next to the page).
    Report {
        /// JSON files written by `run`.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// The Markdown page to write.
        #[arg(long, default_value = "target/perf-results/report.md")]
        out: PathBuf,
    },
    /// Compare two reports: flags every metric where NEW is worse than OLD
    /// (slower, more memory, or less throughput) beyond the noise (95%
    /// bootstrap interval of NEW/OLD above 1 + margin, or below
    /// 1 / (1 + margin) for throughput). Exits 1 when one of Berth's metrics
    /// got worse.
    Compare {
        old: PathBuf,
        new: PathBuf,
        /// Changes smaller than this fraction are not flagged.
        #[arg(long, default_value_t = 0.05)]
        margin: f64,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth-perf: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Cmd::Setup => setup::setup().map(|()| ExitCode::SUCCESS),
        Cmd::List => {
            let ctx = Context::new(
                30,
                3,
                Duration::ZERO,
                Vec::new(),
                PathBuf::new(),
                PathBuf::new(),
            );
            for s in scenario::all() {
                println!("{}: {}", s.name(), s.description(&ctx));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report { reports, out } => {
            let mut loaded = Vec::new();
            for p in &reports {
                loaded.push(compare::load(p)?);
            }
            report::write_page(&loaded, &out)?;
            eprintln!("berth-perf: wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare { old, new, margin } => {
            let (old, new) = (compare::load(&old)?, compare::load(&new)?);
            let changes = compare::compare(&old, &new, margin);
            print!("{}", compare::markdown(&old, &new, &changes, margin));
            Ok(if compare::berth_regressed(&changes) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Run {
            scenarios,
            runs,
            warmup,
            out,
            runtime_bin,
            timeout,
            no_quiet,
        } => run(
            &scenarios,
            runs,
            warmup,
            out,
            runtime_bin,
            Duration::from_secs(timeout),
            !no_quiet,
        ),
    }
}

fn run(
    names: &[String],
    runs: usize,
    warmup: usize,
    out: PathBuf,
    runtime_bin: Option<PathBuf>,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let all = scenario::all();
    for n in names {
        if !all.iter().any(|s| s.name() == n) {
            let known: Vec<_> = all.iter().map(|s| s.name()).collect();
            bail!("unknown scenario {n:?} (known: {})", known.join(", "));
        }
    }
    let selected: Vec<_> = all
        .into_iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name()))
        .collect();

    if host::needs_hugetlb_fix() {
        eprintln!(
            "berth-perf: warning: hybrid cgroups with hugetlb on v2 only: crun 1.8 will fail; \
             run `berth-perf setup` (mounts hugetlb as v1 at /sys/fs/cgroup/hugetlb)"
        );
    }
    // Container inits left by `create` are reparented to us, so we can reap
    // them (runtime-lifecycle) and no zombie outlives the run.
    sys::set_child_subreaper().context("prctl(PR_SET_CHILD_SUBREAPER)")?;

    let started_at = report::now_rfc3339();
    let machine = host::machine();
    let engines = engine::discover(runtime_bin.as_deref());
    let infos = engines
        .iter()
        .map(|e| match e {
            Ok(e) => EngineInfo {
                name: e.name.into(),
                binary: Some(e.bin.display().to_string()),
                version: e.version.clone(),
                missing_reason: None,
            },
            Err(m) => EngineInfo {
                name: m.name.into(),
                binary: None,
                version: None,
                missing_reason: Some(m.reason.clone()),
            },
        })
        .collect();
    for e in &engines {
        match e {
            Ok(e) => eprintln!("berth-perf: {}: {}", e.name, e.bin.display()),
            Err(m) => eprintln!("berth-perf: {}: skipped: {}", m.name, m.reason),
        }
    }

    let work = tempfile::Builder::new()
        .prefix("berth-perf-")
        .tempdir()
        .context("creating a temp dir")?;
    let spec_tool = engine::which("runc")
        .or_else(|| engine::which("crun"))
        .context("neither runc nor crun is installed to write config.json (berth-perf setup)")?;
    let bundle = fixture::busybox_bundle(&work.path().join("bundle"), &spec_tool, &["/bin/true"])
        .context("building the busybox bundle")?;
    let mut ctx = Context::new(
        runs,
        warmup,
        timeout,
        engines,
        work.path().to_path_buf(),
        bundle,
    );
    ctx.quiet = quiet;

    let mut results = Vec::new();
    for s in &selected {
        eprintln!("berth-perf: scenario {}", s.name());
        let r = s
            .run(&ctx)
            .with_context(|| format!("scenario {}", s.name()))?;
        for n in &r.notes {
            eprintln!("berth-perf: {}: {n}", s.name());
        }
        results.push(r);
    }
    drop(ctx);
    work.close().context("removing the temp dir")?;

    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        runs,
        warmup,
        quiet_starts: quiet,
        machine,
        engines: infos,
        scenarios: results,
    };
    let (json, md) = report.write(&out)?;
    print!("{}", report.markdown());
    eprintln!("berth-perf: wrote {} and {}", json.display(), md.display());
    Ok(if report.has_failures() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
