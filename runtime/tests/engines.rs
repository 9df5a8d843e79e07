//! Real engines drive berth-runtime: containerd (through `ctr` and
//! containerd-shim-runc-v2) and podman (through conmon). Each test runs a
//! private daemon or store in a temp dir and removes all of it afterwards:
//! containers, shims, conmons, mounts and cgroups.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_runtime::state::DEFAULT_ROOT;
use common::{Bundle, RUNTIME, output, require_root, text, unique_id};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` under `script(1)`, which gives it a pty as its terminal (the
/// engines refuse `-t` otherwise): (exit code, what it printed).
fn with_tty(cmd: &Command) -> (i32, String) {
    let mut line = shell_quote(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(&a.to_string_lossy()));
    }
    let out = output(Command::new("script").args(["-qec", &line, "/dev/null"]));
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// SIGKILLs every process whose command line mentions `needle` (a temp
/// dir of this test): shims and conmons that outlive their engine.
fn kill_processes_mentioning(needle: &Path) {
    let needle = needle.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
        if pid != me && String::from_utf8_lossy(&cmdline).contains(&needle) {
            // SAFETY: kill has no memory effects; the pid was just read.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
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
    for dir in leftover_cgroup_parent(parent) {
        // Children first: cgroup directories go with rmdir only.
        let _ = Command::new("find")
            .arg(&dir)
            .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
            .status();
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

/// Cgroup directories below `parent` whose name starts with `prefix`.
fn child_cgroups(parent: &str, prefix: &str) -> Vec<PathBuf> {
    leftover_cgroup_parent(parent)
        .into_iter()
        .flat_map(|p| fs::read_dir(p).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stdout {:?} stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
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
        // Only what ctr run needs: no CRI, no snapshotters that probe the
        // host, the opt plugin out of /opt.
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
        );
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
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
            std::thread::sleep(Duration::from_millis(20));
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

    /// `ctr run` with berth-runtime as the shim's runc, state in our dir.
    fn run(&self, flags: &[&str], rootfs: &Path, id: &str, args: &[&str]) -> Command {
        let mut c = self.ctr();
        c.arg("run")
            .args(flags)
            .args(["--runc-binary", RUNTIME, "--runc-root"])
            .arg(self.runc_root())
            .arg("--fifo-dir")
            .arg(self.dir.path().join("fifo"))
            .arg("--rootfs")
            .arg(rootfs)
            .arg(id)
            .args(args);
        c
    }

    /// `ctr task exec` (stdio fifos in our dir, not /run/containerd/fifo).
    fn exec(&self, args: &[&str]) -> Command {
        let mut c = self.ctr();
        c.args(["task", "exec", "--fifo-dir"])
            .arg(self.dir.path().join("fifo"))
            .args(args);
        c
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }

    /// berth-runtime's state directory as the shim passes it (`--root`).
    fn berth_root(&self) -> PathBuf {
        self.runc_root().join(&self.namespace)
    }

    fn tasks(&self) -> String {
        text(&output(self.ctr().args(["task", "ls"])).stdout)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Containers a failed test left: killed and removed by the runtime.
        if let Ok(entries) = fs::read_dir(self.berth_root()) {
            for e in entries.flatten() {
                let _ = output(
                    Command::new(RUNTIME)
                        .arg("--root")
                        .arg(self.berth_root())
                        .args(["delete", "--force"])
                        .arg(e.file_name()),
                );
            }
        }
        // SAFETY: kill has no memory effects; the daemon is our unreaped child.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        // Shims outlive containerd by design: end the ones serving this one.
        kill_processes_mentioning(self.dir.path());
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

    // ctr run --rm: create, start, wait, delete; stdout and exit status.
    let out = output(&mut ctrd.run(
        &["--rm"],
        &rootfs,
        "hello",
        &[
            "/bin/sh",
            "-c",
            "echo hi from containerd; echo to stderr >&2; exit 3",
        ],
    ));
    assert_code(&out, 3, &ctrd.log());
    assert_eq!(text(&out.stdout), "hi from containerd\n");
    assert_eq!(text(&out.stderr), "to stderr\n");

    // A failing create: the shim reads the error from `--log` (JSON).
    let out = output(&mut ctrd.run(&["--rm"], &rootfs, "broken", &["/nonexistent"]));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("OCI runtime create failed: container init failed")
            && err.contains("/nonexistent"),
        "{err}"
    );

    // A terminal: the shim hands berth-runtime a --console-socket.
    let (code, printed) = with_tty(&ctrd.run(
        &["--rm", "-t"],
        &rootfs,
        "tty",
        &["/bin/sh", "-c", "tty; exit 4"],
    ));
    assert_eq!(code, 4, "{printed}");
    assert!(printed.contains("/dev/pts/0"), "{printed:?}");

    // Detached: exec, ps, pause/resume, kill, delete.
    let out = output(&mut ctrd.run(&["-d"], &rootfs, "sleeper", &["/bin/sleep", "30"]));
    assert_code(&out, 0, &ctrd.log());
    let out = output(&mut ctrd.exec(&[
        "--exec-id",
        "e1",
        "sleeper",
        "/bin/sh",
        "-c",
        "echo from exec; exit 5",
    ]));
    assert_code(&out, 5, "task exec");
    assert_eq!(text(&out.stdout), "from exec\n");
    let out = output(&mut ctrd.exec(&["-d", "--exec-id", "e2", "sleeper", "/bin/sleep", "30"]));
    assert_code(&out, 0, "task exec -d");
    // `ps --format json` through the shim: the init and the exec.
    let ps = text(&output(ctrd.ctr().args(["task", "ps", "sleeper"])).stdout);
    assert_eq!(ps.lines().count(), 3, "{ps}");
    assert!(ps.contains("ExecID:e2"), "{ps}");
    for (verb, status) in [("pause", "PAUSED"), ("resume", "RUNNING")] {
        let out = output(ctrd.ctr().args(["task", verb, "sleeper"]));
        assert_code(&out, 0, verb);
        let tasks = ctrd.tasks();
        assert!(tasks.contains(status), "after {verb}: {tasks}");
    }
    let out = output(
        ctrd.ctr()
            .args(["task", "kill", "-a", "-s", "SIGKILL", "sleeper"]),
    );
    assert_code(&out, 0, "task kill");
    wait_for("the task to stop", Duration::from_secs(10), || {
        ctrd.tasks().contains("STOPPED")
    });
    for args in [
        &["task", "delete", "sleeper"][..],
        &["container", "delete", "sleeper"][..],
    ] {
        let out = output(ctrd.ctr().args(args));
        assert_code(&out, 0, &format!("{args:?}"));
    }

    // Nothing left: no containers in berth-runtime's state, no container
    // cgroups (the namespace's parent goes with the guard), no shims.
    let left: Vec<_> = fs::read_dir(ctrd.berth_root())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
    let cgroups = child_cgroups(&ctrd.namespace, "");
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let out = output(ctrd.ctr().args(["container", "ls", "-q"]));
    assert_eq!(text(&out.stdout), "");
}

/// podman with its own store, tmpdir and cgroup parent, using berth-runtime
/// (which keeps its state in its default root: podman passes no --root).
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
            .arg("--tmpdir")
            .arg(d.join("tmp"))
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

    /// `podman run` with the flags this host needs (see
    /// ENVIRONMENT.md), then `args`.
    fn run(&self, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("run")
            .args(["--network", "none"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("--cgroup-parent")
            .arg(format!("/{}", self.cgroup_parent))
            .args(args);
        c
    }

    fn import_busybox(&self) {
        let bundle = Bundle::new(&["true"]);
        let tar = self.dir.path().join("busybox.tar");
        let out = output(
            Command::new("tar")
                .arg("-C")
                .arg(bundle.rootfs())
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        assert_code(&out, 0, "tar");
        let out = output(self.cmd().arg("import").arg(&tar).arg(IMAGE));
        assert_code(&out, 0, "podman import");
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = output(self.cmd().args(["inspect", "-f", format, name]));
        text(&out.stdout).trim().to_string()
    }

    fn ids(&self) -> Vec<String> {
        let out = output(self.cmd().args(["ps", "-aq", "--no-trunc"]));
        text(&out.stdout).lines().map(String::from).collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let ids = self.ids();
        let _ = output(self.cmd().args(["rm", "-af", "-t", "0"]));
        for id in ids {
            let _ = output(Command::new(RUNTIME).args(["delete", "--force", &id]));
        }
        kill_processes_mentioning(self.dir.path());
        unmount_below(self.dir.path());
        remove_cgroup_parent(&self.cgroup_parent);
    }
}

const IMAGE: &str = "berth-test/busybox";

fn podman() -> Podman {
    require_root();
    assert!(
        have("podman") && have("conmon"),
        "podman missing: scripts/setup-host installs it"
    );
    let p = Podman::new();
    p.import_busybox();
    p
}

#[test]
fn podman_runs_and_execs_through_berth_runtime() {
    let podman = podman();

    let out = output(&mut podman.run(&[
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hi from podman; echo to stderr >&2; exit 3",
    ]));
    assert_code(&out, 3, "podman run");
    assert_eq!(text(&out.stdout), "hi from podman\n");
    assert!(text(&out.stderr).contains("to stderr\n"));

    // podman's spec denies every device and leaves the runtime to allow
    // the default ones, as runc does.
    let out = output(&mut podman.run(&[
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo x >/dev/null && head -c 3 /dev/zero | wc -c && head -c 2 /dev/urandom | wc -c",
    ]));
    assert_code(&out, 0, "default devices");
    assert_eq!(text(&out.stdout), "3\n2\n");

    // A terminal through conmon's console socket (and /dev/pts/ptmx).
    let (code, printed) = with_tty(&podman.run(&["--rm", "-t", IMAGE, "sh", "-c", "tty; exit 2"]));
    assert_eq!(code, 2, "{printed}");
    assert!(printed.contains("/dev/pts/0"), "{printed:?}");

    // podman maps the runtime's error text to docker's exit codes.
    let out = output(&mut podman.run(&["--rm", IMAGE, "nosuchcommand"]));
    assert_code(&out, 127, "missing command");
    let out = output(&mut podman.run(&["--rm", IMAGE, "/etc/hostname"]));
    assert_code(&out, 126, "not executable");

    // Detached: exec, pause/unpause, stop (SIGTERM, trapped), rm.
    let out = output(&mut podman.run(&[
        "-d",
        "--name",
        "sleeper",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 9' TERM; while true; do sleep 0.1; done",
    ]));
    assert_code(&out, 0, "podman run -d");
    let id = text(&out.stdout).trim().to_string();
    let out = output(podman.cmd().args([
        "exec",
        "sleeper",
        "sh",
        "-c",
        "echo from podman exec; exit 5",
    ]));
    assert_code(&out, 5, "podman exec");
    assert_eq!(text(&out.stdout), "from podman exec\n");
    let (code, printed) = with_tty(podman.cmd().args(["exec", "-t", "sleeper", "tty"]));
    assert_eq!(code, 0, "{printed}");
    assert!(printed.contains("/dev/pts/"), "{printed:?}");
    for (verb, status) in [("pause", "paused"), ("unpause", "running")] {
        let out = output(podman.cmd().args([verb, "sleeper"]));
        assert_code(&out, 0, verb);
        assert_eq!(podman.inspect("sleeper", "{{.State.Status}}"), status);
    }
    let out = output(podman.cmd().args(["stop", "-t", "10", "sleeper"]));
    assert_code(&out, 0, "podman stop");
    assert_eq!(podman.inspect("sleeper", "{{.State.ExitCode}}"), "9");
    let out = output(podman.cmd().args(["rm", "-f", "-t", "0", "sleeper"]));
    assert_code(&out, 0, "podman rm");

    assert!(podman.ids().is_empty(), "containers left");
    assert!(
        !Path::new(DEFAULT_ROOT).join(&id).exists(),
        "berth-runtime state left for {id}"
    );
    let cgroups = child_cgroups(&podman.cgroup_parent, "libpod-");
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

/// podman asks for runc's `tmpcopyup` tmpfs option for `--tmpfs` and for
/// `--read-only`'s /tmp, /run and /var/tmp.
#[test]
fn podman_tmpfs_with_tmpcopyup() {
    let podman = podman();
    let out = output(&mut podman.run(&[
        "--rm",
        "--tmpfs",
        "/etc",
        "--read-only",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/group >/dev/null && touch /tmp/x /etc/y && ! touch /z",
    ]));
    assert_code(&out, 0, "podman run --tmpfs --read-only");
}
