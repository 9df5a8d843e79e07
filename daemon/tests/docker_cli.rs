//! The real docker CLI (28.x) against berthd: version, info, events.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{BerthdRequest, docker, docker_config, start_berthd};

#[test]
fn docker_version_prints_our_server() {
    let daemon = start_berthd();
    let (status, stdout, stderr) = docker(
        &daemon.host(),
        &[
            "version",
            "--format",
            "{{.Server.Version}}|{{.Server.APIVersion}}|{{.Server.MinAPIVersion}}|{{.Server.Os}}|{{.Server.Arch}}|{{.Server.Platform.Name}}",
        ],
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "28.5.2-compat|1.47|1.24|linux|amd64|Berth Engine 0.1.0"
    );

    // The default template reads the Engine component's details.
    let (status, stdout, stderr) = docker(&daemon.host(), &["version"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("Server: Berth Engine"), "{stdout}");
    assert!(
        stdout.contains("API version:      1.47 (minimum version 1.24)"),
        "{stdout}"
    );
    assert!(!stdout.contains("<no value>"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn docker_info_prints_without_errors() {
    let daemon = start_berthd();
    let (status, stdout, stderr) = docker(&daemon.host(), &["info"]);
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("rror"), "{stderr}");
    for needle in [
        " Containers: 0",
        " Images: 0",
        " Server Version: 28.5.2-compat",
        " Storage Driver: overlay2",
        " Cgroup Driver: cgroupfs",
        " Default Runtime: berth",
        " Swarm: inactive",
        " OSType: linux",
        " Architecture: x86_64",
        "  127.0.0.0/8",
        &format!(" Docker Root Dir: {}", daemon.data_root.display()),
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let (status, stdout, stderr) = docker(
        &daemon.host(),
        &["info", "--format", "{{.ID}} {{.NCPU}} {{.OSType}}"],
    );
    assert!(status.success(), "{stderr}");
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{stdout}");
    assert_eq!(fields[0].len(), 36);
    assert!(fields[1].parse::<u32>().unwrap() >= 1);
    assert_eq!(fields[2], "linux");
}

#[test]
fn docker_system_df_prints_empty_tables() {
    let daemon = start_berthd();
    let (status, stdout, stderr) = docker(&daemon.host(), &["system", "df"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.starts_with("TYPE"), "{stdout}");
    assert!(stdout.contains("Images          0"), "{stdout}");
}

#[test]
fn docker_system_and_builder_prune_succeed() {
    let daemon = start_berthd();
    // system prune ends with the build cache, empty on a new daemon.
    let (status, stdout, stderr) = docker(&daemon.host(), &["system", "prune", "--force"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("Total reclaimed space: 0B"), "{stdout}");
    let (status, stdout, stderr) = docker(&daemon.host(), &["builder", "prune", "--force"]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "Total reclaimed space: 0B\n");
}

#[test]
fn docker_events_with_a_past_window_ends_with_no_events() {
    let daemon = start_berthd();
    let now = common::now();
    let since = (now - 120).to_string();
    let until = (now - 60).to_string();
    let (status, stdout, stderr) = docker(
        &daemon.host(),
        &[
            "system",
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
        ],
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "");
}

#[test]
fn docker_events_streams_until_the_daemon_stops() {
    let mut daemon = start_berthd();
    let events = berth_testkit::docker::command(&daemon.host(), &docker_config())
        .args(["events", "--format", "{{json .}}"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = KillOnDrop(events);
    // Wait until the CLI's stream is subscribed (berthd counts listeners).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = daemon.request("GET", "/info").json();
        if info["NEventsListener"] == 1 {
            break;
        }
        assert!(
            guard.0.try_wait().unwrap().is_none(),
            "docker events exited early"
        );
        assert!(Instant::now() < deadline, "docker events never subscribed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon_status = daemon.terminate();
    assert!(daemon_status.success(), "{daemon_status}");
    // The stream ended cleanly, so the CLI exits by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "docker events kept running after berthd stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    guard
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    guard
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "docker events: {status}: {stderr}");
    assert_eq!(stdout, "");
}
