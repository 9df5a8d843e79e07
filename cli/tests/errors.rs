//! Errors that need no daemon: unreachable daemon, bad flags, missing arguments.

mod common;

use common::{berth, stderr, stdout};

/// The docker CLI's statuses: 125 for `run` (its rule for every failure of its own), 1 for
/// other commands.
#[test]
fn daemon_not_running_is_one_clear_line_and_dockers_status() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/nothing.sock", dir.path().display());
    for (args, status) in [
        (&["ps"][..], 1),
        (&["run", "--rm", "busybox", "true"], 125),
        (&["images", "-q"], 1),
    ] {
        let out = berth(&host, args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?}: want one line, got {err:?}"
        );
        assert!(
            err.starts_with(&format!(
                "Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"
            )),
            "{err}"
        );
        assert!(
            err.contains("berthd"),
            "should say how to start the daemon: {err}"
        );
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn daemon_not_running_via_environment() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/nothing.sock", dir.path().display());
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("ps")
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env(var, &host)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(&host),
            "{var} not honoured: {}",
            stderr(&out)
        );
    }
}

#[test]
fn unknown_flag_is_one_line_and_125() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/nothing.sock", dir.path().display());
    for (args, flag, cmd) in [
        (&["ps", "--bogus"][..], "--bogus", "berth ps"),
        (&["run", "--bogus", "busybox"], "--bogus", "berth run"),
        (&["images", "-Z"], "-Z", "berth images"),
    ] {
        let out = berth(&host, args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
        assert!(
            err.contains(&format!("unknown flag: {flag}")),
            "{args:?}: {err}"
        );
        assert!(err.contains(&format!("See '{cmd} --help'")), "{err}");
    }
}

#[test]
fn missing_argument_is_one_line_and_125() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/nothing.sock", dir.path().display());
    for (args, cmd) in [
        (&["rm"][..], "berth rm"),
        (&["run"], "berth run"),
        (&["exec", "web"], "berth exec"),
    ] {
        let out = berth(&host, args);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.contains(cmd), "{args:?}: {err}");
    }
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(
            text.contains("berth") && text.contains("no-trunc"),
            "{shell} completion lacks ps flags"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = std::fs::read_to_string(dir.path().join("berth-run.1")).unwrap();
    assert!(run.contains("publish"), "berth-run.1 lacks --publish");
    assert!(dir.path().join("berth-container-ls.1").exists());
}
