//! A berthd that runs containers (its shim is berthd itself, multi-call as
//! `berth-shim`), in a temp dir with its own data root, exec root and
//! socket, and images built from the host's static busybox. Dropping it
//! removes every container through the API, stops berthd, then kills any
//! shim and unmounts anything left under the temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{berthd_command, docker};

pub(crate) struct Daemon {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) socket: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    pub(crate) fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berthd-vol")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_berthd"),
            dir.path().join("bin/berth-shim"),
        )
        .unwrap();
        let mut daemon = Daemon {
            socket: dir.path().join("sock/berth.sock"),
            dir,
            child: None,
        };
        daemon.spawn();
        daemon
    }

    pub(crate) fn data_root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub(crate) fn spawn(&mut self) {
        let root = self.dir.path();
        let child = berthd_command(&self.socket, &root.join("root"), &root.join("run"))
            .env("BERTH_SHIM_BINARY", root.join("bin/berth-shim"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "berthd did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops berthd with SIGTERM (containers keep running).
    pub(crate) fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "berthd exited with {status}");
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Stops berthd and starts it again on the same roots.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub(crate) fn docker(&self, args: &[&str]) -> (ExitStatus, String, String) {
        docker(&self.host(), args)
    }

    /// Runs the docker CLI, insists on success, returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.docker(args);
        assert!(
            status.success(),
            "docker {args:?} failed ({status}): {stderr}\nstdout: {stdout}"
        );
        stdout
    }

    /// Runs the docker CLI, insists on failure, returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.docker(args);
        assert!(
            !status.success(),
            "docker {args:?} should have failed: {stdout}"
        );
        stderr
    }

    /// Imports an image `name` holding static busybox with all its applets,
    /// plus whatever `extra` puts into the root, with `changes` applied.
    pub(crate) fn image(&self, name: &str, changes: &[&str], extra: impl FnOnce(&Path)) {
        let root = self.dir.path().join(format!("rootfs-{name}"));
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static must be installed (/bin/busybox)");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        extra(&root);
        let tar = self.dir.path().join(format!("rootfs-{name}.tar"));
        let status = Command::new("tar")
            .arg("--xattrs")
            .arg("--xattrs-include=*")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let mut args = vec!["import"];
        for change in changes {
            args.extend(["--change", change]);
        }
        args.extend([tar.to_str().unwrap(), name]);
        self.ok(&args);
    }

    pub(crate) fn busybox(&self) {
        self.image("busybox", &["CMD [\"sh\"]"], |_| {});
    }

    pub(crate) fn inspect(&self, kind: &str, name: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", "--type", kind, name]);
        let mut list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.remove(0)
    }

    pub(crate) fn mounts_under_dir(&self) -> Vec<String> {
        let dir = self.dir.path().to_str().unwrap().to_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .map(str::to_owned)
            .collect()
    }

    /// Processes whose command line names our temp dir (shims).
    fn our_processes(&self) -> Vec<i32> {
        let dir = self.dir.path().to_str().unwrap().to_owned();
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if pid != me && String::from_utf8_lossy(&cmdline).contains(&dir) {
                out.push(pid);
            }
        }
        out
    }

    /// Removes every container, then insists no shim and no mount is left.
    pub(crate) fn assert_clean_after_rm_all(&self) {
        let ids = self.ok(&["ps", "-aq"]);
        let mut args = vec!["rm", "-f"];
        args.extend(ids.split_whitespace());
        if args.len() > 2 {
            self.ok(&args);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let procs: Vec<i32> = self
                .our_processes()
                .into_iter()
                .filter(|pid| Some(*pid as u32) != self.child.as_ref().map(Child::id))
                .collect();
            let mounts = self.mounts_under_dir();
            if procs.is_empty() && mounts.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: processes {procs:?}, mounts {mounts:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
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
        let runtime_root = self.dir.path().join("run/runtime");
        if let Ok(entries) = std::fs::read_dir(&runtime_root) {
            let root = berth_runtime::state::Root::new(&runtime_root);
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                let _ = berth_runtime::container::delete(&root, &id, true);
            }
        }
        for pid in self.our_processes() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let mut mounts = self.mounts_under_dir();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounts {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
    }
}
