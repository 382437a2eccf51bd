//! Null calibration: for each feature, how its drift scores fall when nothing drifted, per
//! window size, so a threshold can be set for a false-alarm budget instead of fixed.
//!
//! **The null model.** A window of n values from the population the reference came from
//! is scored against the reference, as at every window close. The population is unknown;
//! given the reference, its posterior under the Bayesian bootstrap (Rubin 1981: a
//! Dirichlet process with the reference as its atoms) is Dirichlet weights over the
//! reference's values. Each replicate draws such a population, then a window of n values
//! from it, and scores the window against the reference itself. Both sources of noise are
//! there: the window's (1/n) and the reference's own (1/N: the drawn population differs
//! from the reference as a new sample would). The two draws are made at once, as a Polya
//! urn (the Dirichlet-multinomial). Scoring windows drawn from the reference
//! itself instead (NannyML's chunks) leaves the second out and gives thresholds that are
//! too tight: for the KS statistic the variance would be F(1-F)/n instead of the two-sample
//! F(1-F)(1/n + 1/N). A test checks the result against the analytic two-sample KS null.
//!
//! What the reference never showed gets prior mass, as it would in a new sample: a value
//! below the minimum or above the maximum (each with mass 1/(N+1), exact for
//! exchangeable continuous data), and a category or discrete value never seen (the
//! Good-Turing mass: values seen once, over N).
//!
//! Each replicate draws the window's values, so every test of the feature is computed
//! from the same draws by the functions windows are scored with. For numbers the urn holds
//! at most `GROUPS` runs of the reference's quantile sketch (the Dirichlet's aggregation
//! property makes the runs' masses exact); within a run, values are picked uniformly.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::profile::FeatureProfile;
use crate::rand::XorShift64;
use crate::stats::{kolmogorov, Outcome, StatTest};

mod simulate;
use simulate::Simulator;

/// Window sizes (values compared) the null is simulated at; between them thresholds are
/// interpolated in log n; below the first no budget can be kept. Beyond the last, where
/// the small-sample biases are gone, the last threshold is carried by the asymptotic law
/// with both sizes, v = 1/n + 1/N: distances on the square-root scale (KS D, Wasserstein,
/// Jensen-Shannon, Hellinger) as sqrt(v), divergences (PSI, KL) as v; the p-value
/// thresholds of chi-square and z hold.
pub const SIZES: [usize; 7] = [20, 50, 100, 200, 500, 1_000, 2_000];
/// False-alarm rates the quantiles are kept for; between them, interpolated in log rate.
pub const LEVELS: [f64; 9] = [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001];
/// Windows simulated per size.
pub const REPLICATES: usize = 1_000;
/// Runs of the quantile sketch the Dirichlet is drawn over.
const GROUPS: usize = 64;
/// Points of the quantile sketch windows are drawn from (a longer sketch is thinned to
/// its quantiles: the statistics move by at most 1/2,048 of a share).
const SIM_POINTS: usize = 2_048;

/// One test's null quantiles for a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullTable {
    pub stattest: StatTest,
    /// `thresholds[i][j]`: for windows of `sizes[i]` values, the threshold with a false-alarm
    /// rate of `levels[j]`, in the test's own direction: a distance at or above it, or a
    /// p-value below it, happens at that rate under no drift. For `ks`, the statistic D
    /// (at or above), turned into the p-value for the window's sizes when looked up.
    pub thresholds: Vec<Vec<f64>>,
}

/// A feature's null calibration, as `driftd baseline` stores it in the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The reference's values (the KS p-value's other size).
    pub reference_count: usize,
    /// The reference's cells (categories or distinct values; bins): chi-square's degrees of
    /// freedom plus one.
    #[serde(default)]
    pub cells: usize,
    pub sizes: Vec<usize>,
    pub levels: Vec<f64>,
    pub replicates: usize,
    pub tests: Vec<NullTable>,
}

/// How much to simulate.
#[derive(Debug, Clone)]
pub struct CalibrationPlan {
    pub sizes: Vec<usize>,
    pub replicates: usize,
    pub seed: u64,
}

impl Default for CalibrationPlan {
    fn default() -> Self {
        CalibrationPlan { sizes: SIZES.to_vec(), replicates: REPLICATES, seed: 0x5eed_d81f_7d00_0001 }
    }
}

/// A threshold looked up for a window, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Looked {
    pub threshold: f64,
    /// Fewer values than the smallest simulated size: no budget can be kept.
    pub too_few: bool,
}

impl Calibration {
    /// Simulates the null for one feature of a profile.
    pub fn of(fp: &FeatureProfile, plan: &CalibrationPlan) -> Calibration {
        let mut sim = Simulator::new(fp);
        let tests = sim.tests.clone();
        let mut rng = XorShift64::new(plan.seed ^ crate::rand::fnv1a(&fp.name));
        let thresholds_per_size: Vec<Vec<Vec<f64>>> = plan
            .sizes
            .iter()
            .map(|&n| {
                let mut scores: Vec<Vec<f64>> = vec![Vec::with_capacity(plan.replicates); tests.len()];
                for _ in 0..plan.replicates {
                    sim.replicate(&mut rng, n, &mut |i, s| scores[i].push(s));
                }
                tests.iter().zip(scores).map(|(t, s)| thresholds(*t, s)).collect()
            })
            .collect();
        // a test whose score is undefined here (chi-square over bins the reference leaves
        // empty) gets no table: it keeps its fixed threshold
        let tests = tests
            .iter()
            .enumerate()
            .map(|(i, t)| NullTable {
                stattest: *t,
                thresholds: thresholds_per_size.iter().map(|per_test| per_test[i].clone()).collect(),
            })
            .filter(|t| t.thresholds.iter().flatten().all(|x| x.is_finite()))
            .collect();
        Calibration {
            reference_count: fp.count,
            cells: sim.cells(),
            sizes: plan.sizes.clone(),
            levels: LEVELS.to_vec(),
            replicates: plan.replicates,
            tests,
        }
    }

    /// Every feature of a profile, in parallel.
    pub fn all(features: &[FeatureProfile], plan: &CalibrationPlan) -> Vec<Calibration> {
        features
            .par_iter()
            .map(|fp| {
                let started = std::time::Instant::now();
                let c = Calibration::of(fp, plan);
                let ms = started.elapsed().as_millis() as u64;
                tracing::debug!(feature = %fp.name, kind = fp.kind.as_str(), ms, "feature calibrated");
                c
            })
            .collect()
    }

    fn table(&self, test: StatTest) -> Option<&NullTable> {
        self.tests.iter().find(|t| t.stattest == test)
    }

    /// The threshold for `test` at false-alarm rate `rate`, for a window of `n` values.
    pub fn threshold(&self, test: StatTest, n: usize, rate: f64) -> Option<Looked> {
        let looked = self.table_threshold(test, n, rate)?;
        Some(match test {
            // D at or above the threshold is p at or below this
            StatTest::Ks if !looked.too_few => Looked {
                threshold: kolmogorov::ks_2samp_pvalue(self.reference_count, n, looked.threshold.min(1.0)).1,
                too_few: false,
            },
            _ => looked,
        })
    }

    /// The threshold in the table's units (the statistic D for `ks`).
    fn table_threshold(&self, test: StatTest, n: usize, rate: f64) -> Option<Looked> {
        let table = self.table(test)?;
        if self.sizes.is_empty() || n < self.sizes[0] {
            return Some(Looked { threshold: f64::NAN, too_few: true });
        }
        let lower = lower_is_drift(test);
        let at_size = |i: usize| interpolate_level(&self.levels, &table.thresholds[i], rate, lower);
        let i = self.sizes.partition_point(|s| *s <= n) - 1;
        let threshold = if i + 1 >= self.sizes.len() {
            let v = |n: usize| 1.0 / n as f64 + 1.0 / self.reference_count.max(1) as f64;
            let ratio = v(n) / v(self.sizes[i]);
            let last = at_size(i);
            match test {
                StatTest::Ks | StatTest::Wasserstein | StatTest::JensenShannon | StatTest::Hellinger => {
                    last * ratio.sqrt()
                }
                StatTest::Psi | StatTest::KlDiv => last * ratio,
                // chi-square against the reference's shares grows as n (1/n + 1/N): its
                // statistic's threshold does, its p-value's falls
                StatTest::ChiSquare => {
                    chisquare_carried(last, self.cells, n as f64 * v(n) / (self.sizes[i] as f64 * v(self.sizes[i])))
                }
                // the z-test counts both sizes already
                StatTest::Z => last,
            }
        } else if self.sizes[i] == n {
            at_size(i)
        } else {
            let (a, b) = (self.sizes[i] as f64, self.sizes[i + 1] as f64);
            let t = ((n as f64).ln() - a.ln()) / (b.ln() - a.ln());
            at_size(i) * (1.0 - t) + at_size(i + 1) * t
        };
        Some(Looked { threshold, too_few: false })
    }

    /// The share of no-drift windows of `n` values that score at least as far toward drift
    /// as `outcome` (an empirical p-value, read off the table between its levels): `1`
    /// below the most common level, the rarest level above the rarest threshold.
    pub fn null_p_value(&self, test: StatTest, n: usize, outcome: &Outcome) -> Option<f64> {
        self.table(test)?;
        let beyond = |level: f64| -> bool {
            let t = self.table_threshold(test, n, level).map_or(f64::NAN, |l| l.threshold);
            match test {
                StatTest::Ks => outcome.statistic >= t,
                _ => test.drifted(outcome.score(), t),
            }
        };
        let levels = &self.levels;
        // levels run from common to rare: find the rarest one the score is beyond
        let rarest = levels.iter().rposition(|l| beyond(*l));
        Some(rarest.map_or(1.0, |j| levels[j]))
    }
}

/// A chi-square p-value threshold carried to a larger window: its statistic scaled by
/// `factor`, with `cells - 1` degrees of freedom.
fn chisquare_carried(p: f64, cells: usize, factor: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    let Ok(law) = ChiSquared::new(cells.saturating_sub(1).max(1) as f64) else { return p };
    if !(p > 0.0 && p < 1.0) {
        return p;
    }
    law.sf(law.inverse_cdf(1.0 - p) * factor)
}

/// Whether the simulated score is a p-value (drift below): chi-square and z. The KS test's
/// table holds its statistic.
fn lower_is_drift(test: StatTest) -> bool {
    test.is_pvalue() && test != StatTest::Ks
}

/// Per level, the threshold with at most that share of `scores` beyond it.
fn thresholds(test: StatTest, mut scores: Vec<f64>) -> Vec<f64> {
    scores.retain(|s| !s.is_nan());
    scores.sort_by(f64::total_cmp);
    let b = scores.len();
    LEVELS
        .iter()
        .map(|level| {
            if b == 0 {
                return f64::NAN;
            }
            let allowed = (level * b as f64).floor() as usize;
            if lower_is_drift(test) {
                // drift below: the threshold under which at most `allowed` p-values lie
                scores[allowed.min(b - 1)]
            } else {
                // drift at or above: the lowest value with at most `allowed` scores at or above it
                let mut i = b - allowed.min(b);
                if i == b {
                    return above(scores[b - 1]);
                }
                // ties below i would also be at or above scores[i]: move to the next value up
                while i > 0 && scores[i - 1] == scores[i] {
                    match scores[i..].iter().position(|s| *s > scores[i]) {
                        Some(p) => i += p,
                        None => return above(scores[b - 1]),
                    }
                }
                scores[i]
            }
        })
        .collect()
}

/// The next float above `x` (no score reaches it).
fn above(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let next = if x == 0.0 {
        1
    } else if x > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f64::from_bits(next)
}

/// A threshold between levels: linear in log rate, on log p for p-values.
fn interpolate_level(levels: &[f64], values: &[f64], rate: f64, pvalue: bool) -> f64 {
    let rate = rate.clamp(levels[levels.len() - 1], levels[0]);
    // levels descend
    let j = levels.iter().position(|l| *l <= rate).unwrap_or(levels.len() - 1);
    if levels[j] == rate || j == 0 {
        return values[j];
    }
    let (hi, lo) = (levels[j - 1], levels[j]);
    let t = (rate.ln() - lo.ln()) / (hi.ln() - lo.ln());
    let (a, b) = (values[j], values[j - 1]);
    if pvalue && a > 0.0 && b > 0.0 {
        (a.ln() * (1.0 - t) + b.ln() * t).exp()
    } else {
        a * (1.0 - t) + b * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dataset::{Column, Dataset, Values};
    use crate::analysis::profile::Profile;
    use crate::stats::Kind;

    fn normal_profile(n: usize, seed: u64) -> Profile {
        let mut rng = XorShift64::new(seed);
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        v.sort_by(f64::total_cmp);
        let column = Column {
            name: "x".into(),
            rows: n,
            missing: 0,
            invalid: 0,
            values: Values::Numeric { sorted: v, integer: false },
        };
        let ds = Dataset { path: "synthetic".into(), rows: n, columns: vec![column] };
        Profile::build(&ds, &[("x".into(), Kind::Numerical)], 10)
    }

    #[test]
    fn calibrated_thresholds_match_the_analytic_null_on_normal_data() {
        let big_n = 5000;
        let profile = normal_profile(big_n, 3);
        let fp = &profile.features[0];
        let plan = CalibrationPlan { sizes: vec![200, 1000, 2000], replicates: 4000, seed: 17 };
        let c = Calibration::of(fp, &plan);
        for (i, &n) in plan.sizes.iter().enumerate() {
            // KS: the p-value is the analytic two-sample one, so its α-quantile is α
            for alpha in [0.05, 0.01] {
                let t = c.threshold(StatTest::Ks, n, alpha).unwrap().threshold;
                assert!((t / alpha - 1.0).abs() < 0.35, "ks at n={n}, α={alpha}: p threshold {t}");
            }
            // PSI over 10 quantile bins: asymptotically (1/n + 1/N) χ²(9)
            let chi2_9_q95 = 16.918_977_604_620_45;
            let analytic = chi2_9_q95 * (1.0 / n as f64 + 1.0 / big_n as f64);
            let t = c.tests.iter().find(|t| t.stattest == StatTest::Psi).unwrap().thresholds[i][3];
            assert!((t / analytic - 1.0).abs() < 0.15, "psi at n={n}: {t} vs analytic {analytic}");
        }
    }

    #[test]
    fn windows_drawn_from_the_reference_itself_would_be_too_tight() {
        // NannyML's way, windows drawn from the reference alone: KS p-values pile up near
        // 1, and the threshold they give (the 5% quantile) alarms far more than 5% of the
        // time on real no-drift windows, whose p-values are uniform
        let profile = normal_profile(1000, 9);
        let fp = &profile.features[0];
        let ks_p_quantile = |population: bool| {
            let mut sim = Simulator::new(fp);
            sim.urn.reinforce = population;
            let mut rng = XorShift64::new(1);
            let mut p = Vec::new();
            for _ in 0..2000 {
                sim.replicate(&mut rng, 1000, &mut |i, s| {
                    if i == 0 {
                        p.push(s)
                    }
                });
            }
            let d = thresholds(StatTest::Ks, p)[3];
            kolmogorov::ks_2samp_pvalue(1000, 1000, d).1
        };
        let (ours, theirs) = (ks_p_quantile(true), ks_p_quantile(false));
        assert!((ours / 0.05 - 1.0).abs() < 0.35, "with the population draw: {ours}");
        assert!(theirs > 0.12, "from the reference alone the 5% threshold is {theirs}");
    }

    #[test]
    fn thresholds_interpolate_and_refuse_tiny_windows() {
        let profile = normal_profile(2000, 4);
        let plan = CalibrationPlan { sizes: vec![100, 1000], replicates: 500, seed: 2 };
        let c = Calibration::of(&profile.features[0], &plan);
        let at = |n| c.threshold(StatTest::Wasserstein, n, 0.01).unwrap();
        assert!(at(50).too_few);
        let (a, m, b) = (at(100).threshold, at(316).threshold, at(1000).threshold);
        assert!(a > m && m > b, "{a} {m} {b}");
        // beyond the last size: the asymptotic law, sqrt(1/n + 1/N) for Wasserstein
        let law: f64 = ((1.0f64 / 5000.0 + 1.0 / 2000.0) / (1.0 / 1000.0 + 1.0 / 2000.0)).sqrt();
        assert!((at(5000).threshold / b - law).abs() < 1e-9);
        let p = c.null_p_value(StatTest::Wasserstein, 1000, &Outcome::distance(b * 1.0001)).unwrap();
        assert!(p <= 0.01, "{p}");
        assert_eq!(c.null_p_value(StatTest::Wasserstein, 1000, &Outcome::distance(0.0)).unwrap(), 1.0);
    }

    #[test]
    fn thresholds_keep_the_rate_under_ties() {
        // many equal scores: the threshold moves above the tie rather than let it through
        let scores = [vec![0.0; 980], vec![0.5; 15], vec![1.0; 5]].concat();
        let t = thresholds(StatTest::Psi, scores.clone());
        let j = LEVELS.iter().position(|l| *l == 0.01).unwrap();
        let beyond = scores.iter().filter(|s| **s >= t[j]).count();
        assert!(beyond <= 10, "{beyond} of 1000 at or above {}", t[j]);
        let p = thresholds(StatTest::ChiSquare, vec![0.0; 1000]);
        assert!(p.iter().all(|t| *t == 0.0), "p-values all 0: never below the threshold");
    }
}
