//! Runs `berth-perf run runtime-start --runs 3 --warmup 1` for real against
//! the installed peers (needs root, like the runtimes themselves) and checks
//! the JSON report and the Markdown table.

mod common;

use std::path::Path;
use std::process::Command;

use common::{file_with_ext, read_report};

fn installed(name: &str) -> bool {
    [
        "/usr/bin",
        "/usr/sbin",
        "/bin",
        "/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ]
    .iter()
    .any(|d| Path::new(d).join(name).is_file())
}

#[test]
fn runtime_start_against_installed_peers() {
    if !installed("crun") && !installed("runc") {
        println!("skipped: neither crun nor runc is installed");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-perf"))
        .args([
            "run",
            "runtime-start",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "berth-perf failed: {}\n{stderr}\n{stdout}",
        output.status
    );

    let report = read_report(out.path());
    assert_eq!(report["schema_version"], 3);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1);
    let scenario = &scenarios[0];
    assert_eq!(scenario["name"], "runtime-start");

    let engines = scenario["engines"].as_array().unwrap();
    let names: Vec<&str> = engines
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["berth", "crun", "runc"]);
    let mut ran = Vec::new();
    for e in engines {
        let name = e["engine"].as_str().unwrap();
        match e["status"].as_str().unwrap() {
            "skipped" => {
                assert!(e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
                println!("{name} skipped: {}", e["reason"]);
            }
            "ok" => {
                let run = &e["metrics"][0];
                assert_eq!(run["name"], "run");
                assert_eq!(run["unit"], "ms", "{name}: {run}");
                let samples = run["samples"].as_array().unwrap();
                assert!(samples.len() >= 3, "{name}: {samples:?}");
                assert!(
                    samples.iter().all(|s| s.as_f64().unwrap() > 0.0),
                    "{name}: {samples:?}"
                );
                let summary = &run["summary"];
                for k in ["median", "p90", "min", "max", "mean"] {
                    assert!(summary[k].as_f64().unwrap() > 0.0, "{name} {k}: {summary}");
                }
                assert!(run["peak_rss_kib"].as_u64().unwrap() > 0, "{name}: {run}");
                assert!(
                    run["vs_baseline"]["median_ratio"].as_f64().unwrap() > 0.0,
                    "{run}"
                );
                ran.push(name);
            }
            other => panic!("{name}: status {other}: {e}"),
        }
    }
    // runc needs no host fix; crun needs `berth-perf setup` on hybrid hosts.
    if installed("runc") {
        assert!(ran.contains(&"runc"), "runc did not run: {stderr}");
    }
    assert!(!ran.is_empty(), "no engine ran: {stderr}");

    let md = std::fs::read_to_string(file_with_ext(out.path(), "md")).unwrap();
    for name in names {
        assert!(
            md.contains(&format!("| {name} |")),
            "no row for {name}:\n{md}"
        );
    }
    for name in &ran {
        assert!(
            md.contains(&format!("| {name} | run | ms | 3 |")),
            "no data row for {name}:\n{md}"
        );
    }
    assert!(
        stdout.contains("## runtime-start"),
        "table not printed: {stdout}"
    );

    // One SVG strip chart per scenario, with a dot per measured run.
    let svg = std::fs::read_to_string(file_with_ext(out.path(), "svg")).unwrap();
    assert!(
        svg.starts_with("<svg"),
        "not an SVG: {}",
        &svg[..svg.len().min(200)]
    );
    assert!(svg.contains("runtime-start"), "no title in the SVG");
    assert!(svg.contains("(ms, log scale)"), "no unit in the SVG title");
    let dots = svg.matches("<circle").count();
    assert_eq!(dots, 3 * ran.len(), "one dot per measured run expected");
    assert!(
        md.contains(".svg)"),
        "plot not linked from the Markdown:\n{md}"
    );

    // `report` turns the JSON into one page; `compare` of a report with
    // itself finds every metric and no slowdown.
    let json_path = file_with_ext(out.path(), "json");
    let page = out.path().join("page/report.md");
    let status = Command::new(env!("CARGO_BIN_EXE_berth-perf"))
        .arg("report")
        .arg(&json_path)
        .arg("--out")
        .arg(&page)
        .status()
        .unwrap();
    assert!(status.success());
    let page_text = std::fs::read_to_string(&page).unwrap();
    assert!(page_text.contains("### runtime-start"), "{page_text}");
    let compared = Command::new(env!("CARGO_BIN_EXE_berth-perf"))
        .arg("compare")
        .arg(&json_path)
        .arg(&json_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&compared.stdout);
    assert!(compared.status.success(), "compare failed: {text}");
    for name in &ran {
        assert!(
            text.contains(&format!("| runtime-start | {name} | run | ms |"))
                && !text.contains("| SLOWER |"),
            "compare output: {text}"
        );
    }
}
