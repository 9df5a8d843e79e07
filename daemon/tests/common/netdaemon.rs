//! A berthd inside a scratch network namespace the test creates, driven
//! with the real docker CLI: its bridges, veths and nftables table live
//! and die there, so the host's network is never touched.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use berth_network::NetNs;
use berth_testkit::cleanup::remove_leftovers;
use berth_testkit::rootfs::busybox_rootfs_tar;

use super::docker;

/// A berthd (its shim is berthd itself) in its own network namespace.
pub(crate) struct NetDaemon {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) socket: PathBuf,
    pub(crate) netns: PathBuf,
    pub(crate) child: Option<Child>,
    /// More berthd arguments.
    args: Vec<String>,
}

impl NetDaemon {
    pub(crate) fn start() -> NetDaemon {
        NetDaemon::start_with(&[])
    }

    pub(crate) fn start_with(args: &[&str]) -> NetDaemon {
        let dir = tempfile::Builder::new()
            .prefix("berthd-net")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_berthd"),
            dir.path().join("bin/berth-shim"),
        )
        .unwrap();
        let netns = dir.path().join("host-netns");
        NetNs::create(&netns).unwrap();
        let mut daemon = NetDaemon {
            socket: dir.path().join("sock/berth.sock"),
            netns,
            dir,
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        // A fresh namespace has `lo` down; a real host has it up.
        let up = daemon.in_ns(&["ip", "link", "set", "lo", "up"]);
        assert!(up.status.success(), "{}", text(&up.stderr));
        daemon.spawn();
        daemon.busybox();
        daemon
    }

    pub(crate) fn spawn(&mut self) {
        let root = self.dir.path();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_berthd"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--data-root")
            .arg(root.join("root"))
            .arg("--exec-root")
            .arg(root.join("run"))
            .args(["--log-level", "warn", "--config", "/dev/null"])
            .args(&self.args)
            .env("BERTH_SHIM_BINARY", root.join("bin/berth-shim"))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning berthd under nsenter");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berthd exited before serving: {status}");
            }
            assert!(Instant::now() < deadline, "berthd did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` (containers keep running under their shims), then a new berthd.
    pub(crate) fn crash_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.spawn();
    }

    /// SIGTERM, and waits for berthd to exit (containers keep running).
    pub(crate) fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "berthd exited with {status}");
    }

    /// Waits until the links of the scratch host satisfy `done`.
    pub(crate) fn wait_for_links(
        &self,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let links = self.links();
            if done(&links) {
                return links;
            }
            assert!(Instant::now() < deadline, "{what}: {links:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub(crate) fn docker(&self, args: &[&str]) -> (ExitStatus, String, String) {
        docker(&self.host(), args)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.docker(args);
        assert!(
            status.success(),
            "docker {args:?} failed ({status}): {stderr}\nstdout: {stdout}"
        );
        stdout
    }

    /// Runs docker, insists on failure, returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.docker(args);
        assert!(!status.success(), "docker {args:?} succeeded: {stdout}");
        stderr
    }

    /// A command in the scratch "host" namespace.
    pub(crate) fn in_ns(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .arg("--")
            .args(args)
            .output()
            .unwrap()
    }

    pub(crate) fn curl(&self, url: &str) -> Option<String> {
        let out = self.in_ns(&["curl", "-s", "-m", "3", url]);
        out.status.success().then(|| text(&out.stdout))
    }

    /// Polls `url` from the scratch namespace until it answers (a server
    /// just started may not listen yet).
    pub(crate) fn curl_eventually(&self, url: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(body) = self.curl(url) {
                return body;
            }
            assert!(Instant::now() < deadline, "{url} never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn links(&self) -> Vec<String> {
        let out = self.in_ns(&["ip", "-o", "link", "show"]);
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn ruleset(&self) -> String {
        text(&self.in_ns(&["nft", "list", "table", "ip", "berth"]).stdout)
    }

    pub(crate) fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", "--type", "container", name]);
        let mut list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.remove(0)
    }

    pub(crate) fn ip_on(&self, container: &str, network: &str) -> String {
        self.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn busybox(&self) {
        let www = self.dir.path().join("rootfs/www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "hello from berth\n").unwrap();
        let tar = busybox_rootfs_tar(
            self.dir.path(),
            &[
                "sh", "cat", "sleep", "true", "ip", "httpd", "wget", "nc", "nslookup", "hostname",
                "seq",
            ],
        );
        self.ok(&[
            "import",
            "--change",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "busybox",
        ]);
    }
}

impl Drop for NetDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let (_, ids, _) = self.docker(&["ps", "-aq", "--no-trunc"]);
            for id in ids.split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Container namespaces (mounts under the temp dir) go with the
        // rest; the "host" namespace takes its links and nft table along.
        remove_leftovers(self.dir.path(), Some(&self.dir.path().join("run/runtime")));
        let _ = NetNs::remove(&self.netns);
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn veths(links: &[String]) -> Vec<&String> {
    links.iter().filter(|l| l.starts_with("vb")).collect()
}

/// Spares berthd keeps per network in use (its default `--network-pool`).
pub(crate) const POOL: usize = 2;

pub(crate) fn spare_veths(links: &[String]) -> Vec<&String> {
    links.iter().filter(|l| l.starts_with("vbp")).collect()
}

/// Waits until at most `spares` veths are left (the pool's, of the
/// networks still in use): every removed container's pair went with its
/// namespace.
pub(crate) fn wait_for_only_spares(d: &NetDaemon, spares: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let links = d.links();
        let all = veths(&links);
        if all.len() <= spares && all.len() == spare_veths(&links).len() {
            return;
        }
        assert!(Instant::now() < deadline, "veths left: {links:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What berthd leaves when no container runs: base chains only.
pub(crate) fn assert_no_container_rules(ruleset: &str) {
    assert!(!ruleset.contains("chain ctr-"), "{ruleset}");
    assert!(!ruleset.contains("dnat to"), "{ruleset}");
}
