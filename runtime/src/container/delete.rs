//! `delete`: remove a stopped (or, with `force`, any) container: its init,
//! every process in its cgroup, the cgroup and the state directory.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use oci_spec::runtime::Hook;

use super::hooks::run_hooks;
use super::saved_spec;
use crate::cgroups::ContainerCgroup;
use crate::error::{Result, RuntimeError};
use crate::state::{ContainerState, Root, Status};
use crate::sys;

pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let state = root.load(id)?;
    let status = state.status(root);
    if !force && !status.can_delete() {
        return Err(RuntimeError::WrongStatus {
            id: id.to_string(),
            status: status.as_str(),
            action: "delete",
            expected: "stopped or created (or --force)",
        });
    }
    let cgroup = ContainerCgroup::open(&state.cgroup_path).ok();
    if status != Status::Stopped {
        if let Some(fd) = state.init_pidfd() {
            if status == Status::Paused {
                if let Some(cg) = &cgroup {
                    let _ = cg.thaw();
                }
            }
            let _ = sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
            // The init may not be our child: wait for its exit through the pidfd.
            let _ = sys::pidfd_poll_exit(fd.as_raw_fd(), 5000);
        }
    }
    let spec = saved_spec(root, id).ok();
    let poststop = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().as_ref());
    destroy(root, &state, cgroup.as_ref(), poststop)
}

/// Removes a container whose init has exited: stragglers in its cgroup,
/// the cgroup, the state directory; then runs the poststop hooks.
pub(crate) fn destroy(
    root: &Root,
    state: &ContainerState,
    cgroup: Option<&ContainerCgroup>,
    poststop: Option<&Vec<Hook>>,
) -> Result<()> {
    if let Some(cg) = cgroup {
        kill_all(cg);
        cg.remove()?;
    }
    root.remove(&state.id)?;
    run_hooks("poststop", poststop, &state.to_oci(Status::Stopped), None)
}

/// SIGKILLs what is left in the cgroup (processes `exec`ed in, say).
fn kill_all(cg: &ContainerCgroup) {
    let Ok(pids) = cg.pids() else { return };
    let mut fds = Vec::new();
    for pid in pids {
        if let Ok(fd) = sys::pidfd_open(pid) {
            // SAFETY: pidfd_open returned a new descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
            fds.push(fd);
        }
    }
    for fd in fds {
        let _ = sys::pidfd_poll_exit(fd.as_raw_fd(), 5000);
    }
}
