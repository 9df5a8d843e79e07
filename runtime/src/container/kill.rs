//! `kill`: signal the init (or, with `all`, every process) through pidfds.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::load_for;
use crate::cgroups::ContainerCgroup;
use crate::error::{Result, RuntimeError};
use crate::state::{Root, Status};
use crate::sys;

pub fn kill(root: &Root, id: &str, signal: i32, all: bool) -> Result<()> {
    let (state, _) = load_for(
        root,
        id,
        "kill",
        Status::can_kill,
        "created, running or paused",
    )?;
    if all {
        let cg = ContainerCgroup::open(&state.cgroup_path)?;
        for pid in cg.pids()? {
            // A pid that exited meanwhile is fine; a pidfd can't hit a reused pid.
            if let Ok(fd) = sys::pidfd_open(pid) {
                // SAFETY: pidfd_open returned a new descriptor we own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                let _ = sys::pidfd_send_signal(fd.as_raw_fd(), signal);
            }
        }
        return Ok(());
    }
    let pidfd = state
        .init_pidfd()
        .ok_or_else(|| RuntimeError::WrongStatus {
            id: id.to_string(),
            status: "stopped",
            action: "kill",
            expected: "created, running or paused",
        })?;
    sys::pidfd_send_signal(pidfd.as_raw_fd(), signal)
        .map_err(|e| RuntimeError::sys("pidfd_send_signal", std::io::Error::from_raw_os_error(e)))
}

/// "KILL", "SIGKILL", "kill" or "9".
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(RuntimeError::InvalidSignal(s.to_string()));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(RuntimeError::InvalidSignal(s.to_string())),
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
