//! The host's cgroup layout: which hierarchies are mounted under
//! `/sys/fs/cgroup`, found with one read of `/proc/self/mountinfo` (v1 and
//! hybrid hosts) or none at all (pure v2).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use libcgroups::common::{CgroupSetup, DEFAULT_CGROUP_ROOT, get_cgroup_setup};

use super::CgroupError;

/// v1 controllers a hierarchy can carry; anything else in a cgroup mount's
/// super options (`rw`, `xattr`, `release_agent=...`) is not one.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    /// The mount point's name under `/sys/fs/cgroup` ("cpu,cpuacct",
    /// "memory", "systemd", "unified").
    pub(crate) name: String,
    pub(crate) mount: PathBuf,
    /// The v1 controllers bound to it (and `name=...` for named
    /// hierarchies); empty for the v2 mount of a hybrid host.
    pub(crate) controllers: Vec<String>,
    /// The v2 mount of a hybrid host.
    pub(crate) v2: bool,
}

impl Hierarchy {
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// How the host mounts cgroups.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// Pure cgroup v2: one hierarchy at `/sys/fs/cgroup`.
    Unified { root: PathBuf },
    /// cgroup v1 hierarchies; on a hybrid host the last one is the v2 mount
    /// at `/sys/fs/cgroup/unified` (often without controllers, here with
    /// hugetlb).
    V1 {
        hierarchies: Vec<Hierarchy>,
        hybrid: bool,
    },
}

/// A layout detected ahead by [`Layout::prewarm`], for the next create.
static PREWARMED: Mutex<Option<Layout>> = Mutex::new(None);

impl Layout {
    /// Detects the layout now for the next [`Layout::for_create`] of this
    /// process (the standby shim, which creates one container soon).
    pub(crate) fn prewarm() {
        if let Ok(layout) = Self::detect() {
            *PREWARMED.lock().unwrap_or_else(PoisonError::into_inner) = Some(layout);
        }
    }

    /// The prewarmed layout, taken (used once: mounts may change later in a
    /// long-lived process), else detected now.
    pub(crate) fn for_create() -> Result<Self, CgroupError> {
        let prewarmed = PREWARMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match prewarmed {
            Some(layout) => Ok(layout),
            None => Self::detect(),
        }
    }

    /// Detects the layout with libcgroups' own test (two `statfs` calls),
    /// so we always agree with the manager it would pick.
    pub(crate) fn detect() -> Result<Self, CgroupError> {
        let root = Path::new(DEFAULT_CGROUP_ROOT);
        match get_cgroup_setup().map_err(|e| CgroupError::Setup(Box::new(e)))? {
            CgroupSetup::Unified => Ok(Self::Unified {
                root: root.to_path_buf(),
            }),
            setup @ (CgroupSetup::Legacy | CgroupSetup::Hybrid) => {
                let path = Path::new("/proc/self/mountinfo");
                let mountinfo = fs::read_to_string(path).map_err(|source| CgroupError::Io {
                    op: "reading",
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut hierarchies = v1_hierarchies(&mountinfo, root);
                let hybrid = matches!(setup, CgroupSetup::Hybrid);
                if hybrid {
                    let mount = root.join("unified");
                    let controllers = fs::read_to_string(mount.join("cgroup.controllers"))
                        .map(|s| s.split_whitespace().map(str::to_string).collect())
                        .unwrap_or_default();
                    hierarchies.push(Hierarchy {
                        name: "unified".to_string(),
                        mount,
                        controllers,
                        v2: true,
                    });
                }
                Ok(Self::V1 {
                    hierarchies,
                    hybrid,
                })
            }
        }
    }
}

/// The cgroup v1 mounts directly under `root`, first mount of each
/// hierarchy only, in mountinfo order.
pub(crate) fn v1_hierarchies(mountinfo: &str, root: &Path) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        // "36 25 0:31 / /sys/fs/cgroup/cpu rw,relatime shared:13 - cgroup cgroup rw,cpu"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some("cgroup"), Some(_source), Some(super_opts)) =
            (right.next(), right.next(), right.next())
        else {
            continue;
        };
        let Some(mount) = left.split(' ').nth(4) else {
            continue;
        };
        let mount = PathBuf::from(mount);
        if mount.parent() != Some(root) {
            continue;
        }
        let controllers: Vec<String> = super_opts
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() || out.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        let Some(name) = mount
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        out.push(Hierarchy {
            name,
            mount,
            controllers,
            v2: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_mounts() {
        let mi = "\
25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw shared:5 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory
32 99 0:28 / /mnt/elsewhere/memory rw shared:10 - cgroup cgroup rw,memory
33 25 0:28 / /sys/fs/cgroup/memory2 rw shared:10 - cgroup cgroup rw,memory
";
        let h = v1_hierarchies(mi, Path::new("/sys/fs/cgroup"));
        let names: Vec<_> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["systemd", "cpu,cpuacct", "memory"]);
        assert_eq!(h[0].controllers, ["name=systemd"]);
        assert!(h[1].has("cpu") && h[1].has("cpuacct"));
        assert_eq!(h[2].mount, Path::new("/sys/fs/cgroup/memory"));
    }
}
