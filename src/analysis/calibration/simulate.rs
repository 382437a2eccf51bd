//! The null model's draws (see `mod.rs`): a Polya urn over the reference's cells,
//! and the simulator that scores each replicate window with every test of a feature.

use super::{GROUPS, SIM_POINTS};
use crate::analysis::profile::{FeatureProfile, NumericSummary};
use crate::rand::XorShift64;
use crate::stats::{binning::native_bin, discrete, Aligned, Kind, StatTest};

/// Cells a window's values fall in (runs of the reference's sketch, or categories, then
/// extra cells for what the reference never showed), drawn from as a Polya urn: each cell
/// starts with its Dirichlet parameter as weight and gains 1 per value drawn from it. The
/// window's counts are then Dirichlet-multinomial: a population drawn from the posterior,
/// then n values from it, without drawing the population itself. A Fenwick tree keeps a
/// draw at O(log cells).
pub(super) struct Urn {
    /// Dirichlet parameters: the reference values each cell holds (prior mass for extras).
    params: Vec<f64>,
    tree: Vec<f64>,
    total: f64,
    /// Reinforce (the Polya urn); without, draws come from the reference's own shares
    /// (for the test that shows why that is wrong).
    pub(super) reinforce: bool,
}

impl Urn {
    fn new(params: Vec<f64>) -> Urn {
        let tree = vec![0.0; params.len() + 1];
        Urn { params, tree, total: 0.0, reinforce: true }
    }

    /// Back to the parameters alone: the tree built in O(cells).
    fn reset(&mut self) {
        self.tree[0] = 0.0;
        for (i, p) in self.params.iter().enumerate() {
            self.tree[i + 1] = p.max(0.0);
        }
        for i in 1..self.tree.len() {
            let parent = i + (i & i.wrapping_neg());
            if parent < self.tree.len() {
                self.tree[parent] += self.tree[i];
            }
        }
        self.total = self.params.iter().map(|p| p.max(0.0)).sum();
    }

    fn add(&mut self, cell: usize, w: f64) {
        self.total += w;
        let mut i = cell + 1;
        while i < self.tree.len() {
            self.tree[i] += w;
            i += i & i.wrapping_neg();
        }
    }

    fn draw(&mut self, rng: &mut XorShift64) -> usize {
        let mut u = rng.next_f64() * self.total;
        let (mut pos, mut step) = (0, (self.tree.len() - 1).next_power_of_two());
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && self.tree[next] <= u {
                u -= self.tree[next];
                pos = next;
            }
            step >>= 1;
        }
        let cell = pos.min(self.params.len() - 1);
        if self.reinforce {
            self.add(cell, 1.0);
        }
        cell
    }
}

enum Shape {
    /// Numbers: the sketch's points, in runs; per point, its native bin and its distinct
    /// value's index.
    Numeric {
        sketch: Vec<f64>,
        runs: Vec<(usize, usize)>,
        /// Distinct sketch values with the reference's cumulative share at each.
        distinct: Vec<(f64, f64)>,
        distinct_of: Vec<usize>,
        bin_of: Vec<usize>,
        /// Native bins' reference counts, or the discrete values' (then `discrete`).
        reference_counts: Vec<f64>,
        discrete: bool,
        std: f64,
        n_reference: usize,
    },
    /// Categories, in the profile's order.
    Categories { reference_counts: Vec<f64> },
}

pub(super) struct Simulator {
    shape: Shape,
    pub(super) urn: Urn,
    pub(super) tests: Vec<StatTest>,
    /// Scratch: draws per sketch point (numbers) or per cell.
    counts: Vec<u32>,
    /// Draws in the extra cells: below, above (binned numbers), or never seen.
    extra: Vec<u32>,
}

impl Simulator {
    pub(super) fn new(fp: &FeatureProfile) -> Simulator {
        match (fp.kind, &fp.numeric, &fp.categories) {
            (Kind::Numerical, Some(p), _) => Simulator::numeric(fp, p),
            (_, _, Some(c)) => {
                let reference_counts: Vec<f64> = c.iter().map(|(_, n)| *n as f64).collect();
                let singletons = c.iter().filter(|(_, n)| *n == 1).count() as f64;
                let mut params = reference_counts.clone();
                params.push(singletons);
                let mut tests = vec![StatTest::Psi, StatTest::JensenShannon, StatTest::KlDiv, StatTest::Hellinger];
                tests.push(StatTest::ChiSquare);
                if c.len() <= 2 {
                    tests.push(StatTest::Z);
                }
                Simulator {
                    counts: vec![0; c.len()],
                    extra: vec![0; 1],
                    shape: Shape::Categories { reference_counts },
                    urn: Urn::new(params),
                    tests,
                }
            }
            _ => unreachable!("a validated profile has a summary for its kind"),
        }
    }

    fn numeric(fp: &FeatureProfile, p: &NumericSummary) -> Simulator {
        // thinned by picking points, so a discrete feature keeps its values
        let q = &p.quantiles;
        let sketch: Vec<f64> = if q.len() > SIM_POINTS {
            (0..SIM_POINTS).map(|i| q[i * (q.len() - 1) / (SIM_POINTS - 1)]).collect()
        } else {
            q.clone()
        };
        let s = sketch.len();
        let per_point = fp.count as f64 / s as f64;
        let groups = s.min(GROUPS);
        let runs: Vec<(usize, usize)> = (0..groups).map(|g| (g * s / groups, (g + 1) * s / groups)).collect();
        let mut params: Vec<f64> = runs.iter().map(|(a, b)| (b - a) as f64 * per_point).collect();
        let mut distinct: Vec<(f64, f64)> = Vec::new();
        let mut distinct_of = Vec::with_capacity(s);
        for (i, x) in sketch.iter().enumerate() {
            match distinct.last_mut() {
                Some((v, share)) if *v == *x => *share = (i + 1) as f64 / s as f64,
                _ => distinct.push((*x, (i + 1) as f64 / s as f64)),
            }
            distinct_of.push(distinct.len() - 1);
        }
        let (reference_counts, bin_of, discrete, extra) = match &p.values {
            Some(values) => {
                // discrete: cells are the distinct values; a value never seen has the
                // Good-Turing mass
                let counts: Vec<f64> = values.iter().map(|(_, c)| *c as f64).collect();
                let bin_of = sketch.iter().map(|x| values.partition_point(|(v, _)| v < x)).collect();
                params.push(values.iter().filter(|(_, c)| *c == 1).count() as f64);
                (counts, bin_of, true, 1)
            }
            None => {
                // binned: below the minimum and above the maximum, mass 1/(N+1) each
                let counts: Vec<f64> = p.bin_counts.iter().map(|c| *c as f64).collect();
                let bin_of = sketch.iter().map(|x| native_bin(&p.edges, *x)).collect();
                params.extend([1.0, 1.0]);
                (counts, bin_of, false, 2)
            }
        };
        let mut tests = vec![
            StatTest::Ks,
            StatTest::Wasserstein,
            StatTest::Psi,
            StatTest::JensenShannon,
            StatTest::KlDiv,
            StatTest::Hellinger,
            StatTest::ChiSquare,
        ];
        if discrete && reference_counts.len() <= 2 {
            tests.push(StatTest::Z);
        }
        Simulator {
            counts: vec![0; s],
            extra: vec![0; extra],
            shape: Shape::Numeric {
                sketch,
                runs,
                distinct,
                distinct_of,
                bin_of,
                reference_counts,
                discrete,
                std: p.std,
                n_reference: fp.count,
            },
            urn: Urn::new(params),
            tests,
        }
    }

    /// The reference's cells the discrete tests compare.
    pub(super) fn cells(&self) -> usize {
        match &self.shape {
            Shape::Categories { reference_counts } | Shape::Numeric { reference_counts, .. } => reference_counts.len(),
        }
    }

    /// One no-drift window of `n` values, scored by every test: `out(test index, score)`.
    pub(super) fn replicate(&mut self, rng: &mut XorShift64, n: usize, out: &mut impl FnMut(usize, f64)) {
        self.urn.reset();
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.extra.iter_mut().for_each(|c| *c = 0);
        let cells = self.urn.params.len() - self.extra.len();
        for _ in 0..n {
            let cell = self.urn.draw(rng);
            if cell >= cells {
                self.extra[cell - cells] += 1;
                continue;
            }
            match &self.shape {
                Shape::Numeric { runs, .. } => {
                    let (a, b) = runs[cell];
                    self.counts[a + rng.below(b - a)] += 1;
                }
                Shape::Categories { .. } => self.counts[cell] += 1,
            }
        }
        let aligned = self.aligned(n);
        let continuous = matches!(self.shape, Shape::Numeric { .. }).then(|| self.continuous(rng));
        for (i, test) in self.tests.iter().enumerate() {
            let score = match (test, continuous) {
                (StatTest::Ks, Some((d, _))) => d,
                (StatTest::Wasserstein, Some((_, w))) => w,
                _ => discrete(*test, &aligned).score(),
            };
            out(i, score);
        }
    }

    /// The window's counts against the reference's, as a window close aligns them.
    fn aligned(&self, n: usize) -> Aligned {
        match &self.shape {
            Shape::Categories { reference_counts } => {
                let mut current: Vec<f64> = self.counts.iter().map(|c| f64::from(*c)).collect();
                let mut reference = reference_counts.clone();
                if self.extra[0] > 0 {
                    reference.push(0.0);
                    current.push(f64::from(self.extra[0]));
                }
                Aligned { n_reference: reference.iter().sum(), n_current: n as f64, reference, current }
            }
            Shape::Numeric { bin_of, reference_counts, discrete, n_reference, .. } => {
                let mut current = vec![0.0; reference_counts.len()];
                for (point, c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                    current[bin_of[point]] += f64::from(*c);
                }
                let mut reference = reference_counts.clone();
                if *discrete {
                    if self.extra[0] > 0 {
                        reference.push(0.0);
                        current.push(f64::from(self.extra[0]));
                    }
                } else {
                    let last = current.len() - 1;
                    current[0] += f64::from(self.extra[0]);
                    current[last] += f64::from(self.extra[1]);
                }
                Aligned { n_reference: *n_reference as f64, n_current: n as f64, reference, current }
            }
        }
    }

    /// The KS statistic D (its p-value, exact below 10,000 values and slow, is taken once
    /// per threshold, not per replicate) and the normalised Wasserstein distance between the
    /// window and the sketch.
    ///
    /// A value drawn at a reference value seen once stands for a new value next to it: it
    /// falls in the gap on its left or on its right, one chance in two (new continuous data
    /// interleaves with the reference; it does not land on its points, which would make the
    /// statistics too small). A value the reference holds several times is a true atom:
    /// draws stay on it. Draws beyond the reference's range lie past its minimum or maximum
    /// by one of its own extreme spacings (among the 5% most extreme values, at most 50),
    /// so a heavy tail weighs as it does in new data; a discrete feature's never-seen
    /// values are left out.
    fn continuous(&self, rng: &mut XorShift64) -> (f64, f64) {
        let Shape::Numeric { distinct, distinct_of, std, sketch, discrete, .. } = &self.shape else {
            unreachable!("continuous tests are for numbers")
        };
        let inside: u64 = self.counts.iter().map(|c| u64::from(*c)).sum();
        let (below, above) = if *discrete { (0, 0) } else { (u64::from(self.extra[0]), u64::from(self.extra[1])) };
        let n = (inside + below + above) as f64;
        if n == 0.0 {
            return (f64::NAN, f64::NAN);
        }
        let s = sketch.len();
        let k = (s / 20).clamp(1, 50).min(s - 1).max(1);
        let mut w1 = 0.0;
        for (count, from_top) in [(below, false), (above, true)] {
            for _ in 0..count {
                if s >= 2 {
                    let j = 1 + rng.below(k);
                    w1 += if from_top { sketch[s - 1] - sketch[s - 1 - j] } else { sketch[j] - sketch[0] } / n;
                }
            }
        }
        // walk the distinct values; `w` counts the window's values so far, `r` is the
        // reference's share so far; between two values the gap's draws come in at its middle
        let (mut d, mut w, mut r) = (below as f64 / n, below as f64, 0.0);
        let mut pending = 0.0; // draws in the gap before the current value
        let mut point = 0;
        for (j, (value, ref_share)) in distinct.iter().enumerate() {
            let (mut at, mut m) = (0u64, 0);
            while point < s && distinct_of[point] == j {
                at += u64::from(self.counts[point]);
                point += 1;
                m += 1;
            }
            let (left, right) = if m == 1 && !*discrete { split(rng, at) } else { (0, 0) };
            let on = at - left - right;
            // the gap before this value: its draws, then this value's left ones
            w += pending + left as f64;
            d = d.max((w / n - r).abs());
            // the value itself
            w += on as f64;
            r = *ref_share;
            d = d.max((w / n - r).abs());
            // the gap after it: the left half holds this value's right draws, the right half
            // the next value's left ones (known at the next step: counted there)
            match distinct.get(j + 1) {
                Some((next, _)) => {
                    let width = next - value;
                    let before = (w / n - r).abs();
                    let after_right = ((w + right as f64) / n - r).abs();
                    d = d.max(after_right);
                    w1 += (before + after_right) / 2.0 * width;
                    pending = right as f64;
                }
                None => {
                    w += right as f64;
                    d = d.max((w / n - r).abs());
                }
            }
        }
        (d, w1 / std.max(0.001))
    }
}

/// `count` draws split in two halves at random: Binomial(count, 1/2), by coin flips 64 at
/// a time.
fn split(rng: &mut XorShift64, count: u64) -> (u64, u64) {
    let (mut left, mut rest) = (0u64, count);
    while rest > 0 {
        let take = rest.min(64);
        let bits = if take == 64 { rng.next_u64() } else { rng.next_u64() & ((1u64 << take) - 1) };
        left += u64::from(bits.count_ones());
        rest -= take;
    }
    (left, count - left)
}
