//! The container's stdio as the runtime sees it: the shim's own fds 0-2
//! during a clone, or a pty from the console-socket flow.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::sys;

/// Puts other descriptors on 0, 1 and 2 while the runtime clones a
/// process (it inherits them), and restores the shim's own afterwards.
#[derive(Debug)]
pub(super) struct StdioSwap {
    pub(super) devnull: OwnedFd,
    pub(super) stderr: OwnedFd,
}

impl StdioSwap {
    pub(super) fn with<T>(&self, fds: [RawFd; 3], f: impl FnOnce() -> T) -> io::Result<T> {
        for (i, fd) in fds.into_iter().enumerate() {
            sys::dup2(fd, i as RawFd)?;
        }
        let r = f();
        sys::dup2(self.devnull.as_raw_fd(), 0)?;
        sys::dup2(self.devnull.as_raw_fd(), 1)?;
        sys::dup2(self.stderr.as_raw_fd(), 2)?;
        Ok(r)
    }
}

/// Binds a socket for the runtime's console-socket flow and returns it
/// with its path.
pub(super) fn console_listener(
    state_dir: &Path,
    name: &str,
) -> io::Result<(UnixListener, PathBuf)> {
    let path = state_dir.join(name);
    let _ = fs::remove_file(&path);
    Ok((UnixListener::bind(&path)?, path))
}

/// Takes the pty master the container's process sent to `listener`
/// (already queued: the runtime connects and the child sends before the
/// runtime returns).
pub(super) fn receive_pty(listener: &UnixListener) -> io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let (conn, _) = listener.accept()?;
    let mut fds = Vec::new();
    let mut buf = [0u8; 256];
    sys::recv_with_fds(conn.as_raw_fd(), &mut buf, &mut fds)?;
    fds.into_iter()
        .next()
        .ok_or_else(|| io::Error::other("no pty master received on the console socket"))
}
