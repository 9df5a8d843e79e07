//! Test harness: a real `berthd` on a temp socket and data root, and a tiny
//! HTTP/1.1 client over the unix socket.

#![allow(dead_code)] // each test file uses a subset

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running berthd, killed (and reaped) on drop.
pub(crate) struct Berthd {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) socket: PathBuf,
    pub(crate) data_root: PathBuf,
    pub(crate) exec_root: PathBuf,
    child: Option<Child>,
}

pub(crate) fn berthd_command(socket: &Path, data_root: &Path, exec_root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berthd"));
    cmd.arg("--socket")
        .arg(socket)
        .arg("--data-root")
        .arg(data_root)
        .arg("--exec-root")
        .arg(exec_root)
        .arg("--log-level")
        .arg("warn")
        // Never pick up the host's /etc/berth/berthd.toml.
        .arg("--config")
        .arg("/dev/null")
        // No default network: these daemons share the host's network
        // namespace (tests/networks.rs runs berthd in scratch ones).
        .arg("--bridge")
        .arg("none")
        .stdin(Stdio::null());
    cmd
}

impl Berthd {
    pub(crate) fn start() -> Berthd {
        let dir = tempfile::Builder::new()
            .prefix("berthd-test")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("sock/berth.sock");
        let data_root = dir.path().join("root");
        let exec_root = dir.path().join("run");
        let child = berthd_command(&socket, &data_root, &exec_root)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning berthd");
        let mut daemon = Berthd {
            dir,
            socket,
            data_root,
            exec_root,
            child: Some(child),
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berthd exited before serving: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not create {} in time", self.socket.display());
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub(crate) fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Sends SIGTERM and waits for the exit (a hang guard of 20 s).
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.signal(rustix::process::Signal::TERM);
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "berthd ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn request(&self, method: &str, path: &str) -> HttpResponse {
        request(&self.socket, method, path, &[], b"")
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// Runs the real docker CLI against `host`, returning (status, stdout, stderr).
pub(crate) fn docker(host: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let output = Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_API_VERSION")
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("berthd-test-docker-config"),
        )
        .output()
        .expect("running the docker CLI");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
