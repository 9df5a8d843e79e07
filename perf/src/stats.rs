//! Summary statistics of samples (times or memory) and the bootstrap confidence interval
//! of a ratio of medians.
//!
//! Quantiles use linear interpolation between closest ranks (Hyndman & Fan
//! type 7, the default of R and numpy): for `n` sorted samples the `q`
//! quantile sits at position `h = (n - 1) * q` and is
//! `x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`.
//! So the median of an even set is the mean of the two middle samples and
//! p90 of `1..=10` is 9.1.
//!
//! The confidence interval of `median(engine) / median(baseline)` is a
//! percentile bootstrap: both sample sets are resampled with replacement,
//! independently, [`BOOTSTRAP_RESAMPLES`] times, and the 2.5th and 97.5th
//! percentiles of the resampled ratios are the bounds. The PRNG is a
//! splitmix64 with a fixed seed, so the same samples always give the same
//! interval.

use serde::{Deserialize, Serialize};

/// Number of bootstrap resamples for a confidence interval.
pub(crate) const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Seed of the bootstrap PRNG: fixed so that reports are reproducible.
pub(crate) const BOOTSTRAP_SEED: u64 = 0x6265_7274_6870_6572; // "berthper"

/// Summary of one set of samples, in their metric's unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) median: f64,
    pub(crate) p90: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl Summary {
    /// Summarizes `samples`; `None` when there are none.
    pub(crate) fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let sorted = sorted(samples);
        Some(Self {
            n: sorted.len(),
            median: quantile_sorted(&sorted, 0.5),
            p90: quantile_sorted(&sorted, 0.9),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// An engine's median divided by the baseline's, with a 95% bootstrap
/// confidence interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ratio {
    /// `median(engine) / median(baseline)`: above 1 means the engine is
    /// slower than the baseline (or uses more memory, for a KiB metric).
    pub(crate) median_ratio: f64,
    pub(crate) ci95_low: f64,
    pub(crate) ci95_high: f64,
}

impl Ratio {
    /// Ratio of medians of `engine` over `baseline`; `None` if either set is
    /// empty or the baseline median is not positive.
    pub(crate) fn of(engine: &[f64], baseline: &[f64]) -> Option<Self> {
        let base = median(baseline)?;
        if base <= 0.0 {
            return None;
        }
        let (ci95_low, ci95_high) =
            bootstrap_ratio_ci(engine, baseline, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, 0.95)?;
        Some(Self {
            median_ratio: median(engine)? / base,
            ci95_low,
            ci95_high,
        })
    }
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The `q` quantile (0..=1) of already sorted, non-empty samples, by linear
/// interpolation (type 7).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Median of the samples; `None` when empty.
pub(crate) fn median(samples: &[f64]) -> Option<f64> {
    (!samples.is_empty()).then(|| quantile_sorted(&sorted(samples), 0.5))
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast and good enough to pick
/// bootstrap indices.
#[derive(Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (multiply-shift, bias below 2^-32 for the
    /// sample counts used here).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

fn resampled_median(samples: &[f64], rng: &mut SplitMix64, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..samples.len()).map(|_| samples[rng.below(samples.len())]));
    buf.sort_by(f64::total_cmp);
    quantile_sorted(buf, 0.5)
}

/// Percentile-bootstrap confidence interval (at `level`, e.g. 0.95) of
/// `median(a) / median(b)`. Deterministic for a given `seed`.
pub(crate) fn bootstrap_ratio_ci(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut buf = Vec::with_capacity(a.len().max(b.len()));
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let ma = resampled_median(a, &mut rng, &mut buf);
        let mb = resampled_median(b, &mut rng, &mut buf);
        if mb > 0.0 {
            ratios.push(ma / mb);
        }
    }
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&ratios, tail),
        quantile_sorted(&ratios, 1.0 - tail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_sets() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn p90_is_linear_interpolation() {
        let s: Vec<f64> = (1..=10).map(f64::from).collect();
        let sum = Summary::of(&s).unwrap();
        assert!((sum.p90 - 9.1).abs() < 1e-12, "{}", sum.p90);
        assert_eq!(sum.min, 1.0);
        assert_eq!(sum.max, 10.0);
        assert!((sum.mean - 5.5).abs() < 1e-12);
        assert_eq!(sum.median, 5.5);
        assert_eq!(sum.n, 10);
        // 11 samples: p90 lands exactly on a sample.
        let s: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(Summary::of(&s).unwrap().p90, 9.0);
    }

    #[test]
    fn summary_of_nothing_is_none() {
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn splitmix64_matches_reference() {
        // Reference values of splitmix64 seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    fn noisy(base: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut r = SplitMix64::new(seed);
        (0..n)
            .map(|_| base * (0.9 + 0.2 * (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64))
            .collect()
    }

    #[test]
    fn bootstrap_ci_contains_true_ratio_and_is_deterministic() {
        let baseline = noisy(16.0, 30, 1);
        let engine = noisy(38.0, 30, 2);
        let truth = 38.0 / 16.0;
        let r = Ratio::of(&engine, &baseline).unwrap();
        assert!(
            r.ci95_low <= truth && truth <= r.ci95_high,
            "{r:?} vs {truth}"
        );
        assert!(
            r.ci95_low <= r.median_ratio && r.median_ratio <= r.ci95_high,
            "{r:?}"
        );
        assert!(r.ci95_high - r.ci95_low < 0.5, "{r:?}");
        assert_eq!(Ratio::of(&engine, &baseline), Some(r.clone()));
        // Another seed gives a (slightly) different interval.
        let other = bootstrap_ratio_ci(&engine, &baseline, 2000, 7, 0.95).unwrap();
        assert_ne!(other, (r.ci95_low, r.ci95_high));
    }

    #[test]
    fn ratio_of_identical_samples_is_one() {
        let s = [10.0, 10.0, 10.0];
        let r = Ratio::of(&s, &s).unwrap();
        assert_eq!((r.median_ratio, r.ci95_low, r.ci95_high), (1.0, 1.0, 1.0));
        assert!(Ratio::of(&s, &[]).is_none());
        assert!(Ratio::of(&s, &[0.0]).is_none());
    }
}
