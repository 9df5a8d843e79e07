//! The container's init from `clone3` to `execve`: berth-runtime's
//! `process::spawn` of a busybox `/bin/true` bundle in new pid, mount,
//! ipc, uts and network namespaces with the default spec's mounts, masked
//! and read-only paths, then `start` and reap. Beside it, the floor: a
//! plain fork and exec of the same binary with no container around it.
//! Needs root (skipped otherwise); no cgroup (that is `runtime-start` in
//! perf/).

use std::os::unix::fs::symlink;
use std::process::Command;

use berth_runtime::process::plan::PlanOptions;
use berth_runtime::process::{ChildPlan, spawn};
use criterion::{Criterion, criterion_group, criterion_main};
use oci_spec::runtime::Spec;

const BUSYBOX: &str = "/bin/busybox";

fn spawn_bench(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("spawn: needs root for namespaces and mounts; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    symlink("busybox", rootfs.join("bin/true")).unwrap();
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(vec!["/bin/true".into()]));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let plan = ChildPlan::new(&spec, dir.path(), &PlanOptions::default()).unwrap();

    let mut group = c.benchmark_group("spawn");
    group.bench_function("berth_runtime_container_true", |b| {
        b.iter(|| {
            let child = spawn(&plan, None, None, &mut |_, _| Ok(())).unwrap();
            child.start_and_confirm().unwrap();
            let mut status = 0;
            // SAFETY: the pid is our child; status is a valid out pointer.
            let reaped = unsafe { libc::waitpid(child.pid, &mut status, 0) };
            assert_eq!(reaped, child.pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        })
    });
    group.bench_function("fork_exec_true", |b| {
        b.iter(|| {
            let status = Command::new(rootfs.join("bin/true")).status().unwrap();
            assert!(status.success());
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_bench);
criterion_main!(benches);
