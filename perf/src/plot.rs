//! SVG plots of a report: for each scenario and unit, the distribution of
//! every engine and metric as a strip chart (one dot per measured run, a bar
//! at the median) on a log axis in that unit, so ratios read as distances.
//! Times go to `<stem>-<scenario>.svg`, memory to `<stem>-<scenario>-KiB.svg`
//! and throughput to `<stem>-<scenario>-MBps.svg`: one axis cannot hold
//! them all.
//!
//! Metrics on a growth curve (their `growth`, e.g. `density`'s PSS per
//! container against the container count, `pull-sizes`' pull time against
//! the image size) also get a line chart per curve,
//! `<stem>-<scenario>-growth-<series>.svg`: one line per engine through its
//! medians, a bar from min to max at each point. An axis is logarithmic when
//! its values span 10x or more (engines an order of magnitude apart stay
//! readable), linear otherwise.
//!
//! Text goes through plotters' `ab_glyph` backend, which needs a font file:
//! DejaVu Sans from Debian's fonts-dejavu-core. Without it the plots are
//! skipped with a note rather than drawn without labels.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, anyhow};
use plotters::chart::ChartContext;
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{Report, ScenarioReport, Unit, XUnit};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const WIDTH: u32 = 900;
const ROW_HEIGHT: u32 = 34;
/// Width of the legend beside a growth chart.
const LEGEND_WIDTH: u32 = 140;
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
        for chart in growth_charts(sc) {
            let path = out.join(format!(
                "{stem}-{}-growth-{}.svg",
                sc.name,
                slug(chart.series)
            ));
            growth_plot(sc, &chart, &path)?;
            written.push(path);
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

/// One engine's line on a growth chart.
struct Line<'a> {
    engine: &'a str,
    /// (x in the axis' unit, median, min, max), by x.
    points: Vec<(f64, f64, f64, f64)>,
}

/// One growth curve of a scenario: its series in one unit, every engine.
struct GrowthChart<'a> {
    series: &'a str,
    unit: Unit,
    x_unit: XUnit,
    lines: Vec<Line<'a>>,
}

/// The growth charts of a scenario, in the order their series first
/// appear; a series needs at least two x values to be a curve.
fn growth_charts(sc: &ScenarioReport) -> Vec<GrowthChart<'_>> {
    let mut keys: Vec<(&str, Unit, XUnit)> = Vec::new();
    for m in sc.engines.iter().flat_map(|e| &e.metrics) {
        if let Some(g) = &m.growth {
            let key = (g.series.as_str(), m.unit, g.x_unit);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let mut charts = Vec::new();
    for (series, unit, x_unit) in keys {
        let mut lines = Vec::new();
        for e in &sc.engines {
            let mut points: Vec<(f64, f64, f64, f64)> = e
                .metrics
                .iter()
                .filter(|m| m.unit == unit)
                .filter_map(|m| {
                    let g = m.growth.as_ref()?;
                    let s = m.summary.as_ref()?;
                    (g.series == series && g.x_unit == x_unit)
                        .then(|| (x_unit.scaled(g.x), s.median, s.min, s.max))
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !points.is_empty() {
                lines.push(Line {
                    engine: &e.engine,
                    points,
                });
            }
        }
        let mut xs: Vec<f64> = lines.iter().flat_map(|l| &l.points).map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        if xs.len() >= 2 {
            charts.push(GrowthChart {
                series,
                unit,
                x_unit,
                lines,
            });
        }
    }
    charts
}

/// The smallest and largest of `values`.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// Whether values this far apart want a log axis: 10x or more, all
/// positive.
fn wants_log(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo >= 10.0
}

/// The drawn range of an axis holding `lo..=hi`: a margin on either side
/// (a factor on a log axis), and from 0 on a linear one when all values
/// are positive, so heights compare.
fn axis_range(lo: f64, hi: f64, log: bool, from_zero: bool) -> std::ops::Range<f64> {
    if log {
        // plotters labels a log axis from its first power of ten on: start
        // at the decade below when that wastes little room.
        let decade = 10f64.powf((lo / 1.25).log10().floor());
        let start = if lo / decade <= 5.0 {
            decade
        } else {
            lo / 1.25
        };
        start..hi * 1.4
    } else {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.02).max(1e-9);
        let start = if from_zero && lo >= 0.0 {
            0.0
        } else {
            lo - pad
        };
        start..hi + pad
    }
}

/// Draws one growth chart to `path`.
fn growth_plot(sc: &ScenarioReport, chart: &GrowthChart<'_>, path: &Path) -> anyhow::Result<()> {
    let points = || chart.lines.iter().flat_map(|l| &l.points);
    let (x_lo, x_hi) = span(points().map(|p| p.0));
    let (y_lo, y_hi) = (span(points().map(|p| p.2)).0, span(points().map(|p| p.3)).1);
    // The medians decide: engines 10x apart get a log axis.
    let (median_lo, median_hi) = span(points().map(|p| p.1));
    let y_log = wants_log(median_lo, median_hi) && y_lo > 0.0;
    let x_log = wants_log(x_lo, x_hi);
    let xr = axis_range(x_lo, x_hi, x_log, false);
    let yr = axis_range(y_lo, y_hi, y_log, true);

    let root = SVGBackend::new(path, (WIDTH, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let caption = format!(
        "{}: {} ({}{}) by {}",
        sc.name,
        chart.series,
        chart.unit.symbol(),
        if y_log { ", log scale" } else { "" },
        chart.x_unit.axis()
    );
    let engines: Vec<&str> = sc.engines.iter().map(|e| e.engine.as_str()).collect();
    legend(&legend_area, chart, &engines)?;
    let mut builder = ChartBuilder::on(&plot_area);
    builder
        .caption(caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let axes = Axes {
        x_desc: chart.x_unit.axis(),
        y_desc: chart.unit.symbol(),
        x_log,
        y_log,
    };
    match (x_log, y_log) {
        (true, true) => draw_lines(
            build(&mut builder, xr.log_scale(), yr.log_scale())?,
            chart,
            &engines,
            &axes,
        ),
        (true, false) => draw_lines(
            build(&mut builder, xr.log_scale(), yr)?,
            chart,
            &engines,
            &axes,
        ),
        (false, true) => draw_lines(
            build(&mut builder, xr, yr.log_scale())?,
            chart,
            &engines,
            &axes,
        ),
        (false, false) => draw_lines(build(&mut builder, xr, yr)?, chart, &engines, &axes),
    }?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

/// A chart drawn into an SVG, with axes of types `X` and `Y`.
type SvgChart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// The chart area with these axes.
fn build<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    builder: &mut ChartBuilder<'a, 'b, SVGBackend<'b>>,
    x: X,
    y: Y,
) -> anyhow::Result<SvgChart<'a, 'b, X::CoordDescType, Y::CoordDescType>> {
    builder.build_cartesian_2d(x, y).map_err(plot_err)
}

/// How a growth chart's axes are titled and labelled.
struct Axes {
    x_desc: &'static str,
    y_desc: &'static str,
    x_log: bool,
    y_log: bool,
}

/// Mesh, one line (median) with min..max bars per engine, and a legend.
fn draw_lines<X, Y>(
    mut chart: SvgChart<'_, '_, X, Y>,
    growth: &GrowthChart<'_>,
    engines: &[&str],
    axes: &Axes,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let label = |log: bool| {
        move |v: &f64| {
            if log { tick_label(*v) } else { compact(*v) }
        }
    };
    let (x_label, y_label) = (label(axes.x_log), label(axes.y_log));
    // Asked for many ticks, a log axis offers 1..9 of every decade; the
    // formatter names only 1, 2 and 5.
    let ticks = |log: bool| if log { 30 } else { 10 };
    chart
        .configure_mesh()
        .x_labels(ticks(axes.x_log))
        .y_labels(ticks(axes.y_log))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    for line in &growth.lines {
        let color = engine_color(engines, line.engine);
        chart
            .draw_series(LineSeries::new(
                line.points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(line.points.iter().map(|&(x, median, lo, hi)| {
                ErrorBar::new_vertical(x, lo, median, hi, color.stroke_width(1), 8)
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|&(x, median, _, _)| Circle::new((x, median), 4, color.filled())),
            )
            .map_err(plot_err)?;
    }
    Ok(())
}

/// An engine's color: by its place in the scenario, as in the strip charts.
fn engine_color(engines: &[&str], engine: &str) -> RGBColor {
    PALETTE[engines.iter().position(|e| *e == engine).unwrap_or(0) % PALETTE.len()]
}

/// The engines of a growth chart, one colored line and name each, in a
/// strip of their own beside the chart (a legend inside could hide a line).
fn legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &GrowthChart<'_>,
    engines: &[&str],
) -> anyhow::Result<()> {
    let style = TextStyle::from(("sans-serif", 14)).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, line) in chart.lines.iter().enumerate() {
        let y = 70 + 24 * i as i32;
        let color = engine_color(engines, line.engine);
        area.draw(&PathElement::new(
            vec![(8, y), (32, y)],
            color.stroke_width(2),
        ))
        .map_err(plot_err)?;
        area.draw(&Circle::new((20, y), 4, color.filled()))
            .map_err(plot_err)?;
        area.draw(&Text::new(line.engine.to_string(), (40, y), style.clone()))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// A file-name-safe form of a series name: `shim PSS per container` ->
/// `shim-pss-per-container`.
fn slug(series: &str) -> String {
    let mut s = String::new();
    for c in series.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
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
    compact(v)
}

/// A number in few characters: `0.5`, `150`, `20k`, `1.5M`.
fn compact(v: f64) -> String {
    let (x, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
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
    use crate::report::{EngineResult, Growth, Machine, Metric, Status};

    /// An engine whose metrics lie on curves: (metric, series, x, samples).
    fn engine(
        name: &str,
        unit: Unit,
        x_unit: XUnit,
        points: &[(&str, &str, f64, &[f64])],
    ) -> EngineResult {
        EngineResult {
            engine: name.into(),
            status: Status::Ok,
            reason: None,
            errors: vec![],
            metrics: points
                .iter()
                .map(|&(metric, series, x, samples)| Metric {
                    samples: samples.to_vec(),
                    growth: Some(Growth {
                        series: series.into(),
                        x,
                        x_unit,
                    }),
                    ..Metric::new(metric, unit)
                })
                .collect(),
        }
    }

    fn report(scenarios: Vec<ScenarioReport>) -> Report {
        Report {
            schema_version: crate::report::SCHEMA_VERSION,
            tool_version: "test".into(),
            started_at: "2026-11-29T12:00:00Z".into(),
            runs: 3,
            warmup: 0,
            quiet_starts: true,
            machine: Machine::for_tests(),
            engines: vec![],
            scenarios,
        }
    }

    /// Density as measured: supervisors per container (engines 10x apart)
    /// and daemons (podman has none).
    fn density() -> ScenarioReport {
        let (kib, n) = (Unit::Kib, XUnit::Containers);
        let (shim, daemon) = ("shim PSS per container", "daemon PSS");
        ScenarioReport::finished(
            "density",
            "idle containers".into(),
            vec![
                engine(
                    "berth",
                    kib,
                    n,
                    &[
                        ("shim@1", shim, 1.0, &[1986.0]),
                        ("daemon@1", daemon, 1.0, &[12758.0]),
                        ("shim@50", shim, 50.0, &[206.0]),
                        ("daemon@50", daemon, 50.0, &[16678.0]),
                        ("shim@200", shim, 200.0, &[168.0]),
                        ("daemon@200", daemon, 200.0, &[20213.0]),
                    ],
                ),
                engine(
                    "docker",
                    kib,
                    n,
                    &[
                        ("shim@1", shim, 1.0, &[12224.0]),
                        ("daemon@1", daemon, 1.0, &[114038.0]),
                        ("shim@50", shim, 50.0, &[2631.0]),
                        ("daemon@50", daemon, 50.0, &[138674.0]),
                        ("shim@200", shim, 200.0, &[2497.0]),
                        ("daemon@200", daemon, 200.0, &[199101.0]),
                    ],
                ),
                engine(
                    "podman",
                    kib,
                    n,
                    &[
                        ("shim@1", shim, 1.0, &[1077.0]),
                        ("shim@50", shim, 50.0, &[368.0]),
                        ("shim@200", shim, 200.0, &[343.0]),
                    ],
                ),
            ],
            vec![],
        )
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The text of every `<text>` element of an SVG, trimmed.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim())
            })
            .collect()
    }

    /// Filled circles: the dots at the medians and in the legend (the
    /// error bars' own markers are hollow).
    fn dots(svg: &str) -> usize {
        svg.split("<circle")
            .skip(1)
            .filter(|c| !c[..c.find('>').unwrap_or(c.len())].contains("fill=\"none\""))
            .count()
    }

    #[test]
    fn density_gets_a_line_chart_per_curve() {
        if font().is_err() {
            println!("skipped: no DejaVu Sans (fonts-dejavu-core)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let written = write_plots(&report(vec![density()]), dir.path(), "t").unwrap();
        let shim = dir
            .path()
            .join("t-density-growth-shim-pss-per-container.svg");
        let daemon = dir.path().join("t-density-growth-daemon-pss.svg");
        assert!(written.contains(&shim), "{written:?}");
        assert!(written.contains(&daemon), "{written:?}");
        // The strip chart of the same metrics is still there.
        assert!(
            written.contains(&dir.path().join("t-density-KiB.svg")),
            "{written:?}"
        );

        let svg = read(&shim);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        // 12224 against 168 KiB: engines more than 10x apart, log scale.
        assert!(
            svg.contains("density: shim PSS per container (KiB, log scale) by containers"),
            "{svg}"
        );
        let labels = texts(&svg);
        for name in ["berth", "docker", "podman"] {
            assert!(labels.contains(&name), "no {name} in {labels:?}");
        }
        // A dot per point and one in the legend for each engine.
        assert_eq!(dots(&svg), 3 * 3 + 3);
        assert!(
            labels.contains(&"200"),
            "no tick at 200 containers: {labels:?}"
        );

        let svg = read(&daemon);
        let labels = texts(&svg);
        assert!(
            labels.contains(&"berth") && labels.contains(&"docker"),
            "{labels:?}"
        );
        assert!(
            !labels.contains(&"podman"),
            "podman has no daemon: {labels:?}"
        );
        assert_eq!(dots(&svg), 2 * 3 + 2);
    }

    #[test]
    fn pull_time_against_image_size() {
        if font().is_err() {
            println!("skipped: no DejaVu Sans (fonts-dejavu-core)");
            return;
        }
        let (ms, bytes) = (Unit::Ms, XUnit::Bytes);
        let sizes = [1_142_638.0, 30_120_574.0, 113_339_423.0];
        let sc = ScenarioReport::finished(
            "pull-sizes",
            "pulls".into(),
            vec![
                engine(
                    "berth",
                    ms,
                    bytes,
                    &[
                        ("small", "gzip", sizes[0], &[60.0, 80.0, 70.0]),
                        ("medium", "gzip", sizes[1], &[400.0, 420.0, 410.0]),
                        ("large", "gzip", sizes[2], &[1100.0, 1200.0, 1150.0]),
                    ],
                ),
                engine(
                    "docker",
                    ms,
                    bytes,
                    &[
                        ("small", "gzip", sizes[0], &[500.0, 560.0, 530.0]),
                        ("medium", "gzip", sizes[1], &[2000.0, 2100.0, 2050.0]),
                        ("large", "gzip", sizes[2], &[5600.0, 5900.0, 5750.0]),
                    ],
                ),
            ],
            vec![],
        );
        let dir = tempfile::tempdir().unwrap();
        let written = write_plots(&report(vec![sc]), dir.path(), "t").unwrap();
        let path = dir.path().join("t-pull-sizes-growth-gzip.svg");
        assert!(written.contains(&path), "{written:?}");
        let svg = read(&path);
        assert!(
            svg.contains("pull-sizes: gzip (ms, log scale) by compressed image size (MB)"),
            "{svg}"
        );
        let labels = texts(&svg);
        assert!(
            labels.contains(&"berth") && labels.contains(&"docker"),
            "{labels:?}"
        );
        assert_eq!(dots(&svg), 2 * 3 + 2);
        // A bar from min to max at every point: 3 lines (two caps and the
        // bar) each.
        assert!(svg.matches("<line").count() >= 2 * 3 * 3, "{svg}");
    }

    #[test]
    fn growth_points_are_medians_with_their_range() {
        let sc = ScenarioReport::finished(
            "pull-sizes",
            String::new(),
            vec![engine(
                "berth",
                Unit::Ms,
                XUnit::Bytes,
                &[
                    ("large", "gzip", 100e6, &[30.0, 10.0, 20.0]),
                    ("small", "gzip", 2e6, &[3.0, 1.0, 2.0, 9.0]),
                ],
            )],
            vec![],
        );
        let charts = growth_charts(&sc);
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].series, "gzip");
        // By size, in MB; median, min, max.
        assert_eq!(
            charts[0].lines[0].points,
            [(2.0, 2.5, 1.0, 9.0), (100.0, 20.0, 10.0, 30.0)]
        );
    }

    #[test]
    fn one_x_is_no_curve() {
        let sc = ScenarioReport::finished(
            "density",
            String::new(),
            vec![
                engine(
                    "berth",
                    Unit::Kib,
                    XUnit::Containers,
                    &[("shim@1", "s", 1.0, &[5.0])],
                ),
                engine(
                    "docker",
                    Unit::Kib,
                    XUnit::Containers,
                    &[("shim@1", "s", 1.0, &[9.0])],
                ),
            ],
            vec![],
        );
        assert!(growth_charts(&sc).is_empty());
    }

    #[test]
    fn log_axis_only_for_tenfold_spans() {
        assert!(wants_log(168.0, 12224.0));
        assert!(wants_log(1.0, 10.0));
        assert!(!wants_log(12758.0, 20213.0));
        assert!(!wants_log(0.0, 100.0), "zero cannot be on a log axis");
        // A linear axis of positive values starts at zero; a log one at
        // the decade below when it is near.
        assert_eq!(axis_range(12758.0, 20213.0, false, true).start, 0.0);
        assert_eq!(axis_range(168.0, 12224.0, true, true).start, 100.0);
        assert!(axis_range(1.0, 200.0, true, false).start > 0.5);
        assert_eq!(slug("shim PSS per container"), "shim-pss-per-container");
        assert_eq!(compact(150.0), "150");
        assert_eq!(compact(2500.0), "2.5k");
    }

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
