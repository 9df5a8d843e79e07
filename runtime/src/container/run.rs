//! `run`: create and start in one process, wait for the container and
//! delete it, forwarding signals meanwhile. Returns the exit status.

use std::os::fd::{AsFd, AsRawFd};

use super::create::{CreateOptions, Created, create_container};
use super::hooks::run_hooks;
use crate::error::{Result, RuntimeError};
use crate::state::{Root, Status};
use crate::sys::{self, ExitStatus};

/// Signals `run` forwards to the container instead of dying of them.
const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

pub fn run(
    root: &Root,
    id: &str,
    opts: &CreateOptions,
    detach: bool,
) -> Result<Option<ExitStatus>> {
    let spec = super::load_spec(&opts.bundle)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    let Created {
        state,
        spawned,
        cgroup,
        ..
    } = create_container(root, id, opts, false)?;
    let started = (|| {
        run_hooks(
            "startContainer",
            hooks.start_container().as_ref(),
            &state.to_oci(Status::Created),
            Some(spawned.pidfd.as_fd()),
        )?;
        spawned.start_and_confirm()?;
        run_hooks(
            "poststart",
            hooks.poststart().as_ref(),
            &state.to_oci(Status::Running),
            None,
        )
    })();
    if let Err(e) = started {
        let _ = sys::pidfd_send_signal(spawned.pidfd.as_raw_fd(), libc::SIGKILL);
        let _ = sys::pidfd_wait(spawned.pidfd.as_raw_fd());
        let _ = super::delete(root, id, true);
        return Err(e);
    }
    if detach {
        return Ok(None);
    }
    let status = wait_forwarding(spawned.pidfd.as_raw_fd())?;
    // The init is reaped: no status to work out, nothing to reopen.
    super::delete::destroy(root, &state, Some(&cgroup), hooks.poststop().as_ref())?;
    Ok(Some(status))
}

/// Waits for the init, passing the usual termination signals on to it.
fn wait_forwarding(pidfd: i32) -> Result<ExitStatus> {
    // SAFETY: an empty sigset is valid; the calls only fill and apply it.
    let fd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(RuntimeError::sys(
            "signalfd",
            std::io::Error::last_os_error(),
        ));
    }
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
            if let Ok(len) = sys::read(fd, &mut info) {
                if len == info.len() {
                    let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
                    let _ = sys::pidfd_send_signal(pidfd, signo);
                }
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            sys::close(fd);
            return sys::pidfd_wait(pidfd).map_err(|e| {
                RuntimeError::sys(
                    "waiting for container",
                    std::io::Error::from_raw_os_error(e),
                )
            });
        }
    }
}
