//! Sorting floats fast: the step that dominates a window close and `analyze`.

/// Sorts floats ascending (in `f64::total_cmp` order), as their order-preserving bit
/// patterns: a pass spreads them over buckets by the top bits of their span, and each
/// bucket holding many is bucketed again by the top bits of its own span, until buckets
/// are small enough for a comparison sort. A float's bit pattern grows about like its
/// logarithm, so the first pass only separates signs and exponents; the next ones split
/// the mantissas of a crowded exponent. Each pass narrows a bucket's span by at least 8
/// bits, so no input takes more than 8 of them. Several times faster than a comparison
/// sort on the million-row columns `analyze` meets, where sorting dominates.
pub fn sort_floats(v: &mut [f64]) {
    const BUCKET_MIN: usize = 4096;
    if v.len() < BUCKET_MIN {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = v.iter().map(|x| key(*x)).collect();
    let mut buf = vec![0u64; keys.len()];
    sort_keys(&mut keys, &mut buf);
    for (x, k) in v.iter_mut().zip(&keys) {
        *x = unkey(*k);
    }
}

/// The floats whose `key`s these are, sorted: for a caller that makes the keys as it
/// reads its values (one pass and one buffer fewer than collecting, then `sort_floats`).
pub fn sorted_from_keys(mut keys: Vec<u64>) -> Vec<f64> {
    const BUCKET_MIN: usize = 4096;
    if keys.len() < BUCKET_MIN {
        keys.sort_unstable();
    } else {
        let mut buf = vec![0u64; keys.len()];
        sort_keys(&mut keys, &mut buf);
    }
    // the same allocation, reused in place
    keys.into_iter().map(unkey).collect()
}

/// Sorts `keys` (`buf`: scratch of the same length) by buckets of the top bits of their
/// span, recursively.
fn sort_keys(keys: &mut [u64], buf: &mut [u64]) {
    const SMALL: usize = 48;
    if keys.len() <= SMALL {
        keys.sort_unstable();
        return;
    }
    let (lo, hi) = keys.iter().fold((u64::MAX, 0), |(lo, hi), k| (lo.min(*k), hi.max(*k)));
    if lo == hi {
        return;
    }
    let span_bits = 64 - (hi - lo).leading_zeros();
    // about 4 values a bucket, 256 to 4,096 buckets (more miss the caches while spreading)
    let bucket_bits = (usize::BITS - (keys.len() / 4).leading_zeros()).clamp(8, 12);
    let shift = span_bits.saturating_sub(bucket_bits);
    let buckets = (((hi - lo) >> shift) + 1) as usize;
    let bucket = |k: u64| ((k - lo) >> shift) as usize;
    let mut starts = vec![0u32; buckets + 1];
    for k in keys.iter() {
        starts[bucket(*k) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    for k in keys.iter() {
        let b = bucket(*k);
        buf[next[b] as usize] = *k;
        next[b] += 1;
    }
    keys.copy_from_slice(buf);
    for w in starts.windows(2) {
        let (from, to) = (w[0] as usize, w[1] as usize);
        match to - from {
            0 | 1 => {}
            // the last pass: a bucket of one span unit holds equal keys
            _ if shift == 0 => {}
            _ => sort_keys(&mut keys[from..to], &mut buf[from..to]),
        }
    }
}

/// A float's bit pattern, ordered as `f64::total_cmp` orders floats.
pub fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn unkey(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

#[cfg(test)]
mod tests {
    use super::sort_floats;
    use crate::rand::XorShift64;

    /// `sort_floats` puts `v` in the order `f64::total_cmp` gives, bit for bit.
    fn sorts_as_total_cmp(mut v: Vec<f64>) {
        let mut expected = v.clone();
        expected.sort_unstable_by(f64::total_cmp);
        sort_floats(&mut v);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn window_and_reference_columns_sort() {
        let mut rng = XorShift64::new(5);
        for n in [4096, 6000, 100_000] {
            // about normal, with ties, signed zeros and a constant run
            let v: Vec<f64> = (0..n)
                .map(|i| match i % 97 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => 1.5,
                    _ => (0..4).map(|_| rng.next_f64()).sum::<f64>() - 2.0,
                })
                .collect();
            sorts_as_total_cmp(v);
        }
    }

    #[test]
    fn outliers_one_after_another_and_odd_values_sort() {
        let mut rng = XorShift64::new(9);
        // each pass could peel only the largest outlier off
        let mut v: Vec<f64> = (0..300).map(|k| 10f64.powi(300 - k)).collect();
        v.extend((0..20_000).map(|_| rng.next_f64()));
        sorts_as_total_cmp(v.clone());
        v.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN, f64::MIN_POSITIVE / 4.0]);
        sorts_as_total_cmp(v);
        sorts_as_total_cmp(vec![2.0; 10_000]);
        // two values, far apart, many times each
        sorts_as_total_cmp((0..10_000).map(|i| if i % 2 == 0 { -1e-300 } else { 1e300 }).collect());
    }

    #[test]
    fn skewed_columns_sort_too() {
        let mut rng = XorShift64::new(7);
        // most values in one bucket (an outlier stretches the span), ties, and both signs
        let v: Vec<f64> = (0..200_000)
            .map(|i| match i % 1000 {
                0 => 1e300,
                1 => -1e300,
                2..=499 => (rng.next_u64() % 7) as f64,
                _ => rng.next_f64() * 1e-3,
            })
            .collect();
        sorts_as_total_cmp(v);
    }

    #[test]
    fn mixed_values_sort_as_total_cmp() {
        let mut rng = XorShift64::new(12345);
        let v: Vec<f64> = (0..50_000)
            .map(|i| {
                let s = rng.next_u64();
                match i % 7 {
                    0 => -((s % 1000) as f64),
                    1 => 0.0,
                    2 => -0.0,
                    3 => f64::from_bits(s) % 1e300,
                    _ => (s as f64 / u64::MAX as f64 - 0.5) * 1e6,
                }
            })
            .filter(|x: &f64| x.is_finite())
            .collect();
        sorts_as_total_cmp(v);
    }
}
