//! SVG plots of a report: for each scenario and unit, the distribution of
//! every engine and metric as a strip chart (one dot per measured run, a bar
//! at the median) on a log axis in that unit, so ratios read as distances.
//! Times go to `<stem>-<scenario>.svg`, memory to `<stem>-<scenario>-KiB.svg`
//! and throughput to `<stem>-<scenario>-MBps.svg`: one axis cannot hold
//! them all.
//!
//! Text goes through plotters' `ab_glyph` backend, which needs a font file:
//! DejaVu Sans from Debian's fonts-dejavu-core. Without it the plots are
//! skipped with a note rather than drawn without labels.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, anyhow};
use plotters::prelude::*;

use crate::report::{Report, ScenarioReport, Unit};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const WIDTH: u32 = 900;
const ROW_HEIGHT: u32 = 34;
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Registers the font once per process.
fn font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = FONT_PATHS
                .iter()
                .find(|p| Path::new(p).is_file())
                .ok_or("no DejaVu Sans font (install fonts-dejavu-core)")?;
            let bytes = fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a usable font"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Writes `<stem>-<scenario>.svg` (times), `<stem>-<scenario>-KiB.svg`
/// (memory) and `<stem>-<scenario>-MBps.svg` (throughput) into `out` for
/// every scenario with samples in that unit, and returns the files written.
pub(crate) fn write_plots(report: &Report, out: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    font()?;
    let mut written = Vec::new();
    for sc in &report.scenarios {
        for unit in [Unit::Ms, Unit::Kib, Unit::MbPerS] {
            let suffix = match unit {
                Unit::Ms => String::new(),
                other => format!("-{}", other.slug()),
            };
            let path = out.join(format!("{stem}-{}{suffix}.svg", sc.name));
            if scenario_plot(sc, unit, &path)? {
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// One row of the strip chart.
struct Row<'a> {
    label: String,
    engine: &'a str,
    samples: &'a [f64],
    median: f64,
}

/// The rows of the metrics in `unit`, grouped by metric (every engine's
/// `create` together, ...), engines in report order within a group, so the
/// rows to compare are adjacent.
fn rows(sc: &ScenarioReport, unit: Unit) -> Vec<Row<'_>> {
    let mut metrics: Vec<&str> = Vec::new();
    for m in sc
        .engines
        .iter()
        .flat_map(|e| &e.metrics)
        .filter(|m| m.unit == unit)
    {
        if !metrics.contains(&m.name.as_str()) {
            metrics.push(&m.name);
        }
    }
    let mut rows = Vec::new();
    for metric in metrics {
        for e in &sc.engines {
            for m in e
                .metrics
                .iter()
                .filter(|m| m.name == metric && m.unit == unit)
            {
                if let Some(s) = &m.summary {
                    rows.push(Row {
                        label: format!("{} {}", m.name, e.engine),
                        engine: &e.engine,
                        samples: &m.samples,
                        median: s.median,
                    });
                }
            }
        }
    }
    rows
}

/// Draws one scenario's metrics in `unit`; false when there are none.
fn scenario_plot(sc: &ScenarioReport, unit: Unit, path: &Path) -> anyhow::Result<bool> {
    let rows = rows(sc, unit);
    if rows.is_empty() {
        return Ok(false);
    }
    let all = rows.iter().flat_map(|r| r.samples.iter().copied());
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = (lo.max(1e-3) / 1.25, hi.max(lo * 1.01) * 1.25);
    let engines: Vec<&str> = sc.engines.iter().map(|e| e.engine.as_str()).collect();

    let height = 110 + ROW_HEIGHT * rows.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let n = rows.len();
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: {} ({}, log scale)",
                sc.name,
                unit.quantity(),
                unit.symbol()
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(170)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..(n as f64 - 0.5))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[n - 1 - i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|v| tick_label(*v))
        .x_desc(unit.symbol())
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;

    for (i, row) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let color =
            PALETTE[engines.iter().position(|e| *e == row.engine).unwrap_or(0) % PALETTE.len()];
        // Deterministic jitter so overlapping runs stay visible.
        let len = row.samples.len().max(1) as f64;
        chart
            .draw_series(row.samples.iter().enumerate().map(|(k, &v)| {
                let jitter = (k as f64 / len - 0.5) * 0.5;
                Circle::new((v, y + jitter), 3, color.mix(0.6).filled())
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(row.median, y - 0.38), (row.median, y + 0.38)],
                ShapeStyle::from(&BLACK).stroke_width(2),
            )))
            .map_err(plot_err)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Label of a log-axis tick: only the 1, 2, 5 of each decade are named
/// (the others are crowded), compactly: `0.5`, `20`, `50k`, `1M`.
fn tick_label(v: f64) -> String {
    if v <= 0.0 || !v.is_finite() {
        return String::new();
    }
    let decade = 10f64.powf(v.log10().floor());
    let lead = v / decade;
    if ![1.0, 2.0, 5.0].iter().any(|l| (lead - l).abs() < 1e-6) {
        return String::new();
    }
    let (x, suffix) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_name_1_2_5_compactly() {
        assert_eq!(tick_label(10.0), "10");
        assert_eq!(tick_label(20000.0), "20k");
        assert_eq!(tick_label(100000.0), "100k");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(2_000_000.0), "2M");
        assert_eq!(tick_label(1.5), "");
        assert_eq!(tick_label(70.0), "");
        assert_eq!(tick_label(0.0), "");
    }
}
