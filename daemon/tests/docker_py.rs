//! Runs `tests/python/test_system.py` (pytest + docker-py) against a real berthd.

mod common;

use std::process::Command;

use common::Berthd;

#[test]
fn docker_py_talks_to_berthd() {
    let probe = Command::new("python3")
        .args(["-c", "import docker, pytest"])
        .output()
        .expect("running python3");
    assert!(
        probe.status.success(),
        "docker-py or pytest is missing: run `pip install docker pytest` (scripts/setup-host does): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let daemon = Berthd::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_system.py");
    let output = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            script,
        ])
        .env("BERTHD_HOST", daemon.host())
        .env_remove("DOCKER_HOST")
        .output()
        .expect("running pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("6 passed"), "{stdout}");
}
