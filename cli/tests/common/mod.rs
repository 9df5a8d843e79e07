//! Helpers for the CLI's integration tests: running `berth`, a private berthd (the workspace's
//! own daemon, berth-testkit's `Berthd`), and a PRIVATE dockerd for commands whose endpoints
//! berthd does not serve yet.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::berthd::Berthd;
use berth_testkit::cleanup::{remove_leftovers, stop};

/// `berth -H <host> <args>` with none of the host's DOCKER_HOST, BERTH_HOST or
/// DOCKER_API_VERSION.
pub fn berth_command(host: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_API_VERSION");
    cmd
}

pub fn berth(host: &str, args: &[&str]) -> Output {
    berth_command(host, args)
        .stdin(Stdio::null())
        .output()
        .expect("running berth")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `berth`, insists on success, returns stdout.
pub fn ok(host: &str, args: &[&str]) -> String {
    let out = berth(host, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed ({:?}): {}",
        out.status.code(),
        stderr(&out)
    );
    stdout(&out)
}

/// A dockerd of our own (own data/exec root and socket, no bridge, no iptables) with a
/// `busybox:latest` image imported from the host's /bin/busybox. Stopped, unmounted and
/// deleted on drop, even when the test fails.
pub struct PrivateDockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub host: String,
}

impl PrivateDockerd {
    pub fn start() -> PrivateDockerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-dockerd.")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path();
        let sock = root.join("d.sock");
        let log = std::fs::File::create(root.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(root.join("pid"))
            .args(["--bridge=none", "--iptables=false"])
            // Not dockerd's default `/docker`, which would stay on the host.
            .arg(format!("--cgroup-parent={}", Self::cgroup_parent()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let d = PrivateDockerd {
            child: Some(child),
            host: format!("unix://{}", sock.display()),
            dir,
        };
        d.wait_ready(&sock);
        d.import_busybox();
        d
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cgroup_parent() -> String {
        format!("berth-cli-dockerd-{}", std::process::id())
    }

    fn wait_ready(&self, sock: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = UnixStream::connect(sock) {
                let _ = s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n");
                let mut resp = String::new();
                let _ = s.read_to_string(&mut resp);
                if resp.ends_with("OK") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.path().join("dockerd.log")).unwrap_or_default();
        panic!("private dockerd did not come up within 60 s; log:\n{log}");
    }

    fn import_busybox(&self) {
        import_busybox(&self.host, self.path());
    }
}

/// `busybox:latest` imported from a busybox rootfs with every applet, built under `scratch`.
/// The real docker CLI does the import so a berth bug cannot hide here.
fn import_busybox(host: &str, scratch: &Path) {
    let applets = berth_testkit::rootfs::all_applets();
    let applets: Vec<&str> = applets.iter().map(String::as_str).collect();
    berth_testkit::docker::import_busybox(
        host,
        &docker_config(),
        scratch,
        &applets,
        &[],
        "busybox:latest",
    );
}

fn docker_config() -> PathBuf {
    berth_testkit::docker::temp_config("berth-cli-test-docker-config")
}

/// The real docker CLI against `host`, with a private config dir (no host credentials).
pub fn docker_cli(host: &str, args: &[&str]) -> Output {
    berth_testkit::docker::command(host, &docker_config())
        .args(args)
        .output()
        .expect("running the docker CLI")
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // remove containers first so dockerd does not leave shims behind
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker -H {0} rm -f $(docker -H {0} ps -aq) >/dev/null 2>&1",
                self.host
            ))
            .status();
        if let Some(child) = self.child.take() {
            stop(child);
        }
        // containerd and the shims dockerd started for us, and their mounts
        remove_leftovers(self.path(), None);
        berth_testkit::cleanup::remove_cgroup_tree(&Self::cgroup_parent());
    }
}

/// The workspace's berthd with its own data root, exec root and socket in a temp dir, its shim
/// being berthd itself (multi-call as `berth-shim`, as in daemon/tests), logging to a file
/// ([`Berthd::log`]), and a `busybox:latest` imported from the host's /bin/busybox. Drop
/// removes every container, stops berthd and cleans up the temp dir, even when the test failed.
pub fn start_berthd() -> Berthd {
    let d = Berthd::builder(berthd_binary())
        .prefix("berth-cli-berthd.")
        .with_shim()
        .log_to_file()
        .start();
    import_busybox(&d.host(), d.dir.path());
    d
}

/// `target/<profile>/berthd`, next to the directory holding this test binary
/// (`target/<profile>/deps/`). `cargo test --workspace` builds it; `cargo test -p berth-cli`
/// alone does not.
fn berthd_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let berthd = profile_dir.join("berthd");
    assert!(
        berthd.is_file(),
        "{} is missing: build it first with `cargo build -p berth-daemon` (same CARGO_TARGET_DIR \
         and profile as these tests)",
        berthd.display()
    );
    berthd
}

/// Like [`berth`], feeding `input` on stdin.
pub fn berth_with_stdin(host: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = berth_command(host, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running berth");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The logging proxy of DOCKER-API.md in front of `upstream`, advertising API `fake_api`; the
/// requests it saw are in [`CaptureProxy::log`]. Killed on drop.
pub struct CaptureProxy {
    child: Child,
    dir: tempfile::TempDir,
    pub host: String,
}

impl CaptureProxy {
    pub fn start(upstream_host: &str, fake_api: &str) -> CaptureProxy {
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-proxy.")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = dir.path().join("proxy.sock");
        let upstream = upstream_host.strip_prefix("unix://").unwrap();
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/capture_proxy.py"
            ))
            .arg(&sock)
            .arg(dir.path().join("log"))
            .arg(fake_api)
            .arg(upstream)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the capture proxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "capture proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        CaptureProxy {
            child,
            host: format!("unix://{}", sock.display()),
            dir,
        }
    }

    /// The request lines (`METHOD /path`) in the order the proxy saw them, and clears the log.
    pub fn take_requests(&self) -> Vec<String> {
        let path = self.dir.path().join("log");
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        log.lines()
            .filter_map(|l| l.split_once(">>> ").map(|(_, r)| r.to_string()))
            .filter(|r| !r.starts_with("BODY") && !r.starts_with("CHUNK"))
            .collect()
    }
}

impl Drop for CaptureProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
