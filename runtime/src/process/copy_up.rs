//! runc's `tmpcopyup`: copy a directory tree of the rootfs into the tmpfs
//! mounted over it, so the container sees the image's files there.
//!
//! Runs in the container's init before `execve`: only system calls on stack
//! buffers, no allocation. Directories nest at most [`MAX_DEPTH`] deep (each
//! level holds a directory listing buffer on the stack).

use std::ffi::CStr;
use std::os::fd::RawFd;

use crate::sys::{self, Errno, SysResult};

const MAX_DEPTH: usize = 32;
const O_DIR: i32 = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW;

/// Copies the contents of directory `src` into directory `dst` (both open
/// descriptors), keeping types, modes, owners and symlink targets.
pub(crate) fn copy_tree(src: RawFd, dst: RawFd) -> SysResult<()> {
    copy_dir(src, dst, 0)
}

fn copy_dir(src: RawFd, dst: RawFd, depth: usize) -> SysResult<()> {
    if depth > MAX_DEPTH {
        return Err(libc::ELOOP);
    }
    let mut buf = [0u8; 4096];
    loop {
        let n = sys::getdents64(src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off < n {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = CStr::from_bytes_until_nul(&buf[off + 19..off + reclen])
                .map_err(|_| libc::EINVAL)?;
            off += reclen;
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            copy_entry(src, dst, name, depth)?;
        }
    }
}

fn copy_entry(src: RawFd, dst: RawFd, name: &CStr, depth: usize) -> SysResult<()> {
    let st = sys::lstatat(src, name)?;
    let perm = st.st_mode & 0o7777;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            sys::mkdirat(dst, name, 0o700)?;
            let s = sys::openat(src, name, O_DIR, 0)?;
            let d = match sys::openat(dst, name, O_DIR, 0) {
                Ok(d) => d,
                Err(e) => {
                    sys::close(s);
                    return Err(e);
                }
            };
            let res = copy_dir(s, d, depth + 1).and_then(|()| finish(d, &st));
            sys::close(s);
            sys::close(d);
            res
        }
        libc::S_IFREG => {
            let s = sys::openat(
                src,
                name,
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0,
            )?;
            let d = match sys::openat(
                dst,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            ) {
                Ok(d) => d,
                Err(e) => {
                    sys::close(s);
                    return Err(e);
                }
            };
            let res = copy_data(s, d).and_then(|()| finish(d, &st));
            sys::close(s);
            sys::close(d);
            res
        }
        libc::S_IFLNK => {
            let mut target = [0u8; 4096];
            sys::readlinkat(src, name, &mut target)?;
            let target = CStr::from_bytes_until_nul(&target).map_err(|_| libc::EINVAL)?;
            sys::symlinkat(target, dst, name)?;
            sys::fchownat(dst, name, st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW)
        }
        kind => {
            // Fifos, sockets and device nodes: same node, no data.
            sys::mknodat(dst, name, kind | perm, st.st_rdev)?;
            sys::fchownat(dst, name, st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW)
        }
    }
}

/// Owner, then mode (chown clears setuid bits, so mode comes last).
fn finish(fd: RawFd, st: &libc::stat) -> SysResult<()> {
    sys::fchownat(fd, c"", st.st_uid, st.st_gid, libc::AT_EMPTY_PATH)?;
    sys::fchmod(fd, st.st_mode & 0o7777)
}

fn copy_data(src: RawFd, dst: RawFd) -> Result<(), Errno> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = sys::read(src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        sys::write_all(dst, &buf[..n])?;
    }
}
