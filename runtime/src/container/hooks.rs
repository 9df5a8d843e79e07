//! OCI hooks: run with the container's state as JSON on stdin, each with its
//! own timeout.

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

use crate::error::{Result, RuntimeError};
use crate::state::OciState;

/// Runs `hooks` in order; the first failure stops the rest.
///
/// With `enter` the hook runs in the namespaces of the process behind the
/// pidfd (createContainer, startContainer hooks), joined with `setns`.
pub(crate) fn run_hooks(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &OciState,
    enter: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    let input = serde_json::to_vec(state).expect("state serializes");
    for hook in hooks {
        run_one(kind, hook, &input, enter)?;
    }
    Ok(())
}

fn run_one(
    kind: &'static str,
    hook: &Hook,
    input: &[u8],
    enter: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let fail = |reason: String| RuntimeError::Hook {
        kind,
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    if let Some(pidfd) = enter {
        let fd = pidfd.as_raw_fd();
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWPID;
        // SAFETY: the closure runs after fork and only calls setns, which is
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, flags) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(input);
    }
    // Wait on a pidfd, so a hook's end is seen at once and a timeout needs
    // no polling loop.
    if let Some(secs) = hook.timeout() {
        let timeout_ms = i32::try_from(secs.max(0).saturating_mul(1000)).unwrap_or(i32::MAX);
        let exited = crate::sys::pidfd_open(child.id() as i32)
            .map(|fd| {
                // SAFETY: pidfd_open returned a new descriptor we own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                crate::sys::pidfd_poll_exit(fd.as_raw_fd(), timeout_ms).unwrap_or(true)
            })
            .unwrap_or(true);
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {secs}s")));
        }
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("exited with {status}")))
    }
}
