//! Keeping an idle shim small.

use std::fs;

/// Gives back memory that creating a process used and the idle loop will
/// not: free heap at the top (`malloc_trim`) and the stack pages below the
/// loop's frame. Called from the loop itself, never from deep inside.
#[inline(never)]
pub(super) fn release_memory() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Some(low) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').next())
        .and_then(|a| usize::from_str_radix(a, 16).ok())
    else {
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
