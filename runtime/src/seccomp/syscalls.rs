//! The x86 family of syscall ABIs a filter can cover, and their name tables.
//!
//! Names resolve through the `syscalls` crate's generated tables (the
//! kernel's `syscall_64.tbl` / `syscall_32.tbl`). x32 has no table of its
//! own there: it shares x86_64's numbers, with the `__X32_SYSCALL_BIT` set,
//! except for the calls whose structures differ in size between the ABIs;
//! those have x32-only entries from 512 up (`X32_ONLY` below), as in
//! libseccomp's x32 table.

use std::str::FromStr;

use syscalls::{x86, x86_64};

/// `AUDIT_ARCH_X86_64` from `<linux/audit.h>` (also used by x32 tasks).
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386` from `<linux/audit.h>`.
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `__X32_SYSCALL_BIT`: set in the syscall number of every x32 call.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI of an x86_64 kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Abi {
    /// Native 64-bit.
    X86_64,
    /// 64-bit registers, 32-bit pointers: `AUDIT_ARCH_X86_64` with the x32 bit.
    X32,
    /// 32-bit compat (`int 0x80`, `AUDIT_ARCH_I386`).
    X86,
}

impl Abi {
    /// The syscall number of `name` in this ABI, or `None` if this ABI has
    /// no such call (not an error: libseccomp and runc skip such names).
    pub(crate) fn resolve(self, name: &str) -> Option<u32> {
        match self {
            Abi::X86_64 => x86_64::Sysno::from_str(name).ok().map(|s| s.id() as u32),
            Abi::X86 => x86::Sysno::from_str(name).ok().map(|s| s.id() as u32),
            Abi::X32 => {
                let nr = X32_ONLY
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, nr)| *nr)
                    .or_else(|| x86_64::Sysno::from_str(name).ok().map(|s| s.id() as u32))?;
                Some(nr | X32_SYSCALL_BIT)
            }
        }
    }

    /// Whether argument comparisons look at all 64 bits. For the 32-bit
    /// ABIs only the low word is compared, as libseccomp does.
    pub(crate) fn wide_args(self) -> bool {
        self == Abi::X86_64
    }
}

/// x32's own entries (`x32` lines 512..=547 of the kernel's
/// `arch/x86/entry/syscalls/syscall_64.tbl`); the x86_64 numbers of these
/// calls are not valid x32 calls.
const X32_ONLY: &[(&str, u32)] = &[
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_per_abi() {
        assert_eq!(Abi::X86_64.resolve("getppid"), Some(110));
        assert_eq!(Abi::X86.resolve("getppid"), Some(64));
        assert_eq!(Abi::X32.resolve("getppid"), Some(110 | X32_SYSCALL_BIT));
        assert_eq!(Abi::X32.resolve("ioctl"), Some(514 | X32_SYSCALL_BIT));
        assert_eq!(Abi::X86_64.resolve("clone3"), Some(435));
        // Names that only exist on some ABIs are simply absent elsewhere.
        assert_eq!(Abi::X86_64.resolve("socketcall"), None);
        assert_eq!(Abi::X86.resolve("socketcall"), Some(102));
        assert_eq!(Abi::X86_64.resolve("no_such_syscall"), None);
    }
}
