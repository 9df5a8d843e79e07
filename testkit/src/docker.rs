//! The real docker CLI with a config directory of the test's choosing, so
//! the host's credentials and settings never leak in.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::rootfs::busybox_rootfs_tar;

/// `docker -H <host>` with `DOCKER_CONFIG=<config>` and no
/// `DOCKER_API_VERSION`; stdin is null unless the caller sets it.
pub fn command(host: &str, config: &Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.arg("-H")
        .arg(host)
        .env_remove("DOCKER_API_VERSION")
        .env("DOCKER_CONFIG", config)
        .stdin(Stdio::null());
    cmd
}

/// Runs `docker <args>`, returning (status, stdout, stderr).
pub fn run(host: &str, config: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let output = command(host, config)
        .args(args)
        .output()
        .expect("running the docker CLI");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `docker <args>`, insists on success, returns stdout.
pub fn run_ok(host: &str, config: &Path, args: &[&str]) -> String {
    let (status, stdout, stderr) = run(host, config, args);
    assert!(
        status.success(),
        "docker {args:?} failed ({status}): {stderr}\nstdout: {stdout}"
    );
    stdout
}

/// Runs `docker <args>`, insists on exit status 1, returns stderr.
pub fn run_fails(host: &str, config: &Path, args: &[&str]) -> String {
    let (status, stdout, stderr) = run(host, config, args);
    assert_eq!(
        status.code(),
        Some(1),
        "docker {args:?} should fail: {stdout} {stderr}"
    );
    stderr
}

/// A config dir under the system temp dir named `name`, shared by the tests
/// that use it (they never log in there).
pub fn temp_config(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// `docker import [changes] <busybox rootfs tar> <reference>`, the tree and
/// tar built under `scratch` with `applets`; asserts success and returns
/// what import printed (the image ID). The real docker CLI does the import
/// so a bug of ours cannot hide here.
pub fn import_busybox(
    host: &str,
    config: &Path,
    scratch: &Path,
    applets: &[&str],
    changes: &[&str],
    reference: &str,
) -> String {
    let tar = busybox_rootfs_tar(scratch, applets);
    let mut args = vec!["import"];
    args.extend_from_slice(changes);
    args.push(tar.to_str().unwrap());
    args.push(reference);
    run_ok(host, config, &args).trim().to_owned()
}
