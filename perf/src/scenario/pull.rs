//! What the pull scenarios share: the engines that pull ([`Puller`]: Berth,
//! `docker pull` from a private dockerd, `podman pull` into a private
//! store, and a `curl | decompress | tar -x` pipeline per layer), the cold
//! trial (store emptied, page cache dropped, pull, `sync`), and the driver
//! [`measure_pulls`] that interleaves the engines round by round.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Context, Sample, record};
use crate::engine::{self, BERTH};
use crate::peers::Dockerd;
use crate::process::run_measured;
use crate::registry::{self, Registry};
use crate::report::{EngineResult, Status};

/// Longest a single pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// One image a pull scenario measures, already in the registry.
#[derive(Debug)]
pub(super) struct Target {
    /// The metric its pull times are recorded under.
    pub(super) metric: &'static str,
    /// Where it is in the registry: `<repo>:<tag>`.
    pub(super) repo: &'static str,
    pub(super) tag: &'static str,
    /// Its layers' compression, `gzip` or `zstd`.
    pub(super) compression: &'static str,
    pub(super) layers: Vec<registry::LayerRef>,
}

/// `ctx.warmup` + `ctx.runs` rounds, each pulling every target cold with
/// every engine found (engines interleaved per target). A failed warm-up
/// skips the engine; a failed measured pull is recorded as an error. The
/// engines' stores are emptied at the end. Returns the results and notes.
pub(super) fn measure_pulls(
    ctx: &Context,
    scenario: &str,
    dir: &Path,
    registry: &Registry,
    targets: &[Target],
) -> (Vec<EngineResult>, Vec<String>) {
    let mut slots: Vec<(Result<Puller, String>, EngineResult)> = Vec::new();
    for (name, puller) in Puller::discover(dir) {
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
            "[{scenario}] {} {}/{}",
            if warm { "warm-up" } else { "run" },
            if warm {
                round + 1
            } else {
                round - ctx.warmup + 1
            },
            if warm { ctx.warmup } else { ctx.runs }
        );
        for target in targets {
            for (puller, result) in &mut slots {
                let Ok(p) = puller else { continue };
                if let Some(why) = p.unsupported(target.compression) {
                    let note = format!("{}: {} not measured: {why}", p.name(), target.metric);
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                    continue;
                }
                match p.trial(&registry.addr, target) {
                    Ok(_) if warm => {}
                    Ok((ms, rss)) => {
                        record(
                            result,
                            Sample {
                                rss_kib: rss,
                                ..Sample::time(target.metric, ms)
                            },
                        );
                    }
                    Err(e) if warm => {
                        eprintln!("[{scenario}] {}: warm-up failed, skipping: {e:#}", p.name());
                        result.status = Status::Skipped;
                        result.reason = Some(format!("warm-up pull failed: {e:#}"));
                        *puller = Err("skipped".into());
                    }
                    Err(e) => {
                        eprintln!("[{scenario}] {} {}: {e:#}", p.name(), target.metric);
                        result.status = Status::Failed;
                        result.errors.push(format!("{}: {e:#}", target.metric));
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
    (engines, notes)
}

/// Runs the fixture script `perf/fixtures/<script> <dir>` unless every
/// file of `built` (relative to `dir`) is already there.
pub(super) fn build_fixture(
    scenario: &str,
    script: &str,
    dir: &Path,
    built: &[&str],
) -> anyhow::Result<()> {
    if built.iter().all(|f| dir.join(f).is_file()) {
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(script);
    eprintln!(
        "[{scenario}] building the fixture images in {}",
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
    fn trial(&self, registry: &str, target: &Target) -> anyhow::Result<(f64, Option<u64>)> {
        let image = &format!("{registry}/{}:{}", target.repo, target.tag);
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
                c.arg("-c")
                    .arg(pipeline_script(root, registry, target.repo, &target.layers));
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

fn pipeline_script(
    root: &Path,
    registry: &str,
    repo: &str,
    layers: &[registry::LayerRef],
) -> String {
    let mut s = String::from("set -euo pipefail\npids=()\n");
    for (i, l) in layers.iter().enumerate() {
        let decompress = if l.media_type.ends_with("zstd") {
            "zstd -dc"
        } else {
            "gzip -dc"
        };
        let dest = root.join(i.to_string());
        s.push_str(&format!(
            "mkdir -p {d}\n(curl -sSf http://{registry}/v2/{repo}/blobs/{digest} | {decompress} \
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
