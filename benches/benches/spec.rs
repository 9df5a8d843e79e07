//! The spec path of every container start: parsing a Docker-sized
//! config.json (with Docker's seccomp profile) and building the child's plan
//! from it (which compiles the seccomp filter).

use std::hint::black_box;

use berth_runtime::process::ChildPlan;
use berth_runtime::process::plan::PlanOptions;
use criterion::{Criterion, criterion_group, criterion_main};
use oci_spec::runtime::{LinuxSeccomp, Spec};

const DOCKER_SECCOMP: &str =
    include_str!("../../runtime/tests/fixtures/docker-default-seccomp.json");

fn docker_like_config() -> String {
    let mut spec = Spec::default();
    let seccomp: LinuxSeccomp = serde_json::from_str(DOCKER_SECCOMP).unwrap();
    let mut linux = spec.linux().clone().unwrap();
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
    serde_json::to_string(&spec).unwrap()
}

fn spec(c: &mut Criterion) {
    let config = docker_like_config();
    c.bench_function("spec/parse_config_json", |b| {
        b.iter(|| serde_json::from_str::<Spec>(black_box(&config)).unwrap())
    });
    let bundle = std::env::temp_dir().join(format!("berth-bench-{}", std::process::id()));
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let spec: Spec = serde_json::from_str(&config).unwrap();
    let opts = PlanOptions::default();
    c.bench_function("spec/build_child_plan", |b| {
        b.iter(|| ChildPlan::new(black_box(&spec), &bundle, &opts).unwrap())
    });
    let _ = std::fs::remove_dir_all(&bundle);
}

criterion_group!(benches, spec);
criterion_main!(benches);
