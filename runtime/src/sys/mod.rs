//! Raw system calls, gathered in one place.
//!
//! Everything here is async-signal-safe: no allocation, no locks, no Rust
//! std I/O. Calls take `&CStr` that the caller allocated before `clone3`, and
//! return the raw errno on failure, so the container's init can use them
//! between `clone3` and `execve`.

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::ptr;

use libc::{c_int, c_long, c_ulong, c_void};

pub(crate) mod clone3;
pub(crate) mod fmt;

/// A raw errno value.
pub(crate) type Errno = i32;
pub(crate) type SysResult<T> = Result<T, Errno>;

fn errno() -> Errno {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

fn check(ret: c_long) -> SysResult<c_long> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

fn check_int(ret: c_int) -> SysResult<c_int> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(ptr::null(), CStr::as_ptr)
}

pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> SysResult<()> {
    // SAFETY: every pointer is either null or a NUL-terminated string that
    // outlives the call.
    let ret = unsafe {
        libc::mount(
            opt_ptr(source),
            target.as_ptr(),
            opt_ptr(fstype),
            flags,
            data.map_or(ptr::null(), |d| d.as_ptr().cast::<c_void>()),
        )
    };
    check_int(ret).map(drop)
}

pub(crate) fn umount2(target: &CStr, flags: c_int) -> SysResult<()> {
    // SAFETY: target is a valid C string.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: both arguments are valid C strings; pivot_root has no libc wrapper.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

pub(crate) fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub(crate) fn fchdir(fd: RawFd) -> SysResult<()> {
    // SAFETY: fchdir only reads the descriptor number.
    check_int(unsafe { libc::fchdir(fd) }).map(drop)
}

pub(crate) fn chroot(path: &CStr) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

/// `openat2(2)`; `resolve` is a set of `RESOLVE_*` flags.
pub(crate) fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> SysResult<RawFd> {
    // libc's open_how is non-exhaustive; this is the kernel's v0 layout.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: flags as u64,
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: `how` is a valid open_how and its size is passed with it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    check(ret).map(|fd| fd as RawFd)
}

pub(crate) fn openat(dirfd: RawFd, path: &CStr, flags: c_int, mode: u32) -> SysResult<RawFd> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::openat(dirfd, path.as_ptr(), flags, mode) })
}

pub(crate) fn mkdirat(dirfd: RawFd, path: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) }).map(drop)
}

pub(crate) fn mknodat(dirfd: RawFd, path: &CStr, mode: u32, dev: u64) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::mknodat(dirfd, path.as_ptr(), mode, dev) }).map(drop)
}

pub(crate) fn symlinkat(target: &CStr, dirfd: RawFd, path: &CStr) -> SysResult<()> {
    // SAFETY: both are valid C strings.
    check_int(unsafe { libc::symlinkat(target.as_ptr(), dirfd, path.as_ptr()) }).map(drop)
}

pub(crate) fn fchownat(
    dirfd: RawFd,
    path: &CStr,
    uid: u32,
    gid: u32,
    flags: c_int,
) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::fchownat(dirfd, path.as_ptr(), uid, gid, flags) }).map(drop)
}

/// `getdents64(2)` into `buf`; 0 at the end of the directory.
pub(crate) fn getdents64(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid mutable slice for its length.
    check(unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })
        .map(|n| n as usize)
}

/// `fstatat(2)` without following a final symlink.
pub(crate) fn lstatat(dirfd: RawFd, name: &CStr) -> SysResult<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is a valid C string and st a valid out pointer.
    check_int(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// `readlinkat(2)` into `buf`, NUL-terminated; the target's length.
pub(crate) fn readlinkat(dirfd: RawFd, name: &CStr, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is valid for len - 1 bytes, leaving room for the NUL.
    let n =
        unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len() - 1) };
    let n = check(n as c_long)? as usize;
    if n >= buf.len() - 1 {
        return Err(libc::ENAMETOOLONG);
    }
    buf[n] = 0;
    Ok(n)
}

pub(crate) fn fchmod(fd: RawFd, mode: u32) -> SysResult<()> {
    // SAFETY: fchmod only reads its integer arguments.
    check_int(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this process owns; errors are irrelevant.
    unsafe { libc::close(fd) };
}

pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: buf is a valid mutable slice for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// `send` with `MSG_NOSIGNAL`, so a vanished peer is `EPIPE`, not `SIGPIPE`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> SysResult<()> {
    // SAFETY: buf is a valid slice for its length.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    check(n as c_long).map(drop)
}

/// Sends descriptor `fd` with `data` over a unix socket (`SCM_RIGHTS`).
pub(crate) fn send_fd(sock: RawFd, fd: RawFd, data: &[u8]) -> SysResult<()> {
    // u64 elements give the control buffer the alignment of cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as usize;
    // SAFETY: the control buffer (64 bytes) holds one cmsghdr plus an int,
    // and CMSG_FIRSTHDR/CMSG_DATA point inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as usize;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>(), fd);
    }
    // SAFETY: msg points at live buffers for the duration of the call.
    check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as c_long).map(drop)
}

/// Writes `contents` to the file at `path` (sysctls, oom_score_adj, maps).
pub(crate) fn write_file(path: &CStr, contents: &[u8]) -> SysResult<()> {
    let fd = openat(libc::AT_FDCWD, path, libc::O_WRONLY | libc::O_CLOEXEC, 0)?;
    let ret = write_all(fd, contents);
    close(fd);
    ret
}

pub(crate) fn sethostname(name: &[u8]) -> SysResult<()> {
    // SAFETY: name is a valid slice for its length.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub(crate) fn setdomainname(name: &[u8]) -> SysResult<()> {
    // SAFETY: name is a valid slice for its length.
    check_int(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// Sets `lo` up in the current network namespace, as runc does for a new
/// one: a fresh namespace has it down, and programs expect 127.0.0.1.
pub(crate) fn loopback_up() -> SysResult<()> {
    // SAFETY: socket only reads its integer arguments.
    let fd = check_int(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`.
    let ret = check_int(unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) }).and_then(|_| {
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: SIOCSIFFLAGS only reads `req`.
        check_int(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) })
    });
    close(fd);
    ret.map(drop)
}

pub(crate) fn setns(fd: RawFd, nstype: c_int) -> SysResult<()> {
    // SAFETY: setns only reads its integer arguments.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

pub(crate) fn unshare(flags: c_int) -> SysResult<()> {
    // SAFETY: unshare only reads its integer argument.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

pub(crate) fn setrlimit(resource: u32, soft: u64, hard: u64) -> SysResult<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit; pid 0 is the calling process.
    check_int(unsafe { libc::prlimit(0, resource as _, &lim, ptr::null_mut()) }).map(drop)
}

pub(crate) fn setgroups(gids: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: gids is a valid slice; the raw syscall sets this thread's groups
    // only, which is what a single-threaded child wants (glibc's wrapper
    // would signal other threads).
    check(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map(drop)
}

pub(crate) fn setresgid(gid: u32) -> SysResult<()> {
    // SAFETY: raw syscall with integer arguments (see setgroups).
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub(crate) fn setresuid(uid: u32) -> SysResult<()> {
    // SAFETY: raw syscall with integer arguments (see setgroups).
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub(crate) fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong) -> SysResult<c_int> {
    // SAFETY: the options used here take integer arguments only.
    check_int(unsafe { libc::prctl(option, arg2, arg3, 0 as c_ulong, 0 as c_ulong) })
}

/// The three capability sets as 64-bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub(crate) effective: u64,
    pub(crate) permitted: u64,
    pub(crate) inheritable: u64,
}

pub(crate) fn capset(sets: &CapSets) -> SysResult<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and data match the kernel's v3 capability ABI (two
    // 32-bit words per set).
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) }).map(drop)
}

/// A `SOCK_SEQPACKET` unix socket pair, close-on-exec.
pub(crate) fn seqpacket_pair() -> SysResult<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds is a valid out array of two ints.
    check_int(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair returned two new descriptors that we now own.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Waits until the process behind `pidfd` has exited (it needn't be our
/// child), or `timeout_ms` passed; true if it exited.
pub(crate) fn pidfd_poll_exit(pidfd: RawFd, timeout_ms: c_int) -> SysResult<bool> {
    let mut p = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: p is one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return check_int(n).map(|n| n > 0);
    }
}

pub(crate) fn setsid() -> SysResult<()> {
    // SAFETY: setsid takes no arguments.
    check_int(unsafe { libc::setsid() }).map(drop)
}

pub(crate) fn umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) };
}

/// Sets SIGPIPE's disposition to the default (terminate). sigaction(2) is
/// async-signal-safe.
pub(crate) fn default_sigpipe() {
    // SAFETY: a zeroed sigaction with SIG_DFL (0) is a valid argument; the
    // old action is not requested; this cannot fail for SIGPIPE.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
    }
}

pub(crate) fn dup3(old: RawFd, new: RawFd, flags: c_int) -> SysResult<()> {
    // SAFETY: dup3 only reads descriptor numbers.
    check_int(unsafe { libc::dup3(old, new, flags) }).map(drop)
}

pub(crate) fn ioctl(fd: RawFd, request: c_ulong, arg: c_ulong) -> SysResult<c_int> {
    // SAFETY: the requests used here take an integer argument.
    check_int(unsafe { libc::ioctl(fd, request, arg) })
}

pub(crate) fn faccessat(path: &CStr, mode: c_int) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check_int(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) })
        .map(drop)
}

/// File type bits (`S_IFMT`) of `path`, following symlinks.
pub(crate) fn file_type(path: &CStr) -> SysResult<u32> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string and st a valid out pointer.
    check_int(unsafe { libc::stat(path.as_ptr(), &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT)
}

/// Sets `MOUNT_ATTR_*` flags on the mount at `dirfd` and every mount below
/// it: one call for a whole tree.
pub(crate) fn mount_setattr_recursive(dirfd: RawFd, attr_set: u64) -> SysResult<()> {
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is an empty C string (AT_EMPTY_PATH: dirfd itself)
    // and attr a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

/// Mount flags of the mount holding `path` that a bind remount must keep
/// (the kernel refuses to clear locked flags inside a user namespace).
pub(crate) fn locked_mount_flags(path: &CStr) -> SysResult<c_ulong> {
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string and st a valid out pointer.
    check_int(unsafe { libc::statvfs(path.as_ptr(), &mut st) })?;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

pub(crate) fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to C
    // strings that the caller keeps alive; execve only returns on failure.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// Marks every descriptor from `first` on close-on-exec.
pub(crate) fn cloexec_from(first: u32) -> SysResult<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

pub(crate) fn clear_cloexec(fd: RawFd) -> SysResult<()> {
    // SAFETY: F_SETFD with integer flags.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

pub(crate) fn exit(code: c_int) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

pub(crate) fn pidfd_open(pid: i32) -> SysResult<RawFd> {
    // SAFETY: pidfd_open takes integer arguments and returns a new descriptor.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(|fd| fd as RawFd)
}

pub(crate) fn pidfd_send_signal(pidfd: RawFd, sig: c_int) -> SysResult<()> {
    // SAFETY: a null siginfo means "as if by kill(2)".
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            ptr::null::<c_void>(),
            0,
        )
    })
    .map(drop)
}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention: the exit code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(c) => c,
            Self::Signaled(s) => 128 + s,
        }
    }
}

/// Waits for the process behind `pidfd` to exit and reaps it.
pub(crate) fn pidfd_wait(pidfd: RawFd) -> SysResult<ExitStatus> {
    loop {
        // SAFETY: an all-zero siginfo is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD waits on the process the descriptor refers to.
        let ret =
            unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED) };
        if ret < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(errno());
        }
        // SAFETY: waitid filled a SIGCHLD siginfo, for which si_status is valid.
        let status = unsafe { info.si_status() };
        return Ok(if info.si_code == libc::CLD_EXITED {
            ExitStatus::Exited(status)
        } else {
            ExitStatus::Signaled(status)
        });
    }
}
