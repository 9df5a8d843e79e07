//! `pull-cold`: a realistic 4-layer Debian image (~110 MB gzip, ~285 MB
//! unpacked; `perf/fixtures/debian-image`) pulled from a loopback registry
//! with empty caches, until it is unpacked and durable (`sync`), by Berth,
//! `docker pull` (a private dockerd), `podman pull` (a private store) and a
//! shell pipeline (`curl | gzip -dc | tar -x` per layer, all layers in
//! parallel), for gzip and zstd layers. Engines interleave within each
//! round; before every trial the engine's store is emptied, dirty pages
//! written back and the page cache dropped (see [`super::pull`]).

use std::path::Path;

use super::pull::{Target, build_fixture, measure_pulls};
use super::{Context, Scenario};
use crate::registry::{self, Registry};
use crate::report::ScenarioReport;

/// Where the fixture image is built once and kept between runs.
pub(super) const FIXTURE_CACHE: &str = "/var/tmp/berth-perf/debian-image";
/// Layer compressions measured, each a tag in the registry.
const VARIANTS: [&str; 2] = ["gzip", "zstd"];
pub(super) const REPO: &str = "berth-perf/debian";

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
        build_debian_fixture(self.name(), fixture)?;
        let dir = ctx.work.join(self.name());
        let registry = Registry::start(&dir.join("registry"))?;
        let mut targets = Vec::new();
        for v in VARIANTS {
            let layout = fixture.join(v);
            registry.push_layout(&layout, REPO, v)?;
            targets.push(Target {
                metric: v,
                repo: REPO,
                tag: v,
                compression: v,
                layers: registry::layout_layers(&layout)?,
            });
        }
        let (engines, notes) = measure_pulls(ctx, self.name(), &dir, &registry, &targets);
        drop(registry);
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}

/// Builds the 4-layer image (gzip and zstd layouts) unless it is cached.
pub(super) fn build_debian_fixture(scenario: &str, dir: &Path) -> anyhow::Result<()> {
    build_fixture(
        scenario,
        "debian-image",
        dir,
        &["gzip/index.json", "zstd/index.json"],
    )
}
