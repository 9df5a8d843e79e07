//! The result of one `berth-perf run`: a JSON document (schema below, also in
//! perf/README.md) and a Markdown rendering of it, written side by side as
//! `<out>/berth-perf-<UTC timestamp>.{json,md}`.
//!
//! Schema version 3 (each metric names its unit; other memory fields are
//! KiB):
//!
//! ```text
//! Report      { schema_version: 3, tool_version, started_at (RFC 3339 UTC),
//!               runs, warmup, machine: Machine, engines: [EngineInfo],
//!               scenarios: [ScenarioReport] }
//! Machine     { cpu_model, cores, mem_total_kib, kernel_release,
//!               kernel_version, os, cgroups ("v1" | "v2" | "hybrid"),
//!               load_avg: [1m, 5m, 15m] }
//! EngineInfo  { name, binary?, version?, missing_reason? }
//! ScenarioReport { name, description, baseline?, engines: [EngineResult],
//!               notes: [string] }
//! EngineResult { engine, status ("ok" | "failed" | "skipped"), reason?,
//!               errors: [string], metrics: [Metric] }
//! Metric      { name, unit ("ms" | "KiB" | "MB/s"), samples: [f64], rss_kib: [u64],
//!               summary?: Summary, peak_rss_kib?, vs_baseline?: Ratio,
//!               growth?: Growth }
//! Summary     { n, median, p90, min, max, mean }   (in the metric's unit)
//! Ratio       { median_ratio, ci95_low, ci95_high }
//! Growth      { series, x: f64, x_unit ("containers" | "bytes") }
//! ```
//!
//! `growth` puts a metric on a curve: the metric is the value of `series`
//! at `x` (e.g. `shim@50` of `density` is series `shim PSS per container`
//! at 50 containers); the plots draw each series as one line per engine.
//!
//! Version 1 had no `unit` (every metric was a time) and called `samples`
//! `samples_ms`; such files still load, as `ms` metrics. Version 2 had no
//! `growth`; its `density` metrics get theirs when loaded
//! ([`Report::fill_legacy_growth`]). For `ms` and `KiB` more is worse: a
//! ratio above 1 means more time or more memory than the baseline. For
//! `MB/s` more is better: a ratio above 1 means more throughput than the
//! baseline.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::engine::BERTH;
use crate::stats::{Ratio, Summary};

/// Version of the JSON schema; bump on incompatible changes. 2: metrics
/// carry a `unit`, `samples_ms` became `samples`. 3: metrics on a growth
/// curve carry `growth`.
pub(crate) const SCHEMA_VERSION: u32 = 3;

/// One run of the harness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) schema_version: u32,
    /// Version of berth-perf that wrote the report.
    pub(crate) tool_version: String,
    /// Start of the run, RFC 3339 in UTC.
    pub(crate) started_at: String,
    /// Measured runs per engine and scenario.
    pub(crate) runs: usize,
    /// Warm-up runs per engine and scenario (not in the samples).
    pub(crate) warmup: usize,
    /// Each timed run started once the machine was quiet (older reports:
    /// right after the run before).
    #[serde(default)]
    pub(crate) quiet_starts: bool,
    pub(crate) machine: Machine,
    /// Every engine looked for, found or not.
    pub(crate) engines: Vec<EngineInfo>,
    pub(crate) scenarios: Vec<ScenarioReport>,
}

/// The machine the run happened on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub(crate) cpu_model: String,
    /// CPUs this process may run on.
    pub(crate) cores: usize,
    pub(crate) mem_total_kib: u64,
    /// `uname -r`.
    pub(crate) kernel_release: String,
    /// `uname -v`.
    pub(crate) kernel_version: String,
    /// PRETTY_NAME from /etc/os-release.
    pub(crate) os: String,
    /// Cgroup layout: `v1`, `v2`, `hybrid` or `none`.
    pub(crate) cgroups: String,
    /// 1, 5 and 15 minute load averages when the run started: a busy
    /// machine makes the absolute numbers (not the ratios) move.
    #[serde(default)]
    pub(crate) load_avg: [f64; 3],
}

#[cfg(test)]
impl Machine {
    /// A made-up machine for reports built in tests.
    pub(crate) fn for_tests() -> Machine {
        Machine {
            cpu_model: "cpu".into(),
            cores: 2,
            mem_total_kib: 1,
            kernel_release: String::new(),
            kernel_version: String::new(),
            os: String::new(),
            cgroups: "hybrid".into(),
            load_avg: [0.0; 3],
        }
    }
}

/// An engine that was looked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct EngineInfo {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) binary: Option<String>,
    /// First line of `<binary> --version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    /// Why the binary was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) missing_reason: Option<String>,
}

/// Results of one scenario, all engines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScenarioReport {
    pub(crate) name: String,
    pub(crate) description: String,
    /// Engine the ratios divide by: `berth` when it ran cleanly, otherwise
    /// the first engine that did; absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) baseline: Option<String>,
    pub(crate) engines: Vec<EngineResult>,
    /// Remarks on the run, e.g. leftover cgroups.
    #[serde(default)]
    pub(crate) notes: Vec<String>,
}

/// How an engine fared in a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Every measured run succeeded.
    Ok,
    /// At least one measured run failed (see `errors`); the samples are
    /// those of the runs that succeeded.
    Failed,
    /// Not measured: binary missing or a warm-up run failed (see `reason`).
    Skipped,
}

/// One engine in one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct EngineResult {
    pub(crate) engine: String,
    pub(crate) status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// One line per failed measured run.
    #[serde(default)]
    pub(crate) errors: Vec<String>,
    pub(crate) metrics: Vec<Metric>,
}

/// What a metric's samples count. For times and memory more is worse; for
/// throughput more is better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Unit {
    /// Milliseconds of wall time.
    #[default]
    #[serde(rename = "ms")]
    Ms,
    /// Kibibytes of memory.
    #[serde(rename = "KiB")]
    Kib,
    /// Throughput in megabytes (10^6 bytes) per second.
    #[serde(rename = "MB/s")]
    MbPerS,
}

impl Unit {
    /// The unit as written in reports: `ms`, `KiB` or `MB/s`.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Kib => "KiB",
            Unit::MbPerS => "MB/s",
        }
    }

    /// The unit in a file name (no `/`).
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Unit::MbPerS => "MBps",
            other => other.symbol(),
        }
    }

    /// Whether a larger value is the better one (throughput), so a ratio
    /// above 1 means better rather than worse.
    pub(crate) fn higher_is_better(self) -> bool {
        self == Unit::MbPerS
    }

    /// A value of this unit for a table: ms to the hundredth, KiB whole,
    /// MB/s to the tenth.
    pub(crate) fn format(self, value: f64) -> String {
        match self {
            Unit::Ms => format!("{value:.2}"),
            Unit::Kib => format!("{value:.0}"),
            Unit::MbPerS => format!("{value:.1}"),
        }
    }

    /// What the samples are, for plot captions.
    pub(crate) fn quantity(self) -> &'static str {
        match self {
            Unit::Ms => "wall time per run",
            Unit::Kib => "memory per run",
            Unit::MbPerS => "throughput per run",
        }
    }
}

/// One measured quantity (e.g. `run`, `create`, `pss`) of one engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Metric {
    pub(crate) name: String,
    /// Unit of `samples` and `summary`; absent in schema 1 files, where
    /// every metric was a time.
    #[serde(default)]
    pub(crate) unit: Unit,
    /// The value of each successful measured run, in run order (wall time
    /// for `ms` metrics).
    #[serde(alias = "samples_ms")]
    pub(crate) samples: Vec<f64>,
    /// Peak RSS (`ru_maxrss`) of the runtime process of each run, when the
    /// metric is one process; empty otherwise.
    #[serde(default)]
    pub(crate) rss_kib: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) summary: Option<Summary>,
    /// Largest of `rss_kib`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) peak_rss_kib: Option<u64>,
    /// This metric's median over the baseline engine's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vs_baseline: Option<Ratio>,
    /// Where this metric sits on a growth curve, if it is on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) growth: Option<Growth>,
}

/// A point of a growth curve: a metric is the value of `series` at `x`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Growth {
    /// The curve, e.g. `shim PSS per container`; plotted as one line per
    /// engine.
    pub(crate) series: String,
    pub(crate) x: f64,
    pub(crate) x_unit: XUnit,
}

/// What the x of a growth curve counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum XUnit {
    /// Containers running at once.
    Containers,
    /// Compressed size of an image, in bytes.
    Bytes,
}

impl XUnit {
    /// The axis title.
    pub(crate) fn axis(self) -> &'static str {
        match self {
            XUnit::Containers => "containers",
            XUnit::Bytes => "compressed image size (MB)",
        }
    }

    /// `x` in the axis' unit (bytes are drawn as MB).
    pub(crate) fn scaled(self, x: f64) -> f64 {
        match self {
            XUnit::Containers => x,
            XUnit::Bytes => x / 1e6,
        }
    }
}

impl Metric {
    pub(crate) fn new(name: &str, unit: Unit) -> Self {
        Self {
            name: name.to_string(),
            unit,
            samples: Vec::new(),
            rss_kib: Vec::new(),
            summary: None,
            peak_rss_kib: None,
            vs_baseline: None,
            growth: None,
        }
    }
}

impl ScenarioReport {
    /// A scenario's report from its results, summaries and ratios filled.
    pub(crate) fn finished(
        name: &str,
        description: String,
        engines: Vec<EngineResult>,
        notes: Vec<String>,
    ) -> Self {
        let mut report = Self {
            name: name.into(),
            description,
            baseline: None,
            engines,
            notes,
        };
        report.finish();
        report
    }

    /// Fills summaries, peaks, the baseline and every ratio to it.
    pub(crate) fn finish(&mut self) {
        for m in self.engines.iter_mut().flat_map(|e| e.metrics.iter_mut()) {
            m.summary = Summary::of(&m.samples);
            m.peak_rss_kib = m.rss_kib.iter().copied().max();
        }
        let ran = |e: &&EngineResult| e.status == Status::Ok;
        self.baseline = self
            .engines
            .iter()
            .filter(ran)
            .find(|e| e.engine == BERTH)
            .or_else(|| self.engines.iter().find(ran))
            .map(|e| e.engine.clone());
        let Some(base) = self
            .engines
            .iter()
            .find(|e| Some(&e.engine) == self.baseline.as_ref())
        else {
            return;
        };
        let base = base.metrics.clone();
        for m in self.engines.iter_mut().flat_map(|e| e.metrics.iter_mut()) {
            m.vs_baseline = base
                .iter()
                .find(|b| b.name == m.name && b.unit == m.unit)
                .and_then(|b| Ratio::of(&m.samples, &b.samples));
        }
    }
}

impl Report {
    /// Gives the metrics of a report older than version 3 the `growth`
    /// their scenario now records, so old reports plot the same curves.
    pub(crate) fn fill_legacy_growth(&mut self) {
        if self.schema_version >= 3 {
            return;
        }
        for sc in &mut self.scenarios {
            for m in sc.engines.iter_mut().flat_map(|e| e.metrics.iter_mut()) {
                if m.growth.is_none() {
                    m.growth = crate::scenario::growth_of(&sc.name, &m.name);
                }
            }
        }
    }

    /// Whether an engine that was measured had a failed run.
    pub(crate) fn has_failures(&self) -> bool {
        self.scenarios
            .iter()
            .flat_map(|s| &s.engines)
            .any(|e| e.status == Status::Failed)
    }

    /// Writes `berth-perf-<timestamp>.json` and `.md` into `out` (created)
    /// and returns their paths.
    pub(crate) fn write(&self, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let stem = format!("berth-perf-{}", self.started_at.replace(':', ""));
        let json = out.join(format!("{stem}.json"));
        let md = out.join(format!("{stem}.md"));
        fs::write(&json, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", json.display()))?;
        let text = self.markdown() + &self.plots_markdown(out, &stem);
        fs::write(&md, text).with_context(|| format!("writing {}", md.display()))?;
        Ok((json, md))
    }

    /// Draws this report's plots into `dir` and returns the Markdown that
    /// shows them (or says why there are none).
    fn plots_markdown(&self, dir: &Path, stem: &str) -> String {
        let mut text = String::new();
        match crate::plot::write_plots(self, dir, stem) {
            Ok(plots) => {
                for p in plots {
                    let name = p.file_name().unwrap_or_default().to_string_lossy();
                    let _ = writeln!(text, "\n![{name}]({name})");
                }
            }
            Err(e) => {
                let _ = writeln!(text, "\n(no plots: {e:#})");
            }
        }
        text
    }

    /// The report as Markdown: a machine line, then a table per scenario.
    pub(crate) fn markdown(&self) -> String {
        self.markdown_at(1)
    }

    /// [`markdown`](Self::markdown) with its title at heading `level`.
    fn markdown_at(&self, level: usize) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let h = "#".repeat(level);
        let _ = writeln!(s, "{h} berth-perf {}\n", self.started_at);
        let _ = writeln!(
            s,
            "{} ({} cores, {} MiB), {}, kernel {}, cgroups {}, load {:.2} at start; {} measured runs after {} warm-up, engines interleaved{}.\n",
            m.cpu_model,
            m.cores,
            m.mem_total_kib / 1024,
            m.os,
            m.kernel_release,
            m.cgroups,
            m.load_avg[0],
            self.runs,
            self.warmup,
            if self.quiet_starts {
                ", each timed run started once the machine was quiet (at most 1 ms of CPU time \
                 in 10 ms), so no engine's run overlaps the background work of the one before"
            } else {
                ", each timed run started right after the one before"
            }
        );
        for e in &self.engines {
            let what = match (&e.version, &e.missing_reason) {
                (Some(v), _) => v.clone(),
                (None, Some(r)) => format!("not found: {r}"),
                (None, None) => "version unknown".into(),
            };
            let bin = e
                .binary
                .as_deref()
                .map(|b| format!(" (`{b}`)"))
                .unwrap_or_default();
            let _ = writeln!(s, "- {}: {}{}", e.name, cell(&what), bin);
        }
        for sc in &self.scenarios {
            s.push('\n');
            s.push_str(&sc.markdown(level + 1));
        }
        s
    }
}

impl ScenarioReport {
    fn markdown(&self, level: usize) -> String {
        let mut s = String::new();
        let h = "#".repeat(level);
        let _ = writeln!(s, "{h} {}\n\n{}\n", self.name, self.description);
        let base = self.baseline.as_deref().unwrap_or("baseline");
        // One table for all units: the unit column says what median..mean
        // count on each row.
        let _ = writeln!(
            s,
            "| engine | metric | unit | n | median | p90 | min | max | mean | × {base} [95% CI] | peak RSS KiB |"
        );
        let _ = writeln!(s, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        // The 9 cells after `metric` on a row that only explains.
        const BLANK: &str = " | | | | | | | | |";
        for e in &self.engines {
            if e.status == Status::Skipped {
                let why = e.reason.as_deref().unwrap_or("no reason given");
                let _ = writeln!(s, "| {} | skipped: {} |{BLANK}", e.engine, cell(why));
                continue;
            }
            for m in &e.metrics {
                let unit = m.unit.symbol();
                let Some(st) = &m.summary else {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {unit} | 0 | | | | | | | |",
                        e.engine, m.name
                    );
                    continue;
                };
                let ratio = match (&m.vs_baseline, self.baseline.as_deref() == Some(&e.engine)) {
                    (_, true) => "1 (baseline)".to_string(),
                    (Some(r), false) => {
                        format!(
                            "{:.2} [{:.2}, {:.2}]",
                            r.median_ratio, r.ci95_low, r.ci95_high
                        )
                    }
                    (None, false) => String::new(),
                };
                let rss = m.peak_rss_kib.map(|k| k.to_string()).unwrap_or_default();
                let v = |x: f64| m.unit.format(x);
                let _ = writeln!(
                    s,
                    "| {} | {} | {unit} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    e.engine,
                    m.name,
                    st.n,
                    v(st.median),
                    v(st.p90),
                    v(st.min),
                    v(st.max),
                    v(st.mean),
                    ratio,
                    rss
                );
            }
            if !e.errors.is_empty() {
                let _ = writeln!(
                    s,
                    "| {} | FAILED {} run(s): {} |{BLANK}",
                    e.engine,
                    e.errors.len(),
                    cell(&e.errors[0])
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "\nNote: {n}");
        }
        s
    }
}

/// `berth-perf report`: several reports on one Markdown page at `page`,
/// each with its tables and plots (SVG files next to the page).
pub(crate) fn write_page(reports: &[Report], page: &Path) -> anyhow::Result<()> {
    let dir = page.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = String::from("# Berth performance record\n");
    for r in reports {
        let stem = format!("berth-perf-{}", r.started_at.replace(':', ""));
        // Each report's own title becomes a section of the page.
        text.push('\n');
        text.push_str(&r.markdown_at(2));
        text.push_str(&r.plots_markdown(dir, &stem));
    }
    fs::write(page, text).with_context(|| format!("writing {}", page.display()))
}

/// Makes text safe for one Markdown table cell.
fn cell(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut t = one_line.replace('|', "\\|");
    if t.len() > 160 {
        let cut = (0..=160)
            .rev()
            .find(|&i| t.is_char_boundary(i))
            .unwrap_or(0);
        t.truncate(cut);
        t.push('…');
    }
    t
}

/// Now as RFC 3339 UTC, to the second.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let metric = |name: &str, samples: &[f64], rss: &[u64]| {
            let mut m = Metric::new(name, Unit::Ms);
            m.samples = samples.to_vec();
            m.rss_kib = rss.to_vec();
            m
        };
        let memory = |name: &str, samples: &[f64]| {
            let mut m = Metric::new(name, Unit::Kib);
            m.samples = samples.to_vec();
            m
        };
        let mut scenario = ScenarioReport {
            name: "runtime-start".into(),
            description: "busybox true".into(),
            baseline: None,
            engines: vec![
                EngineResult {
                    engine: BERTH.into(),
                    status: Status::Skipped,
                    reason: Some("berth-runtime | not found".into()),
                    errors: vec![],
                    metrics: vec![],
                },
                EngineResult {
                    engine: "crun".into(),
                    status: Status::Ok,
                    reason: None,
                    errors: vec![],
                    metrics: vec![
                        metric("run", &[16.0, 15.5, 17.25], &[2000, 2100, 1900]),
                        memory("pss", &[4096.0, 4100.0, 4092.5]),
                    ],
                },
                EngineResult {
                    engine: "runc".into(),
                    status: Status::Failed,
                    reason: None,
                    errors: vec!["run 2: exit status 1".into()],
                    metrics: vec![
                        metric("run", &[38.0, 40.0], &[9000, 9100]),
                        memory("pss", &[8192.0, 8200.0]),
                    ],
                },
            ],
            notes: vec![],
        };
        scenario.finish();
        Report {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            started_at: "2026-05-01T12:00:00Z".into(),
            runs: 3,
            warmup: 1,
            quiet_starts: true,
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                mem_total_kib: 24 << 20,
                kernel_release: "6.18.0".into(),
                kernel_version: "#1 SMP".into(),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                cgroups: "hybrid".into(),
                load_avg: [0.5, 0.25, 0.125],
            },
            engines: vec![EngineInfo {
                name: "crun".into(),
                binary: Some("/usr/bin/crun".into()),
                version: Some("crun version 1.8.1".into()),
                missing_reason: None,
            }],
            scenarios: vec![scenario],
        }
    }

    #[test]
    fn json_round_trip() {
        let report = sample_report();
        let json = serde_json::to_string_pretty(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema_version"], 3);
        assert_eq!(v["scenarios"][0]["engines"][0]["status"], "skipped");
        let crun = &v["scenarios"][0]["engines"][1]["metrics"];
        assert_eq!(crun[0]["unit"], "ms");
        assert_eq!(crun[0]["summary"]["median"], 16.0);
        assert_eq!(crun[1]["unit"], "KiB");
        assert_eq!(crun[1]["samples"][2], 4092.5);
        assert_eq!(crun[1]["summary"]["median"], 4096.0);
    }

    /// A `density` scenario as the scenario now records it: every metric
    /// on its growth curve.
    fn density_scenario() -> ScenarioReport {
        let engine = |name: &str, values: &[(&str, f64)]| EngineResult {
            engine: name.into(),
            status: Status::Ok,
            reason: None,
            errors: vec![],
            metrics: values
                .iter()
                .map(|&(metric, kib)| Metric {
                    samples: vec![kib],
                    growth: crate::scenario::growth_of("density", metric),
                    ..Metric::new(metric, Unit::Kib)
                })
                .collect(),
        };
        ScenarioReport::finished(
            "density",
            "idle containers".into(),
            vec![
                engine(BERTH, &[("shim@1", 1986.0), ("shim@50", 206.0)]),
                engine("podman", &[("shim@1", 1077.0), ("shim@50", 368.0)]),
            ],
            vec![],
        )
    }

    #[test]
    fn growth_round_trips() {
        let mut report = sample_report();
        report.scenarios.push(density_scenario());
        let json = serde_json::to_string_pretty(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let berth = &v["scenarios"][1]["engines"][0]["metrics"];
        assert_eq!(
            berth[1]["growth"],
            serde_json::json!({"series": "shim PSS per container", "x": 50.0, "x_unit": "containers"})
        );
        assert_eq!(berth[1]["summary"]["median"], 206.0);
        // Metrics on no curve carry no `growth` at all.
        let crun = &v["scenarios"][0]["engines"][1]["metrics"][0];
        assert!(crun.get("growth").is_none(), "{crun}");
        let bytes: Growth =
            serde_json::from_str(r#"{"series": "gzip", "x": 1142638, "x_unit": "bytes"}"#).unwrap();
        assert_eq!(bytes.x_unit, XUnit::Bytes);
        assert_eq!(XUnit::Bytes.scaled(bytes.x), 1.142638);
        assert!(
            serde_json::from_str::<XUnit>("\"seconds\"").is_err(),
            "unknown x units are rejected"
        );
    }

    #[test]
    fn schema_2_density_metrics_get_their_growth() {
        let mut report = sample_report();
        report.scenarios.push(density_scenario());
        let mut v = serde_json::to_value(&report).unwrap();
        // What version 2 wrote: no `growth`.
        v["schema_version"] = 2.into();
        for e in v["scenarios"][1]["engines"].as_array_mut().unwrap() {
            for m in e["metrics"].as_array_mut().unwrap() {
                m.as_object_mut().unwrap().remove("growth").unwrap();
            }
        }
        let mut old: Report = serde_json::from_value(v).unwrap();
        assert!(old.scenarios[1].engines[0].metrics[0].growth.is_none());
        old.fill_legacy_growth();
        assert_eq!(old.scenarios, report.scenarios);

        // A version 3 report says itself which metrics are on a curve.
        let mut new = report.clone();
        for m in new.scenarios[1].engines[0].metrics.iter_mut() {
            m.growth = None;
        }
        new.fill_legacy_growth();
        assert!(new.scenarios[1].engines[0].metrics[0].growth.is_none());
    }

    #[test]
    fn schema_1_metrics_load_as_ms() {
        let mut v = serde_json::to_value(sample_report()).unwrap();
        // Turn the report back into what version 1 wrote: no unit, and the
        // samples under their old name.
        v["schema_version"] = 1.into();
        for e in v["scenarios"][0]["engines"].as_array_mut().unwrap() {
            for m in e["metrics"].as_array_mut().unwrap() {
                let m = m.as_object_mut().unwrap();
                m.remove("unit").unwrap();
                let samples = m.remove("samples").unwrap();
                m.insert("samples_ms".into(), samples);
            }
        }
        let old: Report = serde_json::from_value(v).unwrap();
        let crun = &old.scenarios[0].engines[1].metrics;
        assert_eq!(crun[0].unit, Unit::Ms);
        assert_eq!(crun[0].samples, [16.0, 15.5, 17.25]);
        // Without a unit even the memory metric reads as a time.
        assert_eq!(crun[1].unit, Unit::Ms);
        assert_eq!(crun[1].samples, [4096.0, 4100.0, 4092.5]);
        assert!(
            serde_json::from_str::<Unit>("\"GiB\"").is_err(),
            "unknown units are rejected"
        );
        assert_eq!(
            serde_json::from_str::<Unit>("\"MB/s\"").unwrap(),
            Unit::MbPerS
        );
        assert_eq!(serde_json::to_string(&Unit::MbPerS).unwrap(), "\"MB/s\"");
    }

    #[test]
    fn baseline_falls_back_to_first_clean_engine() {
        let report = sample_report();
        let sc = &report.scenarios[0];
        assert_eq!(sc.baseline.as_deref(), Some("crun"));
        let crun = &sc.engines[1].metrics[0];
        assert_eq!(crun.peak_rss_kib, Some(2100));
        assert_eq!(crun.vs_baseline.as_ref().unwrap().median_ratio, 1.0);
        let runc = &sc.engines[2].metrics[0];
        assert!((runc.vs_baseline.as_ref().unwrap().median_ratio - 39.0 / 16.0).abs() < 1e-12);
        let runc_pss = &sc.engines[2].metrics[1];
        assert!(
            (runc_pss.vs_baseline.as_ref().unwrap().median_ratio - 8196.0 / 4096.0).abs() < 1e-12
        );
        assert_eq!(runc_pss.peak_rss_kib, None);
        assert!(report.has_failures());
    }

    #[test]
    fn markdown_has_a_row_per_engine() {
        let md = sample_report().markdown();
        assert!(
            md.contains("| berth | skipped: berth-runtime \\| not found |"),
            "{md}"
        );
        assert!(md.contains("| crun | run | ms | 3 | 16.00 |"), "{md}");
        assert!(md.contains("| crun | pss | KiB | 3 | 4096 |"), "{md}");
        assert!(md.contains("| runc | run | ms | 2 |"), "{md}");
        // 8196 / 4096: twice the memory of the baseline.
        assert!(md.contains("| runc | pss | KiB | 2 | 8196 | "), "{md}");
        assert!(md.contains("| 2.00 ["), "{md}");
        assert!(md.contains("| runc | FAILED 1 run(s)"), "{md}");
        assert!(md.contains("× crun [95% CI]"), "{md}");
    }
}
