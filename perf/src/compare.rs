//! `berth-perf compare OLD.json NEW.json`: for every metric of every engine
//! present in both reports, the ratio of NEW's median to OLD's with its 95%
//! bootstrap interval. For times and memory more is worse: a metric got
//! *worse* (SLOWER for times, LARGER for memory) when the whole interval
//! lies above `1 + margin`, i.e. the difference is beyond the noise of both
//! runs and bigger than the margin. For throughput (MB/s) less is worse:
//! SLOWER when the whole interval lies below `1 / (1 + margin)`. Berth's worse
//! metrics are regressions (exit 1); a peer's worse metrics point at a
//! noisier or slower machine, and are listed so the reader can tell the two
//! apart. A metric whose unit differs between the reports is not compared.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Context as _;

use crate::engine::BERTH;
use crate::report::{Report, Unit};
use crate::stats::{Ratio, Summary};

/// How one metric moved from OLD to NEW.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) scenario: String,
    pub(crate) engine: String,
    pub(crate) metric: String,
    pub(crate) unit: Unit,
    pub(crate) old: Summary,
    pub(crate) new: Summary,
    /// NEW median / OLD median with its interval.
    pub(crate) ratio: Ratio,
    pub(crate) verdict: Verdict,
}

/// Which way a metric moved, in the unit's sense of better and worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// NEW is worse than OLD beyond the noise and the margin.
    Worse,
    /// NEW is better than OLD beyond the noise and the margin.
    Better,
    Same,
}

impl Verdict {
    /// The verdict in the words of the unit: SLOWER/faster for times and
    /// throughput, LARGER/smaller for memory.
    fn word(self, unit: Unit) -> &'static str {
        match (self, unit) {
            (Verdict::Worse, Unit::Ms | Unit::MbPerS) => "SLOWER",
            (Verdict::Better, Unit::Ms | Unit::MbPerS) => "faster",
            (Verdict::Worse, Unit::Kib) => "LARGER",
            (Verdict::Better, Unit::Kib) => "smaller",
            (Verdict::Same, _) => "same",
        }
    }
}

pub(crate) fn load(path: &Path) -> anyhow::Result<Report> {
    let text = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut report: Report = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a berth-perf JSON report", path.display()))?;
    report.fill_legacy_growth();
    Ok(report)
}

/// Every metric found in both reports, with its verdict.
pub(crate) fn compare(old: &Report, new: &Report, margin: f64) -> Vec<Change> {
    let mut changes = Vec::new();
    for ns in &new.scenarios {
        let Some(os) = old.scenarios.iter().find(|s| s.name == ns.name) else {
            continue;
        };
        for ne in &ns.engines {
            let Some(oe) = os.engines.iter().find(|e| e.engine == ne.engine) else {
                continue;
            };
            for nm in &ne.metrics {
                let Some(om) = oe
                    .metrics
                    .iter()
                    .find(|m| m.name == nm.name && m.unit == nm.unit)
                else {
                    continue;
                };
                let (Some(old_s), Some(new_s), Some(ratio)) = (
                    Summary::of(&om.samples),
                    Summary::of(&nm.samples),
                    Ratio::of(&nm.samples, &om.samples),
                ) else {
                    continue;
                };
                let verdict = verdict(&ratio, margin, nm.unit.higher_is_better());
                changes.push(Change {
                    scenario: ns.name.clone(),
                    engine: ne.engine.clone(),
                    metric: nm.name.clone(),
                    unit: nm.unit,
                    old: old_s,
                    new: new_s,
                    ratio,
                    verdict,
                });
            }
        }
    }
    changes
}

/// `Worse` when the whole interval of NEW/OLD is past the margin on the
/// unit's bad side (above for times and memory, below for throughput),
/// `Better` when it is past it on the good side.
fn verdict(ratio: &Ratio, margin: f64, higher_is_better: bool) -> Verdict {
    let above = ratio.ci95_low > 1.0 + margin;
    let below = ratio.ci95_high < 1.0 / (1.0 + margin);
    match (above, below, higher_is_better) {
        (true, _, false) | (_, true, true) => Verdict::Worse,
        (_, true, false) | (true, _, true) => Verdict::Better,
        _ => Verdict::Same,
    }
}

/// Whether Berth itself got worse (slower or larger) anywhere.
pub(crate) fn berth_regressed(changes: &[Change]) -> bool {
    changes
        .iter()
        .any(|c| c.engine == BERTH && c.verdict == Verdict::Worse)
}

/// The comparison as a Markdown table, worse rows first.
pub(crate) fn markdown(old: &Report, new: &Report, changes: &[Change], margin: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# berth-perf compare\n\nOLD: {} ({}, {} cores, load {:.2})  \nNEW: {} ({}, {} cores, load {:.2})  \n\
         A metric is SLOWER (a time) or LARGER (memory) when the 95% interval of NEW/OLD \
         lies entirely above {:.2}; a throughput (MB/s) is SLOWER when it lies entirely \
         below {:.2}.\n",
        old.started_at,
        old.machine.cpu_model,
        old.machine.cores,
        old.machine.load_avg[0],
        new.started_at,
        new.machine.cpu_model,
        new.machine.cores,
        new.machine.load_avg[0],
        1.0 + margin,
        1.0 / (1.0 + margin)
    );
    if old.machine.cpu_model != new.machine.cpu_model || old.machine.cores != new.machine.cores {
        let _ = writeln!(
            s,
            "Warning: the reports come from different machines; compare ratios to peers instead.\n"
        );
    }
    let _ = writeln!(
        s,
        "| scenario | engine | metric | unit | OLD median | NEW median | NEW/OLD [95% CI] | verdict |\n\
         |---|---|---|---|--:|--:|--:|---|"
    );
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| match c.verdict {
        Verdict::Worse => 0,
        Verdict::Better => 1,
        Verdict::Same => 2,
    });
    for c in sorted {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} (n={}) | {} (n={}) | {:.2} [{:.2}, {:.2}] | {} |",
            c.scenario,
            c.engine,
            c.metric,
            c.unit.symbol(),
            c.unit.format(c.old.median),
            c.old.n,
            c.unit.format(c.new.median),
            c.new.n,
            c.ratio.median_ratio,
            c.ratio.ci95_low,
            c.ratio.ci95_high,
            c.verdict.word(c.unit)
        );
    }
    if changes.is_empty() {
        let _ = writeln!(s, "\nNo metric is present in both reports.");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineResult, Machine, Metric, SCHEMA_VERSION, ScenarioReport, Status};

    fn report(berth: &[f64], crun: &[f64]) -> Report {
        report_in(Unit::Ms, "run", berth, crun)
    }

    fn report_in(unit: Unit, metric: &str, berth: &[f64], crun: &[f64]) -> Report {
        let engine = |name: &str, samples: &[f64]| EngineResult {
            engine: name.into(),
            status: Status::Ok,
            reason: None,
            errors: vec![],
            metrics: vec![Metric {
                samples: samples.to_vec(),
                ..Metric::new(metric, unit)
            }],
        };
        Report {
            schema_version: SCHEMA_VERSION,
            tool_version: "test".into(),
            started_at: "2026-11-28T00:00:00Z".into(),
            runs: berth.len(),
            warmup: 0,
            quiet_starts: true,
            machine: Machine::for_tests(),
            engines: vec![],
            scenarios: vec![ScenarioReport {
                name: "runtime-start".into(),
                description: String::new(),
                baseline: None,
                engines: vec![engine(BERTH, berth), engine("crun", crun)],
                notes: vec![],
            }],
        }
    }

    fn spread(center: f64) -> Vec<f64> {
        (0..20).map(|i| center + (i % 5) as f64 * 0.1).collect()
    }

    #[test]
    fn a_clear_slowdown_of_berth_is_a_regression() {
        let old = report(&spread(6.0), &spread(14.0));
        let new = report(&spread(9.0), &spread(14.0));
        let changes = compare(&old, &new, 0.05);
        let berth = changes.iter().find(|c| c.engine == BERTH).unwrap();
        assert_eq!(berth.verdict, Verdict::Worse);
        assert!((berth.ratio.median_ratio - 1.5).abs() < 0.05);
        let crun = changes.iter().find(|c| c.engine == "crun").unwrap();
        assert_eq!(crun.verdict, Verdict::Same);
        assert!(berth_regressed(&changes));
        let md = markdown(&old, &new, &changes, 0.05);
        assert!(
            md.contains("| runtime-start | berth | run | ms | 6.20 (n=20) |"),
            "{md}"
        );
        assert!(md.contains("| SLOWER |"), "{md}");
    }

    #[test]
    fn more_memory_is_a_regression_and_less_is_not() {
        let old = report_in(Unit::Kib, "pss", &spread(9000.0), &spread(20000.0));
        let bigger = report_in(Unit::Kib, "pss", &spread(12000.0), &spread(20000.0));
        let changes = compare(&old, &bigger, 0.05);
        let berth = changes.iter().find(|c| c.engine == BERTH).unwrap();
        assert_eq!((berth.unit, berth.verdict), (Unit::Kib, Verdict::Worse));
        assert!(berth_regressed(&changes));
        let md = markdown(&old, &bigger, &changes, 0.05);
        assert!(
            md.contains("| berth | pss | KiB | 9000 (n=20) | 12000 (n=20) |"),
            "{md}"
        );
        assert!(md.contains("| LARGER |"), "{md}");

        let smaller = report_in(Unit::Kib, "pss", &spread(6000.0), &spread(20000.0));
        let changes = compare(&old, &smaller, 0.05);
        assert!(!berth_regressed(&changes));
        assert!(markdown(&old, &smaller, &changes, 0.05).contains("| smaller |"));
    }

    #[test]
    fn less_throughput_is_a_regression_and_more_is_not() {
        let old = report_in(Unit::MbPerS, "throughput", &spread(900.0), &spread(500.0));
        let lower = report_in(Unit::MbPerS, "throughput", &spread(600.0), &spread(500.0));
        let changes = compare(&old, &lower, 0.05);
        let berth = changes.iter().find(|c| c.engine == BERTH).unwrap();
        assert_eq!((berth.unit, berth.verdict), (Unit::MbPerS, Verdict::Worse));
        assert!(berth_regressed(&changes));
        let md = markdown(&old, &lower, &changes, 0.05);
        assert!(
            md.contains("| berth | throughput | MB/s | 900.2 (n=20) | 600.2 (n=20) |"),
            "{md}"
        );
        assert!(md.contains("| SLOWER |"), "{md}");

        let higher = report_in(Unit::MbPerS, "throughput", &spread(1200.0), &spread(500.0));
        let changes = compare(&old, &higher, 0.05);
        assert!(!berth_regressed(&changes));
        assert!(markdown(&old, &higher, &changes, 0.05).contains("| faster |"));
    }

    #[test]
    fn a_metric_whose_unit_changed_is_not_compared() {
        let old = report_in(Unit::Ms, "pss", &spread(6.0), &spread(14.0));
        let new = report_in(Unit::Kib, "pss", &spread(9000.0), &spread(14.0));
        let changes = compare(&old, &new, 0.05);
        assert!(changes.is_empty(), "{changes:?}");
        assert!(!berth_regressed(&changes));
    }

    #[test]
    fn noise_within_the_margin_is_not_a_regression() {
        let old = report(&spread(6.0), &spread(14.0));
        let new = report(&spread(6.1), &spread(14.0));
        let changes = compare(&old, &new, 0.05);
        assert!(!berth_regressed(&changes));
        let faster = compare(&new, &report(&spread(3.0), &spread(14.0)), 0.05);
        assert_eq!(
            faster.iter().find(|c| c.engine == BERTH).unwrap().verdict,
            Verdict::Better
        );
    }
}
