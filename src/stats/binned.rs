//! A numerical sample held in bounded memory: counts over fixed fine bins taken from the
//! reference, so a window's size costs nothing once it is binned. The coarse (native) bins
//! are unions of fine bins, so PSI, Jensen-Shannon, KL, Hellinger and chi-square come out
//! exactly as from the values. KS and Wasserstein come with a bound on their error, derived
//! from what the counts pin down:
//!
//! **KS.** Both distribution functions are known exactly just left of every fine edge (the
//! window's: the values counted in the bins below; the reference's: its sketch), so
//! `D_low`, the largest gap there (and at the range's ends), is a lower bound of D. Inside a
//! fine bin the window's function lies between its values at the bin's two ends, the
//! reference's too, so the largest gap inside the bin is at most
//! `max(W_hi - R_lo, R_hi - W_lo)`: the largest of these, `D_up`, bounds D from above. The
//! estimate is the midpoint, off by at most `(D_up - D_low) / 2`; with B equal-mass bins that
//! is at most half of `1/B + the window's largest share in one bin`.
//!
//! **Wasserstein** (the area between the two functions). Below the reference's minimum and
//! above its maximum the area is exact: the window's values there are summed as they come
//! (their distance past the range). Inside a fine bin of width w holding c of the n window
//! values, the window's function is taken as rising linearly across the bin; it differs from
//! the truth by at most c/n there, so the area is off by at most the sum of w * c / n over
//! the bins (divided, like the distance, by the reference's standard deviation).

use std::sync::Arc;

/// Fine bins per continuous feature for windows too big to keep: 1,000 equal-mass bins (a
/// KS error of at most about 1/2,000 plus half the window's largest share in one bin).
pub const FINE_BINS: usize = 1_000;

use super::binning::{native_bin, quantiles_sorted};

/// Fine bins shared by every window of one feature: edges from the reference's minimum to
/// its maximum (its quantiles, and every coarse edge), and each fine native bin's coarse
/// native bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub edges: Vec<f64>,
    coarse_of: Vec<usize>,
    coarse_bins: usize,
}

impl Bins {
    /// `bins` equal-mass bins over the reference's quantile `sketch`, split further at the
    /// `coarse` edges (the profile's native edges, a subset of the result).
    pub fn new(sketch: &[f64], coarse: &[f64], bins: usize) -> Bins {
        let mut edges = quantiles_sorted(sketch, bins.max(1) + 1);
        edges.extend_from_slice(coarse);
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        let fine_bins = edges.len() + 1;
        // a fine bin lies inside one coarse bin: the coarse bin of its left edge
        let coarse_of = (0..fine_bins)
            .map(|f| match f {
                0 => 0,
                f if f == fine_bins - 1 => coarse.len(),
                f => native_bin(coarse, edges[f - 1]),
            })
            .collect();
        Bins { edges, coarse_of, coarse_bins: coarse.len() + 1 }
    }

    /// Fine native bins: underflow, the inner bins, overflow.
    pub fn len(&self) -> usize {
        self.edges.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }
}

/// A window's values of one feature, as counts over its fine bins.
#[derive(Debug, Clone, PartialEq)]
pub struct BinnedSample {
    pub bins: Arc<Bins>,
    pub counts: Vec<u64>,
    /// Per inner bin, its values' distances past the bin's lower edge, summed: the area
    /// under the window's distribution function there is then known exactly.
    pub sums: Vec<f64>,
    /// The distances below the minimum and above the maximum, summed.
    pub below_excess: f64,
    pub above_excess: f64,
    pub n: u64,
}

/// An estimate and the bound on its error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounded {
    pub value: f64,
    pub error_bound: f64,
}

impl BinnedSample {
    pub fn new(bins: Arc<Bins>) -> BinnedSample {
        let counts = vec![0; bins.len()];
        let sums = vec![0.0; bins.len()];
        BinnedSample { bins, counts, sums, below_excess: 0.0, above_excess: 0.0, n: 0 }
    }

    /// One value (finite). O(log bins).
    pub fn add(&mut self, x: f64) {
        let edges = &self.bins.edges;
        let bin = native_bin(edges, x);
        self.counts[bin] += 1;
        self.n += 1;
        if edges.is_empty() {
            return;
        }
        if bin == 0 {
            self.below_excess += edges[0] - x;
        } else if bin == edges.len() {
            self.above_excess += x - edges[edges.len() - 1];
        } else {
            self.sums[bin] += x - edges[bin - 1];
        }
    }

    pub fn from_values(bins: Arc<Bins>, values: &[f64]) -> BinnedSample {
        let mut s = BinnedSample::new(bins);
        values.iter().for_each(|x| s.add(*x));
        s
    }

    /// Adds another sample over the same bins (partitions, replicas, window slots).
    pub fn merge(&mut self, other: &BinnedSample) {
        debug_assert!(Arc::ptr_eq(&self.bins, &other.bins) || self.bins == other.bins);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a += b;
        }
        self.below_excess += other.below_excess;
        self.above_excess += other.above_excess;
        self.n += other.n;
    }

    /// Counts over the coarse native bins: exact.
    pub fn coarse_counts(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.bins.coarse_bins];
        for (f, c) in self.counts.iter().enumerate() {
            out[self.bins.coarse_of[f]] += *c as f64;
        }
        out
    }

    /// Values below the reference's minimum and above its maximum.
    pub fn out_of_range(&self) -> u64 {
        self.counts[0] + self.counts[self.counts.len() - 1]
    }

    /// The KS statistic against the reference's sorted sketch (its empirical distribution),
    /// with its error bound.
    pub fn ks(&self, sketch: &[f64]) -> Bounded {
        let (edges, c, n, s) = (&self.bins.edges, &self.counts, self.n as f64, sketch.len() as f64);
        if self.n == 0 || sketch.is_empty() || edges.is_empty() {
            return Bounded { value: f64::NAN, error_bound: f64::NAN };
        }
        let k = edges.len();
        let r_lt = |x: f64| sketch.partition_point(|v| *v < x) as f64 / s;
        let r_le = |x: f64| sketch.partition_point(|v| *v <= x) as f64 / s;
        // below the minimum and above the maximum the gaps are exact
        let (first, last) = (c[0] as f64 / n, c[k] as f64 / n);
        let (mut low, mut up) = (first.max(last), first.max(last));
        let mut below = c[0] as f64; // window values left of the current bin
        for j in 1..k {
            // inner bin j: [edges[j-1], edges[j]), the last one closed
            let (lo_edge, hi_edge) = (edges[j - 1], edges[j]);
            let closed = j == k - 1;
            let (w_lo, w_hi) = (below / n, (below + c[j] as f64) / n);
            let (r_lo, r_hi) = (r_le(lo_edge).min(r_lt(hi_edge)), if closed { 1.0 } else { r_lt(hi_edge) });
            // exact just left of the bin's lower edge
            low = low.max((w_lo - r_lt(lo_edge)).abs());
            if self.sums[j] == 0.0 {
                // every value on the lower edge (or none): the window's function is flat in
                // the bin, and the gap there is known
                let exact = (w_hi - r_le(lo_edge)).abs().max((w_hi - r_hi).abs());
                low = low.max(exact);
                up = up.max(exact).max((w_lo - r_lt(lo_edge)).abs());
            } else {
                up = up.max((w_hi - r_lo).max(r_hi - w_lo)).max((w_lo - r_lt(lo_edge)).abs());
            }
            below += c[j] as f64;
        }
        Bounded { value: (low + up) / 2.0, error_bound: (up - low) / 2.0 }
    }

    /// The Wasserstein distance to the reference's sketch, with its error bound (both in the
    /// feature's units).
    pub fn wasserstein(&self, sketch: &[f64]) -> Bounded {
        let (edges, c, n) = (&self.bins.edges, &self.counts, self.n as f64);
        if self.n == 0 || sketch.is_empty() || edges.is_empty() {
            return Bounded { value: f64::NAN, error_bound: f64::NAN };
        }
        let s = sketch.len() as f64;
        let k = edges.len();
        let mut area = (self.below_excess + self.above_excess) / n;
        let mut bound = 0.0;
        let mut below = c[0] as f64;
        let mut point = sketch.partition_point(|v| *v < edges[0]);
        for j in 1..k {
            let (a, b) = (edges[j - 1], edges[j]);
            let (wa, wb) = (below / n, (below + c[j] as f64) / n);
            let width = b - a;
            // the reference's function across the bin: its lowest and highest values and
            // its area; the window's linear across the bin, and the area between the two
            let lin = |x: f64| wa + (wb - wa) * (x - a) / width;
            while point < sketch.len() && sketch[point] <= a {
                point += 1;
            }
            let r_lo = point as f64 / s;
            let (mut x0, mut r_area, mut lin_area, mut flat_area) = (a, 0.0, 0.0, 0.0);
            let r_hi = loop {
                let r = point as f64 / s;
                let x1 = if point < sketch.len() { sketch[point].min(b) } else { b };
                r_area += r * (x1 - x0);
                lin_area += abs_area(lin(x0) - r, lin(x1) - r, x1 - x0);
                flat_area += (wb - r).abs() * (x1 - x0);
                if x1 >= b {
                    break r;
                }
                x0 = x1;
                while point < sketch.len() && sketch[point] <= x0 {
                    point += 1;
                }
            };
            if self.sums[j] == 0.0 {
                // every value on the lower edge (or none): the window's function is flat
                area += flat_area;
            } else if wb <= r_lo || wa >= r_hi {
                // the two functions cannot cross in the bin: the area between them is the
                // difference of their areas, known exactly
                let w_area = wa * width + (c[j] as f64 * width - self.sums[j]) / n;
                area += (w_area - r_area).abs();
            } else {
                area += lin_area;
                bound += width * c[j] as f64 / n;
            }
            below += c[j] as f64;
        }
        Bounded { value: area, error_bound: bound }
    }
}

/// The first Wasserstein distance between a sorted sample and one given as (value, count)
/// pairs sorted by value: exact.
pub fn wasserstein_counts(u: &[f64], v: &[(f64, u64)]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.iter().map(|(_, c)| *c as f64).sum::<f64>());
    let (mut i, mut j, mut below) = (0usize, 0usize, 0u64);
    let (mut total, mut prev) = (0.0, None::<f64>);
    while i < u.len() || j < v.len() {
        let x = match (u.get(i), v.get(j)) {
            (Some(&x), Some(&(y, _))) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&(y, _))) => y,
            (None, None) => unreachable!(),
        };
        if let Some(p) = prev {
            total += (i as f64 / nu - below as f64 / nv).abs() * (x - p);
        }
        while i < u.len() && u[i] <= x {
            i += 1;
        }
        while j < v.len() && v[j].0 <= x {
            below += v[j].1;
            j += 1;
        }
        prev = Some(x);
    }
    total
}

/// The area of |g| over an interval of `width` where g runs linearly from `ga` to `gb`.
fn abs_area(ga: f64, gb: f64, width: f64) -> f64 {
    if width <= 0.0 {
        return 0.0;
    }
    if (ga >= 0.0) == (gb >= 0.0) {
        (ga.abs() + gb.abs()) / 2.0 * width
    } else {
        (ga * ga + gb * gb) / (2.0 * (ga.abs() + gb.abs())) * width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::XorShift64;
    use crate::stats::{ks_counts, ks_statistic, sort_floats, wasserstein};

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        sort_floats(&mut v);
        v
    }

    /// The profile's native edges: deciles, deduplicated.
    fn deciles(reference: &[f64]) -> Vec<f64> {
        let mut e = quantiles_sorted(reference, 11);
        e.dedup();
        e
    }

    fn check(reference: &[f64], window: &[f64], bins: usize, what: &str) -> (f64, f64) {
        let coarse = deciles(reference);
        let b = Arc::new(Bins::new(reference, &coarse, bins));
        let s = BinnedSample::from_values(b, window);
        let w = sorted(window.to_vec());
        let (d_exact, w_exact) = (ks_statistic(reference, &w), wasserstein(reference, &w));
        let (d, a) = (s.ks(reference), s.wasserstein(reference));
        assert!((d.value - d_exact).abs() <= d.error_bound + 1e-12, "{what}: KS {d:?} vs exact {d_exact}");
        assert!((a.value - w_exact).abs() <= a.error_bound + 1e-9, "{what}: W1 {a:?} vs exact {w_exact}");
        // coarse counts are exact
        assert_eq!(s.coarse_counts(), crate::stats::binning::native_counts_sorted(&w, &coarse), "{what}");
        (d.error_bound, a.error_bound)
    }

    #[test]
    fn binned_statistics_stay_within_their_bounds() {
        let mut rng = XorShift64::new(42);
        let reference = sorted((0..5000).map(|_| rng.normal()).collect());
        // random windows, shifted and not, small and large
        for (n, shift) in [(50, 0.0), (1000, 0.0), (20_000, 0.3), (5000, -2.0)] {
            let w: Vec<f64> = (0..n).map(|_| rng.normal() + shift).collect();
            let (kb, _) = check(&reference, &w, 1000, &format!("normal n={n} shift={shift}"));
            assert!(kb <= 0.5 * (1.0 / 1000.0 + 0.01) + 1e-3, "KS bound {kb} at n={n}");
        }
        // adversarial: every value in one fine bin, values on the edges, heavy tails, ties
        let b = Arc::new(Bins::new(&reference, &deciles(&reference), 1000));
        let inside = (b.edges[500] + b.edges[501]) / 2.0;
        check(&reference, &vec![inside; 3000], 1000, "one bin");
        check(&reference, &b.edges.clone(), 1000, "the edges themselves");
        let cauchy: Vec<f64> = (0..4000).map(|_| (std::f64::consts::PI * (rng.next_f64() - 0.5)).tan()).collect();
        check(&reference, &cauchy, 1000, "cauchy");
        let ints = sorted((0..3000).map(|_| (rng.below(7)) as f64).collect());
        let wint: Vec<f64> = (0..800).map(|_| rng.below(9) as f64).collect();
        check(&ints, &wint, 1000, "integers with ties");
        check(&reference, &[reference[0], reference[4999], 10.0, -10.0], 1000, "four values");
    }

    #[test]
    fn counted_samples_give_the_exact_numbers() {
        let mut rng = XorShift64::new(3);
        let reference = sorted((0..1000).map(|_| rng.below(12) as f64).collect());
        let window = sorted((0..700).map(|_| rng.below(15) as f64).collect());
        let counts = crate::stats::binning::value_counts_sorted(&window);
        assert_eq!(ks_counts(&reference, &counts), ks_statistic(&reference, &window));
        assert!((wasserstein_counts(&reference, &counts) - wasserstein(&reference, &window)).abs() < 1e-12);
    }

    #[test]
    fn binned_samples_merge_by_addition() {
        let mut rng = XorShift64::new(7);
        let reference = sorted((0..2000).map(|_| rng.normal()).collect());
        let b = Arc::new(Bins::new(&reference, &deciles(&reference), 200));
        let values: Vec<f64> = (0..3000).map(|_| 1.5 * rng.normal()).collect();
        let whole = BinnedSample::from_values(b.clone(), &values);
        let mut parts = BinnedSample::from_values(b.clone(), &values[..1000]);
        parts.merge(&BinnedSample::from_values(b, &values[1000..]));
        assert_eq!(parts.counts, whole.counts);
        assert_eq!(parts.n, whole.n);
        assert!((parts.above_excess - whole.above_excess).abs() < 1e-9);
    }
}
