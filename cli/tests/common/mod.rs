//! Helpers for the CLI's integration tests: running `berth`, a private berthd (the workspace's
//! own daemon), and a PRIVATE dockerd for commands whose endpoints berthd does not serve yet.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn berth(host: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_API_VERSION")
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

/// busybox rootfs (binary + applet symlinks) → tar under `scratch` → `docker import` as
/// `busybox:latest`. The real docker CLI does the import so a berth bug cannot hide here.
fn import_busybox(host: &str, scratch: &Path) {
    let rootfs = scratch.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("busybox-static must be installed (/bin/busybox)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    let tar = scratch.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar failed");
    let out = docker_cli(host, &["import", tar.to_str().unwrap(), "busybox:latest"]);
    assert!(
        out.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real docker CLI against `host`, with a private config dir (no host credentials).
pub fn docker_cli(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_API_VERSION")
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("berth-cli-test-docker-config"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("running the docker CLI")
}

/// Processes whose command line mentions `needle` (our unique temp dir): containerd and shims
/// that dockerd started for us.
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(PathBuf::from)
        .collect()
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
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        let needle = self.path().to_string_lossy().to_string();
        for pid in pids_mentioning(&needle) {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let mut mounts = mounts_under(self.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

/// The workspace's berthd with its own data root, exec root and socket in a temp dir, its shim
/// being berthd itself (multi-call as `berth-shim`, as in daemon/tests), and a `busybox:latest`
/// imported from the host's /bin/busybox. On drop: removes every container, stops berthd, then
/// deletes what the runtime still knows, kills leftover shims and unmounts everything under
/// the temp dir, even when the test failed.
pub struct PrivateBerthd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub host: String,
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

impl PrivateBerthd {
    pub fn start() -> PrivateBerthd {
        let berthd = berthd_binary();
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-berthd.")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::os::unix::fs::symlink(&berthd, root.join("bin/berth-shim")).unwrap();
        let sock = root.join("sock/berth.sock");
        let log = std::fs::File::create(root.join("berthd.log")).unwrap();
        let child = Command::new(&berthd)
            .arg("--socket")
            .arg(&sock)
            .arg("--data-root")
            .arg(root.join("root"))
            .arg("--exec-root")
            .arg(root.join("run"))
            .args(["--log-level", "warn"])
            // never pick up the host's /etc/berth/berthd.toml
            .args(["--config", "/dev/null"])
            // no default network: this berthd shares the host's network namespace
            .args(["--bridge", "none"])
            .env("BERTH_SHIM_BINARY", root.join("bin/berth-shim"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting berthd");
        let mut d = PrivateBerthd {
            child: Some(child),
            host: format!("unix://{}", sock.display()),
            dir,
        };
        d.wait_ready(&sock);
        import_busybox(&d.host, d.dir.path());
        d
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What berthd logged (warnings and errors), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("berthd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, sock: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(sock).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "berthd exited before serving ({status}); log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not create {} within 20 s; log:\n{}",
                sock.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateBerthd {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = docker_cli(&self.host, &["ps", "-aq", "--no-trunc"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = docker_cli(&self.host, &["rm", "-f", id]);
            }
        }
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        // Fallback when berthd could not remove them: delete every container the runtime
        // still knows (kills its processes, removes its cgroup), then kill the shims.
        let runtime_root = self.path().join("run/runtime");
        if let Ok(entries) = std::fs::read_dir(&runtime_root) {
            let root = berth_runtime::state::Root::new(&runtime_root);
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                let _ = berth_runtime::container::delete(&root, &id, true);
            }
        }
        let needle = self.path().to_string_lossy().to_string();
        for pid in pids_mentioning(&needle) {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let mut mounts = mounts_under(self.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

/// Debian's docker-registry on a free loopback port with temp storage; killed on drop.
pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    pub addr: String,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-registry.")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let reg = Registry {
            child,
            _dir: dir,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(&reg.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut resp = String::new();
                let _ = s.read_to_string(&mut resp);
                if resp.starts_with("HTTP/1.") {
                    return reg;
                }
            }
            assert!(
                Instant::now() < deadline,
                "registry on {} did not answer",
                reg.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Like [`berth`], feeding `input` on stdin.
pub fn berth_with_stdin(host: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_API_VERSION")
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
