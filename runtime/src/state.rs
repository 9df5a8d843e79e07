//! Persisted container state under the runtime's root directory
//! (`--root`, default `/run/berth-runtime`), one directory per container:
//!
//! ```text
//! <root>/<id>/state.json   this file's ContainerState, replaced atomically
//! <root>/<id>/config.json  the spec the container was created from
//! <root>/<id>/exec.fifo    present while created and not yet started
//! ```
//!
//! The status is not stored: it is read from the world (is the init
//! alive, is the fifo there, is the cgroup frozen) each time, as runc does.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::sys;

pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
pub const OCI_VERSION: &str = "1.2.0";

/// The lifecycle of a container, as in the OCI runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Stopped)
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
    pub fn can_update(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_exec(self) -> bool {
        self == Status::Running
    }
}

/// What the runtime remembers of a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub id: String,
    pub pid: i32,
    /// Start time of the init in clock ticks since boot (field 22 of
    /// `/proc/<pid>/stat`): tells our init from a later process that reused
    /// its pid.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// The OCI `state` output.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// The runtime's state directory.
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Claims `id`: creates its directory, failing if it exists.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        fs::create_dir_all(&self.path).map_err(|e| RuntimeError::io("creating", &self.path, e))?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::AlreadyExists { id: id.to_string() })
            }
            Err(e) => Err(RuntimeError::io("creating", dir, e)),
        }
    }

    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.container_dir(&state.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(state).expect("state serializes");
        let mut f = fs::File::create(&tmp).map_err(|e| RuntimeError::io("creating", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| RuntimeError::io("writing", &tmp, e))?;
        let path = dir.join("state.json");
        fs::rename(&tmp, &path).map_err(|e| RuntimeError::io("renaming", &path, e))
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let path = self.container_dir(id).join("state.json");
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound { id: id.to_string() });
            }
            Err(e) => return Err(RuntimeError::io("reading", path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| RuntimeError::CorruptState {
            id: id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Ids of every container with a state file, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io("reading", &self.path, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("removing", dir, e)),
        }
    }

    pub fn fifo_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("exec.fifo")
    }
}

/// runc's rule: letters, digits, `_`, `+`, `-`, `.`; not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| RuntimeError::InvalidId {
        id: id.to_string(),
        reason,
    };
    if id.is_empty() {
        return Err(bad("it is empty"));
    }
    if id == "." || id == ".." {
        return Err(bad("it is a relative path"));
    }
    if id.len() > 1024 {
        return Err(bad("it is longer than 1024 bytes"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return Err(bad(
            "only letters, digits, '_', '+', '-' and '.' are allowed",
        ));
    }
    Ok(())
}

/// (state letter, start time) of a process, from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl ContainerState {
    /// A pidfd for the init if it is still the same, live process.
    pub fn init_pidfd(&self) -> Option<OwnedFd> {
        let fd = sys::pidfd_open(self.pid).ok()?;
        // SAFETY: pidfd_open returned a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Checked after opening: the pidfd pins the process, so a matching
        // start time now means the pidfd is our init.
        match proc_stat(self.pid) {
            Some((s, start)) if start == self.init_start_time && s != 'Z' && s != 'X' => Some(fd),
            _ => None,
        }
    }

    pub fn status(&self, root: &Root) -> Status {
        if self.init_pidfd().is_none() {
            return Status::Stopped;
        }
        if root.fifo_path(&self.id).exists() {
            return Status::Created;
        }
        match crate::cgroups::ContainerCgroup::open(&self.cgroup_path).and_then(|c| c.is_frozen()) {
            Ok(true) => Status::Paused,
            _ => Status::Running,
        }
    }

    pub fn to_oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            status: status.as_str().to_string(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds, like runc's `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-28T12:22:12.000000005Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }

    #[test]
    fn reads_own_proc_stat() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start > 0);
    }

    #[test]
    fn status_guards() {
        assert!(Status::Created.can_start() && !Status::Running.can_start());
        assert!(!Status::Stopped.can_kill() && Status::Paused.can_kill());
        assert!(Status::Stopped.can_delete() && !Status::Running.can_delete());
    }
}
