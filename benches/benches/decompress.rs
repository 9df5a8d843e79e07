//! Layer decompression throughput: a ~40 MB tar of real files from
//! /usr/lib (shared objects, scripts, data: realistic layer content),
//! compressed once with gzip (level 6, what docker and skopeo write) and
//! zstd (level 3), then decoded to a sink by
//! `berth_snapshotter::decompress::decoder` (flate2 on zlib-rs, libzstd).
//! Throughput counts uncompressed bytes, i.e. tar bytes handed to the
//! applier per second on one core.

use std::hint::black_box;
use std::io::{self, Write};
use std::path::Path;

use berth_snapshotter::Compression;
use berth_snapshotter::decompress::decoder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TARGET_SIZE: u64 = 40 << 20;

/// Regular files under `dir`, depth first, until `budget` bytes are taken.
fn collect(dir: &Path, budget: &mut u64, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if *budget == 0 {
            return;
        }
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            collect(&path, budget, out);
        } else if meta.is_file() && meta.len() > 0 && std::fs::File::open(&path).is_ok() {
            *budget = budget.saturating_sub(meta.len());
            out.push(path);
        }
    }
}

fn make_tar() -> Vec<u8> {
    let mut files = Vec::new();
    let mut budget = TARGET_SIZE;
    collect(Path::new("/usr/lib"), &mut budget, &mut files);
    let mut b = tar::Builder::new(Vec::new());
    for path in files {
        let name = path.strip_prefix("/").unwrap();
        b.append_path_with_name(&path, name).unwrap();
    }
    b.into_inner().unwrap()
}

fn bench(c: &mut Criterion) {
    let tar = make_tar();
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let zstd = zstd::encode_all(tar.as_slice(), 3).unwrap();
    eprintln!(
        "tar {} bytes, gzip {} bytes, zstd {} bytes",
        tar.len(),
        gzip.len(),
        zstd.len()
    );

    let mut group = c.benchmark_group("decompress");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(tar.len() as u64));
    for (compression, data) in [(Compression::Gzip, &gzip), (Compression::Zstd, &zstd)] {
        group.bench_function(compression.name(), |b| {
            b.iter(|| {
                let mut reader = decoder(compression, data.as_slice()).unwrap();
                let n = io::copy(&mut reader, &mut io::sink()).unwrap();
                assert_eq!(n, tar.len() as u64);
                black_box(n)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
