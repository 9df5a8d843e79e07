//! Creating the container's init: the plan made before `clone3`
//! ([`plan`]), the code the child runs until `execve` ([`child`]) and the
//! parent's side of the handshake ([`spawn`]).
//!
//! Parent and child talk over a `SOCK_SEQPACKET` socketpair with
//! fixed-size [`Message`]s, so the child never allocates to report.

use std::fmt;

pub mod child;
mod copy_up;
mod kernel_names;
pub mod plan;
pub mod spawn;

pub use kernel_names::capability_names;
pub use plan::ChildPlan;
pub use spawn::{Spawned, spawn};

/// The steps of the child's setup, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    WaitParent = 1,
    JoinCgroup,
    JoinNamespace,
    Unshare,
    TimeNamespace,
    Hostname,
    Domainname,
    Loopback,
    RootPropagation,
    BindRootfs,
    OpenRootfs,
    ResolveMountpoint,
    Mount,
    CopyUp,
    Remount,
    MountPropagation,
    CreateDevice,
    CreateSymlink,
    Hooks,
    PivotRoot,
    MaskPath,
    ReadonlyPath,
    ReadonlyRootfs,
    Sysctl,
    OomScoreAdj,
    Rlimit,
    Setsid,
    Terminal,
    Setgroups,
    Setgid,
    Setuid,
    Capabilities,
    NoNewPrivileges,
    Chdir,
    FindExecutable,
    Seccomp,
    WaitStart,
    Exec,
    Unknown,
}

impl Step {
    const ALL: [Step; 39] = [
        Step::WaitParent,
        Step::JoinCgroup,
        Step::JoinNamespace,
        Step::Unshare,
        Step::TimeNamespace,
        Step::Hostname,
        Step::Domainname,
        Step::Loopback,
        Step::RootPropagation,
        Step::BindRootfs,
        Step::OpenRootfs,
        Step::ResolveMountpoint,
        Step::Mount,
        Step::CopyUp,
        Step::Remount,
        Step::MountPropagation,
        Step::CreateDevice,
        Step::CreateSymlink,
        Step::Hooks,
        Step::PivotRoot,
        Step::MaskPath,
        Step::ReadonlyPath,
        Step::ReadonlyRootfs,
        Step::Sysctl,
        Step::OomScoreAdj,
        Step::Rlimit,
        Step::Setsid,
        Step::Terminal,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::Capabilities,
        Step::NoNewPrivileges,
        Step::Chdir,
        Step::FindExecutable,
        Step::Seccomp,
        Step::WaitStart,
        Step::Exec,
        Step::Unknown,
    ];

    fn from_u32(v: u32) -> Step {
        Self::ALL
            .into_iter()
            .find(|s| *s as u32 == v)
            .unwrap_or(Step::Unknown)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Step::WaitParent => "waiting for the runtime",
            Step::JoinCgroup => "joining cgroup",
            Step::JoinNamespace => "joining namespace",
            Step::Unshare => "unsharing namespaces",
            Step::TimeNamespace => "setting time namespace offsets",
            Step::Hostname => "setting hostname",
            Step::Domainname => "setting domainname",
            Step::Loopback => "bringing up the loopback interface",
            Step::RootPropagation => "setting rootfs propagation",
            Step::BindRootfs => "bind mounting rootfs",
            Step::OpenRootfs => "opening rootfs",
            Step::ResolveMountpoint => "resolving mountpoint",
            Step::Mount => "mounting",
            Step::CopyUp => "copying the image's files into",
            Step::Remount => "remounting",
            Step::MountPropagation => "setting mount propagation of",
            Step::CreateDevice => "creating device",
            Step::CreateSymlink => "creating symlink",
            Step::Hooks => "running hooks",
            Step::PivotRoot => "pivot_root to",
            Step::MaskPath => "masking",
            Step::ReadonlyPath => "making read-only",
            Step::ReadonlyRootfs => "making rootfs read-only",
            Step::Sysctl => "writing sysctl",
            Step::OomScoreAdj => "setting oom_score_adj",
            Step::Rlimit => "setting rlimit",
            Step::Setsid => "setsid",
            Step::Terminal => "setting up terminal",
            Step::Setgroups => "setting additional groups",
            Step::Setgid => "setting gid",
            Step::Setuid => "setting uid",
            Step::Capabilities => "setting capabilities",
            Step::NoNewPrivileges => "setting no_new_privs",
            Step::Chdir => "changing to working directory",
            Step::FindExecutable => "finding executable",
            Step::Seccomp => "loading seccomp filter",
            Step::WaitStart => "waiting for start",
            Step::Exec => "exec",
            Step::Unknown => "unknown step",
        };
        f.write_str(s)
    }
}

/// What a [`Message`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum MessageKind {
    /// Parent to child: carry on.
    Go = 1,
    /// Child to parent: the environment is set up, run the runtime hooks.
    RunHooks,
    /// Child to parent: set up, waiting for start.
    Ready,
    /// Child to parent: a step failed.
    Error,
}

const DETAIL_LEN: usize = 512;
pub(crate) const MESSAGE_LEN: usize = 16 + DETAIL_LEN;

/// The fixed-size record exchanged over the sync socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    pub(crate) kind: u32,
    pub(crate) step: u32,
    pub(crate) errno: i32,
    detail_len: u32,
    detail: [u8; DETAIL_LEN],
}

impl Message {
    pub(crate) fn new(kind: MessageKind) -> Self {
        Self {
            kind: kind as u32,
            step: 0,
            errno: 0,
            detail_len: 0,
            detail: [0; DETAIL_LEN],
        }
    }

    pub(crate) fn error(step: Step, errno: i32, detail: &[u8]) -> Self {
        let mut m = Self::new(MessageKind::Error);
        m.step = step as u32;
        m.errno = errno;
        let n = detail.len().min(DETAIL_LEN);
        m.detail[..n].copy_from_slice(&detail[..n]);
        m.detail_len = n as u32;
        m
    }

    pub(crate) fn encode(&self) -> [u8; MESSAGE_LEN] {
        let mut b = [0u8; MESSAGE_LEN];
        b[0..4].copy_from_slice(&self.kind.to_ne_bytes());
        b[4..8].copy_from_slice(&self.step.to_ne_bytes());
        b[8..12].copy_from_slice(&self.errno.to_ne_bytes());
        b[12..16].copy_from_slice(&self.detail_len.to_ne_bytes());
        b[16..].copy_from_slice(&self.detail);
        b
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < 16 {
            return None;
        }
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut m = Self::new(MessageKind::Go);
        m.kind = word(0);
        m.step = word(4);
        m.errno = word(8) as i32;
        m.detail_len = word(12).min(DETAIL_LEN as u32);
        let n = (b.len() - 16).min(DETAIL_LEN);
        m.detail[..n].copy_from_slice(&b[16..16 + n]);
        Some(m)
    }

    pub(crate) fn is(&self, kind: MessageKind) -> bool {
        self.kind == kind as u32
    }

    pub(crate) fn to_child_error(self) -> crate::ChildError {
        crate::ChildError {
            step: Step::from_u32(self.step),
            errno: self.errno,
            detail: String::from_utf8_lossy(&self.detail[..self.detail_len as usize]).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips() {
        let m = Message::error(Step::Mount, libc::EPERM, b"/rootfs/proc");
        let back = Message::from_bytes(&m.encode()).unwrap();
        let err = back.to_child_error();
        assert_eq!(err.step, Step::Mount);
        assert_eq!(err.errno, libc::EPERM);
        assert_eq!(err.detail, "/rootfs/proc");
        assert!(
            err.to_string().starts_with("mounting /rootfs/proc: "),
            "{err}"
        );
    }

    #[test]
    fn every_step_decodes() {
        for s in Step::ALL {
            assert_eq!(Step::from_u32(s as u32), s);
        }
        assert_eq!(Step::from_u32(9999), Step::Unknown);
    }
}
