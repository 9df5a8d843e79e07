//! Hash throughput on a 64 MiB buffer: sha256 (the `sha2` crate, which uses
//! the CPU's SHA extensions when present) against BLAKE3 (single-threaded),
//! to know what verifying a layer costs relative to reading it.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest as _, Sha256};

const SIZE: usize = 64 << 20;

fn digest(c: &mut Criterion) {
    let data: Vec<u8> = (0..SIZE).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
    let mut group = c.benchmark_group("digest_64MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(&data))));
    group.bench_function("sha256_1MiB_updates", |b| {
        b.iter(|| {
            let mut h = Sha256::new();
            for chunk in black_box(&data).chunks(1 << 20) {
                h.update(chunk);
            }
            h.finalize()
        })
    });
    group.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&data))));
    group.finish();
}

criterion_group!(benches, digest);
criterion_main!(benches);
