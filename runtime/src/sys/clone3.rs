//! `clone3(2)` without a new stack: the child continues like after `fork`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{SysResult, check};

#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// From linux/sched.h (libc's constant is deprecated for overflowing c_int).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` returned in the calling process.
pub(crate) enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// Clones the calling process with `CLONE_PIDFD` plus `flags` (namespace
/// flags), optionally straight into the cgroup v2 directory `cgroup_fd`.
///
/// # Safety
///
/// The caller must be single-threaded, and the child must run only
/// async-signal-safe code and end in `execve` or `_exit`.
pub(crate) unsafe fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> SysResult<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args of the size passed; with a null
    // stack the child runs on a copy of this stack like after fork, and the
    // caller guarantees what it runs there.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if ret == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent {
        pid: ret as i32,
        pidfd,
    })
}
