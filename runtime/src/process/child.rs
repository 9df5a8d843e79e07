//! The container's init between `clone3` and `execve`.
//!
//! Only async-signal-safe code runs here: system calls from [`crate::sys`]
//! on memory the [`ChildPlan`] allocated before the clone, stack buffers,
//! and no allocation, locking or Rust std I/O. A failing step is sent to the
//! runtime as a [`Message`] naming the step, errno and path.

use std::convert::Infallible;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, RawFd};

use libc::c_ulong;

use super::copy_up;
use super::plan::{ChildPlan, InnerMounts, MountOp, PathInRoot};
use super::{MESSAGE_LEN, Message, MessageKind, Step};
use crate::sys::{self, Errno, fmt::StackPath};

/// A failed step: which, the errno, and the path it worked on.
type Failure<'a> = (Step, Errno, &'a [u8]);

trait Context<T> {
    fn at<'a>(self, step: Step, detail: &'a CStr) -> Result<T, Failure<'a>>;
    fn step(self, step: Step) -> Result<T, Failure<'static>>;
}

impl<T> Context<T> for Result<T, Errno> {
    fn at<'a>(self, step: Step, detail: &'a CStr) -> Result<T, Failure<'a>> {
        self.map_err(|e| (step, e, detail.to_bytes()))
    }
    fn step(self, step: Step) -> Result<T, Failure<'static>> {
        self.map_err(|e| (step, e, &[][..]))
    }
}

/// Runs the plan; never returns. `sync` is the child's end of the socket to
/// the runtime, `start` the descriptor whose readability means "start".
pub fn run(plan: &ChildPlan, sync: RawFd, start: RawFd) -> ! {
    let (step, errno, detail) = match setup(plan, sync, start) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let _ = sys::send(sync, &Message::error(step, errno, detail).encode());
    sys::exit(1)
}

fn wait_go(sync: RawFd) -> Result<(), Failure<'static>> {
    let mut buf = [0u8; MESSAGE_LEN];
    let n = sys::read(sync, &mut buf).step(Step::WaitParent)?;
    match Message::from_bytes(&buf[..n]) {
        Some(m) if m.is(MessageKind::Go) => Ok(()),
        // The runtime went away or sent something else: stop here.
        _ => Err((Step::WaitParent, libc::EPIPE, &[])),
    }
}

fn setup(plan: &ChildPlan, sync: RawFd, start: RawFd) -> Result<Infallible, Failure<'_>> {
    // The runtime writes id maps and places us in our cgroup first.
    wait_go(sync)?;
    for tasks in &plan.cgroup_join {
        sys::write_file(tasks, b"0").at(Step::JoinCgroup, tasks)?;
    }

    for (fd, nstype) in &plan.join {
        sys::setns(fd.as_raw_fd(), *nstype).step(Step::JoinNamespace)?;
    }
    if !plan.exec {
        setup_container(plan, sync)?;
    }
    if let Some(adj) = &plan.oom_score_adj {
        sys::write_file(c"/proc/self/oom_score_adj", adj.to_bytes()).at(Step::OomScoreAdj, adj)?;
    }
    for &(resource, soft, hard) in &plan.rlimits {
        sys::setrlimit(resource, soft, hard).step(Step::Rlimit)?;
    }
    sys::setsid().step(Step::Setsid)?;
    if plan.terminal {
        setup_terminal(plan)?;
    }

    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it is
    // loaded before capabilities are dropped (as runc does).
    if !plan.no_new_privs {
        load_seccomp(plan)?;
    }
    set_user_and_caps(plan)?;
    if let Some(mask) = plan.umask {
        sys::umask(mask);
    }
    sys::chdir(&plan.cwd).at(Step::Chdir, &plan.cwd)?;
    let exe = find_executable(plan)?;
    if plan.no_new_privs {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).step(Step::NoNewPrivileges)?;
    }

    sys::send(sync, &Message::new(MessageKind::Ready).encode()).step(Step::WaitStart)?;
    let mut byte = [0u8; MESSAGE_LEN];
    let n = sys::read(start, &mut byte).step(Step::WaitStart)?;
    if n == 0 {
        // Nobody will ever start us: the runtime or `delete` gave up.
        sys::exit(0);
    }

    if plan.no_new_privs {
        load_seccomp(plan)?;
    }
    // Only the container's stdio and the fds it was promised survive exec.
    for fd in 3..3 + plan.preserve_fds as RawFd {
        sys::clear_cloexec(fd).step(Step::Exec)?;
    }
    sys::cloexec_from(3 + plan.preserve_fds).step(Step::Exec)?;
    // An ignored signal stays ignored across execve, and Rust's runtime
    // ignores SIGPIPE in the process we were cloned from: give the
    // container the default, as every other runtime does.
    sys::default_sigpipe();
    let errno = sys::execve(exe, &plan.argv_ptrs, &plan.env_ptrs);
    Err((Step::Exec, errno, plan.argv0.to_bytes()))
}

/// Namespaces, hostname, rootfs and sysctls of a new container.
fn setup_container(plan: &ChildPlan, sync: RawFd) -> Result<(), Failure<'_>> {
    if plan.unshare_flags != 0 {
        sys::unshare(plan.unshare_flags).step(Step::Unshare)?;
    }
    if let Some(offsets) = &plan.time_offsets {
        sys::unshare(libc::CLONE_NEWTIME).step(Step::TimeNamespace)?;
        sys::write_file(c"/proc/self/timens_offsets", offsets.to_bytes())
            .step(Step::TimeNamespace)?;
        let fd = sys::openat(
            libc::AT_FDCWD,
            c"/proc/self/ns/time_for_children",
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        )
        .step(Step::TimeNamespace)?;
        sys::setns(fd, libc::CLONE_NEWTIME).step(Step::TimeNamespace)?;
        sys::close(fd);
    }
    if plan.new_user_ns {
        // Become root of the new user ns so mounts are allowed.
        sys::setresgid(0).step(Step::Setgid)?;
        sys::setresuid(0).step(Step::Setuid)?;
    }
    if plan.new_net_ns {
        sys::loopback_up().step(Step::Loopback)?;
    }
    if let Some(h) = &plan.hostname {
        sys::sethostname(h.to_bytes()).at(Step::Hostname, h)?;
    }
    if let Some(d) = &plan.domainname {
        sys::setdomainname(d.to_bytes()).at(Step::Domainname, d)?;
    }

    prepare_rootfs(plan, sync)
}

fn prepare_rootfs(plan: &ChildPlan, sync: RawFd) -> Result<(), Failure<'_>> {
    let rootfs = plan.rootfs.as_c_str();
    sys::mount(None, c"/", None, plan.root_propagation, None).step(Step::RootPropagation)?;
    // A mount point of its own, which pivot_root needs.
    sys::mount(
        Some(rootfs),
        rootfs,
        Some(c"bind"),
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .at(Step::BindRootfs, rootfs)?;
    let root = sys::openat(
        libc::AT_FDCWD,
        rootfs,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .at(Step::OpenRootfs, rootfs)?;

    for m in &plan.mounts {
        mount_one(root, m)?;
    }
    for d in &plan.devices {
        create_device(root, d)?;
    }
    for (target, link) in &plan.symlinks {
        let parent = open_parent(root, link).at(Step::CreateSymlink, &link.display)?;
        let name = &link.names[link.names.len() - 1];
        let res = sys::symlinkat(target, parent, name);
        sys::close(parent);
        match res {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err((Step::CreateSymlink, e, link.display.to_bytes())),
        }
    }

    if plan.run_hooks {
        sys::send(sync, &Message::new(MessageKind::RunHooks).encode()).step(Step::Hooks)?;
        wait_go(sync).map_err(|(_, e, d)| (Step::Hooks, e, d))?;
    }

    sys::fchdir(root).at(Step::PivotRoot, rootfs)?;
    sys::close(root);
    if plan.pivot {
        // pivot_root(".", ".") stacks the old root on top of the new one;
        // it is then detached without needing a directory for it.
        sys::pivot_root(c".", c".").at(Step::PivotRoot, rootfs)?;
        sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
            .at(Step::PivotRoot, rootfs)?;
        sys::umount2(c".", libc::MNT_DETACH).at(Step::PivotRoot, rootfs)?;
    } else {
        sys::mount(Some(c"."), c"/", None, libc::MS_MOVE, None).at(Step::PivotRoot, rootfs)?;
        sys::chroot(c".").at(Step::PivotRoot, rootfs)?;
    }
    sys::chdir(c"/").at(Step::PivotRoot, rootfs)?;

    // Before /proc/sys becomes read-only below.
    for (path, value) in &plan.sysctls {
        sys::write_file(path, value.to_bytes()).at(Step::Sysctl, path)?;
    }

    for p in &plan.masked_paths {
        mask_path(p)?;
    }
    for p in &plan.readonly_paths {
        readonly_path(p)?;
    }
    if plan.readonly_root {
        let flags = sys::locked_mount_flags(c"/").step(Step::ReadonlyRootfs)?;
        sys::mount(
            None,
            c"/",
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
            None,
        )
        .step(Step::ReadonlyRootfs)?;
    }
    Ok(())
}

const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
const O_PATH: i32 = libc::O_PATH | libc::O_CLOEXEC;
const COPY_DIR: i32 = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

/// Opens (O_PATH) the parent directory of `p` beneath `root`, creating
/// missing directories; symlinks resolve as if `root` were `/`.
fn open_parent(root: RawFd, p: &PathInRoot) -> Result<RawFd, Errno> {
    let mut parent = sys::openat(root, c".", O_PATH, 0)?;
    for i in 0..p.names.len().saturating_sub(1) {
        let next = match sys::openat2(root, &p.prefixes[i], O_PATH, 0, RESOLVE) {
            Err(libc::ENOENT) => {
                match sys::mkdirat(parent, &p.names[i], 0o755) {
                    Ok(()) | Err(libc::EEXIST) => {}
                    Err(e) => {
                        sys::close(parent);
                        return Err(e);
                    }
                }
                sys::openat2(root, &p.prefixes[i], O_PATH, 0, RESOLVE)
            }
            other => other,
        };
        sys::close(parent);
        parent = next?;
    }
    Ok(parent)
}

/// Opens (O_PATH) `p` beneath `root`, creating it as a directory or an
/// empty file if it is missing.
fn open_in_root(root: RawFd, p: &PathInRoot, as_file: bool) -> Result<RawFd, Errno> {
    match sys::openat2(root, &p.rel, O_PATH, 0, RESOLVE) {
        Err(libc::ENOENT) => {}
        other => return other,
    }
    let Some(name) = p.names.last() else {
        return sys::openat(root, c".", O_PATH, 0);
    };
    let parent = open_parent(root, p)?;
    let created = if as_file {
        sys::openat(
            parent,
            name,
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        )
        .map(sys::close)
    } else {
        sys::mkdirat(parent, name, 0o755)
    };
    sys::close(parent);
    match created {
        Ok(()) | Err(libc::EEXIST) => {}
        Err(e) => return Err(e),
    }
    sys::openat2(root, &p.rel, O_PATH, 0, RESOLVE)
}

fn mount_one<'a>(root: RawFd, m: &'a MountOp) -> Result<(), Failure<'a>> {
    let detail = m.dest.display.as_c_str();
    let fd = open_in_root(root, &m.dest, m.dest_is_file).at(Step::ResolveMountpoint, detail)?;
    // The directory as the image has it, still readable through this
    // descriptor once the new mount covers it.
    let copy_from = if m.copy_up {
        sys::openat2(root, &m.dest.rel, COPY_DIR, 0, RESOLVE).ok()
    } else {
        None
    };
    let target = StackPath::proc_fd(fd);
    let mut res = sys::mount(
        m.source.as_deref(),
        target.as_cstr(),
        m.fstype.as_deref(),
        m.flags,
        m.data.as_deref(),
    );
    if res == Err(libc::EPERM) && m.sysfs_fallback {
        res = sys::mount(
            Some(c"/sys"),
            target.as_cstr(),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        );
    }
    sys::close(fd);
    if let Err(e) = res {
        if let Some(src) = copy_from {
            sys::close(src);
        }
        return Err((Step::Mount, e, detail.to_bytes()));
    }
    if let Some(src) = copy_from {
        let copied = sys::openat2(root, &m.dest.rel, COPY_DIR, 0, RESOLVE).and_then(|dst| {
            let r = copy_up::copy_tree(src, dst);
            sys::close(dst);
            r
        });
        sys::close(src);
        copied.at(Step::CopyUp, detail)?;
    }
    if let Some(inner) = &m.inner {
        let fd = open_in_root(root, &m.dest, false).at(Step::ResolveMountpoint, detail)?;
        let made = mount_inner(fd, inner);
        sys::close(fd);
        made?;
    }
    if m.remount_flags.is_none() && m.propagation.is_empty() {
        return Ok(());
    }
    // Reopen: the old descriptor points below the new mount.
    let fd = open_in_root(root, &m.dest, m.dest_is_file).at(Step::ResolveMountpoint, detail)?;
    let target = StackPath::proc_fd(fd);
    let result = (|| {
        if let Some(flags) = m.remount_flags {
            let locked = sys::locked_mount_flags(target.as_cstr()).at(Step::Remount, detail)?;
            let keep = locked & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
            sys::mount(None, target.as_cstr(), None, flags | keep, None)
                .at(Step::Remount, detail)?;
        }
        for &p in &m.propagation {
            sys::mount(None, target.as_cstr(), None, p, None).at(Step::MountPropagation, detail)?;
        }
        Ok(())
    })();
    sys::close(fd);
    result
}

/// Binds and links `inner` inside the new mount at `dir`, then sets its
/// attributes on the whole tree.
fn mount_inner<'a>(dir: RawFd, inner: &'a InnerMounts) -> Result<(), Failure<'a>> {
    for (name, source) in &inner.binds {
        match sys::mkdirat(dir, name, 0o755) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err((Step::Mount, e, name.to_bytes())),
        }
        let fd = sys::openat(dir, name, O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY, 0)
            .at(Step::Mount, name)?;
        let target = StackPath::proc_fd(fd);
        let bound = sys::mount(Some(source), target.as_cstr(), None, libc::MS_BIND, None);
        sys::close(fd);
        bound.at(Step::Mount, source)?;
    }
    for (name, target) in &inner.links {
        match sys::symlinkat(target, dir, name) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err((Step::CreateSymlink, e, name.to_bytes())),
        }
    }
    sys::mount_setattr_recursive(dir, inner.attr_set).step(Step::Remount)
}

fn create_device<'a>(root: RawFd, d: &'a super::plan::DeviceOp) -> Result<(), Failure<'a>> {
    let detail = d.path.display.as_c_str();
    let parent = open_parent(root, &d.path).at(Step::CreateDevice, detail)?;
    let name = &d.path.names[d.path.names.len() - 1];
    let res = match sys::mknodat(parent, name, d.mode, d.dev) {
        Ok(()) => sys::fchownat(parent, name, d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW),
        Err(libc::EEXIST) => Ok(()),
        // No mknod in a user namespace: bind mount the host's node.
        Err(libc::EPERM) => {
            sys::close(parent);
            let fd = open_in_root(root, &d.path, true).at(Step::CreateDevice, detail)?;
            let target = StackPath::proc_fd(fd);
            let r = sys::mount(
                Some(&d.host_path),
                target.as_cstr(),
                None,
                libc::MS_BIND,
                None,
            );
            sys::close(fd);
            return r.at(Step::CreateDevice, detail);
        }
        Err(e) => Err(e),
    };
    sys::close(parent);
    res.at(Step::CreateDevice, detail)
}

fn mask_path(p: &CStr) -> Result<(), Failure<'_>> {
    let res = match sys::file_type(p) {
        Err(libc::ENOENT) => return Ok(()),
        Err(e) => Err(e),
        Ok(libc::S_IFDIR) => sys::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), libc::MS_RDONLY, None),
        Ok(_) => sys::mount(Some(c"/dev/null"), p, None, libc::MS_BIND, None),
    };
    res.at(Step::MaskPath, p)
}

fn readonly_path(p: &CStr) -> Result<(), Failure<'_>> {
    match sys::mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
        Err(libc::ENOENT) => return Ok(()),
        r => r.at(Step::ReadonlyPath, p)?,
    }
    let locked = sys::locked_mount_flags(p).at(Step::ReadonlyPath, p)?;
    let keep: c_ulong = locked & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    sys::mount(
        None,
        p,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep,
        None,
    )
    .at(Step::ReadonlyPath, p)
}

fn setup_terminal(plan: &ChildPlan) -> Result<(), Failure<'_>> {
    let Some(socket) = plan.console_socket else {
        return Err((Step::Terminal, libc::EINVAL, b"no console socket"));
    };
    let ptmx = c"/dev/pts/ptmx";
    let master = sys::openat(
        libc::AT_FDCWD,
        ptmx,
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        0,
    )
    .at(Step::Terminal, ptmx)?;
    let unlock: libc::c_int = 0;
    sys::ioctl(
        master,
        libc::TIOCSPTLCK,
        &unlock as *const libc::c_int as c_ulong,
    )
    .at(Step::Terminal, ptmx)?;
    if let Some((rows, cols)) = plan.console_size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        sys::ioctl(
            master,
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize as c_ulong,
        )
        .at(Step::Terminal, ptmx)?;
    }
    let peer = sys::ioctl(
        master,
        libc::TIOCGPTPEER,
        (libc::O_RDWR | libc::O_NOCTTY) as c_ulong,
    )
    .at(Step::Terminal, ptmx)?;
    sys::send_fd(socket, master, ptmx.to_bytes()).at(Step::Terminal, c"console socket")?;
    sys::close(master);
    sys::close(socket);
    for fd in 0..3 {
        sys::dup3(peer, fd, 0).step(Step::Terminal)?;
    }
    sys::close(peer);
    sys::ioctl(0, libc::TIOCSCTTY, 0).step(Step::Terminal)?;
    Ok(())
}

fn load_seccomp(plan: &ChildPlan) -> Result<(), Failure<'_>> {
    match &plan.seccomp {
        Some(p) => p.load().step(Step::Seccomp),
        None => Ok(()),
    }
}

fn set_user_and_caps(plan: &ChildPlan) -> Result<(), Failure<'_>> {
    if let Some(caps) = &plan.caps {
        for cap in 0..=plan.last_cap {
            if caps.bounding & (1 << cap) == 0 {
                sys::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0).step(Step::Capabilities)?;
            }
        }
        // Keep the permitted set across the switch to a non-root uid.
        sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0).step(Step::Capabilities)?;
    }
    if !plan.new_user_ns || !plan.groups.is_empty() {
        match sys::setgroups(&plan.groups) {
            // A user ns with setgroups denied: nothing to set.
            Err(libc::EPERM) if plan.new_user_ns => {}
            r => r.step(Step::Setgroups)?,
        }
    }
    sys::setresgid(plan.gid).step(Step::Setgid)?;
    sys::setresuid(plan.uid).step(Step::Setuid)?;
    if let Some(caps) = &plan.caps {
        sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0).step(Step::Capabilities)?;
        sys::capset(&caps.sets).step(Step::Capabilities)?;
        // The kernel only allows ambient caps that are also permitted and
        // inheritable; runc skips the others (with a warning), so do we.
        let ambient = caps.ambient & caps.sets.permitted & caps.sets.inheritable;
        for cap in 0..=plan.last_cap {
            if ambient & (1 << cap) != 0 {
                sys::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as c_ulong,
                    cap as c_ulong,
                )
                .step(Step::Capabilities)?;
            }
        }
    }
    Ok(())
}

fn find_executable(plan: &ChildPlan) -> Result<&CStr, Failure<'_>> {
    let mut denied = false;
    for c in &plan.exe_candidates {
        match sys::file_type(c) {
            Ok(libc::S_IFREG) => match sys::faccessat(c, libc::X_OK) {
                Ok(()) => return Ok(c),
                Err(_) => denied = true,
            },
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        return Err((Step::Exec, libc::EACCES, plan.argv0.to_bytes()));
    }
    Err((Step::FindExecutable, libc::ENOENT, plan.argv0.to_bytes()))
}
