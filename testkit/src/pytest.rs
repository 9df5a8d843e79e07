//! docker-py tests (pytest scripts) run against a daemon under test.

use std::ffi::OsStr;
use std::process::Command;

/// Runs `python3 -m pytest <script>` (warnings are errors) with `env` and
/// no `DOCKER_HOST`; asserts that it passes with exactly `passed` tests
/// reported passed.
pub fn run_pytest(script: &str, env: &[(&str, &OsStr)], passed: usize) {
    let probe = Command::new("python3")
        .args(["-c", "import docker, pytest"])
        .output()
        .expect("running python3");
    assert!(
        probe.status.success(),
        "docker-py or pytest is missing: run `pip install docker pytest` (scripts/setup-host does): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
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
        .envs(env.iter().copied())
        .env_remove("DOCKER_HOST")
        .output()
        .expect("running pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("{passed} passed")), "{stdout}");
}
