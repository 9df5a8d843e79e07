//! Applying an image layer: a generated uncompressed tar of 2000 small files
//! (1-8 KiB, in 40 directories, with a symlink per directory) plus four
//! 4 MiB files, applied into a fresh directory on tmpfs (/dev/shm) by
//! `berth_snapshotter::apply::apply_layer`, against the `tar` crate's own
//! `Archive::unpack` (no path checks beyond its own, no whiteouts) as a
//! baseline; a second group has the small files only (entries per second).
//! Directory creation and removal are outside the timing.

use std::hint::black_box;
use std::path::Path;

use berth_snapshotter::apply::{ApplyOptions, apply_layer};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tar::{Builder, EntryType, Header};

const SMALL_FILES: usize = 2000;
const DIRS: usize = 40;
const BIG_FILES: usize = 4;
const BIG_SIZE: usize = 4 << 20;

fn make_layer(big_files: usize) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    let h = |kind: EntryType, mode: u32, size: usize| {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(size as u64);
        h
    };
    let data: Vec<u8> = (0..BIG_SIZE)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    for d in 0..DIRS {
        b.append_data(
            &mut h(EntryType::Directory, 0o755, 0),
            format!("usr/lib/d{d}"),
            &[][..],
        )
        .unwrap();
        b.append_link(
            &mut h(EntryType::Symlink, 0o777, 0),
            format!("usr/lib/d{d}/link"),
            "..",
        )
        .unwrap();
        for f in 0..SMALL_FILES / DIRS {
            let size = 1024 + (f * 997) % 7168;
            b.append_data(
                &mut h(EntryType::Regular, 0o644, size),
                format!("usr/lib/d{d}/file-{f}.so"),
                &data[..size],
            )
            .unwrap();
        }
    }
    for f in 0..big_files {
        b.append_data(
            &mut h(EntryType::Regular, 0o755, BIG_SIZE),
            format!("opt/big/blob{f}"),
            &data[..],
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

fn shm_dir() -> tempfile::TempDir {
    let base = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    tempfile::Builder::new()
        .prefix("berth-bench-")
        .tempdir_in(base)
        .unwrap()
}

fn tar_apply(c: &mut Criterion) {
    let layer = make_layer(BIG_FILES);
    let mut group = c.benchmark_group("tar_apply_2000_small_4x4MiB");
    group.throughput(Throughput::Bytes(layer.len() as u64));
    bench_both(&mut group, &layer);
    group.finish();
    // Small files only, to read the per-entry cost.
    let small = make_layer(0);
    let mut group = c.benchmark_group("tar_apply_2000_small_entries");
    group.throughput(Throughput::Elements((SMALL_FILES + 2 * DIRS) as u64));
    bench_both(&mut group, &small);
    group.finish();
}

fn bench_both(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    layer: &[u8],
) {
    group.sample_size(20);
    let opts = ApplyOptions::default();
    group.bench_function("berth_apply_layer", |b| {
        b.iter_batched(
            shm_dir,
            |dir| {
                black_box(apply_layer(layer, dir.path(), &opts).unwrap());
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("tar_crate_unpack", |b| {
        b.iter_batched(
            shm_dir,
            |dir| {
                let mut a = tar::Archive::new(layer);
                a.set_preserve_permissions(true);
                a.set_preserve_ownerships(true);
                a.unpack(dir.path()).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group!(benches, tar_apply);
criterion_main!(benches);
