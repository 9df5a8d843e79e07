//! A private `berthd`: its own socket, data root and exec root in a temp
//! dir, optionally with itself as the shim (multi-call as `berth-shim`) so
//! it can run containers. On drop it removes every container through the
//! API, stops berthd (SIGTERM, then SIGKILL after 20 s), and then removes
//! whatever is left under the temp dir (see [`crate::cleanup`]), even when
//! the test failed.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cleanup::{remove_leftovers, stop};

/// `<binary> --socket .. --data-root .. --exec-root .. --log-level warn
/// --bridge none`, never reading the host's /etc/berth/berthd.toml; stdin
/// is null.
pub fn berthd_command(binary: &Path, socket: &Path, data_root: &Path, exec_root: &Path) -> Command {
    let mut cmd = Command::new(binary);
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
        // namespace (daemon/tests/networks.rs runs berthd in scratch ones).
        .arg("--bridge")
        .arg("none")
        .stdin(Stdio::null());
    cmd
}

/// How to start a [`Berthd`].
#[derive(Debug, Clone)]
pub struct BerthdBuilder {
    binary: PathBuf,
    prefix: String,
    shim: bool,
    log_file: bool,
    args: Vec<String>,
}

impl BerthdBuilder {
    /// The temp dir's name prefix (default `berthd-test`).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// berthd is its own shim (`bin/berth-shim` links to it), so it can
    /// run containers; drop then removes them.
    pub fn with_shim(mut self) -> Self {
        self.shim = true;
        self
    }

    /// One more berthd argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// berthd's stderr goes to `berthd.log` in the temp dir (see
    /// [`Berthd::log`]) instead of the test's stderr.
    pub fn log_to_file(mut self) -> Self {
        self.log_file = true;
        self
    }

    /// Starts berthd and waits until it serves its socket.
    pub fn start(self) -> Berthd {
        let dir = tempfile::Builder::new()
            .prefix(&self.prefix)
            .tempdir()
            .unwrap();
        if self.shim {
            std::fs::create_dir_all(dir.path().join("bin")).unwrap();
            std::os::unix::fs::symlink(&self.binary, dir.path().join("bin/berth-shim")).unwrap();
        }
        let mut daemon = Berthd {
            socket: dir.path().join("sock/berth.sock"),
            data_root: dir.path().join("root"),
            exec_root: dir.path().join("run"),
            dir,
            options: self,
            child: None,
        };
        daemon.spawn();
        daemon
    }
}

/// A running berthd; see the module doc for what drop cleans up.
#[derive(Debug)]
pub struct Berthd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    options: BerthdBuilder,
    child: Option<Child>,
}

impl Berthd {
    /// A berthd of `binary` (the one cargo built for the tests).
    pub fn builder(binary: impl Into<PathBuf>) -> BerthdBuilder {
        BerthdBuilder {
            binary: binary.into(),
            prefix: "berthd-test".to_owned(),
            shim: false,
            log_file: false,
            args: Vec::new(),
        }
    }

    /// [`berthd_command`] for this daemon's binary.
    pub fn command(&self, socket: &Path, data_root: &Path, exec_root: &Path) -> Command {
        berthd_command(&self.options.binary, socket, data_root, exec_root)
    }

    /// Starts berthd (again, after [`Berthd::kill9`]) on the same socket
    /// and roots; waits (20 s at most) until it serves the socket.
    pub fn spawn(&mut self) {
        let root = self.dir.path();
        let mut cmd = self.command(&self.socket, &self.data_root, &self.exec_root);
        cmd.args(&self.options.args);
        if self.options.shim {
            cmd.env("BERTH_SHIM_BINARY", root.join("bin/berth-shim"));
        }
        if self.options.log_file {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .unwrap();
            cmd.stdout(log.try_clone().unwrap()).stderr(log);
        } else {
            cmd.stderr(Stdio::inherit());
        }
        self.child = Some(cmd.spawn().expect("spawning berthd"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("berthd exited before serving ({status}){}", self.log_note());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not create {} within 20 s{}",
                self.socket.display(),
                self.log_note()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("berthd.log")
    }

    /// What berthd logged (warnings and errors) when it logs to a file.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_note(&self) -> String {
        if self.options.log_file {
            format!("; log:\n{}", self.log())
        } else {
            String::new()
        }
    }

    /// The pid of the running berthd.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("berthd is running").id()
    }

    /// The pid, or `None` once it was killed or terminated.
    pub fn running_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `unix://<socket>`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Sends SIGTERM and waits for the exit (a hang guard of 20 s).
    pub fn terminate(&mut self) -> ExitStatus {
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

    /// `kill -9`: the shims and containers live on; the socket file is
    /// removed so [`Berthd::spawn`] waits for the new daemon.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Removes every container through the docker CLI.
    fn remove_containers(&self) {
        let config = crate::docker::temp_config("berth-testkit-docker-config");
        let (_, ids, _) = crate::docker::run(&self.host(), &config, &["ps", "-aq", "--no-trunc"]);
        for id in ids.split_whitespace() {
            let _ = crate::docker::run(&self.host(), &config, &["rm", "-f", id]);
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if self.options.shim && self.child.is_some() {
            self.remove_containers();
        }
        if self.child.is_some() {
            // User networks: a daemon in the host's namespace made their
            // bridges and nftables table there.
            let config = crate::docker::temp_config("berth-testkit-docker-config");
            let _ = crate::docker::run(&self.host(), &config, &["network", "prune", "-f"]);
        }
        if let Some(child) = self.child.take() {
            stop(child);
        }
        // Fallback when berthd could not remove them.
        remove_leftovers(self.dir.path(), Some(&self.exec_root.join("runtime")));
    }
}
