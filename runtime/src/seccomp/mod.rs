//! Compiles the OCI `linux.seccomp` section to a classic BPF program, and
//! loads it.
//!
//! Our own compiler rather than the `seccompiler` crate: seccompiler gives a
//! whole filter a single match action, while OCI gives every syscall rule its
//! own action and `errnoRet` (Docker's default profile mixes `ALLOW` with
//! `ERRNO(ENOSYS)` for `clone3` and `ERRNO(EPERM)` by default).
//!
//! Semantics follow libseccomp as runc drives it:
//!
//! - Names resolve per ABI through the `syscalls` crate; a name an ABI does
//!   not have is skipped, not an error (profiles list names of every arch).
//! - x86_64 is always covered; `SCMP_ARCH_X86` and `SCMP_ARCH_X32` add the
//!   32-bit and x32 ABIs. A call from an ABI that is not covered (including
//!   an x32 call, a number with bit 30 set, when x32 is not listed) kills
//!   the process, like libseccomp's bad-arch action.
//! - A rule's `args` all must hold (AND); a rule that compares the same
//!   argument twice becomes one rule per comparison (OR), as in runc.
//!   Comparisons are unsigned 64-bit on x86_64 and on the low 32 bits on the
//!   32-bit ABIs. `MASKED_EQ` is `(arg & value) == valueTwo`.
//! - For one syscall, the rules with `args` are tried in spec order and the
//!   first that matches decides; then the first rule without `args`; then
//!   `defaultAction`.
//! - `errnoRet` defaults to `EPERM` for `ERRNO` and `TRACE`.
//! - `SECCOMP_FILTER_FLAG_LOG` and `SPEC_ALLOW` are passed to `seccomp(2)`;
//!   `TSYNC` is dropped (the container init is single-threaded).
//!   `SCMP_ACT_NOTIFY` and `listenerPath` are not supported.
//!
//! The generated program is a binary search on the syscall number, see
//! [`compile`](self::compile()) and the `compile` submodule.
//!
//! `tests/fixtures/docker-default-seccomp.json` is moby's
//! `profiles/seccomp/default.json` as dockerd hands it to the runtime for an
//! amd64 container with the default capabilities.

use std::fmt;
use std::path::PathBuf;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};

mod compile;
mod syscalls;
#[cfg(test)]
mod tests;

/// Why a `linux.seccomp` section cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// An action this runtime cannot carry out.
    #[error("unsupported seccomp action {action}")]
    UnsupportedAction { action: LinuxSeccompAction },
    /// A seccomp agent socket (for `SCMP_ACT_NOTIFY`).
    #[error("seccomp notify listener {path:?} is not supported")]
    ListenerUnsupported { path: PathBuf },
    /// An architecture other than x86_64, x86 and x32.
    #[error("unsupported seccomp architecture {arch}")]
    UnsupportedArchitecture { arch: Arch },
    /// A filter flag this runtime cannot honour.
    #[error("unsupported seccomp filter flag {flag}")]
    UnsupportedFlag { flag: LinuxSeccompFilterFlag },
    /// An argument index past the six syscall arguments.
    #[error("seccomp rule {rule}: argument index {index} is out of range 0-5")]
    ArgIndexOutOfRange { rule: usize, index: usize },
    /// An `errnoRet` the kernel cannot return.
    #[error("seccomp errno {errno} is out of range 0-4095")]
    ErrnoOutOfRange { errno: u32 },
    /// A program longer than the kernel accepts.
    #[error("seccomp program has {count} instructions, more than the limit of 4096")]
    TooManyInstructions { count: usize },
    /// A host whose syscall tables this compiler does not have.
    #[error("seccomp filters are only supported on x86_64 hosts")]
    UnsupportedHost,
}

/// A compiled filter, ready to load.
#[derive(Clone)]
pub struct SeccompProgram {
    instructions: Vec<libc::sock_filter>,
    flags: u32,
}

impl fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompProgram")
            .field("instructions", &self.instructions.len())
            .field("flags", &self.flags)
            .finish()
    }
}

impl SeccompProgram {
    /// The BPF instructions, in order.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.instructions
    }

    /// The `seccomp(2)` flags the program is loaded with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: installs the filter
    /// on the calling thread. Needs `no_new_privs` or `CAP_SYS_ADMIN`.
    ///
    /// Async-signal-safe (no allocation, no locks): the container init calls
    /// it between `clone3` and `execve`. Returns the errno on failure.
    pub fn load(&self) -> Result<(), i32> {
        let prog = libc::sock_fprog {
            // `compile` caps the length at 4096.
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `len` valid instructions that outlive the
        // call; the kernel copies the program and does not write through the
        // pointer.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if ret < 0 {
            // SAFETY: __errno_location returns a valid pointer to this
            // thread's errno.
            Err(unsafe { *libc::__errno_location() })
        } else {
            Ok(())
        }
    }
}

/// Compiles `spec` to a BPF program (see the module docs for the semantics).
pub fn compile(spec: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let (instructions, flags) = compile::compile(spec)?;
    Ok(SeccompProgram {
        instructions,
        flags,
    })
}
