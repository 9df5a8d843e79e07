//! Real engines drive berth-runtime: containerd (through `ctr` and
//! containerd-shim-runc-v2) and podman (through conmon). Each test runs a
//! private daemon or store in a temp dir and removes all of it afterwards.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Bundle, RUNTIME, output, require_root, text, unique_id};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lazily unmounts everything mounted below `dir` (deepest first).
fn unmount_below(dir: &Path) {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}

/// Removes `/sys/fs/cgroup/<hierarchy>/<parent>` trees an engine left.
fn remove_cgroup_parent(parent: &str) {
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(parent);
        if dir.is_dir() {
            // Children first: cgroup directories go with rmdir only.
            let _ = Command::new("find")
                .arg(&dir)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .status();
        }
    }
}

fn leftover_cgroup_parent(parent: &str) -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|hs| {
            hs.flatten()
                .map(|h| h.path().join(parent))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

/// A private containerd; `namespace` doubles as its cgroup parent.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    namespace: String,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd")
            .tempdir()
            .unwrap();
        let d = dir.path().display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n"
        );
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            daemon,
            namespace: unique_id("berthtest").replace('-', "x"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c
            .ctr()
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(["-n", &self.namespace]);
        c
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we spawned and have not reaped.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        // Shims outlive containerd by design: end the ones serving this one.
        let sock = self.dir.path().join("containerd.sock");
        let _ = Command::new("pkill")
            .args(["-9", "-f", &format!("-address {}", sock.display())])
            .status();
        unmount_below(self.dir.path());
        remove_cgroup_parent(&self.namespace);
    }
}

#[test]
fn containerd_runs_and_execs_through_berth_runtime() {
    require_root();
    assert!(
        have("containerd") && have("ctr"),
        "containerd missing: scripts/setup-host installs it"
    );
    let bundle = Bundle::new(&["true"]);
    let rootfs = bundle.rootfs();
    let ctrd = Containerd::start();

    let out = output(
        ctrd.ctr()
            .args(["run", "--rm", "--runc-binary", RUNTIME, "--rootfs"])
            .arg(&rootfs)
            .args(["hello", "sh", "-c", "echo hi from containerd; exit 3"]),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        text(&out.stderr),
        ctrd.log()
    );
    assert_eq!(text(&out.stdout), "hi from containerd\n");

    let out = output(
        ctrd.ctr()
            .args(["run", "-d", "--runc-binary", RUNTIME, "--rootfs"])
            .arg(&rootfs)
            .args(["sleeper", "sleep", "30"]),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        ctrd.log()
    );
    let out = output(ctrd.ctr().args([
        "task",
        "exec",
        "--exec-id",
        "e1",
        "sleeper",
        "sh",
        "-c",
        "echo from exec; exit 4",
    ]));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from exec\n");
    let tasks = text(&output(ctrd.ctr().args(["task", "ls"])).stdout);
    assert!(
        tasks.contains("sleeper") && tasks.contains("RUNNING"),
        "{tasks}"
    );

    let out = output(
        ctrd.ctr()
            .args(["task", "kill", "-s", "SIGKILL", "sleeper"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&output(ctrd.ctr().args(["task", "ls"])).stdout).contains("STOPPED") {
        assert!(Instant::now() < deadline, "task never stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    for args in [
        &["task", "delete", "sleeper"][..],
        &["container", "delete", "sleeper"][..],
    ] {
        let out = output(ctrd.ctr().args(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    // The containers' own cgroups are gone; only the namespace's parent,
    // which containerd leaves as runc does, remains until the guard drops.
    for parent in leftover_cgroup_parent(&ctrd.namespace) {
        let children: Vec<_> = fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(
            children.is_empty(),
            "container cgroups left in {}",
            parent.display()
        );
    }
}

/// podman with its own store and cgroup parent, using berth-runtime.
struct Podman {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::Builder::new()
                .prefix("berth-podman")
                .tempdir()
                .unwrap(),
            cgroup_parent: unique_id("berthpodman"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        let d = self.dir.path();
        c.arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--storage-driver",
                "vfs",
            ])
            .args(["--runtime", RUNTIME]);
        c
    }

    /// `podman run` flags this host needs (see docs/design.md).
    fn run_flags(&self) -> Vec<String> {
        [
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--cgroup-parent",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("/{}", self.cgroup_parent)])
        .collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = output(self.cmd().args(["rm", "-af", "-t", "0"]));
        unmount_below(self.dir.path());
        remove_cgroup_parent(&self.cgroup_parent);
    }
}

#[test]
fn podman_runs_and_execs_through_berth_runtime() {
    require_root();
    assert!(
        have("podman"),
        "podman missing: scripts/setup-host installs it"
    );
    let podman = Podman::new();
    let bundle = Bundle::new(&["true"]);
    let rootfs = bundle.rootfs();
    let tar = podman.dir.path().join("busybox.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let out = output(
        podman
            .cmd()
            .arg("import")
            .arg(&tar)
            .arg("berth-test/busybox"),
    );
    assert!(out.status.success(), "import: {}", text(&out.stderr));

    let out = output(
        podman
            .cmd()
            .args(["run", "--rm"])
            .args(podman.run_flags())
            .args([
                "berth-test/busybox",
                "sh",
                "-c",
                "echo hi from podman; exit 3",
            ]),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi from podman\n");

    let out = output(
        podman
            .cmd()
            .args(["run", "-d", "--name", "sleeper"])
            .args(podman.run_flags())
            .args(["berth-test/busybox", "sleep", "30"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = output(podman.cmd().args([
        "exec",
        "sleeper",
        "sh",
        "-c",
        "echo from podman exec; exit 5",
    ]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from podman exec\n");
    let out = output(podman.cmd().args(["rm", "-f", "-t", "0", "sleeper"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ps = text(&output(podman.cmd().args(["ps", "-aq"])).stdout);
    assert!(ps.trim().is_empty(), "containers left: {ps}");
}
