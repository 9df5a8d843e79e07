//! Creating and writing many small files, the bulk of applying a layer:
//! 5000 files of 0-16 KiB (8 KiB on average) in one fresh directory,
//!
//! - `syscalls`: `openat` + `write` + `close` per file (rustix), as the
//!   applier does;
//! - `io_uring`: the same three operations per file, linked, into io_uring
//!   direct descriptors (so the write and the close need no fd from user
//!   space), 256 files (768 SQEs) per `io_uring_enter`.
//!
//! Both on tmpfs (`/dev/shm`) and on the disk's filesystem (the temp dir,
//! `$TMPDIR` or `/tmp`). Creating and removing the directory is outside the
//! timing; nothing is fsynced (the applier syncs once per image).

use std::ffi::CString;
use std::hint::black_box;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use io_uring::{IoUring, opcode, squeue, types};
use rustix::fs::{Mode, OFlags};

const FILES: usize = 5000;
const MAX_SIZE: usize = 16 << 10;
/// Files per submission; their three SQEs each must fit the ring.
const BATCH: usize = 256;
const RING_ENTRIES: u32 = 1024;

fn create_flags() -> OFlags {
    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC
}

struct Files {
    names: Vec<CString>,
    sizes: Vec<usize>,
    data: Vec<u8>,
}

impl Files {
    fn new() -> Self {
        Self {
            names: (0..FILES)
                .map(|i| CString::new(format!("file-{i:05}")).unwrap())
                .collect(),
            // Spread evenly over 0..=16 KiB, in no particular order.
            sizes: (0..FILES).map(|i| (i * 7919) % (MAX_SIZE + 1)).collect(),
            data: (0..MAX_SIZE).map(|i| ((i * 31) >> 3) as u8).collect(),
        }
    }
}

fn open_dir(path: &Path) -> OwnedFd {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn with_syscalls(dir: &OwnedFd, files: &Files) {
    for (name, &size) in files.names.iter().zip(&files.sizes) {
        let fd =
            rustix::fs::openat(dir, name.as_c_str(), create_flags(), Mode::from(0o644)).unwrap();
        let mut buf = &files.data[..size];
        while !buf.is_empty() {
            let n = rustix::io::write(&fd, buf).unwrap();
            buf = &buf[n..];
        }
    }
}

fn with_io_uring(ring: &mut IoUring, dir: &OwnedFd, files: &Files) {
    // O_CLOEXEC means nothing for a direct descriptor and the kernel
    // refuses it (EINVAL).
    let flags = (create_flags() - OFlags::CLOEXEC).bits() as i32;
    for start in (0..FILES).step_by(BATCH) {
        let end = (start + BATCH).min(FILES);
        {
            let mut sq = ring.submission();
            for (slot, i) in (start..end).enumerate() {
                let slot = slot as u32;
                let dest = types::DestinationSlot::try_from_slot_target(slot).unwrap();
                let open = opcode::OpenAt::new(
                    types::Fd(dir.as_fd().as_raw_fd()),
                    files.names[i].as_ptr(),
                )
                .flags(flags)
                .mode(0o644)
                .file_index(Some(dest))
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(i as u64 * 3);
                let write = opcode::Write::new(
                    types::Fixed(slot),
                    files.data.as_ptr(),
                    files.sizes[i] as u32,
                )
                .offset(0)
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(i as u64 * 3 + 1);
                let close = opcode::Close::new(types::Fixed(slot))
                    .build()
                    .user_data(i as u64 * 3 + 2);
                // SAFETY: the path and the data buffer are borrowed from
                // `files`, which outlives this call, and the call does not
                // return before every entry of the batch has completed
                // (submit_and_wait below, then all completions reaped).
                unsafe {
                    sq.push_multiple(&[open, write, close])
                        .expect("ring is full")
                };
            }
        }
        let submitted = (end - start) * 3;
        ring.submit_and_wait(submitted).unwrap();
        let mut completed = 0;
        while completed < submitted {
            for cqe in ring.completion() {
                let i = (cqe.user_data() / 3) as usize;
                let expected = match cqe.user_data() % 3 {
                    1 => files.sizes[i] as i32,
                    _ => 0,
                };
                assert_eq!(
                    cqe.result(),
                    expected,
                    "op {} of file {i}",
                    cqe.user_data() % 3
                );
                completed += 1;
            }
            if completed < submitted {
                ring.submit_and_wait(submitted - completed).unwrap();
            }
        }
    }
}

fn bench_in(c: &mut Criterion, label: &str, base: &Path) {
    let files = Files::new();
    let mut ring = IoUring::new(RING_ENTRIES).unwrap();
    ring.submitter()
        .register_files_sparse(BATCH as u32)
        .unwrap();
    let fresh = || tempfile::tempdir_in(base).unwrap();

    let mut group = c.benchmark_group(format!("uring_files/{label}"));
    group.throughput(Throughput::Elements(FILES as u64));
    group.sample_size(20);
    group.bench_function("syscalls", |b| {
        b.iter_batched(
            fresh,
            |dir| {
                with_syscalls(&open_dir(dir.path()), black_box(&files));
                dir // removed outside the timing
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("io_uring", |b| {
        b.iter_batched(
            fresh,
            |dir| {
                with_io_uring(&mut ring, &open_dir(dir.path()), black_box(&files));
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    // Both ways made the same files.
    let (a, b) = (fresh(), fresh());
    with_syscalls(&open_dir(a.path()), &files);
    with_io_uring(&mut ring, &open_dir(b.path()), &files);
    for (name, &size) in files.names.iter().zip(&files.sizes) {
        let name = name.to_str().unwrap();
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            files.data[..size]
        );
        assert_eq!(
            std::fs::read(b.path().join(name)).unwrap(),
            files.data[..size]
        );
    }
}

fn uring_files(c: &mut Criterion) {
    bench_in(c, "tmpfs", Path::new("/dev/shm"));
    bench_in(c, "disk", &std::env::temp_dir());
}

criterion_group!(benches, uring_files);
criterion_main!(benches);
