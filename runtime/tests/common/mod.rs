//! Fixtures for the root integration tests: busybox bundles built from
//! Debian's busybox-static, and a runtime with its own state directory
//! that force-deletes every container it knows when dropped.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use tempfile::TempDir;

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_berth-runtime");
const BUSYBOX: &str = "/bin/busybox";

/// Skips (with a message) unless running as root with busybox-static.
pub fn require_root() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "these tests need root: run them with the README's test command"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: apt-get install busybox-static"
    );
    true
}

pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bundle directory: rootfs/ with busybox and its applets, config.json.
pub struct Bundle {
    _dir: TempDir,
    pub path: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// The default spec of `berth-runtime spec`, running `args`.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle")
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        make_rootfs(&path.join("rootfs"));
        let out = Command::new(RUNTIME)
            .arg("spec")
            .arg("--bundle")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&fs::read(path.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        // The default spec's rootfs is read-only; docker's is writable.
        config["root"]["readonly"] = json!(false);
        let mut b = Bundle {
            _dir: dir,
            path,
            config,
        };
        b.save();
        b
    }

    pub fn save(&mut self) {
        fs::write(
            self.path.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }
}

fn make_rootfs(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        // The list names busybox itself: don't replace the binary with a link.
        if applet != "busybox" {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// berth-runtime with a private --root; deletes what is left when dropped.
pub struct Runtime {
    pub root: TempDir,
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: tempfile::Builder::new()
                .prefix("berth-root")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(RUNTIME);
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Runs the runtime with stdout and stderr in files, not pipes: a
    /// container left behind by `create` or `run --detach` inherits them
    /// and would keep a pipe open forever.
    pub fn exec(&self, args: &[&str]) -> Output {
        output(self.cmd().args(args))
    }

    /// `run` in the bundle: (exit code, stdout, stderr).
    pub fn run(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        let out = output(
            self.cmd()
                .arg("run")
                .arg("--bundle")
                .arg(&bundle.path)
                .arg(id),
        );
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn status(&self, id: &str) -> String {
        let state: Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        state["status"].as_str().unwrap().to_string()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.root.path()) {
            for e in entries.flatten() {
                let id = e.file_name().into_string().unwrap();
                let _ = self.exec(&["delete", "--force", &id]);
            }
        }
    }
}

/// Like `Command::output`, through temporary files.
pub fn output(cmd: &mut Command) -> Output {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |f: &mut fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Cgroup directories named after `id` on any hierarchy (leftover check).
pub fn leftover_cgroups(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(hier) = fs::read_dir("/sys/fs/cgroup") {
        for h in hier.flatten() {
            let p = h.path().join("berth").join(id);
            if p.exists() {
                found.push(p);
            }
        }
    }
    found
}
