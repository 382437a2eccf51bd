//! The batch analyzer behind `driftd analyze`, `driftd check` and every window close:
//! the test and threshold per feature, and the per-feature statistics, in either mode.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::calibration::{self, Calibration, CalibrationPlan};
use super::dataset::{share, Column, Dataset, Key, Values};
use super::numbers::Numbers;
use super::plan::{ensure_not_empty, plan_from_datasets, plan_from_profile, Selection};
use super::profile::{FeatureProfile, NumericSummary, Profile, DEFAULT_BINS, DISCRETE_MAX};
use super::report::{Distribution, FeatureReport, Mode, Report, Sample, Source};
use super::thresholds::{benjamini_hochberg, decide, total_variation, DatasetRule, ThresholdMode, ThresholdOptions};
use crate::error::InputError;
use crate::stats::binned::wasserstein_counts;
use crate::stats::binning::{
    align_sorted, histogram_sorted, more_distinct_than, n_unique_union_sorted, n_unique_union_sorted_capped,
    sturges_edges, value_counts_sorted,
};
use crate::stats::ks_counts;
use crate::stats::selection::{default_test, SELECTION_CAP};
use crate::stats::{self, clip_range, discrete, Aligned, Kind, Outcome, StatTest};

/// Dataset drift when at least this share of features drifted, unless told otherwise.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;

/// Which test and threshold each feature gets, with Evidently's precedence: per feature,
/// then per kind, then for all features, then the default.
#[derive(Debug, Clone, Default)]
pub struct TestChoice {
    pub stattest: Option<StatTest>,
    pub num_stattest: Option<StatTest>,
    pub cat_stattest: Option<StatTest>,
    pub per_feature_stattest: BTreeMap<String, StatTest>,
    pub threshold: Option<f64>,
    pub num_threshold: Option<f64>,
    pub cat_threshold: Option<f64>,
    pub per_feature_threshold: BTreeMap<String, f64>,
}

impl TestChoice {
    fn forced_test(&self, name: &str, kind: Kind) -> Option<StatTest> {
        if let Some(t) = self.per_feature_stattest.get(name) {
            return Some(*t);
        }
        let by_kind = match kind {
            Kind::Numerical => self.num_stattest,
            Kind::Categorical => self.cat_stattest,
        };
        by_kind.or(self.stattest)
    }

    fn threshold(&self, name: &str, kind: Kind) -> Option<f64> {
        if let Some(t) = self.per_feature_threshold.get(name) {
            return Some(*t);
        }
        let by_kind = match kind {
            Kind::Numerical => self.num_threshold,
            Kind::Categorical => self.cat_threshold,
        };
        by_kind.or(self.threshold)
    }
}

#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub mode: Mode,
    pub tests: TestChoice,
    /// Dataset drift when at least this share of features drifted.
    pub drift_share: f64,
    pub selection: Selection,
    /// Native mode: quantile bins per numerical feature.
    pub bins: usize,
    /// Native mode: fixed or calibrated thresholds, the budget, the effect floors and the
    /// dataset rule.
    pub thresholds: ThresholdOptions,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            mode: Mode::Native,
            tests: TestChoice::default(),
            drift_share: DEFAULT_DRIFT_SHARE,
            selection: Selection::default(),
            bins: DEFAULT_BINS,
            thresholds: ThresholdOptions::default(),
        }
    }
}

/// The reference side: a dataset, or a profile `driftd baseline` wrote.
#[derive(Debug, Clone)]
pub enum Reference {
    Dataset(Dataset),
    Profile(std::sync::Arc<Profile>, std::path::PathBuf),
}

/// Loads the reference (dataset or profile) reading only the columns the selection needs.
pub fn load_reference(path: &std::path::Path, opts: &AnalyzeOptions) -> Result<Reference, InputError> {
    if Profile::is_profile_path(path) {
        if opts.mode == Mode::Evidently {
            return Err(InputError::flag(
                "--compat evidently",
                format!(
                    "needs the reference dataset itself; {} is a profile (use the native mode, or pass the dataset)",
                    path.display()
                ),
            ));
        }
        return Ok(Reference::Profile(std::sync::Arc::new(Profile::load(path)?), path.to_path_buf()));
    }
    Ok(Reference::Dataset(Dataset::load(path, None)?))
}

/// Compares `current` with `reference` and builds the report.
pub fn analyze(reference: &Reference, current: &Dataset, opts: &AnalyzeOptions) -> Result<Report, InputError> {
    opts.selection.validate()?;
    if !(opts.drift_share > 0.0 && opts.drift_share <= 1.0) {
        return Err(InputError::flag(
            "--drift-share",
            format!("{} is out of range (expected a share in (0, 1])", opts.drift_share),
        ));
    }
    let (plan, skipped, ref_source) = match reference {
        Reference::Dataset(ds) => {
            let (plan, skipped) = plan_from_datasets(ds, current, &opts.selection)?;
            (plan, skipped, Source::of(ds))
        }
        Reference::Profile(p, path) => {
            let plan = plan_from_profile(p, path, current, &opts.selection)?;
            let source = Source::new(path.display().to_string(), p.rows);
            (plan, Vec::new(), source)
        }
    };
    if plan.is_empty() {
        return Err(InputError::flag("--columns", "no feature columns left to compare (check --columns / --exclude)"));
    }
    let features = match (opts.mode, reference) {
        (Mode::Evidently, Reference::Dataset(ds)) => plan
            .par_iter()
            .map(|(name, kind)| {
                let r = ds.column(name).expect("planned column is present");
                let c = current.column(name).expect("planned column is present");
                compat_feature(name, *kind, r, c, &ds.path, current, opts)
            })
            .collect::<Result<Vec<_>, _>>()?,
        (Mode::Evidently, Reference::Profile(..)) => unreachable!("rejected in load_reference"),
        (Mode::Native, _) => {
            let built;
            let (profile, ref_path) = match reference {
                Reference::Profile(p, path) => (p.as_ref(), path.clone()),
                Reference::Dataset(ds) => {
                    for (name, _) in &plan {
                        let col = ds.column(name).expect("planned column is present");
                        ensure_not_empty(col, &ds.path)?;
                    }
                    built = Profile::build(ds, &plan, opts.bins);
                    (&built, ds.path.clone())
                }
            };
            plan.par_iter()
                .map(|(name, kind)| {
                    let fp = profile
                        .feature(name)
                        .ok_or_else(|| InputError::column(&ref_path, name, "is empty after dropping missing values"))?;
                    let c = current.column(name).expect("planned column is present");
                    native_feature(fp, *kind, c, current, opts)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let mut features = features;
    let rule = match opts.mode {
        Mode::Native => opts.thresholds.dataset_rule,
        Mode::Evidently => DatasetRule::Share,
    };
    if rule == DatasetRule::Bh {
        benjamini_hochberg(&mut features, opts.thresholds.false_alarm_rate);
    }
    Ok(Report::with_rule(opts.mode, ref_source, Source::of(current), features, skipped, opts.drift_share, rule))
}

fn choose(
    name: &str,
    kind: Kind,
    n_reference: usize,
    n_values: impl FnOnce() -> usize,
    opts: &AnalyzeOptions,
    path: &std::path::Path,
) -> Result<(StatTest, Option<f64>), InputError> {
    let test = match opts.tests.forced_test(name, kind) {
        Some(t) => {
            if !t.allows(kind) {
                return Err(InputError::column(
                    path,
                    name,
                    format!("stattest {} does not apply to a {} feature", t.name(), kind.as_str()),
                ));
            }
            t
        }
        None => default_test(kind, n_reference, n_values()),
    };
    let configured = opts.tests.threshold(name, kind);
    if let Some(t) = configured {
        test.check_threshold(t).map_err(|e| InputError::flag("--threshold", format!("feature '{name}': {e}")))?;
    }
    Ok((test, configured))
}

/// Two count lists side by side (sorted keys, aligned), and as a picture with one bar per
/// key, labelled by `label`.
fn aligned<K: PartialOrd + Clone>(
    a: &[(K, u64)],
    b: &[(K, u64)],
    label: impl Fn(&K) -> String,
) -> (Aligned, Distribution) {
    let (keys, r, c) = align_sorted(a, b);
    let d = Distribution::categories(keys.iter().map(label).collect(), &r, &c);
    (Aligned { n_reference: r.iter().sum(), n_current: c.iter().sum(), reference: r, current: c }, d)
}

/// Categories' counts side by side, and as a picture.
fn aligned_counts(a: &[(Key, u64)], b: &[(Key, u64)]) -> (Aligned, Distribution) {
    aligned(a, b, Key::to_string)
}

/// A numerical feature of few distinct values: its counts per value side by side, and
/// drawn as categories, one per value.
fn aligned_values(a: &[(f64, u64)], b: &[(f64, u64)]) -> (Aligned, Distribution) {
    aligned(a, b, |x| number_text(*x))
}

fn current_sorted<'a>(c: &'a Column, current: &Dataset) -> Result<(&'a [f64], bool), InputError> {
    match &c.values {
        Values::Numeric { sorted, integer } if !sorted.is_empty() => Ok((sorted, *integer)),
        Values::Numeric { .. } => {
            Err(InputError::column(&current.path, &c.name, "is empty after dropping missing values"))
        }
        _ => Err(InputError::column(&current.path, &c.name, "holds no numbers")),
    }
}

fn current_counts(c: &Column, current: &Dataset) -> Result<Vec<(Key, u64)>, InputError> {
    let counts =
        c.to_categorical().ok_or_else(|| InputError::column(&current.path, &c.name, "cannot be read as categories"))?;
    if counts.is_empty() {
        return Err(InputError::column(&current.path, &c.name, "is empty after dropping missing values"));
    }
    Ok(counts)
}

/// One feature in Evidently mode, from the two full samples.
fn compat_feature(
    name: &str,
    kind: Kind,
    r: &Column,
    c: &Column,
    ref_path: &std::path::Path,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<FeatureReport, InputError> {
    ensure_not_empty(r, ref_path)?;
    let distribution;
    let (test, threshold, outcome, n_ref, n_cur) = match kind {
        Kind::Numerical => {
            let Values::Numeric { sorted: rs, integer: ri } = &r.values else {
                return Err(InputError::column(ref_path, name, "holds no numbers"));
            };
            let (cs, ci) = current_sorted(c, current)?;
            let (test, threshold) =
                choose(name, kind, rs.len(), || n_unique_union_sorted_capped(rs, cs, SELECTION_CAP), opts, ref_path)?;
            let integer = *ri && ci;
            let (min, max) = (rs[0].min(cs[0]), rs[rs.len() - 1].max(cs[cs.len() - 1]));
            let many = more_distinct_than(rs, DISCRETE_MAX);
            // Evidently's equal-width bins over both samples: the test's own for PSI, KL
            // and JS, and the picture's for KS and Wasserstein
            let binned = |size: usize| {
                let edges = sturges_edges(min, max, size, integer);
                let (r, c) = (histogram_sorted(rs, &edges), histogram_sorted(cs, &edges));
                let d = Distribution::bins(edges.iter().map(|e| Some(*e)).collect(), &r, &c);
                (edges, r, c, d)
            };
            let (outcome, dist) = match test {
                StatTest::Hellinger => {
                    let (edges, r, c, d) = binned(n_unique_union_sorted(rs, cs));
                    (stats::hellinger_density(&r, &c, &edges), d)
                }
                StatTest::Psi | StatTest::KlDiv | StatTest::JensenShannon if many => {
                    let (_, reference, current, d) = binned(rs.len() + cs.len());
                    let a = Aligned { reference, current, n_reference: rs.len() as f64, n_current: cs.len() as f64 };
                    (discrete(test, &a), d)
                }
                StatTest::Ks | StatTest::Wasserstein => {
                    let o = match test {
                        StatTest::Ks => stats::ks(rs, rs.len(), cs),
                        _ => stats::wasserstein_norm(rs, stats::mean_std(rs).1, cs),
                    };
                    let d = match many {
                        true => binned(rs.len() + cs.len()).3,
                        false => aligned_values(&value_counts_sorted(rs), &value_counts_sorted(cs)).1,
                    };
                    (o, d)
                }
                _ => {
                    let (a, d) = aligned_values(&value_counts_sorted(rs), &value_counts_sorted(cs));
                    (discrete(test, &a), d)
                }
            };
            distribution = Some(dist);
            (test, threshold, outcome, rs.len(), cs.len())
        }
        Kind::Categorical => {
            let rc =
                r.to_categorical().ok_or_else(|| InputError::column(ref_path, name, "cannot be read as categories"))?;
            let cc = current_counts(c, current)?;
            let (a, d) = aligned_counts(&rc, &cc);
            distribution = Some(d);
            let n_ref = a.n_reference as usize;
            let (test, threshold) = choose(name, kind, n_ref, || a.reference.len(), opts, ref_path)?;
            (test, threshold, discrete(test, &a), n_ref, a.n_current as usize)
        }
    };
    let (reference, current) = (Sample::new(n_ref, r.missing_share()), Sample::new(n_cur, c.missing_share()));
    let mut report = FeatureReport::new(
        name,
        kind,
        test,
        threshold.unwrap_or(test.default_threshold()),
        outcome,
        reference,
        current,
    );
    report.threshold_source = if threshold.is_some() { "configured" } else { "fixed" };
    report.distribution = distribution;
    Ok(report)
}

/// A feature's statistic in native mode, before its report.
struct Scored {
    test: StatTest,
    /// A threshold the user set.
    configured: Option<f64>,
    outcome: Outcome,
    /// The effect size: the distance, KS D, or the shares' total variation.
    effect: f64,
    /// Values compared.
    n_current: usize,
    /// Values outside the reference: beyond its range (numbers), unseen (categories).
    off_reference: usize,
    /// The window's numbers were binned (bounded memory): KS and Wasserstein are estimates.
    binned: bool,
    /// Their error bound, in the score's units.
    error_bound: Option<f64>,
    /// Both sides' counts, for drawing.
    distribution: Distribution,
}

/// One feature in native mode, against the reference profile.
fn native_feature(
    fp: &FeatureProfile,
    kind: Kind,
    c: &Column,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<FeatureReport, InputError> {
    let scored = match kind {
        Kind::Numerical => native_numerical(fp, c, current, opts)?,
        Kind::Categorical => native_categorical(fp, c, current, opts)?,
    };
    let (reference, sample) =
        (Sample::new(fp.count, fp.missing_share), Sample::new(scored.n_current, c.missing_share()));
    let owned;
    let calibration = match &fp.calibration {
        Some(c) => Some(c),
        // a profile without its calibration: simulated now, for this window's size only
        None if opts.thresholds.mode == ThresholdMode::Calibrated => {
            let sizes = vec![scored.n_current.max(calibration::SIZES[0])];
            owned = Calibration::of(fp, &CalibrationPlan { sizes, ..CalibrationPlan::default() });
            Some(&owned)
        }
        None => None,
    };
    let (test, outcome) = (scored.test, scored.outcome);
    let d = decide(calibration, test, scored.configured, &outcome, scored.effect, scored.n_current, &opts.thresholds);
    let mut report = FeatureReport::new(&fp.name, kind, test, d.threshold, outcome, reference, sample);
    report.drifted = d.drifted;
    report.threshold_source = d.source.as_str();
    report.path = if scored.binned { "binned" } else { "exact" };
    report.error_bound = scored.error_bound;
    report.distribution = Some(scored.distribution);
    (report.min_effect, report.effect, report.null_p_value) = (d.min_effect, d.effect, d.null_p_value);
    report.current_invalid_share = Some(c.invalid_share());
    let off = Some(share(scored.off_reference, c.rows));
    match kind {
        Kind::Numerical => report.current_out_of_range_share = off,
        Kind::Categorical => report.current_unseen_share = off,
    }
    Ok(report)
}

fn native_numerical(
    fp: &FeatureProfile,
    c: &Column,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<Scored, InputError> {
    let p: &NumericSummary = fp.numeric.as_ref().expect("validated profile");
    let cs = Numbers::of(c, current)?;
    let n_values = || match &p.values {
        Some(v) => {
            let keys: Vec<f64> = v.iter().map(|(x, _)| *x).collect();
            let current: Vec<f64> = cs.value_counts().iter().map(|(x, _)| *x).collect();
            n_unique_union_sorted_capped(&keys, &current, SELECTION_CAP)
        }
        None => p.n_unique,
    };
    let (test, configured) = choose(&fp.name, Kind::Numerical, fp.count, n_values, opts, &current.path)?;
    let n = cs.len();
    // the counts the binned tests compare, and the picture: by value for a feature of few
    // distinct values, else over the reference's quantile bins
    let (compared, distribution) = match &p.values {
        Some(v) => aligned_values(v, &cs.value_counts()),
        None => {
            let reference: Vec<f64> = p.bin_counts.iter().map(|c| *c as f64).collect();
            let current = cs.coarse_counts(&p.edges);
            let d = Distribution::open_bins(&p.edges, &reference, &current);
            (Aligned { reference, current, n_reference: fp.count as f64, n_current: n as f64 }, d)
        }
    };
    let mut error_bound = None;
    let (outcome, effect) = match test {
        StatTest::Ks => {
            let o = match &cs {
                Numbers::Sorted(v) => stats::ks(&p.quantiles, fp.count, v),
                Numbers::Counted(counts) => ks_outcome(fp.count, n, ks_counts(&p.quantiles, counts)),
                Numbers::Binned(b) => {
                    let d = b.ks(&p.quantiles);
                    let o = ks_outcome(fp.count, n, d.value);
                    // the exact p-value's lattice moves the statistic a little more
                    error_bound = Some(d.error_bound + (o.statistic - d.value).abs());
                    o
                }
            };
            (o, o.statistic)
        }
        StatTest::Wasserstein => {
            let norm = p.std.max(0.001);
            // bounded influence: values far outside the reference weigh as if at the clip
            // (the streaming windows clip them as they come; `clip_range` says how far)
            let (lo, hi) = clip_range(p.min, p.max);
            let w = match &cs {
                Numbers::Sorted(v) if v.first().is_some_and(|x| *x < lo) || v.last().is_some_and(|x| *x > hi) => {
                    let clipped: Vec<f64> = v.iter().map(|x| x.clamp(lo, hi)).collect();
                    stats::wasserstein_norm(&p.quantiles, p.std, &clipped).statistic
                }
                Numbers::Sorted(v) => stats::wasserstein_norm(&p.quantiles, p.std, v).statistic,
                Numbers::Counted(counts) => {
                    let clipped: Vec<(f64, u64)> = counts.iter().map(|(x, n)| (x.clamp(lo, hi), *n)).collect();
                    wasserstein_counts(&p.quantiles, &clipped) / norm
                }
                Numbers::Binned(b) => {
                    let w = b.wasserstein(&p.quantiles);
                    error_bound = Some(w.error_bound / norm);
                    w.value / norm
                }
            };
            (Outcome::distance(w), w)
        }
        _ => scored_discrete(test, &compared),
    };
    let binned = matches!(cs, Numbers::Binned(_));
    let off_reference = cs.outside(p.min, p.max);
    Ok(Scored { test, configured, outcome, effect, n_current: n, off_reference, binned, error_bound, distribution })
}

/// The KS test's outcome for a statistic D between samples of `n_ref` and `n`.
fn ks_outcome(n_ref: usize, n: usize, d: f64) -> Outcome {
    let (d, p) = stats::kolmogorov::ks_2samp_pvalue(n_ref, n, d);
    Outcome { statistic: d, p_value: Some(p) }
}

fn native_categorical(
    fp: &FeatureProfile,
    c: &Column,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<Scored, InputError> {
    let rc = fp.categories.as_deref().unwrap_or_default();
    let cc = canonical_counts(current_counts(c, current)?, rc);
    let unseen: u64 = cc
        .iter()
        .filter(|(k, _)| rc.binary_search_by(|(r, _)| r.partial_cmp(k).unwrap_or(std::cmp::Ordering::Equal)).is_err())
        .map(|(_, n)| *n)
        .sum();
    let (a, distribution) = aligned_counts(rc, &cc);
    let (test, configured) = choose(&fp.name, Kind::Categorical, fp.count, || a.reference.len(), opts, &current.path)?;
    let (outcome, effect) = scored_discrete(test, &a);
    let n_current = a.n_current as usize;
    Ok(Scored {
        test,
        configured,
        outcome,
        effect,
        n_current,
        off_reference: unseen as usize,
        binned: false,
        error_bound: None,
        distribution,
    })
}

/// A test over counts and its effect size: the distance, or for a p-value test the total
/// variation between the shares.
fn scored_discrete(test: StatTest, a: &Aligned) -> (Outcome, f64) {
    let outcome = discrete(test, a);
    let effect = if test.is_pvalue() { total_variation(a) } else { outcome.statistic };
    (outcome, effect)
}

/// The current side's categories in the reference's form: when the reference's keys are
/// numbers, text that reads as a number is that number (`"16"`, `"16.0"` and `16` are one
/// category); when they are text, a number is its text (`16`, not `16.0`); when they are
/// booleans (`true` / `false`), `"True"` and `"TRUE"` are `true`.
pub fn canonical_counts(counts: Vec<(Key, u64)>, reference: &[(Key, u64)]) -> Vec<(Key, u64)> {
    let numeric = !reference.is_empty() && reference.iter().all(|(k, _)| matches!(k, Key::Num(_)));
    let textual = !reference.is_empty() && reference.iter().all(|(k, _)| matches!(k, Key::Str(_)));
    let boolean = textual && reference.iter().all(|(k, _)| matches!(k, Key::Str(s) if s == "true" || s == "false"));
    let canonical = |k: Key| match k {
        Key::Str(s) if numeric => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).map_or(Key::Str(s), Key::Num),
        Key::Str(s) if boolean && (s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")) => {
            Key::Str(s.to_ascii_lowercase())
        }
        Key::Num(x) if textual => Key::Str(number_text(x)),
        k => k,
    };
    let mut out: Vec<(Key, u64)> = Vec::with_capacity(counts.len());
    for (k, n) in counts {
        out.push((canonical(k), n));
    }
    out.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    // merge keys that became one
    let mut merged: Vec<(Key, u64)> = Vec::with_capacity(out.len());
    for (k, n) in out {
        match merged.last_mut() {
            Some((last, m)) if *last == k => *m += n,
            _ => merged.push((k, n)),
        }
    }
    merged
}

/// A number as category text: whole numbers without a fraction (`16`, not `16.0`).
pub fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[(Key, u64)]) -> Vec<String> {
        v.iter().map(|(k, n)| format!("{k}:{n}")).collect()
    }

    #[test]
    fn categories_take_the_references_form() {
        let numeric = vec![(Key::Num(3.0), 5), (Key::Num(16.0), 5)];
        let got = canonical_counts(
            vec![(Key::Num(16.0), 1), (Key::Str("16".into()), 2), (Key::Str(" 16.0".into()), 3)],
            &numeric,
        );
        assert_eq!(keys(&got), ["16:6"], "16, \"16\" and \"16.0\" are one category");
        let got = canonical_counts(vec![(Key::Str("x".into()), 1)], &numeric);
        assert!(matches!(got[0].0, Key::Str(_)), "text that is no number stays text (unseen)");
        let textual = vec![(Key::Str("16".into()), 5), (Key::Str("EU".into()), 5)];
        let got = canonical_counts(vec![(Key::Num(16.0), 2), (Key::Str("16".into()), 1)], &textual);
        assert_eq!(keys(&got), ["16:3"]);
        let boolean = vec![(Key::Str("false".into()), 5), (Key::Str("true".into()), 5)];
        let got = canonical_counts(vec![(Key::Str("True".into()), 2), (Key::Str("true".into()), 1)], &boolean);
        assert_eq!(keys(&got), ["true:3"]);
        assert_eq!(number_text(16.0), "16");
        assert_eq!(number_text(2.5), "2.5");
    }
}
