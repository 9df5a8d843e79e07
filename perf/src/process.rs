//! Runs one command and measures it: wall time from spawn to exit, exit
//! status, peak RSS (`ru_maxrss` from `wait4`), with a watchdog that kills
//! the command after a timeout so a hung runtime cannot hang the harness.

use std::fs::File;
use std::io::{self, Read as _, Seek as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;

/// The measurement of one command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// From just before `spawn` to the moment the exit was observed.
    pub(crate) wall: Duration,
    pub(crate) status: ExitStatus,
    pub(crate) maxrss_kib: u64,
    /// The watchdog killed the command.
    pub(crate) timed_out: bool,
}

impl Measured {
    pub(crate) fn ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1e3
    }

    pub(crate) fn ok(&self) -> bool {
        self.status.success() && !self.timed_out
    }
}

/// Spawns `cmd` in a process group of its own, waits for it with `wait4`
/// and measures it; on timeout the whole group is killed. The command's
/// stdio must not be piped to us (pipes could be held open by a container).
pub(crate) fn run_measured(cmd: &mut Command, timeout: Duration) -> io::Result<Measured> {
    cmd.process_group(0);
    // The watchdog thread is started before the clock, so its cost is not
    // measured. It gets the pid, then waits for "done" or the timeout.
    let (tx, rx) = mpsc::channel::<u32>();
    let watchdog = thread::spawn(move || {
        let Ok(pid) = rx.recv() else { return false };
        match rx.recv_timeout(timeout) {
            Err(mpsc::RecvTimeoutError::Timeout) => sys::kill_group(pid).is_ok(),
            _ => false,
        }
    });
    let start = Instant::now();
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            drop(tx);
            let _ = watchdog.join();
            return Err(e);
        }
    };
    let pid = child.id();
    let _ = tx.send(pid);
    // Wait without reaping: the pid stays ours, so the watchdog can never
    // kill a recycled pid.
    let waited = sys::wait_exited_nowait(pid);
    let wall = start.elapsed();
    let _ = tx.send(0);
    let timed_out = watchdog.join().unwrap_or(false);
    waited?;
    let reaped = sys::wait4(pid)?;
    Ok(Measured {
        wall,
        status: reaped.status,
        maxrss_kib: reaped.maxrss_kib,
        timed_out,
    })
}

/// Runs `cmd` unmeasured, with the same timeout, and returns it with its
/// stdout and stderr. Output goes through anonymous temp files, not pipes,
/// so a leftover grandchild holding them cannot block us.
pub(crate) fn output(
    cmd: &mut Command,
    timeout: Duration,
) -> io::Result<(Measured, String, String)> {
    let mut out = tempfile::tempfile()?;
    let mut err = tempfile::tempfile()?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let m = run_measured(cmd, timeout)?;
    Ok((m, read_all(&mut out)?, read_all(&mut err)?))
}

fn read_all(f: &mut File) -> io::Result<String> {
    f.rewind()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// What [`run_together`] observed.
#[derive(Debug)]
pub(crate) struct Together {
    /// From just before the first `spawn` to the moment the last exit was
    /// observed.
    pub(crate) wall: Duration,
    /// Each command's exit, in the order given. Their `wall` is when their
    /// exit was observed: exits are collected in order, so it is only an
    /// upper bound for all but the slowest.
    pub(crate) each: Vec<Measured>,
}

/// Spawns every command back to back (each in a process group of its own),
/// then waits for all of them; on timeout every group still running is
/// killed. The clock runs from the first spawn to the last exit. Like
/// [`run_measured`], the commands' stdio must not be piped to us. If a spawn
/// fails, the commands already started are killed and reaped and the error
/// is returned.
pub(crate) fn run_together(cmds: &mut [Command], timeout: Duration) -> io::Result<Together> {
    let (tx, rx) = mpsc::channel::<Vec<u32>>();
    let watchdog = thread::spawn(move || {
        let Ok(pids) = rx.recv() else { return false };
        match rx.recv_timeout(timeout) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for &pid in &pids {
                    let _ = sys::kill_group(pid);
                }
                true
            }
            _ => false,
        }
    });
    let start = Instant::now();
    let mut pids = Vec::with_capacity(cmds.len());
    for cmd in cmds.iter_mut() {
        match cmd.process_group(0).spawn() {
            Ok(child) => pids.push(child.id()),
            Err(e) => {
                drop(tx);
                let _ = watchdog.join();
                for &pid in &pids {
                    let _ = sys::kill_group(pid);
                    let _ = sys::wait4(pid);
                }
                return Err(e);
            }
        }
    }
    let _ = tx.send(pids.clone());
    // As in run_measured: see every exit without reaping, so the watchdog
    // never signals a recycled pid; reap once it is done.
    let mut observed = Vec::with_capacity(pids.len());
    let mut waited = Ok(());
    for &pid in &pids {
        if let Err(e) = sys::wait_exited_nowait(pid) {
            waited = Err(e);
        }
        observed.push(start.elapsed());
    }
    let wall = start.elapsed();
    let _ = tx.send(Vec::new());
    let timed_out = watchdog.join().unwrap_or(false);
    let mut each = Vec::with_capacity(pids.len());
    // Reap every child even if one wait fails, so none is left a zombie.
    for (&pid, wall) in pids.iter().zip(observed) {
        match sys::wait4(pid) {
            Ok(reaped) => each.push(Measured {
                wall,
                status: reaped.status,
                maxrss_kib: reaped.maxrss_kib,
                timed_out,
            }),
            Err(e) => waited = waited.and(Err(e)),
        }
    }
    waited?;
    Ok(Together { wall, each })
}
