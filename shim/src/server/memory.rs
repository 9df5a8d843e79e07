//! Keeping an idle shim small.

use std::fs;
use std::sync::OnceLock;

/// Gives back memory that creating a process used and the idle loop will
/// not: free heap at the top (`malloc_trim`) and the stack pages below the
/// loop's frame. Called from the loop itself, never from deep inside.
#[inline(never)]
pub(super) fn release_memory() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    // The mapping's low end, read once (each read of /proc/self/maps
    // costs tens of µs): the first call follows the create, the deepest
    // the shim's stack goes; a deeper request later would only leave its
    // extra pages resident.
    static STACK_LOW: OnceLock<Option<usize>> = OnceLock::new();
    let Some(low) = *STACK_LOW.get_or_init(stack_low) else {
        return;
    };
    let marker = 0u8;
    let sp = std::hint::black_box(&marker) as *const u8 as usize;
    // A margin below this frame for the calls the loop makes.
    let high = (sp - 16 * 1024) & !4095;
    if high > low {
        // SAFETY: the range lies below the live part of this thread's
        // stack: nothing points into it, and the kernel hands the pages
        // back zeroed if the stack grows into them again.
        unsafe { libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED) };
    }
}

/// The lowest address of the main thread's stack mapping.
fn stack_low() -> Option<usize> {
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').next())
        .and_then(|a| usize::from_str_radix(a, 16).ok())
}
