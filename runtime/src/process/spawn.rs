//! The runtime's side of creating the container's init: clone, id maps,
//! cgroup placement, hooks, and waiting for the child to be ready.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::plan::ChildPlan;
use super::{MESSAGE_LEN, Message, MessageKind, Step, child};
use crate::ChildError;
use crate::cgroups::ContainerCgroup;
use crate::error::{Result, RuntimeError};
use crate::sys::{self, clone3::Forked};

/// A container init that finished its setup and waits to be started.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The runtime's end of the sync socket: send [`MessageKind::Go`] on it
    /// to start a child that was spawned without a start descriptor.
    pub sync: OwnedFd,
}

impl Spawned {
    /// Starts a child spawned with `start_fd: None`, and waits until it has
    /// called `execve` (its end of the socket closes) or failed doing so.
    pub fn start_and_confirm(&self) -> Result<()> {
        sys::send(
            self.sync.as_raw_fd(),
            &Message::new(MessageKind::Go).encode(),
        )
        .map_err(|e| {
            RuntimeError::sys("starting container", std::io::Error::from_raw_os_error(e))
        })?;
        match recv(self.sync.as_fd())? {
            None => Ok(()),
            Some(m) if m.is(MessageKind::Error) => Err(RuntimeError::Child(m.to_child_error())),
            Some(_) => Err(protocol_error()),
        }
    }
}

fn protocol_error() -> RuntimeError {
    RuntimeError::Child(ChildError {
        step: Step::Unknown,
        errno: libc::EPROTO,
        detail: "unexpected message from container init".into(),
    })
}

fn recv(fd: BorrowedFd<'_>) -> Result<Option<Message>> {
    let mut buf = [0u8; MESSAGE_LEN];
    let n = sys::read(fd.as_raw_fd(), &mut buf).map_err(|e| {
        RuntimeError::sys(
            "reading from container init",
            std::io::Error::from_raw_os_error(e),
        )
    })?;
    Ok(if n == 0 {
        None
    } else {
        Message::from_bytes(&buf[..n])
    })
}

/// Clones the container's init and drives it until it is ready.
///
/// `start_fd` is what the child blocks on before `execve` (the exec fifo of
/// `create`); `None` means the sync socket itself (`run`). `on_hooks` runs
/// when the child reaches the point of the runtime hooks.
pub fn spawn(
    plan: &ChildPlan,
    start_fd: Option<RawFd>,
    cgroup: Option<&ContainerCgroup>,
    on_hooks: &mut dyn FnMut(i32, BorrowedFd<'_>) -> Result<()>,
) -> Result<Spawned> {
    let (parent_end, child_end) = sys::seqpacket_pair()
        .map_err(|e| RuntimeError::sys("socketpair", std::io::Error::from_raw_os_error(e)))?;
    if let Some(pidns) = &plan.parent_join_pid {
        sys::setns(pidns.as_raw_fd(), libc::CLONE_NEWPID).map_err(|e| {
            RuntimeError::sys(
                "joining pid namespace",
                std::io::Error::from_raw_os_error(e),
            )
        })?;
    }
    let cgroup_fd = cgroup.and_then(ContainerCgroup::clone_into_fd);
    // SAFETY: the runtime is single-threaded when it spawns, and the child
    // branch runs only `child::run`, which is async-signal-safe and never
    // returns.
    let forked =
        unsafe { sys::clone3::clone3(plan.clone_flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd())) }
            .map_err(|e| RuntimeError::sys("clone3", std::io::Error::from_raw_os_error(e)))?;
    let (pid, pidfd) = match forked {
        Forked::Child => {
            sys::close(parent_end.as_raw_fd());
            let sync = child_end.as_raw_fd();
            child::run(plan, sync, start_fd.unwrap_or(sync))
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_end);
    let spawned = Spawned {
        pid,
        pidfd,
        sync: parent_end,
    };
    // The runtime moves the child only if it neither cloned into its cgroup
    // nor joins it by itself.
    let add_task = cgroup.filter(|_| cgroup_fd.is_none() && plan.cgroup_join.is_empty());
    match drive(plan, &spawned, add_task, on_hooks) {
        Ok(()) => Ok(spawned),
        Err(e) => {
            let _ = sys::pidfd_send_signal(spawned.pidfd.as_raw_fd(), libc::SIGKILL);
            let _ = sys::pidfd_wait(spawned.pidfd.as_raw_fd());
            Err(e)
        }
    }
}

fn drive(
    plan: &ChildPlan,
    s: &Spawned,
    cgroup: Option<&ContainerCgroup>,
    on_hooks: &mut dyn FnMut(i32, BorrowedFd<'_>) -> Result<()>,
) -> Result<()> {
    if let Some(map) = &plan.uid_map {
        write_proc(s.pid, "uid_map", map)?;
    }
    if let Some(map) = &plan.gid_map {
        write_proc(s.pid, "gid_map", map)?;
    }
    if let Some(cg) = cgroup {
        cg.add_task(s.pid)?;
    }
    let go = Message::new(MessageKind::Go).encode();
    let send_go = || {
        sys::send(s.sync.as_raw_fd(), &go).map_err(|e| {
            RuntimeError::sys(
                "signalling container init",
                std::io::Error::from_raw_os_error(e),
            )
        })
    };
    send_go()?;
    loop {
        match recv(s.sync.as_fd())? {
            Some(m) if m.is(MessageKind::Ready) => return Ok(()),
            Some(m) if m.is(MessageKind::RunHooks) => {
                on_hooks(s.pid, s.pidfd.as_fd())?;
                send_go()?;
            }
            Some(m) if m.is(MessageKind::Error) => {
                return Err(RuntimeError::Child(m.to_child_error()));
            }
            Some(_) => return Err(protocol_error()),
            None => {
                let status = sys::pidfd_wait(s.pidfd.as_raw_fd()).ok();
                return Err(RuntimeError::Child(ChildError {
                    step: Step::Unknown,
                    errno: libc::ECHILD,
                    detail: format!("container init exited during setup ({status:?})"),
                }));
            }
        }
    }
}

fn write_proc(pid: i32, file: &str, contents: &[u8]) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, contents).map_err(|e| RuntimeError::io("writing", path, e))
}
