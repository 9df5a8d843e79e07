//! Runs `berth-perf run run-rm cli-ps --runs 2 --warmup 1` for real (root:
//! daemons, namespaces, cgroups) and checks the report: every engine either
//! measured or skipped with a reason, berthd's engines without a `bridge`
//! metric and a note saying why, and nothing left behind (network
//! namespace, cgroups, daemons).

mod common;

use std::process::{Command, Stdio};

use common::read_report;
use serde_json::Value;

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

fn engine<'a>(scenario: &'a Value, name: &str) -> &'a Value {
    scenario["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["engine"] == name)
        .unwrap_or_else(|| panic!("no engine {name} in {}", scenario["name"]))
}

fn metric_names(engine: &Value) -> Vec<&str> {
    engine["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect()
}

/// Checks an engine that ran: exactly `metrics`, 2 samples each, all
/// positive. Returns false (after checking the reason) if it was skipped.
fn check_ran(e: &Value, metrics: &[&str]) -> bool {
    let name = e["engine"].as_str().unwrap();
    match e["status"].as_str().unwrap() {
        "skipped" => {
            assert!(
                e["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{name} skipped without a reason: {e}"
            );
            println!("{name} skipped: {}", e["reason"]);
            false
        }
        "ok" => {
            assert_eq!(metric_names(e), metrics, "{name}: {e}");
            for m in e["metrics"].as_array().unwrap() {
                assert_eq!(m["unit"], "ms");
                let samples = m["samples"].as_array().unwrap();
                assert_eq!(samples.len(), 2, "{name}: {m}");
                assert!(samples.iter().all(|s| s.as_f64().unwrap() > 0.0), "{m}");
            }
            true
        }
        other => panic!("{name}: status {other}: {e}"),
    }
}

#[test]
fn run_rm_and_cli_ps_measure_or_explain_every_engine() {
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_berth-perf"))
        .args(["run", "run-rm", "cli-ps", "--runs", "2", "--warmup", "1"])
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // berth-perf names its namespace and cgroups after its pid.
    let prefix = format!("bp{}-", child.id());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "berth-perf failed: {}\n{stderr}",
        output.status
    );
    let report = read_report(out.path());

    let run_rm = scenario(&report, "run-rm");
    let names: Vec<&str> = run_rm["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["berth", "docker-berthd", "docker", "podman", "crun"]
    );
    // berthd's engines run only when berthd, berth and berth-shim were
    // built next to this berth-perf (and are recent enough to run
    // containers); otherwise they are skipped with the reason. berthd runs
    // with its bridge inside the fleet's private network namespace: both
    // metrics.
    for name in ["berth", "docker-berthd"] {
        check_ran(engine(run_rm, name), &["none", "bridge"]);
    }
    let notes: Vec<&str> = run_rm["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    if engine(run_rm, "crun")["status"] == "ok" {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("crun: bridge not measured: ")),
            "no note on crun's bridge: {notes:?}"
        );
    }
    // dockerd and podman run in a private network namespace: both metrics.
    check_ran(engine(run_rm, "docker"), &["none", "bridge"]);
    check_ran(engine(run_rm, "podman"), &["none", "bridge"]);
    check_ran(engine(run_rm, "crun"), &["none"]);
    assert!(
        !notes.iter().any(|n| n.contains("leaked")),
        "leaks: {notes:?}"
    );

    let cli_ps = scenario(&report, "cli-ps");
    for name in ["berth", "docker-berthd", "docker"] {
        check_ran(engine(cli_ps, name), &["ps"]);
    }

    // Nothing left behind: no namespace, no cgroup with the run's prefix.
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !netns.lines().any(|l| l.starts_with(&prefix)),
        "namespace left: {netns}"
    );
    let mut cgroups = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for cg in std::fs::read_dir(hierarchy.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if cg.file_name().to_string_lossy().starts_with(&prefix) {
                cgroups.push(cg.path());
            }
        }
    }
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}
