//! Test harness: a real `berthd` (berth-testkit's) on a temp socket and
//! data root, a tiny HTTP/1.1 client over the unix socket, and the docker
//! CLI with the tests' config dir; [`netdaemon`]: a berthd in a scratch
//! network namespace, for network tests.

#![allow(dead_code)] // each test file uses a subset

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) mod netdaemon;

pub(crate) use berth_testkit::berthd::Berthd;

/// A berthd of this crate on a temp socket and data root (it cannot run
/// containers: see containers.rs for one that can).
pub(crate) fn start_berthd() -> Berthd {
    Berthd::builder(env!("CARGO_BIN_EXE_berthd")).start()
}

pub(crate) fn berthd_command(socket: &Path, data_root: &Path, exec_root: &Path) -> Command {
    berth_testkit::berthd::berthd_command(
        Path::new(env!("CARGO_BIN_EXE_berthd")),
        socket,
        data_root,
        exec_root,
    )
}

/// Requests over the daemon's socket.
pub(crate) trait BerthdRequest {
    fn request(&self, method: &str, path: &str) -> HttpResponse;
}

impl BerthdRequest for Berthd {
    fn request(&self, method: &str, path: &str) -> HttpResponse {
        request(&self.socket, method, path, &[], b"")
    }
}

#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; decodes chunked bodies.
pub(crate) fn request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = UnixStream::connect(socket).expect("connecting to berthd");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .expect("status line")
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (k, v) = trimmed.split_once(':').unwrap();
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if method == "HEAD" {
        return response;
    }
    if response.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            response.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut response.body).unwrap();
    }
    response
}

/// The docker CLI's config dir for these tests (no host credentials).
pub(crate) fn docker_config() -> PathBuf {
    berth_testkit::docker::temp_config("berthd-test-docker-config")
}

/// Runs the real docker CLI against `host`, returning (status, stdout, stderr).
pub(crate) fn docker(host: &str, args: &[&str]) -> (ExitStatus, String, String) {
    berth_testkit::docker::run(host, &docker_config(), args)
}

/// Runs the docker CLI against `host`, insists on success, returns stdout.
pub(crate) fn docker_ok(host: &str, args: &[&str]) -> String {
    berth_testkit::docker::run_ok(host, &docker_config(), args)
}

/// Runs the docker CLI against `host`, insists on failure, returns stderr.
pub(crate) fn docker_fails(host: &str, args: &[&str]) -> String {
    berth_testkit::docker::run_fails(host, &docker_config(), args)
}

/// A berthd that runs containers (its shim is berthd itself, multi-call as
/// `berth-shim`), driven through the docker CLI; berth-testkit's `Berthd`
/// removes the containers, then whatever is left under the temp dir, on
/// drop. Test files add their own helpers in `impl Daemon` blocks.
pub(crate) struct Daemon(pub(crate) Berthd);

impl std::ops::Deref for Daemon {
    type Target = Berthd;

    fn deref(&self) -> &Berthd {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Berthd {
        &mut self.0
    }
}

impl Daemon {
    /// Starts one in a temp dir named `prefix...`.
    pub(crate) fn start_in(prefix: &str) -> Daemon {
        Daemon(
            Berthd::builder(env!("CARGO_BIN_EXE_berthd"))
                .prefix(prefix)
                .with_shim()
                .start(),
        )
    }

    pub(crate) fn docker(&self, args: &[&str]) -> (ExitStatus, String, String) {
        docker(&self.host(), args)
    }

    /// Runs the docker CLI, insists on success, returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        docker_ok(&self.host(), args)
    }

    /// Imports an image `busybox` of the host's static busybox with
    /// `applets`, whose command is `sh`.
    pub(crate) fn import_busybox(&self, applets: &[&str]) {
        berth_testkit::docker::import_busybox(
            &self.host(),
            &docker_config(),
            self.dir.path(),
            applets,
            &["--change", "CMD [\"sh\"]"],
            "busybox",
        );
    }

    /// `docker inspect --type container name`.
    pub(crate) fn inspect(&self, name: &str) -> serde_json::Value {
        self.inspect_as("container", name)
    }

    /// `docker inspect --type kind name`.
    pub(crate) fn inspect_as(&self, kind: &str, name: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", "--type", kind, name]);
        let mut list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.remove(0)
    }

    /// Runs the docker CLI, insists on failure (any status), returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.docker(args);
        assert!(
            !status.success(),
            "docker {args:?} should have failed: {stdout}"
        );
        stderr
    }
}

/// Removes every container of `daemon` through the docker CLI, then
/// insists that no process (shim) and no mount under its temp dir is left.
pub(crate) fn assert_clean_after_rm_all(daemon: &Berthd) {
    let host = daemon.host();
    let ids = docker_ok(&host, &["ps", "-aq"]);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.split_whitespace());
    if args.len() > 2 {
        docker_ok(&host, &args);
    }
    let dir = daemon.dir.path();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let procs: Vec<i32> =
            berth_testkit::cleanup::container_pids_mentioning(dir.to_str().unwrap())
                .into_iter()
                .filter(|pid| Some(*pid as u32) != daemon.running_pid())
                .collect();
        let mounts = berth_testkit::cleanup::mounts_under(dir);
        if procs.is_empty() && mounts.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: processes {procs:?}, mounts {mounts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Container directories under `data_root` without a record: spare
/// containers, made ahead for a repeated `run --rm`, out of the API.
pub(crate) fn spare_container_ids(data_root: &Path) -> Vec<String> {
    let dir = data_root.join("containers");
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.path().join("config.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// Seconds since the epoch, for `--since`/`--until`.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
