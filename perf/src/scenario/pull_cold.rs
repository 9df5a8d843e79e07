//! `pull-cold`: a realistic 4-layer Debian image (~110 MB gzip, ~285 MB
//! unpacked; `perf/fixtures/debian-image`) pulled from a loopback registry
//! with empty caches, until it is unpacked and durable (`sync`), by Berth,
//! `docker pull` (a private dockerd), `podman pull` (a private store) and a
//! shell pipeline (`curl | gzip -dc | tar -x` per layer, all layers in
//! parallel), for gzip and zstd layers. Engines interleave within each
//! round; before every trial the engine's store is emptied, dirty pages
//! written back and the page cache dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Context, Sample, Scenario, record};
use crate::engine::{self, BERTH};
use crate::peers::Dockerd;
use crate::process::run_measured;
use crate::registry::{self, Registry};
use crate::report::{EngineResult, ScenarioReport, Status};

/// Where the fixture image is built once and kept between runs.
const FIXTURE_CACHE: &str = "/var/tmp/berth-perf/debian-image";
/// Longest a single pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);
/// Layer compressions measured, each a tag in the registry.
const VARIANTS: [&str; 2] = ["gzip", "zstd"];
const REPO: &str = "berth-perf/debian";

#[derive(Debug)]
pub(crate) struct PullCold;

impl Scenario for PullCold {
    fn name(&self) -> &'static str {
        "pull-cold"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "4-layer Debian image (perf/fixtures/debian-image, ~110 MB gzip / ~285 MB \
             unpacked) pulled from a loopback docker-registry until unpacked and `sync`ed, \
             page cache dropped and store emptied before each trial; metrics `gzip` and \
             `zstd` (layer compression); {} runs per engine after {} warm-up, interleaved. \
             Peak RSS only for processes that do the work themselves (berth, the pipeline's \
             largest process); docker and podman numbers are wall time only.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let fixture = Path::new(FIXTURE_CACHE);
        build_fixture(fixture)?;
        let dir = ctx.work.join("pull-cold");
        let registry = Registry::start(&dir.join("registry"))?;
        let mut layers = Vec::new();
        for v in VARIANTS {
            let layout = fixture.join(v);
            registry.push_layout(&layout, REPO, v)?;
            layers.push(registry::layout_layers(&layout)?);
        }

        let mut slots: Vec<(Result<Puller, String>, EngineResult)> = Vec::new();
        for (name, puller) in Puller::discover(&dir) {
            let (status, reason) = match &puller {
                Ok(_) => (Status::Ok, None),
                Err(why) => (Status::Skipped, Some(why.clone())),
            };
            let result = EngineResult {
                engine: name.into(),
                status,
                reason,
                errors: Vec::new(),
                metrics: Vec::new(),
            };
            slots.push((puller, result));
        }

        let mut notes = Vec::new();
        for round in 0..ctx.warmup + ctx.runs {
            let warm = round < ctx.warmup;
            eprintln!(
                "[pull-cold] {} {}/{}",
                if warm { "warm-up" } else { "run" },
                if warm {
                    round + 1
                } else {
                    round - ctx.warmup + 1
                },
                if warm { ctx.warmup } else { ctx.runs }
            );
            for (vi, variant) in VARIANTS.iter().enumerate() {
                let image = format!("{}/{REPO}:{variant}", registry.addr);
                for (puller, result) in &mut slots {
                    let Ok(p) = puller else { continue };
                    if let Some(why) = p.unsupported(variant) {
                        if round == 0 {
                            notes.push(format!("{}: {variant} not measured: {why}", p.name()));
                        }
                        continue;
                    }
                    let trial = p.trial(&image, &registry.addr, &layers[vi]);
                    match trial {
                        Ok(_) if warm => {}
                        Ok((ms, rss)) => {
                            record(
                                result,
                                Sample {
                                    rss_kib: rss,
                                    ..Sample::time(variant, ms)
                                },
                            );
                        }
                        Err(e) if warm => {
                            eprintln!("[pull-cold] {}: warm-up failed, skipping: {e:#}", p.name());
                            result.status = Status::Skipped;
                            result.reason = Some(format!("warm-up pull failed: {e:#}"));
                            *puller = Err("skipped".into());
                        }
                        Err(e) => {
                            eprintln!("[pull-cold] {} {variant}: {e:#}", p.name());
                            result.status = Status::Failed;
                            result.errors.push(format!("{variant}: {e:#}"));
                        }
                    }
                }
            }
        }
        let mut engines = Vec::new();
        for (puller, result) in slots {
            if let Ok(p) = &puller
                && let Err(e) = p.reset()
            {
                notes.push(format!("{}: cleanup failed: {e:#}", p.name()));
            }
            engines.push(result);
        }
        drop(registry);
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// Builds the fixture image with `perf/fixtures/debian-image` unless it is
/// already in the cache.
fn build_fixture(dir: &Path) -> anyhow::Result<()> {
    if dir.join("gzip/index.json").is_file() && dir.join("zstd/index.json").is_file() {
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian-image");
    eprintln!(
        "[pull-cold] building the fixture image in {}",
        dir.display()
    );
    let status = Command::new(&script)
        .arg(dir)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed: {status}", script.display());
    }
    Ok(())
}

/// One engine's way to pull.
#[derive(Debug)]
enum Puller {
    /// `berth-image --root <dir> pull <ref>` (the library's example until
    /// berthd exists).
    Berth {
        bin: PathBuf,
        root: PathBuf,
    },
    Docker {
        daemon: Dockerd,
    },
    Podman {
        bin: PathBuf,
        root: PathBuf,
    },
    /// `curl | <decompress> | tar -x` per layer, all in parallel.
    Pipeline {
        root: PathBuf,
    },
}

impl Puller {
    fn discover(dir: &Path) -> Vec<(&'static str, Result<Self, String>)> {
        let berth = engine::sibling("examples/berth-image")
            .ok_or_else(|| {
                "berth-image not built (cargo build --release -p berth-snapshotter --examples)"
                    .to_string()
            })
            .map(|bin| Puller::Berth {
                bin,
                root: dir.join("berth"),
            });
        let docker = match (engine::which("dockerd"), engine::which("docker")) {
            (Some(_), Some(_)) => Dockerd::start(&dir.join("docker"))
                .map(|daemon| Puller::Docker { daemon })
                .map_err(|e| format!("{e:#}")),
            _ => Err("docker.io (dockerd) not installed".into()),
        };
        let podman = engine::which("podman")
            .ok_or_else(|| "podman not installed".to_string())
            .map(|bin| Puller::Podman {
                bin,
                root: dir.join("podman"),
            });
        let pipeline = match (engine::which("curl"), engine::which("zstd")) {
            (Some(_), Some(_)) => Ok(Puller::Pipeline {
                root: dir.join("pipeline"),
            }),
            _ => Err("curl or zstd not installed".into()),
        };
        vec![
            (BERTH, berth),
            ("docker", docker),
            ("podman", podman),
            ("pipeline", pipeline),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Puller::Berth { .. } => BERTH,
            Puller::Docker { .. } => "docker",
            Puller::Podman { .. } => "podman",
            Puller::Pipeline { .. } => "pipeline",
        }
    }

    /// Why this engine cannot pull a layer compression, if it cannot.
    fn unsupported(&self, variant: &str) -> Option<&'static str> {
        match (self, variant) {
            (Puller::Docker { .. }, "zstd") => {
                Some("dockerd 20.10 (Debian's docker.io) cannot unpack zstd layers")
            }
            _ => None,
        }
    }

    /// Empties the engine's store (not measured).
    fn reset(&self) -> anyhow::Result<()> {
        match self {
            Puller::Berth { root, .. } | Puller::Pipeline { root } => remove_dir(root),
            Puller::Podman { bin, root } => {
                // podman may leave overlay mounts in its store; let it clean
                // up what it knows, then remove the rest.
                if root.exists() {
                    let _ = Command::new(bin)
                        .args(podman_store_args(root))
                        .args(["rmi", "--all", "--force"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
                remove_dir(root)
            }
            Puller::Docker { daemon } => daemon.remove_all_images(),
        }
    }

    /// One cold pull: reset, drop caches, then the measured pull plus
    /// `sync`. Returns the wall time in ms and, where meaningful, the peak
    /// RSS of the work.
    fn trial(
        &self,
        image: &str,
        registry: &str,
        layers: &[registry::LayerRef],
    ) -> anyhow::Result<(f64, Option<u64>)> {
        self.reset()?;
        drop_caches()?;
        let log = fs::File::create(std::env::temp_dir().join("berth-perf-pull.log"))?;
        let mut cmd = match self {
            Puller::Berth { bin, root } => {
                let mut c = Command::new(bin);
                c.arg("--root").arg(root).args(["pull", image]);
                c
            }
            Puller::Docker { daemon } => {
                let mut c = daemon.cli();
                c.args(["pull", "--quiet", image]);
                c
            }
            Puller::Podman { bin, root } => {
                let mut c = Command::new(bin);
                c.args(podman_store_args(root))
                    .args(["pull", "--quiet", "--tls-verify=false"])
                    .arg(image);
                c
            }
            Puller::Pipeline { root } => {
                let mut c = Command::new("bash");
                c.arg("-c").arg(pipeline_script(root, registry, layers));
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let m = run_measured(&mut cmd, PULL_TIMEOUT)?;
        if !m.ok() {
            let out = fs::read_to_string(std::env::temp_dir().join("berth-perf-pull.log"))
                .unwrap_or_default();
            // The first lines name the cause; what follows is often fallout.
            let head: String = out.lines().take(4).collect::<Vec<_>>().join(" | ");
            bail!("pull of {image} failed ({}): {head}", m.status);
        }
        let t = Instant::now();
        sync()?;
        let ms = m.ms() + t.elapsed().as_secs_f64() * 1e3;
        let rss =
            matches!(self, Puller::Berth { .. } | Puller::Pipeline { .. }).then_some(m.maxrss_kib);
        Ok((ms, rss))
    }
}

impl Drop for Puller {
    fn drop(&mut self) {
        let _ = self.reset();
    }
}

fn podman_store_args(root: &Path) -> Vec<String> {
    vec![
        format!("--root={}", root.join("storage").display()),
        format!("--runroot={}", root.join("run").display()),
        "--storage-driver=overlay".into(),
    ]
}

fn pipeline_script(root: &Path, registry: &str, layers: &[registry::LayerRef]) -> String {
    let mut s = String::from("set -euo pipefail\npids=()\n");
    for (i, l) in layers.iter().enumerate() {
        let decompress = if l.media_type.ends_with("zstd") {
            "zstd -dc"
        } else {
            "gzip -dc"
        };
        let dest = root.join(i.to_string());
        s.push_str(&format!(
            "mkdir -p {d}\n(curl -sSf http://{registry}/v2/{REPO}/blobs/{digest} | {decompress} \
             | tar -x --numeric-owner -C {d}) &\npids+=($!)\n",
            d = dest.display(),
            digest = l.digest,
        ));
    }
    s.push_str("for p in \"${pids[@]}\"; do wait \"$p\"; done\n");
    s
}

fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

fn sync() -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    if !status.success() {
        bail!("sync failed: {status}");
    }
    Ok(())
}

/// Writes dirty pages back and drops the page cache, so every pull reads
/// and writes cold.
fn drop_caches() -> anyhow::Result<()> {
    sync()?;
    fs::write("/proc/sys/vm/drop_caches", "3").context("dropping the page cache (needs root)")
}
