//! `berth-perf report` on reports with growth curves: a version 3 report
//! (metrics carry `growth`: `pull-sizes`) and a version 2 `density` report
//! (no `growth`: given on load) both get their line charts, linked from the
//! page, with every engine in them. Known samples, no root, no engines.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn report(schema_version: u32, started_at: &str, scenario: Value) -> Value {
    json!({
        "schema_version": schema_version,
        "tool_version": "test",
        "started_at": started_at,
        "runs": 3,
        "warmup": 0,
        "machine": {
            "cpu_model": "cpu", "cores": 2, "mem_total_kib": 1, "kernel_release": "",
            "kernel_version": "", "os": "", "cgroups": "hybrid", "load_avg": [0.0, 0.0, 0.0]
        },
        "engines": [],
        "scenarios": [scenario],
    })
}

/// A metric as `run` writes it, summary included (of 1 or 3 samples);
/// with `growth` when `at` names its series and x.
fn metric(name: &str, unit: &str, samples: &[f64], at: Option<(&str, f64, &str)>) -> Value {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let median = sorted[sorted.len() / 2];
    let summary = json!({
        "n": samples.len(),
        "median": median,
        "p90": median + (max - median) * 0.8,
        "min": min,
        "max": max,
        "mean": samples.iter().sum::<f64>() / samples.len() as f64,
    });
    let mut m = json!({
        "name": name, "unit": unit, "samples": samples, "rss_kib": [], "summary": summary,
    });
    if let Some((series, x, x_unit)) = at {
        m["growth"] = json!({ "series": series, "x": x, "x_unit": x_unit });
    }
    m
}

fn engine(name: &str, metrics: Vec<Value>) -> Value {
    json!({ "engine": name, "status": "ok", "errors": [], "metrics": metrics })
}

fn pull_sizes() -> Value {
    let sizes = [
        ("small", 1_142_638.0),
        ("medium", 30_120_574.0),
        ("large", 113_339_423.0),
    ];
    let engine_at = |name: &str, times: [[f64; 3]; 3]| {
        let metrics = sizes
            .iter()
            .zip(times)
            .map(|(&(size, bytes), t)| metric(size, "ms", &t, Some(("gzip", bytes, "bytes"))))
            .collect();
        engine(name, metrics)
    };
    json!({
        "name": "pull-sizes",
        "description": "pull time against image size",
        "engines": [
            engine_at("berth", [[60.0, 70.0, 80.0], [400.0, 410.0, 420.0], [1100.0, 1150.0, 1200.0]]),
            engine_at("podman", [[300.0, 320.0, 340.0], [1500.0, 1600.0, 1700.0], [4700.0, 4800.0, 4900.0]]),
        ],
        "notes": [],
    })
}

/// As version 2 wrote it: metric names only.
fn density_v2() -> Value {
    let engine_with = |name: &str, shims: [f64; 3], daemons: Option<[f64; 3]>| {
        let mut metrics = Vec::new();
        for (i, n) in [1, 50, 200].iter().enumerate() {
            metrics.push(metric(&format!("shim@{n}"), "KiB", &[shims[i]], None));
            if let Some(d) = daemons {
                metrics.push(metric(&format!("daemon@{n}"), "KiB", &[d[i]], None));
            }
        }
        engine(name, metrics)
    };
    json!({
        "name": "density",
        "description": "idle containers",
        "engines": [
            engine_with("berth", [1986.0, 206.0, 168.0], Some([12758.0, 16678.0, 20213.0])),
            engine_with("docker", [12224.0, 2631.0, 2497.0], Some([114038.0, 138674.0, 199101.0])),
            engine_with("podman", [1077.0, 368.0, 343.0], None),
        ],
        "notes": [],
    })
}

fn svg_texts(path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.starts_with("<svg"), "{}: not an SVG", path.display());
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn report_draws_growth_curves_of_new_and_old_reports() {
    if !Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file()
        && !Path::new("/usr/share/fonts/dejavu/DejaVuSans.ttf").is_file()
    {
        println!("skipped: no DejaVu Sans (fonts-dejavu-core), so no plots");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sizes = dir.path().join("sizes.json");
    let density = dir.path().join("density.json");
    let write = |path: &Path, v: Value| std::fs::write(path, v.to_string()).unwrap();
    write(&sizes, report(3, "2026-11-29T12:00:00Z", pull_sizes()));
    write(&density, report(2, "2026-11-29T10:30:31Z", density_v2()));

    let page = dir.path().join("page/report.md");
    let output = Command::new(env!("CARGO_BIN_EXE_berth-perf"))
        .arg("report")
        .arg(&sizes)
        .arg(&density)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&page).unwrap();
    let plots = dir.path().join("page");

    let name = "berth-perf-2026-11-29T120000Z-pull-sizes-growth-gzip.svg";
    assert!(text.contains(&format!("![{name}]({name})")), "{text}");
    let labels = svg_texts(&plots.join(name));
    for want in [
        "berth",
        "podman",
        "pull-sizes: gzip (ms, log scale) by compressed image size (MB)",
    ] {
        assert!(
            labels.iter().any(|l| l == want),
            "no {want:?} in {labels:?}"
        );
    }

    // The version 2 density report: curves from the metric names.
    for (name, engines) in [
        (
            "berth-perf-2026-11-29T103031Z-density-growth-shim-pss-per-container.svg",
            &["berth", "docker", "podman"][..],
        ),
        (
            "berth-perf-2026-11-29T103031Z-density-growth-daemon-pss.svg",
            &["berth", "docker"][..],
        ),
    ] {
        assert!(text.contains(&format!("![{name}]({name})")), "{text}");
        let labels = svg_texts(&plots.join(name));
        for e in engines {
            assert!(
                labels.iter().any(|l| l == e),
                "no {e} in {name}: {labels:?}"
            );
        }
        assert!(
            labels
                .iter()
                .any(|l| l.ends_with("(KiB, log scale) by containers")),
            "{labels:?}"
        );
    }
}
