//! Formatting without allocation, for the container's init.

use std::ffi::CStr;

/// A NUL-terminated path built on the stack, e.g. `/proc/self/fd/7`.
pub(crate) struct StackPath {
    buf: [u8; 64],
}

impl StackPath {
    /// `prefix` followed by the decimal `n`; `prefix` must be short.
    pub(crate) fn with_number(prefix: &[u8], n: u64) -> Self {
        let mut buf = [0u8; 64];
        let len = prefix.len().min(40);
        buf[..len].copy_from_slice(&prefix[..len]);
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let d = &digits[i..];
        buf[len..len + d.len()].copy_from_slice(d);
        Self { buf }
    }

    /// The path of an open descriptor through this process's procfs.
    pub(crate) fn proc_fd(fd: i32) -> Self {
        Self::with_number(b"/proc/self/fd/", fd as u64)
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        // The buffer always ends in NUL: at most 40 + 20 bytes are written.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fd_paths() {
        assert_eq!(StackPath::proc_fd(7).as_cstr(), c"/proc/self/fd/7");
        assert_eq!(StackPath::proc_fd(0).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(
            StackPath::with_number(b"x", u64::MAX).as_cstr().to_bytes(),
            b"x18446744073709551615"
        );
    }
}
