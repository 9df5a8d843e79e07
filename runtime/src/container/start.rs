//! `start`: let a created container's init `execve` the user process.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::hooks::run_hooks;
use super::{load_for, saved_spec};
use crate::error::{Result, RuntimeError};
use crate::state::{Root, Status};

pub fn start(root: &Root, id: &str) -> Result<()> {
    let (state, _) = load_for(root, id, "start", Status::can_start, "created")?;
    let spec = saved_spec(root, id)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    let pidfd = state
        .init_pidfd()
        .ok_or_else(|| RuntimeError::WrongStatus {
            id: id.to_string(),
            status: "stopped",
            action: "start",
            expected: "created",
        })?;
    use std::os::fd::AsFd;
    run_hooks(
        "startContainer",
        hooks.start_container().as_ref(),
        &state.to_oci(Status::Created),
        Some(pidfd.as_fd()),
    )?;
    let fifo_path = root.fifo_path(id);
    // Non-blocking: with no reader (the init died) this fails at once.
    let mut fifo = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| RuntimeError::io("opening exec fifo", &fifo_path, e))?;
    fifo.write_all(&[0])
        .map_err(|e| RuntimeError::io("writing exec fifo", &fifo_path, e))?;
    std::fs::remove_file(&fifo_path).map_err(|e| RuntimeError::io("removing", &fifo_path, e))?;
    run_hooks(
        "poststart",
        hooks.poststart().as_ref(),
        &state.to_oci(Status::Running),
        None,
    )
}
