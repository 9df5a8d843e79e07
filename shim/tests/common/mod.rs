//! Fixtures for the shim's root integration tests: busybox bundles built
//! from Debian's busybox-static (as runtime/tests/common does), and a
//! [`Fixture`] that shuts its shim down, or kills it and force-deletes the
//! container, when dropped.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use berth_shim::client::{self, Client, LogOptions, SpawnOptions};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");
const BUSYBOX: &str = "/bin/busybox";

pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    assert!(unsafe { libc::geteuid() } == 0, "these tests need root");
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: apt-get install busybox-static"
    );
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
    /// oci-spec's default spec (runc's), running `args`, writable rootfs.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-bundle")
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        make_rootfs(&path.join("rootfs"));
        let mut config = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"]["path"] = json!("rootfs");
        config["root"]["readonly"] = json!(false);
        let mut b = Bundle {
            _dir: dir,
            path,
            config,
        };
        b.save();
        b
    }

    pub fn tty(mut self) -> Bundle {
        self.config["process"]["terminal"] = json!(true);
        self.save();
        self
    }

    pub fn save(&mut self) {
        fs::write(
            self.path.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

fn make_rootfs(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}

/// Directories for one shim: state, runtime root, logs.
pub struct Dirs {
    pub tmp: TempDir,
    pub id: String,
}

impl Dirs {
    pub fn new(prefix: &str) -> Dirs {
        Dirs {
            tmp: tempfile::Builder::new()
                .prefix("berth-shim-test")
                .tempdir()
                .unwrap(),
            id: unique_id(prefix),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.tmp.path().join("runtime")
    }

    pub fn log_path(&self) -> PathBuf {
        self.tmp.path().join("container-json.log")
    }

    pub fn options(&self, bundle: &Bundle) -> SpawnOptions {
        spawn_options(self.tmp.path(), &self.id, &bundle.path)
    }
}

/// Spawn options with state, runtime root and log under `base`.
pub fn spawn_options(base: &Path, id: &str, bundle: &Path) -> SpawnOptions {
    SpawnOptions {
        binary: SHIM.into(),
        bundle: bundle.to_path_buf(),
        id: id.to_string(),
        state_dir: base.join("state"),
        runtime_root: Some(base.join("runtime")),
        log: Some(LogOptions {
            path: base.join("container-json.log"),
            max_size: 0,
            max_files: 1,
        }),
        tty: false,
        stdin: false,
    }
}

/// A shim under test. Dropping it shuts the shim down; if that fails,
/// the shim is SIGKILLed and the container force-deleted.
pub struct Fixture {
    pub client: Option<Client>,
    pub dirs: Dirs,
    pub bundle: Bundle,
}

impl Fixture {
    pub fn spawn(args: &[&str]) -> Fixture {
        Self::spawn_with(Bundle::new(args), |_| {})
    }

    pub fn spawn_with(bundle: Bundle, edit: impl FnOnce(&mut SpawnOptions)) -> Fixture {
        require_root();
        let dirs = Dirs::new("shim");
        let mut opts = dirs.options(&bundle);
        edit(&mut opts);
        let client = client::spawn(&opts).unwrap();
        Fixture {
            client: Some(client),
            dirs,
            bundle,
        }
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// The json-file log's entries: (stream, log).
    pub fn log_entries(&self) -> Vec<(String, String)> {
        read_log(&self.dirs.log_path())
    }

    pub fn log_text(&self, stream: &str) -> String {
        self.log_entries()
            .into_iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, l)| l)
            .collect()
    }
}

pub fn read_log(path: &Path) -> Vec<(String, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                v["stream"].as_str().unwrap().to_string(),
                v["log"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        cleanup(&self.dirs, self.client.take());
        if !std::thread::panicking() {
            assert!(
                leftover_cgroups(&self.dirs.id).is_empty(),
                "cgroups of {} left behind",
                self.dirs.id
            );
            assert!(
                !self.dirs.runtime_root().join(&self.dirs.id).exists(),
                "runtime state of {} left behind",
                self.dirs.id
            );
        }
    }
}

/// Shuts the shim down; failing that, kills it and force-deletes.
pub fn cleanup(dirs: &Dirs, client: Option<Client>) {
    let client = client.or_else(|| client::connect(&dirs.state_dir()).ok());
    let pid = client.as_ref().map(|c| c.shim_pid()).unwrap_or(0);
    let shut = client.map(|c| c.shutdown().is_ok()).unwrap_or(false);
    if !shut {
        if pid > 0 {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let root = berth_runtime::state::Root::new(dirs.runtime_root());
        let _ = berth_runtime::container::delete(&root, &dirs.id, true);
    }
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

pub fn process_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); /proc/<pid>/stat tells them apart.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}
