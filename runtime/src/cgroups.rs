//! The container's cgroup on cgroup v1, v2 and hybrid hosts, through youki's
//! `libcgroups`.
//!
//! A container has one cgroup path (the spec's `linux.cgroupsPath`, or
//! `/berth/<id>`). On a pure v2 host that is one directory under
//! `/sys/fs/cgroup`; on a v1 or hybrid host it is that directory in every
//! hierarchy mounted under `/sys/fs/cgroup` (named ones such as
//! `name=systemd` included, as runc does); on a hybrid host also in the v2
//! mount at `/sys/fs/cgroup/unified`, but only when hugetlb limits must go
//! there (joining it costs a slow `cgroup.procs` write). Relative paths are taken under each
//! hierarchy's root, exactly like absolute ones (runc would put them under
//! the runtime's own cgroup instead).
//!
//! What goes through `libcgroups` and what does not:
//!
//! - limits (`apply`), `freeze`/`thaw`, `stats` and the pid walk use
//!   libcgroups' v1 or v2 manager and helpers;
//! - creating the directories, moving a pid in, reading the freezer state and
//!   removing the directories are plain file operations here. libcgroups'
//!   v1 manager writes limits only into directories that already exist, knows
//!   neither named hierarchies nor the hybrid v2 mount, and costs about 1 ms
//!   to build (it reads `/proc/self/mountinfo` and `/proc/self/cgroup` once
//!   per controller, twelve times), so it is built only where it is needed:
//!   in [`ContainerCgroup::create`] when the spec has resources, and for
//!   `freeze`, `thaw` and `stats`.
//!
//! On a hybrid host hugetlb may sit on the v2 mount rather than on a v1
//! hierarchy. Its limits are then applied with libcgroups' v2 manager rooted
//! at `/sys/fs/cgroup/unified` (which enables `+hugetlb` in the
//! `cgroup.subtree_control` of the mount's root and of the path's parents).
//! The systemd cgroup driver (`slice:prefix:name` paths) is not supported.

mod layout;
mod v1_direct;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use libcgroups::common::{
    AnyManagerError, CgroupManager, ControllerOpt, FreezerState, WrappedIoError,
};
use libcgroups::stats::Stats;
use libcgroups::v1::manager::V1ManagerError;
use libcgroups::v2::manager::V2ManagerError;
use oci_spec::runtime::LinuxResources;

use self::layout::Layout;
use crate::error::ErrorKind;

/// Errors from managing a container's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A `slice:prefix:name` path, meant for the systemd cgroup driver.
    #[error("cgroups path {path}: the systemd cgroup driver is not supported")]
    SystemdDriver { path: PathBuf },
    #[error("invalid cgroups path {path}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("detecting the host's cgroup setup: {0}")]
    Setup(#[source] Box<libcgroups::common::GetCgroupSetupError>),
    #[error("cgroup {path} does not exist")]
    NotFound { path: PathBuf },
    /// The spec asks for a controller this host can't provide.
    #[error("{controller} limits are not supported here: {reason}")]
    Unsupported {
        controller: String,
        reason: &'static str,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("adding pid {pid} to cgroup {path}: {source}")]
    AddTask {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    /// libcgroups failed to write a controller's limits.
    #[error("applying {controller} limits to cgroup {path}: {source}")]
    Apply {
        controller: String,
        path: PathBuf,
        source: Box<AnyManagerError>,
    },
    /// Writing a limit into a control file failed.
    #[error("applying {controller} limits: writing {value:?} to {path}: {source}")]
    Write {
        controller: String,
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// libcgroups failed to freeze, thaw, or read stats.
    #[error("{op} cgroup {path}: {source}")]
    Manager {
        op: &'static str,
        path: PathBuf,
        source: Box<AnyManagerError>,
    },
    /// A cgroup directory still had tasks (or children) after retries.
    #[error("removing cgroup {path}: still busy after {attempts} attempts")]
    Busy { path: PathBuf, attempts: u32 },
}

impl CgroupError {
    /// What sort of failure this is, for mapping to statuses and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::InvalidPath { .. } | Self::Apply { .. } | Self::Write { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::SystemdDriver { .. } | Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Busy { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}

/// A v1 hierarchy to show inside the container: a bind mount of the
/// container's own cgroup directory at `/sys/fs/cgroup/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMountPoint {
    /// The hierarchy's directory name under `/sys/fs/cgroup` ("cpu,cpuacct",
    /// "memory", "systemd", "unified"). For a name with commas the caller
    /// adds one symlink per part ("cpu" -> "cpu,cpuacct").
    pub name: String,
    /// The container's cgroup directory in that hierarchy on the host.
    pub host_path: PathBuf,
}

/// The container's cgroup (one per container), on whatever cgroup setup the
/// host has.
#[derive(Debug)]
pub struct ContainerCgroup {
    /// The path as the spec gave it, for messages.
    path: PathBuf,
    /// `path` relative to each hierarchy's root.
    rel: PathBuf,
    layout: Layout,
}

/// Detects the cgroup layout ahead for this process's next create.
pub(crate) fn prewarm_layout() {
    Layout::prewarm();
}

impl ContainerCgroup {
    /// Creates (`mkdir -p`) the cgroup at `path` in every hierarchy and
    /// applies `resources` through libcgroups before any task is in it. An
    /// existing cgroup is reused. On failure the directories this call
    /// created are removed again.
    pub fn create(path: &Path, resources: Option<&LinuxResources>) -> Result<Self, CgroupError> {
        let rel = relative(path)?;
        let layout = Layout::for_create()?;
        let mut cg = Self {
            path: path.to_path_buf(),
            rel,
            layout,
        };
        let plan = cg.plan(resources)?;
        // Joining the hybrid v2 mount costs a cgroup.procs write (see
        // `self_join_files`) and buys nothing unless hugetlb limits live there.
        if let Layout::V1 { hierarchies, .. } = &mut cg.layout {
            hierarchies.retain(|h| !h.v2 || plan.hugetlb_on_v2);
        }
        let mut created = Vec::new();
        let result = cg
            .make_dirs(&plan, &mut created)
            .and_then(|()| cg.apply(resources, &plan));
        if let Err(e) = result {
            for dir in created.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            return Err(e);
        }
        Ok(cg)
    }

    /// Opens an existing container cgroup for later commands (no mkdir, no
    /// limits written). On v1 hosts only the hierarchies where the cgroup
    /// exists are used.
    pub fn open(path: &Path) -> Result<Self, CgroupError> {
        let rel = relative(path)?;
        let mut layout = Layout::detect()?;
        let found = match &mut layout {
            Layout::Unified { root } => root.join(&rel).is_dir(),
            Layout::V1 { hierarchies, .. } => {
                hierarchies.retain(|h| h.mount.join(&rel).is_dir());
                !hierarchies.is_empty()
            }
        };
        if !found {
            return Err(CgroupError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            rel,
            layout,
        })
    }

    /// Changes the limits of an existing cgroup (`docker update`, runc's
    /// `update`): only what `resources` sets is written, through the same
    /// writers as [`Self::create`].
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let plan = self.plan(Some(resources))?;
        self.apply(Some(resources), &plan)
    }

    /// On a pure cgroup v2 host: an `O_RDONLY|O_DIRECTORY|O_CLOEXEC` fd of
    /// the cgroup directory for clone3's `CLONE_INTO_CGROUP`; `None` on v1
    /// and hybrid hosts (and if the directory can't be opened, in which case
    /// [`Self::add_task`] reports the error).
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        let Layout::Unified { root } = &self.layout else {
            return None;
        };
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY) // std adds O_CLOEXEC
            .open(root.join(&self.rel))
            .ok()
            .map(OwnedFd::from)
    }

    /// Moves `pid` into the cgroup (into every hierarchy on v1) through
    /// `cgroup.procs`. On v1 the first such write after a quiet spell waits
    /// for an RCU grace period (about 7 ms here); the container's init can
    /// avoid that with [`Self::self_join_files`].
    pub fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        let line = pid.to_string();
        for dir in self.dirs() {
            let procs = dir.join("cgroup.procs");
            OpenOptions::new()
                .write(true)
                .open(&procs)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|source| CgroupError::AddTask {
                    pid,
                    path: dir,
                    source,
                })?;
        }
        Ok(())
    }

    /// On v1 and hybrid hosts: the `tasks` file of the container's
    /// directory in every hierarchy. A single-threaded process (the
    /// container's init before `execve`) that writes `"0"` into each of them
    /// moves itself into the cgroup without the kernel's global threadgroup
    /// lock, which a `cgroup.procs` write from [`Self::add_task`] takes and
    /// which costs a whole RCU grace period (about 7 ms here) when no other
    /// migration happened just before. `None` on a pure v2 host (use
    /// [`Self::clone_into_fd`]) and when the cgroup includes the hybrid v2
    /// mount (hugetlb limits there), which only `add_task` can join.
    pub fn self_join_files(&self) -> Option<Vec<PathBuf>> {
        let Layout::V1 { hierarchies, .. } = &self.layout else {
            return None;
        };
        if hierarchies.iter().any(|h| h.v2) {
            return None;
        }
        Some(
            hierarchies
                .iter()
                .map(|h| h.mount.join(&self.rel).join("tasks"))
                .collect(),
        )
    }

    /// Freezes every task in the cgroup (v1 freezer or v2 `cgroup.freeze`),
    /// waiting until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_freezer(FreezerState::Frozen, "freezing")
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_freezer(FreezerState::Thawed, "thawing")
    }

    /// Whether the cgroup is frozen (`state` reports "paused" then). A v1
    /// cgroup still FREEZING is not.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let (file, frozen) = match &self.layout {
            Layout::Unified { root } => (root.join(&self.rel).join("cgroup.freeze"), "1"),
            Layout::V1 { .. } => (self.freezer_dir()?.join("freezer.state"), "FROZEN"),
        };
        let state = fs::read_to_string(&file).map_err(|source| CgroupError::Io {
            op: "reading",
            path: file,
            source,
        })?;
        Ok(state.trim() == frozen)
    }

    /// All pids in the cgroup and its sub-cgroups (for `ps` and `kill --all`).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = match &self.layout {
            Layout::Unified { root } => root.join(&self.rel),
            Layout::V1 { hierarchies, .. } => {
                // Any hierarchy holds every task; prefer those where the
                // container can't have made sub-cgroups of its own.
                let h = ["pids", "freezer", "devices", "memory"]
                    .iter()
                    .find_map(|c| hierarchies.iter().find(|h| h.has(c)))
                    .or_else(|| hierarchies.first())
                    .ok_or_else(|| self.not_found())?;
                h.mount.join(&self.rel)
            }
        };
        let pids = libcgroups::common::get_all_pids(&dir)
            .map_err(|e| wrapped_io("listing pids of", &dir, e))?;
        Ok(pids.into_iter().map(|p| p.as_raw()).collect())
    }

    /// libcgroups' statistics (cpu, memory, pids, blkio/io, hugetlb). On a
    /// hybrid host hugetlb statistics are missing when hugetlb is on the v2
    /// mount.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let stats = match &self.layout {
            Layout::Unified { root } => v2_manager(root, &self.rel)?
                .stats()
                .map_err(AnyManagerError::from),
            Layout::V1 { .. } => self.v1_manager()?.stats().map_err(AnyManagerError::from),
        };
        stats.map_err(|source| CgroupError::Manager {
            op: "reading statistics of",
            path: self.path.clone(),
            source: Box::new(source),
        })
    }

    /// Removes the cgroup's directory (and any sub-cgroups) in every
    /// hierarchy, retrying briefly while the kernel still reports it busy as
    /// runc does. The caller makes sure no task is left. A cgroup that is
    /// already gone is fine; parents (`/berth`) stay.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in self.dirs() {
            if let Err(e) = remove_tree(&dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The container's "cgroup" mount on v1 and hybrid hosts, runc's way
    /// without a cgroup namespace: a tmpfs at `/sys/fs/cgroup` with one bind
    /// mount per hierarchy of the container's own directory. Empty on a pure
    /// v2 host, where the caller mounts cgroup2.
    pub fn v1_mounts(&self) -> Vec<CgroupMountPoint> {
        match &self.layout {
            Layout::Unified { .. } => Vec::new(),
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .map(|h| CgroupMountPoint {
                    name: h.name.clone(),
                    host_path: h.mount.join(&self.rel),
                })
                .collect(),
        }
    }

    /// The cgroup's directory in every hierarchy.
    fn dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::Unified { root } => vec![root.join(&self.rel)],
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .map(|h| h.mount.join(&self.rel))
                .collect(),
        }
    }

    fn not_found(&self) -> CgroupError {
        CgroupError::NotFound {
            path: self.path.clone(),
        }
    }

    fn freezer_dir(&self) -> Result<PathBuf, CgroupError> {
        let Layout::V1 { hierarchies, .. } = &self.layout else {
            return Ok(self.dirs().remove(0));
        };
        hierarchies
            .iter()
            .find(|h| !h.v2 && h.has("freezer"))
            .map(|h| h.mount.join(&self.rel))
            .ok_or(CgroupError::Unsupported {
                controller: "freezer".to_string(),
                reason: "no cgroup v1 hierarchy has the freezer controller",
            })
    }

    fn set_freezer(&self, state: FreezerState, op: &'static str) -> Result<(), CgroupError> {
        let result = match &self.layout {
            Layout::Unified { root } => v2_manager(root, &self.rel)?
                .freeze(state)
                .map_err(AnyManagerError::from),
            Layout::V1 { .. } => {
                self.freezer_dir()?;
                self.v1_manager()?
                    .freeze(state)
                    .map_err(AnyManagerError::from)
            }
        };
        result.map_err(|source| CgroupError::Manager {
            op,
            path: self.path.clone(),
            source: Box::new(source),
        })
    }

    fn v1_manager(&self) -> Result<libcgroups::v1::Manager, CgroupError> {
        libcgroups::v1::Manager::new(&self.rel).map_err(|e| CgroupError::Manager {
            op: "opening",
            path: self.path.clone(),
            source: Box::new(e.into()),
        })
    }

    /// Checks the resources against the host before anything is created and
    /// decides where hugetlb limits go.
    fn plan(&self, resources: Option<&LinuxResources>) -> Result<Plan, CgroupError> {
        let Some(r) = resources else {
            return Ok(Plan::default());
        };
        let Layout::V1 {
            hierarchies,
            hybrid,
        } = &self.layout
        else {
            return Ok(Plan::default());
        };
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::Unsupported {
                controller: "unified".to_string(),
                reason: "cgroup v2 \"unified\" resources need a cgroup v2 host",
            });
        }
        let wants_hugetlb = r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty());
        if !wants_hugetlb || hierarchies.iter().any(|h| !h.v2 && h.has("hugetlb")) {
            return Ok(Plan::default());
        }
        if *hybrid && hierarchies.iter().any(|h| h.v2 && h.has("hugetlb")) {
            return Ok(Plan {
                hugetlb_on_v2: true,
            });
        }
        Err(CgroupError::Unsupported {
            controller: "hugetlb".to_string(),
            reason: "the hugetlb controller is on no cgroup v1 hierarchy and not on the v2 mount",
        })
    }

    /// `mkdir -p` in every hierarchy, recording the directories made. On v1
    /// the new cpuset directories inherit their parent's cpus and mems
    /// (otherwise no task could join); on v2 the parents get the controllers
    /// enabled in their `cgroup.subtree_control`.
    fn make_dirs(&self, plan: &Plan, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::Unified { root } => mkdir_p(root, &self.rel, created, |parent, _| {
                enable_controllers(parent, None);
                Ok(())
            }),
            Layout::V1 { hierarchies, .. } => {
                for h in hierarchies {
                    mkdir_p(&h.mount, &self.rel, created, |parent, child| {
                        if h.v2 && plan.hugetlb_on_v2 {
                            enable_controllers(parent, Some("hugetlb"));
                        }
                        if !h.v2 && h.has("cpuset") {
                            inherit_cpuset(parent, child)?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            }
        }
    }

    fn apply(&self, resources: Option<&LinuxResources>, plan: &Plan) -> Result<(), CgroupError> {
        let Some(resources) = resources else {
            return Ok(());
        };
        let apply_err = |source: AnyManagerError| CgroupError::Apply {
            controller: failed_controller(&source),
            path: self.path.clone(),
            source: Box::new(source),
        };
        match &self.layout {
            Layout::Unified { root } => v2_manager(root, &self.rel)?
                .apply(&controller_opt(resources))
                .map_err(|e| apply_err(e.into())),
            Layout::V1 { hierarchies, .. } => {
                let mut v1 = resources.clone();
                if plan.hugetlb_on_v2 {
                    let mut only_hugetlb = LinuxResources::default();
                    only_hugetlb.set_hugepage_limits(v1.hugepage_limits().clone());
                    let unified = hierarchies.iter().find(|h| h.v2).map(|h| &h.mount);
                    if let Some(mount) = unified {
                        v2_manager(mount, &self.rel)?
                            .apply(&controller_opt(&only_hugetlb))
                            .map_err(|e| apply_err(e.into()))?;
                    }
                    v1.set_hugepage_limits(None);
                }
                if v1_direct::handles(&v1) {
                    return v1_direct::apply(hierarchies, &self.rel, &v1);
                }
                self.v1_manager()?
                    .apply(&controller_opt(&v1))
                    .map_err(|e| apply_err(e.into()))
            }
        }
    }
}

fn controller_opt(resources: &LinuxResources) -> ControllerOpt<'_> {
    ControllerOpt {
        resources,
        disable_oom_killer: resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false),
        oom_score_adj: None,
        freezer_state: None,
    }
}

/// Where create() puts limits that libcgroups' v1 manager can't.
#[derive(Debug, Default)]
struct Plan {
    /// Hybrid host with hugetlb only on the v2 mount, and the spec has
    /// hugetlb limits.
    hugetlb_on_v2: bool,
}

/// The cgroups path relative to a hierarchy root: no `..`, not empty, not a
/// systemd `slice:prefix:name` triple.
fn relative(path: &Path) -> Result<PathBuf, CgroupError> {
    let invalid = |reason| CgroupError::InvalidPath {
        path: path.to_path_buf(),
        reason,
    };
    let s = path.to_string_lossy();
    if !path.is_absolute() && s.split(':').count() == 3 {
        return Err(CgroupError::SystemdDriver {
            path: path.to_path_buf(),
        });
    }
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid("\"..\" is not allowed"));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid("it names the root cgroup"));
    }
    Ok(rel)
}

fn v2_manager(root: &Path, rel: &Path) -> Result<libcgroups::v2::manager::Manager, CgroupError> {
    libcgroups::v2::manager::Manager::new(root.to_path_buf(), rel.to_path_buf()).map_err(|e| {
        CgroupError::Manager {
            op: "opening",
            path: root.join(rel),
            source: Box::new(e.into()),
        }
    })
}

/// Creates each missing directory of `root/rel`, calling `before(parent,
/// child)` at every level first (for parents' controllers) and recording
/// what it made.
fn mkdir_p(
    root: &Path,
    rel: &Path,
    created: &mut Vec<PathBuf>,
    mut before: impl FnMut(&Path, &Path) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let mut parent = root.to_path_buf();
    for part in rel.components() {
        let child = parent.join(part);
        let made = match fs::create_dir(&child) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "creating",
                    path: child,
                    source,
                });
            }
        };
        if made {
            created.push(child.clone());
        }
        before(&parent, &child)?;
        parent = child;
    }
    Ok(())
}

/// v1 cpuset: a new cgroup starts with empty `cpuset.cpus`/`cpuset.mems`
/// and refuses tasks (ENOSPC) until they are set; copy the parent's.
fn inherit_cpuset(parent: &Path, child: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let read = |dir: &Path| {
            let p = dir.join(file);
            fs::read_to_string(&p).map_err(|source| CgroupError::Io {
                op: "reading",
                path: p,
                source,
            })
        };
        if !read(child)?.trim().is_empty() {
            continue;
        }
        let value = read(parent)?;
        let p = child.join(file);
        fs::write(&p, value.trim()).map_err(|source| CgroupError::Io {
            op: "writing",
            path: p,
            source,
        })?;
    }
    Ok(())
}

/// v2: best-effort `+controller` writes into `dir/cgroup.subtree_control`
/// for the controllers available there (or just `only`) that aren't on
/// yet, as libcgroups does when it creates a cgroup. A limit that needs a
/// controller that couldn't be enabled fails when it is applied.
fn enable_controllers(dir: &Path, only: Option<&str>) {
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
    let available = read("cgroup.controllers");
    let enabled = read("cgroup.subtree_control");
    for c in available.split_whitespace() {
        if only.is_some_and(|o| o != c) || enabled.split_whitespace().any(|e| e == c) {
            continue;
        }
        let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
    }
}

/// Removes `dir` and its sub-cgroups depth first. rmdir on a cgroup whose
/// last task is still exiting fails with EBUSY for a moment: retry like
/// runc (5 tries, 10 ms doubling). A missing directory is fine.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    const ATTEMPTS: u32 = 5;
    // Most containers make no sub-cgroups: one rmdir, no listing.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&entry.path())?;
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Io {
                op: "reading",
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    let mut delay = Duration::from_millis(10);
    for attempt in 1..=ATTEMPTS {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
            {
                if attempt < ATTEMPTS {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "removing",
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Err(CgroupError::Busy {
        path: dir.to_path_buf(),
        attempts: ATTEMPTS,
    })
}

fn wrapped_io(op: &'static str, dir: &Path, e: WrappedIoError) -> CgroupError {
    let source = io::Error::new(e.inner().kind(), e.to_string());
    CgroupError::Io {
        op,
        path: dir.to_path_buf(),
        source,
    }
}

/// The controller whose limits libcgroups failed to write, from its error
/// variant, or from the file name ("devices.allow") for plain I/O errors.
fn failed_controller(e: &AnyManagerError) -> String {
    let from_file = |w: &WrappedIoError| {
        let path = match w {
            WrappedIoError::Open { path, .. }
            | WrappedIoError::Write { path, .. }
            | WrappedIoError::Read { path, .. }
            | WrappedIoError::CreateDir { path, .. }
            | WrappedIoError::Other { path, .. } => path,
        };
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .unwrap_or("cgroup")
            .to_string()
    };
    let name = match e {
        AnyManagerError::V1(e) => match e {
            V1ManagerError::CGroupRequired(c) => return c.to_string(),
            V1ManagerError::WrappedIo(w) => return from_file(w),
            V1ManagerError::BlkioController(_) => "blkio",
            V1ManagerError::CpuController(_) => "cpu",
            V1ManagerError::CpuAcctController(_) => "cpuacct",
            V1ManagerError::CpuSetController(_) => "cpuset",
            V1ManagerError::FreezerController(_) => "freezer",
            V1ManagerError::HugeTlbController(_) => "hugetlb",
            V1ManagerError::MemoryController(_) => "memory",
            V1ManagerError::PidsController(_) => "pids",
            _ => "cgroup",
        },
        AnyManagerError::V2(e) => match e {
            V2ManagerError::WrappedIo(w) => return from_file(w),
            V2ManagerError::CpuController(_) => "cpu",
            V2ManagerError::CpuSetController(_) => "cpuset",
            V2ManagerError::HugeTlbController(_) => "hugetlb",
            V2ManagerError::IoController(_) => "io",
            V2ManagerError::MemoryController(_) => "memory",
            V2ManagerError::PidsController(_) => "pids",
            V2ManagerError::UnifiedController(_) => "unified",
            V2ManagerError::FreezerController(_) => "freezer",
            _ => "cgroup",
        },
        AnyManagerError::Systemd(_) => "systemd",
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/berth/abc")).unwrap(),
            Path::new("berth/abc")
        );
        assert_eq!(
            relative(Path::new("berth/abc")).unwrap(),
            Path::new("berth/abc")
        );
        assert!(matches!(
            relative(Path::new("/a/../b")),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            relative(Path::new("/")),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            relative(Path::new("system.slice:berth:abc")),
            Err(CgroupError::SystemdDriver { .. })
        ));
    }
}
