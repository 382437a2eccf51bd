//! The batch analyzer behind `driftd analyze` and `driftd check`: column selection, kind
//! inference, test selection, and the per-feature statistics, in either mode.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::dataset::{Column, Dataset, Key, Values};
use crate::error::InputError;
use crate::profile::{FeatureProfile, NumericSummary, Profile};
use crate::report::{FeatureReport, Report, Skipped, Source};
use crate::stats::binning::{
    align_sorted, histogram_sorted, more_distinct_than, n_unique_union_sorted, n_unique_union_sorted_capped,
    native_counts_sorted, sturges_edges, value_counts_sorted,
};

/// The default test selection only asks whether a feature has more than 5 distinct values.
const SELECTION_CAP: usize = 6;
use crate::stats::{self, Aligned, Kind, Outcome, StatTest};

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

/// Which columns to compare and how to read them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these columns (all shared columns when `None`).
    pub columns: Option<Vec<String>>,
    pub exclude: Vec<String>,
    /// Force these columns numerical / categorical.
    pub numerical: Vec<String>,
    pub categorical: Vec<String>,
}

impl Selection {
    fn forced_kind(&self, name: &str) -> Option<Kind> {
        if self.numerical.iter().any(|n| n == name) {
            Some(Kind::Numerical)
        } else if self.categorical.iter().any(|n| n == name) {
            Some(Kind::Categorical)
        } else {
            None
        }
    }

    fn named(&self, name: &str) -> bool {
        self.columns.as_ref().is_some_and(|c| c.iter().any(|n| n == name)) || self.forced_kind(name).is_some()
    }

    /// Rejects contradictory flags before any file is read.
    pub fn validate(&self) -> Result<(), InputError> {
        if let Some(both) = self.numerical.iter().find(|n| self.categorical.contains(n)) {
            return Err(InputError::flag("--numerical/--categorical", format!("column '{both}' is named in both")));
        }
        Ok(())
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
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            mode: Mode::Native,
            tests: TestChoice::default(),
            drift_share: 0.5,
            selection: Selection::default(),
            bins: crate::profile::DEFAULT_BINS,
        }
    }
}

/// The reference side: a dataset, or a profile `driftd baseline` wrote.
#[derive(Debug, Clone)]
pub enum Reference {
    Dataset(Dataset),
    Profile(std::sync::Arc<Profile>, std::path::PathBuf),
}

/// A column's kind from its dtype, as Evidently's legacy data-drift table reads it: numbers
/// are numerical (a numerical column with few distinct values still gets a categorical
/// test through the default selection); text, booleans and categoricals are categorical.
pub fn infer_kind(values: &Values) -> Option<Kind> {
    match values {
        Values::Numeric { .. } => Some(Kind::Numerical),
        Values::Categorical { .. } => Some(Kind::Categorical),
        Values::Unsupported { .. } => None,
    }
}

/// Evidently 0.7's default test: by reference size, kind, and the number of distinct
/// values in reference and current together.
pub fn default_test(kind: Kind, n_reference: usize, n_values: usize) -> StatTest {
    if n_reference <= 1000 {
        match kind {
            Kind::Numerical if n_values > 5 => StatTest::Ks,
            _ if n_values > 2 => StatTest::ChiSquare,
            _ => StatTest::Z,
        }
    } else {
        match kind {
            Kind::Numerical if n_values > 5 => StatTest::Wasserstein,
            _ => StatTest::JensenShannon,
        }
    }
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
            let (plan, skipped) = plan_from_datasets(ds, current, opts)?;
            (plan, skipped, Source::of(ds))
        }
        Reference::Profile(p, path) => {
            let plan = plan_from_profile(p, path, current, opts)?;
            let source = Source { path: path.display().to_string(), rows: p.rows };
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
    Ok(Report::new(opts.mode, ref_source, Source::of(current), features, skipped, opts.drift_share))
}

/// The features to compare, with their kinds, in report order.
pub type Plan = Vec<(String, Kind)>;

fn plan_from_datasets(
    reference: &Dataset,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<(Plan, Vec<Skipped>), InputError> {
    let sel = &opts.selection;
    let mut names: Vec<String> = match &sel.columns {
        Some(cols) => cols.clone(),
        None => {
            let mut n: Vec<String> = reference.columns.iter().map(|c| c.name.clone()).collect();
            for c in &current.columns {
                if !n.contains(&c.name) {
                    n.push(c.name.clone());
                }
            }
            n
        }
    };
    names.retain(|n| !sel.exclude.contains(n));
    for forced in sel.numerical.iter().chain(&sel.categorical) {
        if !names.contains(forced) && !sel.exclude.contains(forced) {
            return Err(InputError::flag(
                "--numerical/--categorical",
                format!("column '{forced}' is not among the compared columns"),
            ));
        }
    }
    let mut plan = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        let r = reference.column(&name);
        let c = current.column(&name);
        let (r, c) = match (r, c) {
            (Some(r), Some(c)) => (r, c),
            (None, Some(_)) => {
                return Err(InputError::column(
                    &reference.path,
                    &name,
                    format!("is missing here but present in {}", current.path.display()),
                ))
            }
            (Some(_), None) => {
                return Err(InputError::column(
                    &current.path,
                    &name,
                    format!("is missing here but present in {}", reference.path.display()),
                ))
            }
            (None, None) => return Err(InputError::flag("--columns", format!("column '{name}' is in neither file"))),
        };
        if let Some(dtype) = unsupported(r).or(unsupported(c)) {
            if sel.named(&name) {
                return Err(InputError::column(
                    &reference.path,
                    &name,
                    format!("has dtype {dtype}, which drift is not computed on"),
                ));
            }
            skipped.push(Skipped { name, reason: format!("dtype {dtype} is not analyzed") });
            continue;
        }
        let kind = match sel.forced_kind(&name) {
            Some(Kind::Numerical) => {
                for col in [(r, &reference.path), (c, &current.path)] {
                    if !matches!(col.0.values, Values::Numeric { .. }) {
                        return Err(InputError::column(
                            col.1,
                            &name,
                            "cannot be numerical (--numerical): it holds text or booleans",
                        ));
                    }
                }
                Kind::Numerical
            }
            Some(Kind::Categorical) => Kind::Categorical,
            None => {
                let numeric = |c: &Column| matches!(c.values, Values::Numeric { .. });
                if numeric(r) != numeric(c) {
                    let describe = |c: &Column| {
                        if numeric(c) {
                            "numbers"
                        } else {
                            "text or booleans"
                        }
                    };
                    return Err(InputError::column(
                        &current.path,
                        &name,
                        format!(
                            "kind differs between the files: {} here, {} in {}",
                            describe(c),
                            describe(r),
                            reference.path.display()
                        ),
                    ));
                }
                infer_kind(&r.values).expect("supported column")
            }
        };
        plan.push((name, kind));
    }
    Ok((plan, skipped))
}

fn plan_from_profile(
    profile: &Profile,
    path: &std::path::Path,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<Plan, InputError> {
    let sel = &opts.selection;
    if let Some(cols) = &sel.columns {
        if let Some(missing) = cols.iter().find(|c| profile.feature(c).is_none()) {
            return Err(InputError::column(path, missing, "is not in the profile"));
        }
    }
    let mut plan = Vec::new();
    for f in &profile.features {
        if sel.exclude.contains(&f.name) || sel.columns.as_ref().is_some_and(|c| !c.contains(&f.name)) {
            continue;
        }
        if let Some(k) = sel.forced_kind(&f.name) {
            if k != f.kind {
                return Err(InputError::column(
                    path,
                    &f.name,
                    format!(
                        "the profile holds it as {}, not {} (rebuild the profile with the flag)",
                        f.kind.as_str(),
                        k.as_str()
                    ),
                ));
            }
        }
        let c = current.column(&f.name).ok_or_else(|| {
            InputError::column(
                &current.path,
                &f.name,
                format!("is missing here but present in the profile {}", path.display()),
            )
        })?;
        if let Some(dtype) = unsupported(c) {
            return Err(InputError::column(
                &current.path,
                &f.name,
                format!("has dtype {dtype}, which drift is not computed on"),
            ));
        }
        if f.kind == Kind::Numerical && !matches!(c.values, Values::Numeric { .. }) {
            return Err(InputError::column(
                &current.path,
                &f.name,
                "kind differs: text or booleans here, numbers in the profile",
            ));
        }
        plan.push((f.name.clone(), f.kind));
    }
    Ok(plan)
}

fn unsupported(c: &Column) -> Option<&str> {
    match &c.values {
        Values::Unsupported { dtype } => Some(dtype),
        _ => None,
    }
}

fn ensure_not_empty(col: &Column, path: &std::path::Path) -> Result<(), InputError> {
    let empty = match &col.values {
        Values::Numeric { sorted, .. } => sorted.is_empty(),
        Values::Categorical { counts } => counts.is_empty(),
        Values::Unsupported { .. } => false,
    };
    if empty {
        Err(InputError::column(path, &col.name, "is empty after dropping missing values"))
    } else {
        Ok(())
    }
}

fn choose(
    name: &str,
    kind: Kind,
    n_reference: usize,
    n_values: impl FnOnce() -> usize,
    opts: &AnalyzeOptions,
    path: &std::path::Path,
) -> Result<(StatTest, f64), InputError> {
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
    let threshold = opts.tests.threshold(name, kind).unwrap_or(test.default_threshold());
    test.check_threshold(threshold).map_err(|e| InputError::flag("--threshold", format!("feature '{name}': {e}")))?;
    Ok((test, threshold))
}

fn aligned_counts(a: &[(Key, u64)], b: &[(Key, u64)]) -> Aligned {
    let (_, r, c) = align_sorted(a, b);
    Aligned { n_reference: r.iter().sum(), n_current: c.iter().sum(), reference: r, current: c }
}

fn aligned_values(a: &[(f64, u64)], b: &[(f64, u64)]) -> Aligned {
    let (_, r, c) = align_sorted(a, b);
    Aligned { n_reference: r.iter().sum(), n_current: c.iter().sum(), reference: r, current: c }
}

fn discrete(test: StatTest, a: &Aligned) -> Outcome {
    match test {
        StatTest::Psi => stats::psi(a),
        StatTest::KlDiv => stats::kl_div(a),
        StatTest::JensenShannon => stats::jensenshannon(a),
        StatTest::Hellinger => stats::hellinger(a),
        StatTest::ChiSquare => stats::chisquare(a),
        StatTest::Z => stats::z_test(a),
        StatTest::Ks | StatTest::Wasserstein => unreachable!("numerical tests take samples"),
    }
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
    let (test, threshold, outcome, n_ref, n_cur) = match kind {
        Kind::Numerical => {
            let Values::Numeric { sorted: rs, integer: ri } = &r.values else {
                return Err(InputError::column(ref_path, name, "holds no numbers"));
            };
            let (cs, ci) = current_sorted(c, current)?;
            let (test, threshold) =
                choose(name, kind, rs.len(), || n_unique_union_sorted_capped(rs, cs, SELECTION_CAP), opts, ref_path)?;
            let integer = *ri && ci;
            let outcome = match test {
                StatTest::Ks => stats::ks(rs, rs.len(), cs),
                StatTest::Wasserstein => stats::wasserstein_norm(rs, stats::mean_std(rs).1, cs),
                StatTest::Hellinger => {
                    let keys = n_unique_union_sorted(rs, cs);
                    let (min, max) = (rs[0].min(cs[0]), rs[rs.len() - 1].max(cs[cs.len() - 1]));
                    let edges = sturges_edges(min, max, keys, integer);
                    stats::hellinger_density(&histogram_sorted(rs, &edges), &histogram_sorted(cs, &edges), &edges)
                }
                StatTest::Psi | StatTest::KlDiv | StatTest::JensenShannon
                    if more_distinct_than(rs, crate::profile::DISCRETE_MAX) =>
                {
                    let (min, max) = (rs[0].min(cs[0]), rs[rs.len() - 1].max(cs[cs.len() - 1]));
                    let edges = sturges_edges(min, max, rs.len() + cs.len(), integer);
                    let a = Aligned {
                        reference: histogram_sorted(rs, &edges),
                        current: histogram_sorted(cs, &edges),
                        n_reference: rs.len() as f64,
                        n_current: cs.len() as f64,
                    };
                    discrete(test, &a)
                }
                _ => discrete(test, &aligned_values(&value_counts_sorted(rs), &value_counts_sorted(cs))),
            };
            (test, threshold, outcome, rs.len(), cs.len())
        }
        Kind::Categorical => {
            let rc =
                r.to_categorical().ok_or_else(|| InputError::column(ref_path, name, "cannot be read as categories"))?;
            let cc = current_counts(c, current)?;
            let a = aligned_counts(&rc, &cc);
            let n_ref = a.n_reference as usize;
            let (test, threshold) = choose(name, kind, n_ref, || a.reference.len(), opts, ref_path)?;
            (test, threshold, discrete(test, &a), n_ref, a.n_current as usize)
        }
    };
    Ok(FeatureReport::new(name, kind, test, threshold, outcome, r.missing_share(), c.missing_share(), n_ref, n_cur))
}

/// One feature in native mode, against the reference profile.
fn native_feature(
    fp: &FeatureProfile,
    kind: Kind,
    c: &Column,
    current: &Dataset,
    opts: &AnalyzeOptions,
) -> Result<FeatureReport, InputError> {
    let name = fp.name.as_str();
    let (test, threshold, outcome, n_cur) = match kind {
        Kind::Numerical => {
            let p: &NumericSummary = fp.numeric.as_ref().expect("validated profile");
            let (cs, _) = current_sorted(c, current)?;
            let n_values = || match &p.values {
                Some(v) => {
                    let keys: Vec<f64> = v.iter().map(|(x, _)| *x).collect();
                    n_unique_union_sorted_capped(&keys, cs, SELECTION_CAP)
                }
                None => p.n_unique,
            };
            let (test, threshold) = choose(name, kind, fp.count, n_values, opts, &current.path)?;
            let outcome = match test {
                StatTest::Ks => stats::ks(&p.quantiles, fp.count, cs),
                StatTest::Wasserstein => stats::wasserstein_norm(&p.quantiles, p.std, cs),
                _ => match &p.values {
                    Some(v) => discrete(test, &aligned_values(v, &value_counts_sorted(cs))),
                    None => {
                        let a = Aligned {
                            reference: p.bin_counts.iter().map(|c| *c as f64).collect(),
                            current: native_counts_sorted(cs, &p.edges),
                            n_reference: fp.count as f64,
                            n_current: cs.len() as f64,
                        };
                        discrete(test, &a)
                    }
                },
            };
            (test, threshold, outcome, cs.len())
        }
        Kind::Categorical => {
            let rc = fp.categories.as_deref().unwrap_or_default();
            let cc = current_counts(c, current)?;
            let a = aligned_counts(rc, &cc);
            let (test, threshold) = choose(name, kind, fp.count, || a.reference.len(), opts, &current.path)?;
            (test, threshold, discrete(test, &a), a.n_current as usize)
        }
    };
    Ok(FeatureReport::new(name, kind, test, threshold, outcome, fp.missing_share, c.missing_share(), fp.count, n_cur))
}

/// Selection and kinds for one dataset on its own (what `driftd baseline` profiles).
pub fn plan_single(data: &Dataset, opts: &AnalyzeOptions) -> Result<(Plan, Vec<Skipped>), InputError> {
    let (plan, skipped) = plan_from_datasets(data, data, opts)?;
    for (name, _) in &plan {
        ensure_not_empty(data.column(name).expect("planned column is present"), &data.path)?;
    }
    if plan.is_empty() {
        return Err(InputError::flag("--columns", "no feature columns left to profile"));
    }
    Ok((plan, skipped))
}
