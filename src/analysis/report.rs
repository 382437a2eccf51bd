//! The drift report: DESIGN.md's schema as JSON, and a readable table as text.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use crate::stats::{Kind, Outcome, StatTest};

/// How the features' verdicts make the window's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DatasetRule {
    /// Dataset drift when at least `drift_share` of the features drifted, each tested at
    /// its own budget.
    #[default]
    Share,
    /// Benjamini-Hochberg across the features at the false-alarm rate (their empirical
    /// p-values from the calibration): the features it keeps (and past their effect floor)
    /// drifted, and any one is dataset drift. A window with no drift then alarms at most
    /// at that rate, however many features the model has.
    Bh,
}

impl DatasetRule {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetRule::Share => "share",
            DatasetRule::Bh => "bh",
        }
    }
}

/// How the statistics are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Bins from the reference alone (quantile edges, underflow and overflow bins), the
    /// reference summarised as a profile: the streaming default.
    Native,
    /// Evidently 0.7's legacy data-drift numbers.
    Evidently,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Evidently => "evidently",
        }
    }
}

/// One side of a feature's comparison: the values compared and the share missing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub count: usize,
    pub missing_share: f64,
}

impl Sample {
    pub fn new(count: usize, missing_share: f64) -> Sample {
        Sample { count, missing_share }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub path: String,
    pub rows: usize,
    /// A reference's registry version (window reports against a registry reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A reference's SHA-256, hex (window reports): which reference it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Source {
    pub fn of(ds: &Dataset) -> Source {
        Source::new(ds.path.display().to_string(), ds.rows)
    }

    pub fn new(path: String, rows: usize) -> Source {
        Source { path, rows, version: None, digest: None }
    }
}

/// A column left out of the comparison, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReport {
    pub name: String,
    pub kind: Kind,
    pub stattest: StatTest,
    /// The number held against `threshold`: the p-value of a test, or the distance.
    pub score: f64,
    /// The test statistic (KS D, chi-square, z) or the distance.
    pub statistic: f64,
    /// Null for distances.
    pub p_value: Option<f64>,
    pub threshold: f64,
    /// How the threshold was set: `fixed`, `configured`, `calibrated` (the no-drift
    /// quantile for the window's size and the budget), `effect_floor`, `too_few_values`.
    pub threshold_source: &'static str,
    pub drifted: bool,
    /// Calibrated mode: the smallest effect that may alarm (for distances, the threshold
    /// never goes below it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_effect: Option<f64>,
    /// Calibrated mode, tests whose score is a p-value: the effect held against
    /// `min_effect` (KS D, or the total variation between the shares).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<f64>,
    /// The share of no-drift windows of this size that score as far (from the profile's
    /// calibration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_p_value: Option<f64>,
    pub reference_missing_share: f64,
    pub current_missing_share: f64,
    /// Non-missing values compared on each side.
    pub reference_count: usize,
    pub current_count: usize,
    /// How the current side's numbers were held: `exact` (every value), or `binned` (a
    /// window past `exact_values`: counts over the reference's fine bins).
    pub path: &'static str,
    /// Binned KS and Wasserstein: the bound on the statistic's error (KS D, or the
    /// normalised distance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_bound: Option<f64>,
    /// Data quality of the current side (native mode), as shares of its rows: values of
    /// the wrong type (text for a number), numbers outside the reference's range, and
    /// categories the reference never had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_invalid_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_out_of_range_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_unseen_share: Option<f64>,
    /// What was compared, for drawing: both sides' counts over the same bins or categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
}

/// Categories drawn one by one; past this many the rest are summed into one last entry.
pub const DRAWN_CATEGORIES: usize = 12;

/// Both sides' counts over the same bins (numerical features) or categories, the ones the
/// test used where it bins: the reference's quantile bins in native mode (open at both
/// ends: below its minimum, above its maximum), Evidently's equal-width bins in that mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Numerical: the bins' edges, one more than the bins; `null` at an open end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<Option<f64>>>,
    /// Categorical (or a numerical feature of few distinct values): the categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Categories summed into the last entry (the least common ones), 0 when none were.
    #[serde(skip_serializing_if = "is_zero")]
    pub other_categories: usize,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn whole(counts: &[f64]) -> Vec<u64> {
    counts.iter().map(|c| c.max(0.0).round() as u64).collect()
}

impl Distribution {
    /// Counts over bins: `edges` has one more entry than each side has counts.
    pub fn bins(edges: Vec<Option<f64>>, reference: &[f64], current: &[f64]) -> Distribution {
        debug_assert!(edges.len() == reference.len() + 1 && reference.len() == current.len());
        Distribution {
            edges: Some(edges),
            categories: None,
            other_categories: 0,
            reference: whole(reference),
            current: whole(current),
        }
    }

    /// Native mode's bins: `edges` are the inner edges, the first and last bins open.
    pub fn open_bins(edges: &[f64], reference: &[f64], current: &[f64]) -> Distribution {
        let mut all = Vec::with_capacity(edges.len() + 2);
        all.push(None);
        all.extend(edges.iter().map(|e| Some(*e)));
        all.push(None);
        Distribution::bins(all, reference, current)
    }

    /// Counts by category, in the categories' order. Past `DRAWN_CATEGORIES`, the most
    /// common ones (by their larger share of either side) are kept in that order and the
    /// rest summed into one last entry, "other".
    pub fn categories(labels: Vec<String>, reference: &[f64], current: &[f64]) -> Distribution {
        let (r, c) = (whole(reference), whole(current));
        if labels.len() <= DRAWN_CATEGORIES {
            return Distribution {
                edges: None,
                categories: Some(labels),
                other_categories: 0,
                reference: r,
                current: c,
            };
        }
        let share = |v: &[u64], i: usize| v[i] as f64 / v.iter().sum::<u64>().max(1) as f64;
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| {
            let (sa, sb) = (share(&r, a).max(share(&c, a)), share(&r, b).max(share(&c, b)));
            sb.total_cmp(&sa).then(a.cmp(&b))
        });
        let mut kept = order[..DRAWN_CATEGORIES - 1].to_vec();
        kept.sort_unstable();
        let (mut names, mut rk, mut ck) = (Vec::new(), Vec::new(), Vec::new());
        for &i in &kept {
            names.push(labels[i].clone());
            rk.push(r[i]);
            ck.push(c[i]);
        }
        let sum = |v: &[u64], kept: &[u64]| v.iter().sum::<u64>() - kept.iter().sum::<u64>();
        names.push("other".to_string());
        rk.push(sum(&r, &rk));
        ck.push(sum(&c, &ck));
        Distribution {
            edges: None,
            categories: Some(names),
            other_categories: labels.len() - kept.len(),
            reference: rk,
            current: ck,
        }
    }
}

impl FeatureReport {
    /// The feature's result: `outcome` held against `threshold` in `stattest`'s direction.
    pub fn new(
        name: &str,
        kind: Kind,
        stattest: StatTest,
        threshold: f64,
        outcome: Outcome,
        reference: Sample,
        current: Sample,
    ) -> FeatureReport {
        let score = outcome.score();
        FeatureReport {
            name: name.to_string(),
            kind,
            stattest,
            score,
            statistic: outcome.statistic,
            p_value: outcome.p_value,
            threshold,
            threshold_source: "fixed",
            drifted: stattest.drifted(score, threshold),
            min_effect: None,
            effect: None,
            null_p_value: None,
            reference_missing_share: reference.missing_share,
            current_missing_share: current.missing_share,
            reference_count: reference.count,
            current_count: current.count,
            path: "exact",
            error_bound: None,
            current_invalid_share: None,
            current_out_of_range_share: None,
            current_unseen_share: None,
            distribution: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub dataset_drift: bool,
    pub drifted_features: usize,
    pub features_total: usize,
    pub share_of_drifted_features: f64,
    pub drift_share_threshold: f64,
    /// How the features' verdicts make the dataset's: `share` (at least
    /// `drift_share_threshold` of them drifted) or `bh` (Benjamini-Hochberg; any drifted).
    pub dataset_rule: &'static str,
    pub mode: &'static str,
    pub reference: Source,
    pub current: Source,
    pub features: Vec<FeatureReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl Report {
    pub fn new(
        mode: Mode,
        reference: Source,
        current: Source,
        features: Vec<FeatureReport>,
        skipped: Vec<Skipped>,
        drift_share: f64,
    ) -> Report {
        Report::with_rule(mode, reference, current, features, skipped, drift_share, DatasetRule::Share)
    }

    /// A report whose dataset verdict follows `rule`: the share of drifted features against
    /// `drift_share`, or (Benjamini-Hochberg, already applied to the features) any drifted.
    pub fn with_rule(
        mode: Mode,
        reference: Source,
        current: Source,
        features: Vec<FeatureReport>,
        skipped: Vec<Skipped>,
        drift_share: f64,
        rule: DatasetRule,
    ) -> Report {
        let drifted = features.iter().filter(|f| f.drifted).count();
        let total = features.len();
        let share = if total == 0 { 0.0 } else { drifted as f64 / total as f64 };
        let dataset_drift = match rule {
            DatasetRule::Share => total > 0 && share >= drift_share,
            DatasetRule::Bh => drifted > 0,
        };
        Report {
            dataset_rule: rule.as_str(),
            dataset_drift,
            drifted_features: drifted,
            features_total: total,
            share_of_drifted_features: share,
            drift_share_threshold: drift_share,
            mode: mode.as_str(),
            reference,
            current,
            features,
            skipped,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// A table for people: the verdict, then drifted features first.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let verdict = if self.dataset_drift { "DRIFT" } else { "no drift" };
        let _ = writeln!(
            out,
            "Dataset: {verdict} — {} of {} features drifted (share {:.3}, threshold {:.3}; {} mode)",
            self.drifted_features,
            self.features_total,
            self.share_of_drifted_features,
            self.drift_share_threshold,
            self.mode
        );
        let _ = writeln!(
            out,
            "reference: {} ({} rows)   current: {} ({} rows)\n",
            self.reference.path, self.reference.rows, self.current.path, self.current.rows
        );
        let mut rows: Vec<&FeatureReport> = self.features.iter().filter(|f| f.drifted).collect();
        rows.extend(self.features.iter().filter(|f| !f.drifted));
        let width = rows.iter().map(|f| f.name.chars().count()).max().unwrap_or(7).max(7);
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:<13}  {:>12}  {:>9}  {:<7}  {:>13}",
            "feature", "kind", "stattest", "score", "threshold", "drifted", "missing r/c"
        );
        for f in rows {
            let _ = writeln!(
                out,
                "{:<width$}  {:<11}  {:<13}  {:>12}  {:>9}  {:<7}  {:>13}",
                f.name,
                f.kind.as_str(),
                f.stattest.name(),
                format_number(f.score),
                format_number(f.threshold),
                if f.drifted { "YES" } else { "no" },
                format!("{:.1}%/{:.1}%", f.reference_missing_share * 100.0, f.current_missing_share * 100.0),
            );
        }
        for s in &self.skipped {
            let _ = writeln!(out, "skipped {}: {}", s.name, s.reason);
        }
        out
    }
}

fn format_number(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) {
        format!("{x:.3e}")
    } else {
        format!("{x:.6}")
    }
}
