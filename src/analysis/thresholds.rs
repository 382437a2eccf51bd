//! How a feature's threshold is set, and whether its score is drift: fixed (Evidently's
//! defaults), or calibrated to a false-alarm budget for the window's size with an effect
//! floor; and how the features' verdicts make the dataset's (a share, or
//! Benjamini-Hochberg across features).

use serde::{Deserialize, Serialize};

use super::calibration::Calibration;
pub use super::report::DatasetRule;
use super::report::FeatureReport;
use crate::stats::{Outcome, StatTest};

/// How thresholds are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Evidently's defaults (0.1 for distances, 0.05 for p-values) at every window size.
    #[default]
    Fixed,
    /// Per feature and window size, the score's no-drift quantile for the false-alarm
    /// budget (from the profile's calibration), never below the test's effect floor.
    Calibrated,
}

/// Where a feature's threshold came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// Evidently's default for the test.
    Fixed,
    /// Set in the config or on the command line.
    Configured,
    /// The no-drift quantile for this window's size and the budget.
    Calibrated,
    /// The test's effect floor, above the calibrated quantile.
    EffectFloor,
    /// Fewer values than the smallest calibrated window: not judged.
    TooFewValues,
    /// Calibrated mode, but the profile holds no calibration for this test: the fixed one.
    Uncalibrated,
}

impl ThresholdSource {
    pub const ALL: [ThresholdSource; 6] = [
        ThresholdSource::Fixed,
        ThresholdSource::Configured,
        ThresholdSource::Calibrated,
        ThresholdSource::EffectFloor,
        ThresholdSource::TooFewValues,
        ThresholdSource::Uncalibrated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdSource::Fixed => "fixed",
            ThresholdSource::Configured => "configured",
            ThresholdSource::Calibrated => "calibrated",
            ThresholdSource::EffectFloor => "effect_floor",
            ThresholdSource::TooFewValues => "too_few_values",
            ThresholdSource::Uncalibrated => "uncalibrated",
        }
    }
}

/// The default false-alarm budget: per feature, per window.
pub const DEFAULT_FALSE_ALARM_RATE: f64 = 0.01;

/// The smallest effect worth an alarm, per test, in the test's own units (see
/// `docs/tuning.md`): the distance for distances, the KS statistic D for `ks`, the total
/// variation between the share vectors (half the sum of share differences) for
/// `chisquare` and `z`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectFloors([f64; 8]);

impl Default for EffectFloors {
    fn default() -> Self {
        let mut f = EffectFloors([0.0; 8]);
        for (test, floor) in [
            (StatTest::Wasserstein, 0.05),
            (StatTest::Ks, 0.05),
            (StatTest::Psi, 0.02),
            (StatTest::KlDiv, 0.02),
            (StatTest::JensenShannon, 0.05),
            (StatTest::Hellinger, 0.05),
            (StatTest::ChiSquare, 0.05),
            (StatTest::Z, 0.05),
        ] {
            f.set(test, floor);
        }
        f
    }
}

impl EffectFloors {
    fn index(test: StatTest) -> usize {
        StatTest::ALL.iter().position(|t| *t == test).expect("every test is listed")
    }

    pub fn get(&self, test: StatTest) -> f64 {
        self.0[Self::index(test)]
    }

    pub fn set(&mut self, test: StatTest, floor: f64) {
        self.0[Self::index(test)] = floor;
    }
}

/// The threshold settings of a model, or of an `analyze` run.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdOptions {
    pub mode: ThresholdMode,
    /// Per feature, per window: the share of no-drift windows allowed to alarm.
    pub false_alarm_rate: f64,
    pub min_effect: EffectFloors,
    pub dataset_rule: DatasetRule,
}

/// The budgets a calibration can keep: its levels run from 0.5 to 0.001.
pub const RATE_RANGE: (f64, f64) = (0.001, 0.5);

impl ThresholdOptions {
    /// Checks the settings; the error names the setting (`false_alarm_rate`,
    /// `min_effect.TEST`, `dataset_rule`) and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let r = self.false_alarm_rate;
        if !(RATE_RANGE.0..=RATE_RANGE.1).contains(&r) {
            let (lo, hi) = RATE_RANGE;
            return Err(("false_alarm_rate".into(), format!("{r} is out of range (expected a rate in [{lo}, {hi}])")));
        }
        for t in StatTest::ALL {
            let f = self.min_effect.get(t);
            if !(f >= 0.0 && f.is_finite()) {
                return Err((format!("min_effect.{}", t.name()), format!("{f} must be zero or positive")));
            }
        }
        if self.dataset_rule == DatasetRule::Bh && self.mode != ThresholdMode::Calibrated {
            let why =
                "bh needs calibrated thresholds (thresholds = \"calibrated\"): its p-values come from the calibration";
            return Err(("dataset_rule".into(), why.into()));
        }
        Ok(())
    }
}

impl EffectFloors {
    /// The defaults with `TEST = X` overrides; the error names the test that is unknown.
    pub fn with(overrides: impl IntoIterator<Item = (String, f64)>) -> Result<EffectFloors, String> {
        let mut f = EffectFloors::default();
        for (name, x) in overrides {
            f.set(StatTest::parse(&name)?, x);
        }
        Ok(f)
    }
}

impl Default for ThresholdOptions {
    fn default() -> Self {
        ThresholdOptions {
            mode: ThresholdMode::Fixed,
            false_alarm_rate: DEFAULT_FALSE_ALARM_RATE,
            min_effect: EffectFloors::default(),
            dataset_rule: DatasetRule::Share,
        }
    }
}

/// What the threshold rule made of one feature's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub threshold: f64,
    pub drifted: bool,
    pub source: ThresholdSource,
    /// The effect floor (calibrated mode).
    pub min_effect: Option<f64>,
    /// The effect held against the floor, for tests whose score is a p-value.
    pub effect: Option<f64>,
    /// The share of no-drift windows of this size scoring as far (from the calibration).
    pub null_p_value: Option<f64>,
}

/// A feature's score held against its threshold. `configured`: a threshold set by the
/// user (it wins, as is); `effect`: the effect size (the distance itself for distances);
/// `n`: the window's values compared.
pub fn decide(
    calibration: Option<&Calibration>,
    test: StatTest,
    configured: Option<f64>,
    outcome: &Outcome,
    effect: f64,
    n: usize,
    opts: &ThresholdOptions,
) -> Decision {
    let score = outcome.score();
    let calibrated = opts.mode == ThresholdMode::Calibrated;
    let null_p_value = calibration.filter(|_| calibrated).and_then(|c| c.null_p_value(test, n, outcome));
    let plain = |threshold: f64, source| Decision {
        threshold,
        drifted: test.drifted(score, threshold),
        source,
        min_effect: None,
        effect: None,
        null_p_value,
    };
    if let Some(t) = configured {
        return plain(t, ThresholdSource::Configured);
    }
    let fixed = test.default_threshold();
    if !calibrated {
        return plain(fixed, ThresholdSource::Fixed);
    }
    let Some(looked) = calibration.and_then(|c| c.threshold(test, n, opts.false_alarm_rate)) else {
        return plain(fixed, ThresholdSource::Uncalibrated);
    };
    let floor = opts.min_effect.get(test);
    if looked.too_few {
        let smallest =
            calibration.and_then(|c| c.sizes.first().and_then(|s| c.threshold(test, *s, opts.false_alarm_rate)));
        let threshold = smallest.map_or(fixed, |l| l.threshold);
        return Decision { drifted: false, min_effect: Some(floor), ..plain(threshold, ThresholdSource::TooFewValues) };
    }
    if test.is_pvalue() {
        let drifted = test.drifted(score, looked.threshold) && effect >= floor;
        let (min_effect, effect) = (Some(floor), Some(effect));
        return Decision { drifted, min_effect, effect, ..plain(looked.threshold, ThresholdSource::Calibrated) };
    }
    let (threshold, source) = if floor > looked.threshold {
        (floor, ThresholdSource::EffectFloor)
    } else {
        (looked.threshold, ThresholdSource::Calibrated)
    };
    Decision { min_effect: Some(floor), ..plain(threshold, source) }
}

/// Benjamini-Hochberg across the features at level `q`, on their empirical p-values: the
/// features it keeps stay drifted when they pass their effect floor; the others do not.
/// Features without an empirical p-value keep their own verdict.
pub fn benjamini_hochberg(features: &mut [FeatureReport], q: f64) {
    let mut ranked: Vec<(usize, f64)> =
        features.iter().enumerate().filter_map(|(i, f)| f.null_p_value.map(|p| (i, p))).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let m = ranked.len() as f64;
    let kept = ranked.iter().enumerate().rposition(|(k, (_, p))| *p <= (k + 1) as f64 / m * q).map_or(0, |k| k + 1);
    for (rank, (i, _)) in ranked.iter().enumerate() {
        let f = &mut features[*i];
        let passes_floor = match (f.effect, f.min_effect) {
            (Some(e), Some(floor)) => e >= floor,
            (None, Some(floor)) => f.score >= floor,
            _ => true,
        };
        f.drifted = rank < kept && passes_floor;
    }
}

/// Total variation between two count vectors' shares: half the sum of the differences.
pub fn total_variation(a: &crate::stats::Aligned) -> f64 {
    let (r, c) = a.shares();
    r.iter().zip(&c).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::Sample;
    use crate::stats::Kind;

    fn feature(name: &str, p: f64) -> FeatureReport {
        let side = Sample::new(1000, 0.0);
        let mut f =
            FeatureReport::new(name, Kind::Numerical, StatTest::Wasserstein, 0.1, Outcome::distance(0.2), side, side);
        f.null_p_value = Some(p);
        f.min_effect = Some(0.05);
        f
    }

    #[test]
    fn benjamini_hochberg_keeps_the_step_up_set() {
        // m = 4, q = 0.05: thresholds 0.0125, 0.025, 0.0375, 0.05; the largest k with
        // p(k) <= k q / m is 2 (0.02 <= 0.025), so the two smallest are kept
        let mut fs = vec![feature("a", 0.001), feature("b", 0.02), feature("c", 0.04), feature("d", 0.5)];
        benjamini_hochberg(&mut fs, 0.05);
        let kept: Vec<&str> = fs.iter().filter(|f| f.drifted).map(|f| f.name.as_str()).collect();
        assert_eq!(kept, ["a", "b"]);
        // an effect under the floor is not kept
        let mut fs = vec![feature("a", 0.001)];
        fs[0].score = 0.01;
        benjamini_hochberg(&mut fs, 0.05);
        assert!(!fs[0].drifted);
    }

    #[test]
    fn fixed_and_configured_thresholds_are_as_before() {
        let o = Outcome::distance(0.12);
        let fixed = decide(None, StatTest::Wasserstein, None, &o, 0.12, 500, &ThresholdOptions::default());
        assert_eq!((fixed.threshold, fixed.drifted, fixed.source), (0.1, true, ThresholdSource::Fixed));
        let calibrated = ThresholdOptions { mode: ThresholdMode::Calibrated, ..ThresholdOptions::default() };
        let set = decide(None, StatTest::Wasserstein, Some(0.2), &o, 0.12, 500, &calibrated);
        assert_eq!((set.threshold, set.drifted, set.source), (0.2, false, ThresholdSource::Configured));
        let missing = decide(None, StatTest::Wasserstein, None, &o, 0.12, 500, &calibrated);
        assert_eq!(missing.source, ThresholdSource::Uncalibrated);
    }
}
