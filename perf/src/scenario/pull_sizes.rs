//! `pull-sizes`: how cold-pull time grows with image size. Three gzip
//! images pulled as `pull-cold` pulls (same engines, same cold trial, see
//! [`super::pull`]):
//!
//! - `small`: busybox-static with its applet links, one layer (~1 MB);
//! - `medium`: a Debian minbase without docs and locales, as
//!   debian:bookworm-slim is made, one layer (~30 MB);
//! - `large`: `pull-cold`'s 4-layer Debian image (~110 MB).
//!
//! The first two come from `perf/fixtures/small-images`, the last from
//! `perf/fixtures/debian-image`, built once from Debian packages into
//! `/var/tmp/berth-perf`. Each metric is a point of the `gzip pull` growth
//! curve at its image's compressed size (the sum of its layers' sizes), so
//! the plots draw pull time against size, one line per engine. A separate
//! scenario so that `pull-cold` stays as short as it was.

use std::path::{Path, PathBuf};

use super::pull::{Target, build_fixture, measure_pulls};
use super::pull_cold::{self, build_debian_fixture};
use super::{Context, Scenario, place_on_curves};
use crate::registry::{self, Registry};
use crate::report::{Growth, ScenarioReport, XUnit};

/// Where `perf/fixtures/small-images` builds the small and medium images.
const SMALL_CACHE: &str = "/var/tmp/berth-perf/small-images";
const REPO: &str = "berth-perf/sizes";
/// The growth curve every metric lies on.
const SERIES: &str = "gzip pull";

/// The images, smallest first: metric (also the tag) and what it is.
const SIZES: [(&str, &str); 3] = [
    ("small", "busybox-static, 1 layer"),
    ("medium", "Debian minbase without docs and locales, 1 layer"),
    ("large", "pull-cold's Debian image, 4 layers"),
];

#[derive(Debug)]
pub(crate) struct PullSizes;

impl Scenario for PullSizes {
    fn name(&self) -> &'static str {
        "pull-sizes"
    }

    fn description(&self, ctx: &Context) -> String {
        format!(
            "cold pull time against image size: three gzip images from a loopback \
             docker-registry (`small`: busybox-static, 1 layer, ~1 MB; `medium`: Debian \
             minbase without docs and locales, 1 layer, ~30 MB; `large`: pull-cold's 4-layer \
             Debian image, ~110 MB), each pulled as in pull-cold (store emptied, page cache \
             dropped, until unpacked and `sync`ed); exact compressed sizes in the notes and \
             in each metric's `growth.x`; {} runs per engine and size after {} warm-up, \
             interleaved.",
            ctx.runs, ctx.warmup
        )
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ScenarioReport> {
        let small = Path::new(SMALL_CACHE);
        build_fixture(
            self.name(),
            "small-images",
            small,
            &["busybox/index.json", "slim/index.json"],
        )?;
        let large = Path::new(pull_cold::FIXTURE_CACHE);
        build_debian_fixture(self.name(), large)?;
        let layouts: [PathBuf; 3] = [
            small.join("busybox"),
            small.join("slim"),
            large.join("gzip"),
        ];

        let dir = ctx.work.join(self.name());
        let registry = Registry::start(&dir.join("registry"))?;
        let mut targets = Vec::new();
        let mut notes = Vec::new();
        for ((metric, what), layout) in SIZES.iter().zip(&layouts) {
            registry.push_layout(layout, REPO, metric)?;
            let layers = registry::layout_layers(layout)?;
            let bytes: u64 = layers.iter().map(|l| l.size).sum();
            notes.push(format!(
                "{metric}: {what}, {bytes} bytes of gzip layers ({:.1} MB)",
                bytes as f64 / 1e6
            ));
            targets.push(Target {
                metric,
                repo: REPO,
                tag: metric,
                compression: "gzip",
                layers,
            });
        }
        let (mut engines, pull_notes) = measure_pulls(ctx, self.name(), &dir, &registry, &targets);
        drop(registry);
        notes.extend(pull_notes);
        place_on_curves(&mut engines, |metric| {
            let t = targets.iter().find(|t| t.metric == metric)?;
            Some(Growth {
                series: SERIES.into(),
                x: t.layers.iter().map(|l| l.size).sum::<u64>() as f64,
                x_unit: XUnit::Bytes,
            })
        });
        Ok(ScenarioReport::finished(
            self.name(),
            self.description(ctx),
            engines,
            notes,
        ))
    }
}
