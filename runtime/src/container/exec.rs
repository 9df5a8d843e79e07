//! `exec`: run another process in a running container: joined to the
//! init's namespaces through its pidfd, placed in its cgroup, under the
//! container's seccomp filter.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::{load_for, saved_spec};
use crate::cgroups::ContainerCgroup;
use crate::error::{Result, RuntimeError};
use crate::process::plan::PlanOptions;
use crate::process::{ChildPlan, spawn};
use crate::state::{Root, Status};
use crate::sys::{self, ExitStatus};

#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub detach: bool,
}

/// Runs `process` in container `id`. Without `detach`, waits for it and
/// returns its exit status.
pub fn exec(
    root: &Root,
    id: &str,
    process: &Process,
    opts: &ExecOptions,
) -> Result<Option<ExitStatus>> {
    let (state, _) = load_for(root, id, "exec", Status::can_exec, "running")?;
    let spec = saved_spec(root, id)?;
    let init = state
        .init_pidfd()
        .ok_or_else(|| RuntimeError::WrongStatus {
            id: id.to_string(),
            status: "stopped",
            action: "exec",
            expected: "running",
        })?;
    let cgroup = ContainerCgroup::open(&state.cgroup_path)?;
    let console = opts
        .console_socket
        .as_ref()
        .map(|p| {
            UnixStream::connect(p)
                .map_err(|e| RuntimeError::io("connecting to console socket", p, e))
        })
        .transpose()?;
    let plan = ChildPlan::for_exec(
        process,
        &spec,
        &init,
        &PlanOptions {
            console_socket: console.as_ref().map(|c| c.as_raw_fd()),
            preserve_fds: opts.preserve_fds,
            cgroup_join: cgroup.self_join_files().unwrap_or_default(),
            ..Default::default()
        },
    )?;
    let spawned = spawn(&plan, None, Some(&cgroup), &mut |_, _| Ok(()))?;
    spawned.start_and_confirm()?;
    if let Some(p) = &opts.pid_file {
        let tmp = p.with_extension("berth-tmp");
        std::fs::write(&tmp, spawned.pid.to_string())
            .map_err(|e| RuntimeError::io("writing pid file", &tmp, e))?;
        std::fs::rename(&tmp, p).map_err(|e| RuntimeError::io("writing pid file", p, e))?;
    }
    if opts.detach {
        return Ok(None);
    }
    sys::pidfd_wait(spawned.pidfd.as_raw_fd())
        .map(Some)
        .map_err(|e| {
            RuntimeError::sys(
                "waiting for exec process",
                std::io::Error::from_raw_os_error(e),
            )
        })
}
