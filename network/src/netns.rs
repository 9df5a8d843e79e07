//! Network namespaces: created by `unshare(CLONE_NEWNET)` on a throwaway
//! thread and kept alive by a bind mount of that thread's
//! `/proc/thread-self/ns/net` onto a file (what `ip netns add` does), so an
//! OCI spec can join it by path.
//!
//! Work inside a namespace runs on a dedicated thread that `setns`es into it
//! and then ends: the calling thread (often a tokio worker) never changes
//! namespace.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::mount::{UnmountFlags, mount_bind, unmount};
use rustix::thread::{LinkNameSpaceType, UnshareFlags, move_into_link_name_space};

use crate::error::{NetworkError, Result};

/// A handle on a network namespace (an open nsfs descriptor).
#[derive(Debug, Clone)]
pub struct NetNs {
    path: Option<PathBuf>,
    fd: Arc<OwnedFd>,
}

impl NetNs {
    /// The namespace of the calling thread (the daemon's "host" namespace).
    pub fn current() -> Result<Self> {
        let path = Path::new("/proc/thread-self/ns/net");
        let file = File::open(path).map_err(|e| NetworkError::io("opening", path, e))?;
        Ok(Self {
            path: None,
            fd: Arc::new(file.into()),
        })
    }

    /// Opens a namespace bind-mounted at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| NetworkError::io("opening netns", path, e))?;
        Ok(Self {
            path: Some(path.to_owned()),
            fd: Arc::new(file.into()),
        })
    }

    /// Creates a new, empty namespace bind-mounted at `path` (its parent
    /// directory is created if missing).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Self::create_unmounted()?.mount_at(path)
    }

    /// Creates a new namespace held only by the returned handle (and its
    /// clones): nothing is mounted, so the namespace, and every link in it,
    /// goes when the last handle closes, including when the process dies.
    pub fn create_unmounted() -> Result<Self> {
        let file = std::thread::scope(|scope| {
            scope
                .spawn(|| -> std::io::Result<File> {
                    // SAFETY: only CLONE_NEWNET is unshared, and only on this
                    // scoped thread that ends right after; the file table (the
                    // hazard `unshare_unsafe` warns about) stays shared.
                    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }?;
                    File::open("/proc/thread-self/ns/net")
                })
                .join()
                .expect("netns creation thread panicked")
        })
        .map_err(|e| NetworkError::io("creating netns", "/proc/thread-self/ns/net", e))?;
        Ok(Self {
            path: None,
            fd: Arc::new(file.into()),
        })
    }

    /// Bind-mounts this namespace at `path`, for an OCI spec to join;
    /// [`NetNs::remove`] undoes it.
    pub fn mount_at(&self, path: impl AsRef<Path>) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let path = path.as_ref();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| NetworkError::io("creating netns directory", parent, e))?;
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(path)
            .map_err(|e| NetworkError::io("creating netns file", path, e))?;
        let source = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        if let Err(e) = mount_bind(source.as_str(), path) {
            let _ = fs::remove_file(path);
            return Err(NetworkError::io("bind-mounting netns on", path, e.into()));
        }
        Ok(Self {
            path: Some(path.to_owned()),
            fd: self.fd.clone(),
        })
    }

    /// Unmounts and removes a namespace created by [`NetNs::create`]. A
    /// missing path is not an error, so cleanup after a crash can call it
    /// blindly. The namespace itself lives on while processes are in it.
    pub fn remove(path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match unmount(path, UnmountFlags::DETACH) {
            Ok(()) => {}
            // EINVAL: the file exists but nothing is mounted on it.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::INVAL) => {}
            Err(e) => return Err(NetworkError::io("unmounting netns", path, e.into())),
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetworkError::io("removing netns file", path, e)),
        }
    }

    /// Where the namespace is mounted, if it was opened by path.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A path naming this namespace while this process holds the handle
    /// (`/proc/<pid>/fd/<n>`): another process (the runtime) can join it
    /// by path without a mount.
    pub fn fd_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// The nsfs descriptor (for `IFLA_NET_NS_FD`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Runs `f` on a fresh thread that has joined this namespace. Sockets
    /// opened and processes spawned by `f` belong to the namespace.
    pub fn run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    move_into_link_name_space(self.fd.as_fd(), Some(LinkNameSpaceType::Network))
                        .map_err(|e| {
                            NetworkError::io(
                                "joining netns",
                                self.path.clone().unwrap_or_default(),
                                e.into(),
                            )
                        })?;
                    Ok(f())
                })
                .join()
                .expect("netns worker thread panicked")
        })
    }
}
