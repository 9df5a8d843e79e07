//! Seccomp: parsing Docker's default profile and compiling it to BPF.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use oci_spec::runtime::LinuxSeccomp;

const DOCKER_DEFAULT: &str =
    include_str!("../../runtime/tests/fixtures/docker-default-seccomp.json");

fn seccomp(c: &mut Criterion) {
    c.bench_function("seccomp/parse_docker_default", |b| {
        b.iter(|| serde_json::from_str::<LinuxSeccomp>(black_box(DOCKER_DEFAULT)).unwrap())
    });
    let spec: LinuxSeccomp = serde_json::from_str(DOCKER_DEFAULT).unwrap();
    let program = berth_runtime::seccomp::compile(&spec).unwrap();
    eprintln!(
        "docker default profile: {} BPF instructions",
        program.instructions().len()
    );
    c.bench_function("seccomp/compile_docker_default", |b| {
        b.iter(|| berth_runtime::seccomp::compile(black_box(&spec)).unwrap())
    });
}

criterion_group!(benches, seccomp);
criterion_main!(benches);
