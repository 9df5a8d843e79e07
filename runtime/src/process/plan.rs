//! Turns an OCI spec into a [`ChildPlan`]: everything the container's init
//! needs, resolved and allocated before `clone3`, so that the child only
//! issues system calls on memory prepared here.

use std::ffi::{CString, c_char};
use std::fs::File;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use libc::{c_int, c_ulong};
use oci_spec::runtime::{Capabilities, LinuxDeviceType, LinuxNamespaceType, Mount, Process, Spec};

use super::kernel_names::{MountOptions, cap_number, ns_flag, propagation_flag, rlimit_resource};
use crate::error::{Result, RuntimeError};
use crate::seccomp::SeccompProgram;
use crate::sys::CapSets;

/// A path inside the container's rootfs, split so the child can resolve it
/// one component at a time beneath the root (creating what is missing).
#[derive(Debug, Clone)]
pub struct PathInRoot {
    /// The whole path relative to the rootfs ("dev/pts"); "." for the root.
    pub(crate) rel: CString,
    /// "dev", "dev/pts": each prefix of `rel`.
    pub(crate) prefixes: Vec<CString>,
    /// "dev", "pts": each component.
    pub(crate) names: Vec<CString>,
    /// The path as the container sees it, for error messages.
    pub(crate) display: CString,
}

impl PathInRoot {
    pub fn new(container_path: &Path) -> Result<Self> {
        let mut names = Vec::new();
        for c in container_path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => names.push(n.as_bytes().to_vec()),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "path {} must not contain \"..\"",
                        container_path.display()
                    )));
                }
            }
        }
        let mut prefixes = Vec::with_capacity(names.len());
        let mut acc: Vec<u8> = Vec::new();
        for n in &names {
            if !acc.is_empty() {
                acc.push(b'/');
            }
            acc.extend_from_slice(n);
            prefixes.push(cstring(acc.clone())?);
        }
        let rel = if acc.is_empty() { b".".to_vec() } else { acc };
        let mut display = b"/".to_vec();
        display.extend_from_slice(&rel);
        Ok(Self {
            rel: cstring(rel)?,
            prefixes,
            names: names.into_iter().map(cstring).collect::<Result<_>>()?,
            display: cstring(display)?,
        })
    }
}

/// What to mount and how, at a path inside the rootfs.
#[derive(Debug, Clone)]
pub struct MountOp {
    pub(crate) dest: PathInRoot,
    /// Create the mountpoint as a file (bind mount of a file).
    pub(crate) dest_is_file: bool,
    pub(crate) source: Option<CString>,
    pub(crate) fstype: Option<CString>,
    pub(crate) flags: c_ulong,
    pub(crate) data: Option<CString>,
    /// Flags for a second, `MS_REMOUNT` call (bind mounts can't take flags
    /// like `ro` on the first call).
    pub(crate) remount_flags: Option<c_ulong>,
    /// `MS_SHARED`, `MS_PRIVATE`... applied after the mount.
    pub(crate) propagation: Vec<c_ulong>,
    /// Copy what the rootfs has at the destination into the new mount
    /// (runc's `tmpcopyup`, for tmpfs).
    pub(crate) copy_up: bool,
    /// A sysfs mount that the kernel refuses (no new network namespace)
    /// falls back to a recursive bind of the host's `/sys`, as runc does.
    pub(crate) sysfs_fallback: bool,
    /// Mounts and links made inside this one, then attributes set on the
    /// whole tree at once.
    pub(crate) inner: Option<InnerMounts>,
}

/// What goes inside a new mount before one `mount_setattr` sets `attr_set`
/// (`MOUNT_ATTR_*`) on it and everything below: the v1 cgroup hierarchies
/// under the cgroup tmpfs. One call instead of a remount per bind, and the
/// tmpfs itself ends read-only too, as with runc.
#[derive(Debug, Clone)]
pub struct InnerMounts {
    /// Directory names and the host directories bind mounted on them.
    pub(crate) binds: Vec<(CString, CString)>,
    /// Symlink names and their targets ("cpu" -> "cpu,cpuacct").
    pub(crate) links: Vec<(CString, CString)>,
    pub(crate) attr_set: u64,
}

/// A device node to create in the rootfs.
#[derive(Debug, Clone)]
pub struct DeviceOp {
    pub(crate) path: PathInRoot,
    pub(crate) mode: u32,
    pub(crate) dev: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// The host's node, bind mounted when `mknod` is not allowed (user ns).
    pub(crate) host_path: CString,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CapPlan {
    pub(crate) bounding: u64,
    pub(crate) ambient: u64,
    pub(crate) sets: CapSets,
}

/// A v1 cgroup hierarchy to show inside the container at `/sys/fs/cgroup/<name>`.
#[derive(Debug, Clone)]
pub struct CgroupBind {
    pub name: String,
    pub host_path: PathBuf,
}

/// Options that come from the command line rather than from config.json.
#[derive(Debug, Default)]
pub struct PlanOptions {
    pub no_pivot: bool,
    pub console_socket: Option<RawFd>,
    pub preserve_fds: u32,
    pub cgroup_binds: Vec<CgroupBind>,
    /// On a pure cgroup v2 host, mount `cgroup2` for "cgroup" mounts.
    pub cgroup_v2: bool,
    /// v1 `tasks` files the child writes "0" to, joining its cgroups itself:
    /// much faster than the runtime writing its pid (see cgroups.rs).
    pub cgroup_join: Vec<PathBuf>,
}

/// Everything the child does between `clone3` and `execve`.
#[derive(Debug)]
pub struct ChildPlan {
    /// Joining a running container (`exec`) rather than creating one.
    pub(crate) exec: bool,
    /// Cgroup `tasks` files to write "0" to, first thing.
    pub(crate) cgroup_join: Vec<CString>,
    /// `CLONE_NEW*` flags for `clone3`.
    pub(crate) clone_flags: u64,
    /// Namespaces the child joins, user namespace first.
    pub(crate) join: Vec<(OwnedFd, c_int)>,
    /// A pid namespace the runtime joins before cloning (it only applies to
    /// children).
    pub(crate) parent_join_pid: Option<OwnedFd>,
    /// Namespaces created with `unshare` after the runtime put the child in
    /// its cgroup (cgroup ns) or joined a user ns (the rest).
    pub(crate) unshare_flags: c_int,
    pub(crate) time_offsets: Option<CString>,
    pub(crate) new_user_ns: bool,
    /// A new network namespace, whose `lo` the child sets up.
    pub(crate) new_net_ns: bool,
    pub(crate) uid_map: Option<Vec<u8>>,
    pub(crate) gid_map: Option<Vec<u8>>,

    pub(crate) hostname: Option<CString>,
    pub(crate) domainname: Option<CString>,
    pub(crate) root_propagation: c_ulong,
    pub(crate) rootfs: CString,
    pub(crate) mounts: Vec<MountOp>,
    pub(crate) devices: Vec<DeviceOp>,
    pub(crate) symlinks: Vec<(CString, PathInRoot)>,
    pub(crate) run_hooks: bool,
    pub(crate) pivot: bool,
    pub(crate) masked_paths: Vec<CString>,
    pub(crate) readonly_paths: Vec<CString>,
    pub(crate) readonly_root: bool,
    pub(crate) sysctls: Vec<(CString, CString)>,
    pub(crate) oom_score_adj: Option<CString>,
    pub(crate) rlimits: Vec<(u32, u64, u64)>,

    pub(crate) terminal: bool,
    pub(crate) console_size: Option<(u16, u16)>,
    pub(crate) console_socket: Option<RawFd>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) groups: Vec<libc::gid_t>,
    pub(crate) umask: Option<u32>,
    pub(crate) caps: Option<CapPlan>,
    pub(crate) last_cap: u32,
    pub(crate) no_new_privs: bool,
    pub(crate) seccomp: Option<SeccompProgram>,
    pub(crate) cwd: CString,
    pub(crate) argv0: CString,
    pub(crate) exe_candidates: Vec<CString>,
    pub(crate) preserve_fds: u32,
    /// Settings this host cannot apply, ignored as runc ignores them.
    pub warnings: Vec<String>,

    argv: Vec<CString>,
    env: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const c_char>,
    pub(crate) env_ptrs: Vec<*const c_char>,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cstring(v: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(v).map_err(|e| {
        RuntimeError::InvalidSpec(format!(
            "string contains a NUL byte: {:?}",
            String::from_utf8_lossy(&e.into_vec())
        ))
    })
}

fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidSpec(msg.into())
}

impl ChildPlan {
    pub fn new(spec: &Spec, bundle: &Path, opts: &PlanOptions) -> Result<Self> {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("process is required"))?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| invalid("linux is required"))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| invalid("root is required"))?;

        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            bundle.join(root.path())
        };
        let rootfs = rootfs
            .canonicalize()
            .map_err(|e| RuntimeError::io("rootfs", &rootfs, e))?;
        if !rootfs.is_dir() {
            return Err(invalid(format!(
                "rootfs {} is not a directory",
                rootfs.display()
            )));
        }
        let mut plan = Self::for_process(process, opts)?;
        plan.rootfs = cstring(rootfs.as_os_str().as_bytes())?;
        plan.readonly_root = root.readonly().unwrap_or(false);
        plan.namespaces(linux)?;
        if let Some(h) = spec.hostname() {
            if plan.clone_flags & libc::CLONE_NEWUTS as u64 == 0 && !h.is_empty() {
                return Err(invalid("hostname needs a new uts namespace"));
            }
            plan.hostname = Some(cstring(h.as_str())?);
        }
        if let Some(d) = spec.domainname() {
            plan.domainname = Some(cstring(d.as_str())?);
        }
        if let Some(p) = linux.rootfs_propagation() {
            plan.root_propagation = propagation_flag(p)
                .ok_or_else(|| invalid(format!("unknown rootfsPropagation {p:?}")))?;
        }
        for m in spec.mounts().as_deref().unwrap_or_default() {
            plan.mount(m, bundle, opts)?;
        }
        plan.devices(linux)?;
        for p in linux.masked_paths().as_deref().unwrap_or_default() {
            plan.masked_paths.push(cstring(p.as_str())?);
        }
        for p in linux.readonly_paths().as_deref().unwrap_or_default() {
            plan.readonly_paths.push(cstring(p.as_str())?);
        }
        for (k, v) in linux.sysctl().clone().unwrap_or_default() {
            if k.is_empty() || k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
                return Err(invalid(format!("invalid sysctl name {k:?}")));
            }
            plan.sysctls.push((
                cstring(format!("/proc/sys/{}", k.replace('.', "/")))?,
                cstring(v)?,
            ));
        }
        if let Some(seccomp) = linux.seccomp() {
            plan.seccomp = Some(crate::seccomp::compile(seccomp)?);
        }
        plan.run_hooks = spec.hooks().as_ref().is_some_and(|h| {
            h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
                || h.prestart().as_ref().is_some_and(|v| !v.is_empty())
                || h.create_container().as_ref().is_some_and(|v| !v.is_empty())
        });
        Ok(plan)
    }

    /// The parts of a plan that come from `process` alone.
    fn for_process(process: &Process, opts: &PlanOptions) -> Result<Self> {
        let args = process.args().as_deref().unwrap_or_default();
        if args.is_empty() {
            return Err(invalid("process.args must not be empty"));
        }
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let argv: Vec<CString> = args
            .iter()
            .map(|a| cstring(a.as_str()))
            .collect::<Result<_>>()?;
        let env_c: Vec<CString> = env
            .iter()
            .map(|e| cstring(e.as_str()))
            .collect::<Result<_>>()?;
        let path_var = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let exe_candidates = exe_candidates(&args[0], path_var)?;
        if !process.cwd().is_absolute() {
            return Err(invalid(format!(
                "process.cwd {} must be absolute",
                process.cwd().display()
            )));
        }
        let mut plan = ChildPlan {
            exec: false,
            cgroup_join: opts
                .cgroup_join
                .iter()
                .map(|p| cstring(p.as_os_str().as_bytes()))
                .collect::<Result<_>>()?,
            clone_flags: 0,
            join: Vec::new(),
            parent_join_pid: None,
            unshare_flags: 0,
            time_offsets: None,
            new_user_ns: false,
            new_net_ns: false,
            uid_map: None,
            gid_map: None,
            hostname: None,
            domainname: None,
            root_propagation: libc::MS_SLAVE | libc::MS_REC,
            rootfs: CString::default(),
            mounts: Vec::new(),
            devices: Vec::new(),
            symlinks: Vec::new(),
            run_hooks: false,
            pivot: !opts.no_pivot,
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            readonly_root: false,
            sysctls: Vec::new(),
            oom_score_adj: process
                .oom_score_adj()
                .map(|v| cstring(v.to_string()))
                .transpose()?,
            rlimits: Vec::new(),
            terminal: process.terminal().unwrap_or(false),
            console_size: process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16)),
            console_socket: opts.console_socket,
            uid: process.user().uid(),
            gid: process.user().gid(),
            groups: process.user().additional_gids().clone().unwrap_or_default(),
            umask: process.user().umask(),
            caps: None,
            last_cap: last_cap(),
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp: None,
            cwd: cstring(process.cwd().as_os_str().as_bytes())?,
            argv0: cstring(args[0].as_str())?,
            exe_candidates,
            preserve_fds: opts.preserve_fds,
            warnings: Vec::new(),
            argv,
            env: env_c,
            argv_ptrs: Vec::new(),
            env_ptrs: Vec::new(),
        };
        if plan.terminal && plan.console_socket.is_none() {
            return Err(invalid(
                "process.terminal is set but no --console-socket was given",
            ));
        }
        if let Some(profile) = process
            .apparmor_profile()
            .as_ref()
            .filter(|p| !p.is_empty())
        {
            if apparmor_enabled() {
                return Err(RuntimeError::Unsupported(format!(
                    "apparmor profile {profile:?}"
                )));
            }
            plan.warnings.push(format!(
                "apparmor is not enabled on this host, ignoring profile {profile:?}"
            ));
        }
        if let Some(label) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
            if selinux_enabled() {
                return Err(RuntimeError::Unsupported(format!(
                    "selinux label {label:?}"
                )));
            }
            plan.warnings.push(format!(
                "selinux is not enabled on this host, ignoring label {label:?}"
            ));
        }
        for r in process.rlimits().as_deref().unwrap_or_default() {
            plan.rlimits
                .push((rlimit_resource(r.typ()), r.soft(), r.hard()));
        }
        if let Some(c) = process.capabilities() {
            let mask = |s: &Option<Capabilities>| {
                s.as_ref()
                    .map_or(0, |s| s.iter().fold(0u64, |m, c| m | 1 << cap_number(c)))
            };
            plan.caps = Some(CapPlan {
                bounding: mask(c.bounding()),
                ambient: mask(c.ambient()),
                sets: CapSets {
                    effective: mask(c.effective()),
                    permitted: mask(c.permitted()),
                    inheritable: mask(c.inheritable()),
                },
            });
        }
        plan.finish_pointers();
        Ok(plan)
    }

    /// A plan for `process` joining the running container whose init is
    /// behind `init_pidfd`: its namespaces, seccomp filter and (through the
    /// caller) cgroup.
    pub fn for_exec(
        process: &Process,
        container: &Spec,
        init_pidfd: &OwnedFd,
        opts: &PlanOptions,
    ) -> Result<Self> {
        let mut plan = Self::for_process(process, opts)?;
        plan.exec = true;
        let mut flags = 0;
        let linux = container.linux().as_ref();
        for ns in linux
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default()
        {
            flags |= ns_flag(ns.typ());
        }
        // The time ns of the init is its "for children" one: join it too.
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| RuntimeError::sys("dup pidfd", e))
        };
        if flags & libc::CLONE_NEWPID != 0 {
            plan.parent_join_pid = Some(dup(init_pidfd)?);
        }
        let child_flags = flags & !libc::CLONE_NEWPID;
        if child_flags != 0 {
            plan.join.push((dup(init_pidfd)?, child_flags));
        }
        if let Some(seccomp) = linux.and_then(|l| l.seccomp().as_ref()) {
            plan.seccomp = Some(crate::seccomp::compile(seccomp)?);
        }
        Ok(plan)
    }

    fn finish_pointers(&mut self) {
        self.argv_ptrs = self
            .argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        self.env_ptrs = self
            .env
            .iter()
            .map(|e| e.as_ptr())
            .chain([std::ptr::null()])
            .collect();
    }

    fn namespaces(&mut self, linux: &oci_spec::runtime::Linux) -> Result<()> {
        let mut joined_user = false;
        let mut new_flags: u64 = 0;
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let flag = ns_flag(ns.typ());
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let fd: OwnedFd = File::open(path)
                        .map_err(|e| RuntimeError::io("opening namespace", path, e))?
                        .into();
                    match ns.typ() {
                        LinuxNamespaceType::Pid => self.parent_join_pid = Some(fd),
                        LinuxNamespaceType::Mount => {
                            return Err(RuntimeError::Unsupported(
                                "joining a mount namespace by path".into(),
                            ));
                        }
                        LinuxNamespaceType::User => {
                            joined_user = true;
                            self.join.insert(0, (fd, flag));
                        }
                        _ => self.join.push((fd, flag)),
                    }
                }
                _ => new_flags |= flag as u64,
            }
        }
        if new_flags & libc::CLONE_NEWNS as u64 == 0 {
            return Err(invalid(
                "linux.namespaces must include a new mount namespace",
            ));
        }
        // A cgroup ns is rooted where the child is when it is created, so it
        // is unshared after the runtime has moved the child into its cgroup.
        if new_flags & libc::CLONE_NEWCGROUP as u64 != 0 {
            new_flags &= !(libc::CLONE_NEWCGROUP as u64);
            self.unshare_flags |= libc::CLONE_NEWCGROUP;
        }
        // A new time ns only applies to children of the unsharing process;
        // the child unshares it, writes offsets and joins it with setns.
        if new_flags & libc::CLONE_NEWTIME as u64 != 0 {
            new_flags &= !(libc::CLONE_NEWTIME as u64);
            let mut offsets = String::new();
            for (clock, off) in linux.time_offsets().clone().unwrap_or_default() {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(invalid(format!("unknown timeOffsets clock {clock:?}")));
                }
                offsets += &format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                );
            }
            self.time_offsets = Some(cstring(offsets)?);
        } else if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(invalid("timeOffsets need a new time namespace"));
        }
        if joined_user {
            // Namespaces created after joining a user ns belong to it, so
            // they are unshared by the child instead of created by clone3.
            if new_flags & libc::CLONE_NEWPID as u64 != 0 {
                return Err(RuntimeError::Unsupported(
                    "a new pid namespace inside a joined user namespace".into(),
                ));
            }
            self.unshare_flags |= new_flags as c_int;
            new_flags = 0;
        }
        if new_flags & libc::CLONE_NEWUSER as u64 != 0 {
            self.new_user_ns = true;
            let maps = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, what: &str| {
                let m = m.as_deref().unwrap_or_default();
                if m.is_empty() {
                    return Err(invalid(format!("a new user namespace needs {what}")));
                }
                Ok(m.iter()
                    .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                    .collect::<String>()
                    .into_bytes())
            };
            self.uid_map = Some(maps(linux.uid_mappings(), "uidMappings")?);
            self.gid_map = Some(maps(linux.gid_mappings(), "gidMappings")?);
        }
        self.clone_flags = new_flags;
        self.new_net_ns =
            (self.clone_flags | self.unshare_flags as u64) & libc::CLONE_NEWNET as u64 != 0;
        Ok(())
    }

    fn mount(&mut self, m: &Mount, bundle: &Path, opts: &PlanOptions) -> Result<()> {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(invalid(format!(
                "mount destination {} must be absolute",
                dest.display()
            )));
        }
        let parsed = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let typ = m.typ().as_deref().unwrap_or("none");
        let source = m.source().as_ref().map(|s| {
            if s.is_relative() && (parsed.bind || typ == "bind") {
                bundle.join(s)
            } else {
                s.clone()
            }
        });
        let dest_path = PathInRoot::new(dest)?;

        if typ == "cgroup" && !opts.cgroup_v2 {
            return self.cgroup_v1_mounts(dest, &parsed, opts);
        }

        if parsed.bind || typ == "bind" {
            let src = source
                .ok_or_else(|| invalid(format!("bind mount {} has no source", dest.display())))?;
            let meta = std::fs::metadata(&src)
                .map_err(|e| RuntimeError::io("bind mount source", &src, e))?;
            let remount = parsed.flags & !(libc::MS_REC | libc::MS_BIND);
            self.mounts.push(MountOp {
                dest: dest_path,
                dest_is_file: !meta.is_dir(),
                source: Some(cstring(src.as_os_str().as_bytes())?),
                fstype: None,
                flags: libc::MS_BIND | (parsed.flags & libc::MS_REC),
                data: None,
                remount_flags: (remount != 0).then_some(libc::MS_REMOUNT | libc::MS_BIND | remount),
                propagation: parsed.propagation,
                sysfs_fallback: false,
                copy_up: false,
                inner: None,
            });
            return Ok(());
        }

        let fstype = if typ == "cgroup" { "cgroup2" } else { typ };
        let src = source
            .map(|s| s.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|| fstype.as_bytes().to_vec());
        self.mounts.push(MountOp {
            dest: dest_path,
            dest_is_file: false,
            source: Some(cstring(src)?),
            fstype: Some(cstring(fstype)?),
            flags: parsed.flags,
            data: (!parsed.data.is_empty())
                .then(|| cstring(parsed.data.join(",")))
                .transpose()?,
            remount_flags: None,
            propagation: parsed.propagation,
            sysfs_fallback: fstype == "sysfs",
            copy_up: parsed.copy_up && fstype == "tmpfs",
            inner: None,
        });
        Ok(())
    }

    /// runc's layout without a cgroup namespace on v1: a tmpfs with the
    /// container's own cgroup directory of each hierarchy bind mounted in.
    fn cgroup_v1_mounts(
        &mut self,
        dest: &Path,
        parsed: &MountOptions,
        opts: &PlanOptions,
    ) -> Result<()> {
        let mut inner = InnerMounts {
            binds: Vec::new(),
            links: Vec::new(),
            attr_set: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
        };
        if parsed.flags & libc::MS_RDONLY != 0 {
            inner.attr_set |= libc::MOUNT_ATTR_RDONLY;
        }
        for b in &opts.cgroup_binds {
            inner.binds.push((
                cstring(b.name.as_str())?,
                cstring(b.host_path.as_os_str().as_bytes())?,
            ));
            // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct".
            if b.name.contains(',') {
                for part in b.name.split(',') {
                    inner
                        .links
                        .push((cstring(part)?, cstring(b.name.as_str())?));
                }
            }
        }
        self.mounts.push(MountOp {
            dest: PathInRoot::new(dest)?,
            dest_is_file: false,
            source: Some(cstring("tmpfs")?),
            fstype: Some(cstring("tmpfs")?),
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: Some(cstring("mode=755")?),
            remount_flags: None,
            propagation: Vec::new(),
            sysfs_fallback: false,
            copy_up: false,
            inner: Some(inner),
        });
        Ok(())
    }

    fn devices(&mut self, linux: &oci_spec::runtime::Linux) -> Result<()> {
        // The devices every container gets (runc's AllowedDevices).
        const DEFAULTS: [(&str, u64, u64); 6] = [
            ("/dev/null", 1, 3),
            ("/dev/zero", 1, 5),
            ("/dev/full", 1, 7),
            ("/dev/random", 1, 8),
            ("/dev/urandom", 1, 9),
            ("/dev/tty", 5, 0),
        ];
        let mut seen = std::collections::HashSet::new();
        for d in linux.devices().as_deref().unwrap_or_default() {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
                LinuxDeviceType::B => libc::S_IFBLK,
                LinuxDeviceType::P => libc::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(invalid(format!(
                        "device {} has type \"a\"",
                        d.path().display()
                    )));
                }
            };
            seen.insert(d.path().clone());
            self.devices.push(DeviceOp {
                path: PathInRoot::new(d.path())?,
                mode: kind | d.file_mode().unwrap_or(0o666),
                dev: libc::makedev(d.major() as u32, d.minor() as u32),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
                host_path: cstring(d.path().as_os_str().as_bytes())?,
            });
        }
        for (path, major, minor) in DEFAULTS {
            if seen.contains(Path::new(path)) {
                continue;
            }
            self.devices.push(DeviceOp {
                path: PathInRoot::new(Path::new(path))?,
                mode: libc::S_IFCHR | 0o666,
                dev: libc::makedev(major as u32, minor as u32),
                uid: 0,
                gid: 0,
                host_path: cstring(path)?,
            });
        }
        for (target, link) in [
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
            ("/proc/kcore", "/dev/core"),
            ("pts/ptmx", "/dev/ptmx"),
        ] {
            self.symlinks
                .push((cstring(target)?, PathInRoot::new(Path::new(link))?));
        }
        Ok(())
    }
}

fn exe_candidates(argv0: &str, path_var: &str) -> Result<Vec<CString>> {
    if argv0.contains('/') {
        return Ok(vec![cstring(argv0)?]);
    }
    path_var
        .split(':')
        .map(|dir| {
            let dir = if dir.is_empty() { "." } else { dir };
            cstring(format!("{dir}/{argv0}"))
        })
        .collect()
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths_in_root() {
        let p = PathInRoot::new(Path::new("/dev/pts")).unwrap();
        assert_eq!(p.rel.to_bytes(), b"dev/pts");
        assert_eq!(p.prefixes, vec![c"dev".to_owned(), c"dev/pts".to_owned()]);
        assert_eq!(p.names, vec![c"dev".to_owned(), c"pts".to_owned()]);
        assert_eq!(
            PathInRoot::new(Path::new("/")).unwrap().rel.to_bytes(),
            b"."
        );
        assert!(PathInRoot::new(Path::new("/a/../../etc")).is_err());
    }

    #[test]
    fn finds_executable_candidates() {
        let c = exe_candidates("sh", "/usr/bin:/bin").unwrap();
        assert_eq!(c, vec![c"/usr/bin/sh".to_owned(), c"/bin/sh".to_owned()]);
        assert_eq!(
            exe_candidates("./x", "/bin").unwrap(),
            vec![c"./x".to_owned()]
        );
    }
}
