//! `start`: let a created container's init `execve` the user process.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use oci_spec::runtime::Hooks;

use super::create::Held;
use super::hooks::run_hooks;
use super::{load_for, saved_spec};
use crate::error::{Result, RuntimeError};
use crate::state::{ContainerState, Root, Status};

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
    start_init(root, &state, pidfd.as_fd(), &hooks)
}

/// `start` by the process that created the container with
/// [`super::create_held`] and holds its init's pidfd (the shim): nothing
/// to read or check again. An init that died meanwhile fails the fifo's
/// open, as in [`start`].
pub fn start_held(root: &Root, held: &Held, init: BorrowedFd<'_>) -> Result<()> {
    start_init(root, &held.state, init, &held.hooks)
}

fn start_init(
    root: &Root,
    state: &ContainerState,
    init: BorrowedFd<'_>,
    hooks: &Hooks,
) -> Result<()> {
    run_hooks(
        "startContainer",
        hooks.start_container().as_ref(),
        &state.to_oci(Status::Created),
        Some(init),
    )?;
    let fifo_path = root.fifo_path(&state.id);
    // Non-blocking: with no reader (the init died) this fails at once.
    let mut fifo = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => RuntimeError::WrongStatus {
                id: state.id.clone(),
                status: "stopped",
                action: "start",
                expected: "created",
            },
            _ => RuntimeError::io("opening exec fifo", &fifo_path, e),
        })?;
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
