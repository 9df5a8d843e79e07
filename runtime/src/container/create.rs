//! `create`: set up the container and leave its init waiting for `start`.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hooks, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

use super::hooks::run_hooks;
use crate::cgroups::ContainerCgroup;
use crate::error::{Result, RuntimeError};
use crate::process::plan::{CgroupBind, PlanOptions};
use crate::process::{ChildPlan, Spawned, spawn};
use crate::state::{ContainerState, Root, Status, now_rfc3339, proc_stat};

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Where warnings go (settings the host cannot apply); stderr if unset.
    /// Under containerd stderr is the container's own, so the CLI sends
    /// them to its `--log` file, as runc does.
    pub warn: Option<fn(&str)>,
}

/// Creates container `id`; its init waits on the exec fifo for `start`.
pub fn create(root: &Root, id: &str, opts: &CreateOptions) -> Result<ContainerState> {
    Ok(create_container(root, id, opts, true)?.state)
}

/// A created container as its creator keeps it for
/// [`super::start_held`]: the state and the spec's hooks.
#[derive(Debug, Clone)]
pub struct Held {
    pub state: ContainerState,
    pub(crate) hooks: Hooks,
}

/// [`create`] for a creator that stays (the shim) and starts the
/// container itself with [`super::start_held`].
pub fn create_held(root: &Root, id: &str, opts: &CreateOptions) -> Result<Held> {
    let created = create_container(root, id, opts, true)?;
    Ok(Held {
        state: created.state,
        hooks: created.hooks,
    })
}

/// A container whose init waits to be started.
pub(crate) struct Created {
    pub(crate) state: ContainerState,
    pub(crate) spawned: Spawned,
    pub(crate) cgroup: ContainerCgroup,
    pub(crate) hooks: Hooks,
}

/// Removes what a failed create made, unless disarmed.
struct Undo<'a> {
    root: &'a Root,
    id: &'a str,
    cgroup: Option<ContainerCgroup>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.remove();
        }
        let _ = self.root.remove(self.id);
    }
}

/// The shared part of `create` and `run`. With `wait_on_fifo` the init
/// blocks on the exec fifo; otherwise on the returned sync socket.
pub(crate) fn create_container(
    root: &Root,
    id: &str,
    opts: &CreateOptions,
    wait_on_fifo: bool,
) -> Result<Created> {
    let bundle = opts
        .bundle
        .canonicalize()
        .map_err(|e| RuntimeError::io("opening bundle", &opts.bundle, e))?;
    let config_path = bundle.join("config.json");
    let raw = fs::read(&config_path).map_err(|e| RuntimeError::ReadSpec {
        path: config_path.clone(),
        source: e,
    })?;
    let spec: Spec = serde_json::from_slice(&raw).map_err(|e| RuntimeError::ParseSpec {
        path: config_path,
        source: e,
    })?;
    // Everything that can be checked without side effects comes first.
    let dir = root.claim(id)?;
    let mut undo = Undo {
        root,
        id,
        cgroup: None,
        armed: true,
    };
    let saved = dir.join("config.json");
    fs::write(&saved, &raw).map_err(|e| RuntimeError::io("writing", &saved, e))?;

    let cgroup_path = super::cgroup_path(&spec, id);
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .map(with_default_device_rules);
    let cgroup = ContainerCgroup::create(&cgroup_path, resources.as_ref())?;
    let cgroup_binds = if has_cgroup_mount(&spec) {
        cgroup
            .v1_mounts()
            .into_iter()
            .map(|m| CgroupBind {
                name: m.name,
                host_path: m.host_path,
            })
            .collect()
    } else {
        Vec::new()
    };
    let cgroup_v2 = cgroup.clone_into_fd().is_some();
    let cgroup_join = cgroup.self_join_files().unwrap_or_default();
    undo.cgroup = Some(cgroup);

    let console = opts
        .console_socket
        .as_ref()
        .map(|p| {
            UnixStream::connect(p)
                .map_err(|e| RuntimeError::io("connecting to console socket", p, e))
        })
        .transpose()?;
    let plan = ChildPlan::new(
        &spec,
        &bundle,
        &PlanOptions {
            no_pivot: opts.no_pivot,
            console_socket: console.as_ref().map(|c| c.as_raw_fd()),
            preserve_fds: opts.preserve_fds,
            cgroup_binds,
            cgroup_v2,
            cgroup_join,
        },
    )?;
    for w in &plan.warnings {
        match opts.warn {
            Some(warn) => warn(w),
            None => eprintln!("berth-runtime: warning: {w}"),
        }
    }
    let fifo = if wait_on_fifo {
        Some(make_fifo(&root.fifo_path(id))?)
    } else {
        None
    };

    let mut state = ContainerState {
        id: id.to_string(),
        pid: 0,
        init_start_time: 0,
        bundle: bundle.clone(),
        rootfs: PathBuf::from(plan.rootfs.to_string_lossy().into_owned()),
        created: now_rfc3339(),
        cgroup_path,
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    let mut on_hooks = |pid: i32, pidfd: BorrowedFd<'_>| {
        let mut s = state.clone();
        s.pid = pid;
        let oci = s.to_oci(Status::Creating);
        run_hooks("prestart", hooks.prestart().as_ref(), &oci, None)?;
        run_hooks("createRuntime", hooks.create_runtime().as_ref(), &oci, None)?;
        run_hooks(
            "createContainer",
            hooks.create_container().as_ref(),
            &oci,
            Some(pidfd),
        )
    };
    let spawned = spawn(
        &plan,
        fifo.as_ref().map(|f| f.as_raw_fd()),
        undo.cgroup.as_ref(),
        &mut on_hooks,
    )?;
    state.pid = spawned.pid;
    state.init_start_time = proc_stat(spawned.pid).map(|(_, t)| t).unwrap_or(0);
    let saved = root.save(&state).and_then(|()| match &opts.pid_file {
        Some(p) => write_pid_file(p, spawned.pid),
        None => Ok(()),
    });
    if let Err(e) = saved {
        let _ = crate::sys::pidfd_send_signal(spawned.pidfd.as_raw_fd(), libc::SIGKILL);
        let _ = crate::sys::pidfd_wait(spawned.pidfd.as_raw_fd());
        return Err(e);
    }
    undo.armed = false;
    let cgroup = undo.cgroup.take().expect("cgroup was created");
    Ok(Created {
        state,
        spawned,
        cgroup,
        hooks,
    })
}

/// runc's default device rules (`AllowedDevices` in libcontainer's
/// specconv), appended after the spec's own when it has device rules at
/// all. podman sends only "deny all" and counts on the runtime to allow
/// `/dev/null`, `/dev/zero`, the ptys and the other default devices.
fn with_default_device_rules(resources: &LinuxResources) -> LinuxResources {
    let mut r = resources.clone();
    let Some(devices) = r.devices_mut().as_mut().filter(|d| !d.is_empty()) else {
        return r;
    };
    let rules: [(LinuxDeviceType, Option<i64>, Option<i64>, &str); 11] = [
        (LinuxDeviceType::C, None, None, "m"),
        (LinuxDeviceType::B, None, None, "m"),
        (LinuxDeviceType::C, Some(1), Some(3), "rwm"), // null
        (LinuxDeviceType::C, Some(1), Some(8), "rwm"), // random
        (LinuxDeviceType::C, Some(1), Some(7), "rwm"), // full
        (LinuxDeviceType::C, Some(5), Some(0), "rwm"), // tty
        (LinuxDeviceType::C, Some(1), Some(5), "rwm"), // zero
        (LinuxDeviceType::C, Some(1), Some(9), "rwm"), // urandom
        (LinuxDeviceType::C, Some(136), None, "rwm"),  // pts/*
        (LinuxDeviceType::C, Some(5), Some(2), "rwm"), // ptmx
        (LinuxDeviceType::C, Some(10), Some(200), "rwm"), // net/tun
    ];
    for (typ, major, minor, access) in rules {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(major);
        rule.set_minor(minor);
        rule.set_access(Some(access.to_string()));
        devices.push(rule);
    }
    r
}

fn has_cgroup_mount(spec: &Spec) -> bool {
    spec.mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| m.typ().as_deref() == Some("cgroup"))
}

/// Creates the exec fifo and opens it read-write: the init blocks reading
/// it until `start` writes a byte.
fn make_fifo(path: &Path) -> Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).expect("state paths have no NUL");
    // SAFETY: c is a valid C string.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } < 0 {
        return Err(RuntimeError::io(
            "creating fifo",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: c is a valid C string; O_RDWR on a fifo does not block.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(RuntimeError::io(
            "opening fifo",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: open returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes the pid file atomically, as callers poll for it.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    fs::write(&tmp, pid.to_string()).map_err(|e| RuntimeError::io("writing pid file", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| RuntimeError::io("writing pid file", path, e))
}
