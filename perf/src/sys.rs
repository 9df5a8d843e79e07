//! The raw syscalls of the harness, each behind a safe function: `wait4` for
//! a child's exit status and peak RSS, `waitid(WNOWAIT)` to see an exit
//! without reaping, `waitpid(WNOHANG)`, `kill`,
//! `prctl(PR_SET_CHILD_SUBREAPER)`, and `setns` into a network namespace.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

/// How a reaped child ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reaped {
    pub(crate) status: ExitStatus,
    /// `ru_maxrss` of the child: the peak resident set, in KiB, of the child
    /// or of any of its descendants that it reaped itself (the kernel keeps
    /// the maximum, not a sum).
    pub(crate) maxrss_kib: u64,
}

/// Blocks until child `pid` exits and reaps it, returning its status and
/// peak RSS. Retries on `EINTR`.
pub(crate) fn wait4(pid: u32) -> io::Result<Reaped> {
    let pid = to_pid(pid)?;
    loop {
        // SAFETY: `rusage` is a C struct of integers, so all-zero bytes are a
        // valid value; `wait4` only writes into `status` and `usage`, two
        // locals that live across the call, and has no other memory effects.
        let (rc, status, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let mut status: libc::c_int = 0;
            let rc = libc::wait4(pid, &mut status, 0, &mut usage);
            (rc, status, usage)
        };
        if rc == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok(Reaped {
            status: ExitStatus::from_raw(status),
            maxrss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        });
    }
}

/// Blocks until child `pid` has exited, leaving it a zombie (`WNOWAIT`): its
/// pid cannot be reused until [`wait4`] reaps it.
pub(crate) fn wait_exited_nowait(pid: u32) -> io::Result<()> {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: `siginfo_t` is plain data, all-zero is a valid value;
        // `waitid` writes only into `info`, a local that outlives the call.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps every child that has already exited (`waitpid(-1, WNOHANG)`), e.g.
/// orphans handed to us as subreaper. Only call it when no child that the
/// caller still wants to `wait4` for can have exited.
pub(crate) fn reap_exited() -> usize {
    let mut n = 0;
    loop {
        // SAFETY: a null status pointer is allowed by waitpid; no memory is
        // written.
        let rc = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if rc <= 0 {
            return n;
        }
        n += 1;
    }
}

/// Reaps child `pid` if it has exited: `Ok(true)` when reaped, `Ok(false)`
/// while it runs, `ECHILD` if it is not our child (any more).
pub(crate) fn try_reap(pid: u32) -> io::Result<bool> {
    let pid = to_pid(pid)?;
    loop {
        // SAFETY: a null status pointer is allowed by waitpid; no memory is
        // written.
        let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        match rc {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            0 => return Ok(false),
            _ => return Ok(true),
        }
    }
}

/// Sends SIGKILL to the process group `pgid`.
pub(crate) fn kill_group(pgid: u32) -> io::Result<()> {
    let pgid = to_pid(pgid)?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the
    // negative pid addresses the group.
    if unsafe { libc::kill(-pgid, libc::SIGKILL) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes this process a child subreaper: orphaned descendants (such as a
/// container init whose `create` process exited) are reparented to us, so
/// we can `wait4` for them.
pub(crate) fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no
    // memory; the unused arguments are zero as prctl(2) asks.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `cmd` join the network namespace `ns` (an open `/run/netns/<name>`)
/// in the child, between fork and exec: unlike `ip netns exec`, no extra
/// process and no remount of /sys, so nothing is added to what is timed.
pub(crate) fn enter_netns_on_exec(cmd: &mut Command, ns: std::fs::File) {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setns(2), which is async-signal-safe; `ns` is owned by the
    // closure, so the descriptor stays open for as long as `cmd` lives.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Moves the calling thread (only it) into the network namespace `ns` (an
/// open `/run/netns/<name>`): the sockets it creates from then on live in
/// that namespace. For a thread spawned for the purpose, since it never
/// comes back.
pub(crate) fn enter_netns(ns: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: setns(2) takes a descriptor we keep open across the call and
    // a flag, and touches no memory of ours.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn to_pid(pid: u32) -> io::Result<libc::pid_t> {
    libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
