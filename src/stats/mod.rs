//! The statistics engine: every drift statistic driftd reports, as pure functions over
//! sorted numeric samples or aligned count vectors. The analyzers (batch and, later,
//! streaming windows) only choose which function to call; none has its own copy.

pub mod binned;
pub mod binning;
pub mod kolmogorov;
pub mod selection;
pub mod sort;

pub use sort::sort_floats;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// A drift statistic, by its report and config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatTest {
    Ks,
    Psi,
    Wasserstein,
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    KlDiv,
    Hellinger,
    #[serde(rename = "chisquare")]
    ChiSquare,
    Z,
}

/// The kind of a feature: what tests apply and how it is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Numerical,
    Categorical,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numerical => "numerical",
            Kind::Categorical => "categorical",
        }
    }
}

impl StatTest {
    pub const ALL: [StatTest; 8] = [
        StatTest::Ks,
        StatTest::Psi,
        StatTest::Wasserstein,
        StatTest::JensenShannon,
        StatTest::KlDiv,
        StatTest::Hellinger,
        StatTest::ChiSquare,
        StatTest::Z,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatTest::Ks => "ks",
            StatTest::Psi => "psi",
            StatTest::Wasserstein => "wasserstein",
            StatTest::JensenShannon => "jensenshannon",
            StatTest::KlDiv => "kl_div",
            StatTest::Hellinger => "hellinger",
            StatTest::ChiSquare => "chisquare",
            StatTest::Z => "z",
        }
    }

    /// Parses a stattest name; the error lists the names that exist.
    pub fn parse(name: &str) -> Result<StatTest, String> {
        StatTest::ALL.into_iter().find(|t| t.name() == name.trim()).ok_or_else(|| {
            let names: Vec<_> = StatTest::ALL.iter().map(|t| t.name()).collect();
            format!("unknown stattest '{name}' (known: {})", names.join(", "))
        })
    }

    /// True when the score is a p-value (drift when it is small), false for distances
    /// (drift when it is large).
    pub fn is_pvalue(self) -> bool {
        matches!(self, StatTest::Ks | StatTest::ChiSquare | StatTest::Z)
    }

    /// Evidently 0.7's default threshold for the test.
    pub fn default_threshold(self) -> f64 {
        match self {
            StatTest::Ks | StatTest::ChiSquare | StatTest::Z => 0.05,
            _ => 0.1,
        }
    }

    /// The kinds a test may be asked for by name (Evidently's `allowed_feature_types`).
    /// The default selection may still apply `chisquare` and `z` to a numerical column
    /// with few distinct values, as Evidently does.
    pub fn allows(self, kind: Kind) -> bool {
        match self {
            StatTest::Ks | StatTest::Wasserstein => kind == Kind::Numerical,
            StatTest::ChiSquare | StatTest::Z => kind == Kind::Categorical,
            _ => true,
        }
    }

    /// Evidently's comparison direction, kept exactly (`ks` is `<=`, `chisquare` and `z`
    /// are `<`, distances are `>=`).
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            StatTest::Ks => score <= threshold,
            StatTest::ChiSquare | StatTest::Z => score < threshold,
            _ => score >= threshold,
        }
    }

    /// Checks a threshold for this test: p-value thresholds lie in (0, 1), distance
    /// thresholds are positive and finite.
    pub fn check_threshold(self, threshold: f64) -> Result<(), String> {
        let ok = if self.is_pvalue() {
            threshold > 0.0 && threshold < 1.0
        } else {
            threshold > 0.0 && threshold.is_finite()
        };
        if ok {
            Ok(())
        } else if self.is_pvalue() {
            Err(format!(
                "threshold {threshold} is out of range for {} (a p-value threshold must lie in (0, 1))",
                self.name()
            ))
        } else {
            Err(format!(
                "threshold {threshold} is out of range for {} (a distance threshold must be positive and finite)",
                self.name()
            ))
        }
    }
}

/// Read by name, with the error `parse` gives (listing the known names).
impl<'de> Deserialize<'de> for StatTest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        StatTest::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for StatTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a test computed: the statistic (KS D, chi-square, z, or the distance) and, for a
/// hypothesis test, its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub statistic: f64,
    pub p_value: Option<f64>,
}

impl Outcome {
    pub fn distance(d: f64) -> Self {
        Outcome { statistic: d, p_value: None }
    }

    /// The number held against the threshold: the p-value for a test, else the distance.
    pub fn score(&self) -> f64 {
        self.p_value.unwrap_or(self.statistic)
    }
}

// ---------------------------------------------------------------------------------------
// Numeric samples (sorted ascending, finite)

/// The two-sided KS statistic D between two sorted samples (scipy's `ks_2samp` D).
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    ks_weighted(a, b, |x| (*x, 1))
}

/// The KS statistic D between a sorted sample and one given as (value, count) pairs sorted
/// by value: exact, as scipy's `ks_2samp` D on the expanded sample.
pub fn ks_counts(a: &[f64], b: &[(f64, u64)]) -> f64 {
    ks_weighted(a, b, |p| *p)
}

/// D between a sorted sample and sorted items each standing for `count` values.
fn ks_weighted<B>(a: &[f64], b: &[B], item: impl Fn(&B) -> (f64, u64)) -> f64 {
    let n1 = a.len() as f64;
    let n2 = b.iter().map(|x| item(x).1 as f64).sum::<f64>();
    let (mut i, mut j, mut below) = (0usize, 0usize, 0u64);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j).map(&item)) {
            (Some(&x), Some((y, _))) => x.min(y),
            (Some(&x), None) => x,
            (None, Some((y, _))) => y,
            (None, None) => unreachable!(),
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while let Some((_, count)) = b.get(j).map(&item).filter(|(y, _)| *y <= x) {
            below += count;
            j += 1;
        }
        let diff = i as f64 / n1 - below as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let min_s = (-min_diff).clamp(0.0, 1.0);
    if min_s > max_diff {
        min_s
    } else {
        max_diff
    }
}

/// Two-sample KS test between sorted samples; `n_ref` may exceed `reference.len()` when
/// the reference is a quantile sketch of a larger sample (the p-value uses the real size).
pub fn ks(reference: &[f64], n_ref: usize, current: &[f64]) -> Outcome {
    let d = ks_statistic(reference, current);
    let (d, p) = kolmogorov::ks_2samp_pvalue(n_ref, current.len(), d);
    Outcome { statistic: d, p_value: Some(p) }
}

/// First Wasserstein distance between two sorted samples (scipy's `wasserstein_distance`).
pub fn wasserstein(u: &[f64], v: &[f64]) -> f64 {
    if u.is_empty() || v.is_empty() {
        return 0.0;
    }
    // The area between the CDFs equals the area between the quantile functions,
    // ∫₀¹ |U⁻¹(t) − V⁻¹(t)| dt: both are steps, U⁻¹ at the multiples of 1/|u| and V⁻¹ at
    // those of 1/|v|. Walking t in units of 1/(|u|·|v|) the steps' order depends on the
    // sizes alone, never on the data, so the walk branches predictably.
    let (nu, nv) = (u.len() as u64, v.len() as u64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut next_u, mut next_v, mut t) = (nv, nu, 0u64);
    let mut total = 0.0;
    while i < u.len() && j < v.len() {
        let step = next_u.min(next_v);
        total += (u[i] - v[j]).abs() * (step - t) as f64;
        t = step;
        if next_u == step {
            i += 1;
            next_u += nv;
        }
        if next_v == step {
            j += 1;
            next_v += nu;
        }
    }
    total / (nu as f64 * nv as f64)
}

/// Mean and population standard deviation (numpy's `std`, ddof 0).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Where a feature's values are clipped: one reference range beyond each of its extremes
/// (a constant reference: its value's magnitude, at least 1). A value out there still
/// counts as out of range, but one message cannot weigh more than that: k such values
/// in a window of n move the Wasserstein distance by at most k/n times three reference
/// ranges, KS, PSI and the other binned statistics by k/n of mass.
pub fn clip_range(min: f64, max: f64) -> (f64, f64) {
    if !(min.is_finite() && max.is_finite() && min <= max) {
        // no usable range: nothing clipped (and `clamp` never sees NaN)
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let span = if max > min { max - min } else { min.abs().max(1.0) };
    (min - span, max + span)
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn the_clip_is_one_range_beyond_each_extreme_and_never_nan() {
        assert_eq!(super::clip_range(2.0, 5.0), (-1.0, 8.0));
        assert_eq!(super::clip_range(3.0, 3.0), (0.0, 6.0));
        assert_eq!(super::clip_range(0.0, 0.0), (-1.0, 1.0));
        assert_eq!(super::clip_range(f64::NAN, 1.0), (f64::NEG_INFINITY, f64::INFINITY));
        assert_eq!(super::clip_range(2.0, 1.0), (f64::NEG_INFINITY, f64::INFINITY));
    }
}

/// Wasserstein distance normalised by the reference's population standard deviation
/// (floored at 0.001), Evidently's `wasserstein` test.
pub fn wasserstein_norm(reference: &[f64], reference_std: f64, current: &[f64]) -> Outcome {
    let norm = reference_std.max(0.001);
    Outcome::distance(wasserstein(reference, current) / norm)
}

// ---------------------------------------------------------------------------------------
// Discrete distributions: two count vectors over the same bins or categories

/// Reference and current counts over the same bins (or categories, in key order).
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned {
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
    /// Sample sizes the shares are taken of (Evidently divides by the sample length).
    pub n_reference: f64,
    pub n_current: f64,
}

impl Aligned {
    pub fn shares(&self) -> (Vec<f64>, Vec<f64>) {
        (
            self.reference.iter().map(|c| c / self.n_reference).collect(),
            self.current.iter().map(|c| c / self.n_current).collect(),
        )
    }

    /// Shares with empty bins filled the way Evidently fills them: by a millionth of the
    /// smallest non-empty share when that is at most 1e-4, else by 1e-4.
    pub fn filled_shares(&self) -> (Vec<f64>, Vec<f64>) {
        let (mut r, mut c) = self.shares();
        fill_zeroes(&mut r);
        fill_zeroes(&mut c);
        (r, c)
    }
}

fn fill_zeroes(p: &mut [f64]) {
    let min_nonzero = p.iter().copied().filter(|x| *x != 0.0).fold(f64::INFINITY, f64::min);
    if !min_nonzero.is_finite() {
        return;
    }
    let fill = if min_nonzero <= 0.0001 { min_nonzero / 1e6 } else { 0.0001 };
    for x in p.iter_mut().filter(|x| **x == 0.0) {
        *x = fill;
    }
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

fn normalized(p: &[f64]) -> Vec<f64> {
    let s: f64 = p.iter().sum();
    p.iter().map(|x| x / s).collect()
}

/// Population stability index over filled shares.
pub fn psi(a: &Aligned) -> Outcome {
    let (r, c) = a.filled_shares();
    let v = r.iter().zip(&c).map(|(r, c)| (r - c) * (r / c).ln()).sum();
    Outcome::distance(v)
}

/// Kullback-Leibler divergence KL(reference || current) over filled, renormalised shares
/// (scipy's `entropy`, natural log).
pub fn kl_div(a: &Aligned) -> Outcome {
    let (r, c) = a.filled_shares();
    let (r, c) = (normalized(&r), normalized(&c));
    Outcome::distance(r.iter().zip(&c).map(|(x, y)| rel_entr(*x, *y)).sum())
}

/// Jensen-Shannon distance (scipy's `jensenshannon`, natural log): the square root of
/// the divergence, bounded by sqrt(ln 2).
pub fn jensenshannon(a: &Aligned) -> Outcome {
    let (r, c) = a.shares();
    let (p, q) = (normalized(&r), normalized(&c));
    let js: f64 = p
        .iter()
        .zip(&q)
        .map(|(p, q)| {
            let m = (p + q) / 2.0;
            rel_entr(*p, m) + rel_entr(*q, m)
        })
        .sum();
    Outcome::distance((js / 2.0).max(0.0).sqrt())
}

/// Hellinger distance between two discrete distributions (Evidently's categorical form).
pub fn hellinger(a: &Aligned) -> Outcome {
    let (r, c) = a.shares();
    let bc: f64 = r.iter().zip(&c).map(|(p, q)| (p * q).sqrt()).sum();
    Outcome::distance((1.0 - bc.clamp(0.0, 1.0)).sqrt())
}

/// Hellinger distance between two density histograms over shared `edges` (Evidently's
/// numerical form: densities times the mean bin width).
pub fn hellinger_density(ref_counts: &[f64], cur_counts: &[f64], edges: &[f64]) -> Outcome {
    let density = |counts: &[f64]| -> Vec<f64> {
        let total: f64 = counts.iter().sum();
        counts.iter().zip(edges.windows(2)).map(|(c, w)| c / (w[1] - w[0]) / total).collect()
    };
    let (h1, h2) = (density(ref_counts), density(cur_counts));
    let first = edges.iter().copied().fold(f64::INFINITY, f64::min);
    let last = edges.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let bin_width = (last - first) / (edges.len() - 1) as f64;
    let bc: f64 = h1.iter().zip(&h2).map(|(p, q)| (p * q).sqrt() * bin_width).sum();
    Outcome::distance((1.0 - bc.clamp(0.0, 1.0)).sqrt())
}

/// Pearson's chi-square test of the current counts against the reference shares scaled
/// to the current size (Evidently's `chisquare`).
pub fn chisquare(a: &Aligned) -> Outcome {
    let k_norm = a.n_current / a.n_reference;
    let stat: f64 = a
        .reference
        .iter()
        .zip(&a.current)
        .map(|(r, obs)| {
            let exp = r * k_norm;
            (obs - exp) * (obs - exp) / exp
        })
        .sum();
    let dof = a.reference.len().saturating_sub(1);
    let p = if dof == 0 {
        f64::NAN
    } else if stat.is_infinite() {
        0.0
    } else {
        ChiSquared::new(dof as f64).map(|d| d.sf(stat)).unwrap_or(f64::NAN)
    };
    Outcome { statistic: stat, p_value: Some(p) }
}

/// The tests over two count vectors, by name.
pub fn discrete(test: StatTest, a: &Aligned) -> Outcome {
    match test {
        StatTest::Psi => psi(a),
        StatTest::KlDiv => kl_div(a),
        StatTest::JensenShannon => jensenshannon(a),
        StatTest::Hellinger => hellinger(a),
        StatTest::ChiSquare => chisquare(a),
        StatTest::Z => z_test(a),
        StatTest::Ks | StatTest::Wasserstein => unreachable!("numerical tests take samples"),
    }
}

/// Two-proportion z-test of the share of values other than the first key (keys sorted
/// ascending), two-sided: Evidently's `z`.
pub fn z_test(a: &Aligned) -> Outcome {
    let ref_present = a.reference.iter().filter(|c| **c > 0.0).count();
    let cur_present = a.current.iter().filter(|c| **c > 0.0).count();
    if ref_present == 1
        && cur_present == 1
        && a.reference.iter().position(|c| *c > 0.0) == a.current.iter().position(|c| *c > 0.0)
    {
        return Outcome { statistic: 0.0, p_value: Some(1.0) };
    }
    let (n1, n2) = (a.n_reference, a.n_current);
    let first_ref = a.reference.first().copied().unwrap_or(0.0);
    let first_cur = a.current.first().copied().unwrap_or(0.0);
    let p1 = (n1 - first_ref) / n1;
    let p2 = (n2 - first_cur) / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let normal = Normal::standard();
    let p = 2.0 * (1.0 - normal.cdf(z.abs()));
    Outcome { statistic: z, p_value: Some(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_statistic_of_disjoint_samples_is_one() {
        assert_eq!(ks_statistic(&[1.0, 2.0], &[3.0, 4.0, 5.0]), 1.0);
        assert_eq!(ks_statistic(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
    }

    #[test]
    fn wasserstein_of_a_shift_is_the_shift() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 2.5).collect();
        assert!((wasserstein(&a, &b) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn parse_names_every_test_and_rejects_others() {
        for t in StatTest::ALL {
            assert_eq!(StatTest::parse(t.name()), Ok(t));
        }
        let err = StatTest::parse("kolmogorov").unwrap_err();
        assert!(err.contains("unknown stattest 'kolmogorov'"), "{err}");
    }
}
