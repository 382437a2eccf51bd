//! Bin edges and counts: numpy's Sturges rule and histogram semantics (Evidently mode),
//! and quantile edges from the reference with underflow/overflow bins (native mode).

/// `np.linspace(first, last, num)` with its exact arithmetic: `i * step + first`, and the
/// last point pinned to `last`.
pub fn linspace(first: f64, last: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![first];
    }
    let div = (num - 1) as f64;
    let delta = last - first;
    let step = delta / div;
    let mut out: Vec<f64> =
        (0..num).map(|i| if step == 0.0 { i as f64 / div * delta + first } else { i as f64 * step + first }).collect();
    out[num - 1] = last;
    out
}

/// `np.histogram_bin_edges(a, bins="sturges")` for a sample with the given minimum,
/// maximum and size; `integer` mirrors numpy's rule that an integer array never gets bins
/// narrower than 1.
pub fn sturges_edges(min: f64, max: f64, size: usize, integer: bool) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let n_bins = if size == 0 {
        1
    } else {
        let mut width = (max - min) / ((size as f64).log2() + 1.0);
        if width != 0.0 {
            if integer && width < 1.0 {
                width = 1.0;
            }
            ((last - first) / width).ceil() as usize
        } else {
            1
        }
    };
    linspace(first, last, n_bins.max(1) + 1)
}

/// `np.histogram(sorted, edges)` counts: bin i holds `edges[i] <= x < edges[i+1]`, the last
/// bin is closed on the right, values outside the edges are not counted.
pub fn histogram_sorted(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    let last = edges.len() - 1;
    let cum: Vec<usize> = edges
        .iter()
        .enumerate()
        .map(|(i, e)| if i == last { sorted.partition_point(|x| x <= e) } else { sorted.partition_point(|x| x < e) })
        .collect();
    cum.windows(2).map(|w| (w[1] - w[0]) as f64).collect()
}

/// numpy's `quantile(sorted, q, method="linear")` on a sorted, non-empty sample, with its
/// two-sided interpolation (`_lerp`).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let vi = (n - 1) as f64 * q;
    if vi >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    if vi < 0.0 {
        return sorted[0];
    }
    let prev = vi.floor() as usize;
    let next = (prev + 1).min(n - 1);
    let gamma = vi - prev as f64;
    let (a, b) = (sorted[prev], sorted[next]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Quantiles at `count` evenly spaced probabilities from 0 to 1 (`np.linspace(0, 1, count)`).
pub fn quantiles_sorted(sorted: &[f64], count: usize) -> Vec<f64> {
    linspace(0.0, 1.0, count).into_iter().map(|q| quantile_sorted(sorted, q)).collect()
}

/// Native-mode bin index for `x` over reference edges `e_0 < … < e_k`: 0 is the underflow
/// bin (x < e_0), k + 1 the overflow bin (x > e_k); inner bin i (1-based) holds
/// `e_{i-1} <= x < e_i`, the last inner bin is closed on the right. O(log k).
pub fn native_bin(edges: &[f64], x: f64) -> usize {
    let k = edges.len();
    if k == 0 {
        return 0;
    }
    if x < edges[0] {
        return 0;
    }
    if x > edges[k - 1] {
        return k;
    }
    if x == edges[k - 1] {
        return (k - 1).max(1);
    }
    edges.partition_point(|e| *e <= x)
}

/// Number of native bins for `edges`: underflow, the inner bins, overflow.
pub fn native_bin_count(edges: &[f64]) -> usize {
    edges.len() + 1
}

/// Native-mode counts of a sorted sample over reference edges.
pub fn native_counts_sorted(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0.0; native_bin_count(edges)];
    if edges.is_empty() {
        counts[0] = sorted.len() as f64;
        return counts;
    }
    let k = edges.len();
    let below = sorted.partition_point(|x| *x < edges[0]);
    counts[0] = below as f64;
    let mut prev = below;
    for (i, e) in edges.iter().enumerate().skip(1) {
        let upto = if i == k - 1 { sorted.partition_point(|x| x <= e) } else { sorted.partition_point(|x| x < e) };
        counts[i] = (upto - prev) as f64;
        prev = upto;
    }
    counts[k] = (sorted.len() - prev) as f64;
    counts
}

/// Distinct values of a sorted sample with their counts.
pub fn value_counts_sorted(sorted: &[f64]) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = Vec::new();
    for &x in sorted {
        match out.last_mut() {
            Some((v, c)) if *v == x => *c += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

/// Number of distinct values in a sorted sample.
pub fn n_unique_sorted(sorted: &[f64]) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    1 + sorted.windows(2).filter(|w| w[0] != w[1]).count()
}

/// True when a sorted sample has more than `limit` distinct values; stops early.
pub fn more_distinct_than(sorted: &[f64], limit: usize) -> bool {
    let mut n = usize::from(!sorted.is_empty());
    for w in sorted.windows(2) {
        if w[0] != w[1] {
            n += 1;
            if n > limit {
                return true;
            }
        }
    }
    n > limit
}

/// Number of distinct values in the union of two sorted samples.
pub fn n_unique_union_sorted(a: &[f64], b: &[f64]) -> usize {
    n_unique_union_sorted_capped(a, b, usize::MAX)
}

/// Like [`n_unique_union_sorted`], but stops counting at `cap` (the test selection only
/// asks whether there are more than 5).
pub fn n_unique_union_sorted_capped(a: &[f64], b: &[f64], cap: usize) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    let mut last: Option<f64> = None;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                x
            }
            (Some(_), Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => unreachable!(),
        };
        if last != Some(x) {
            n += 1;
            if n >= cap {
                return n;
            }
            last = Some(x);
        }
    }
    n
}

/// Aligns two lists of (key, count), each sorted by key, over the union of their keys.
pub fn align_sorted<K: PartialOrd + Clone>(a: &[(K, u64)], b: &[(K, u64)]) -> (Vec<K>, Vec<f64>, Vec<f64>) {
    let (mut i, mut j) = (0, 0);
    let (mut keys, mut ca, mut cb) = (Vec::new(), Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some((ka, na)), Some((kb, nb))) if ka == kb => {
                keys.push(ka.clone());
                ca.push(*na as f64);
                cb.push(*nb as f64);
                i += 1;
                j += 1;
            }
            (Some((ka, na)), Some((kb, _))) if ka < kb => {
                keys.push(ka.clone());
                ca.push(*na as f64);
                cb.push(0.0);
                i += 1;
            }
            (Some(_), Some((kb, nb))) | (None, Some((kb, nb))) => {
                keys.push(kb.clone());
                ca.push(0.0);
                cb.push(*nb as f64);
                j += 1;
            }
            (Some((ka, na)), None) => {
                keys.push(ka.clone());
                ca.push(*na as f64);
                cb.push(0.0);
                i += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    (keys, ca, cb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sturges_matches_numpy_examples() {
        // np.histogram_bin_edges(np.arange(10.0), "sturges") -> 6 bins over [0, 9]
        let e = sturges_edges(0.0, 9.0, 10, false);
        assert_eq!(e.len(), 6);
        assert_eq!(e[0], 0.0);
        assert_eq!(e[5], 9.0);
        // integer data with a narrow range: width clamps to 1 -> 3 bins for 0..=3
        let e = sturges_edges(0.0, 3.0, 1000, true);
        assert_eq!(e, vec![0.0, 1.0, 2.0, 3.0]);
        // constant sample: one bin over [x - 0.5, x + 0.5]
        assert_eq!(sturges_edges(2.0, 2.0, 50, false), vec![1.5, 2.5]);
    }

    #[test]
    fn histogram_closes_the_last_bin() {
        let counts = histogram_sorted(&[0.0, 1.0, 1.0, 2.0, 3.0], &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(counts, vec![1.0, 2.0, 2.0]);
    }

    #[test]
    fn native_bins_have_underflow_and_overflow() {
        let edges = [1.0, 2.0, 3.0];
        assert_eq!(native_bin(&edges, 0.5), 0);
        assert_eq!(native_bin(&edges, 1.0), 1);
        assert_eq!(native_bin(&edges, 2.5), 2);
        assert_eq!(native_bin(&edges, 3.0), 2);
        assert_eq!(native_bin(&edges, 3.5), 3);
        let counts = native_counts_sorted(&[0.5, 1.0, 2.5, 3.0, 3.5, 9.0], &edges);
        assert_eq!(counts, vec![1.0, 1.0, 2.0, 2.0]);
        for x in [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5] {
            let c = native_counts_sorted(&[x], &edges);
            assert_eq!(c[native_bin(&edges, x)], 1.0, "x={x}");
        }
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.5), 2.5);
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 1.0), 4.0);
    }
}
