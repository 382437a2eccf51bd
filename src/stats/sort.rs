//! Sorting floats fast: the step that dominates a window close and `analyze`.

/// Sorts floats ascending (in `f64::total_cmp` order). Large inputs are sorted as their
/// order-preserving bit patterns: one pass spreads them over up to 65,536 buckets by the
/// top bits of their span (a float's bit pattern grows about like its logarithm, so real
/// data spreads well), then each bucket is sorted on its own: small ones by comparison,
/// large ones (a skewed column) by an LSD radix sort. Several times faster than a
/// comparison sort on the million-row columns `analyze` meets, where sorting dominates.
pub fn sort_floats(v: &mut [f64]) {
    const BUCKET_MIN: usize = 4096;
    if v.len() < BUCKET_MIN {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = v.iter().map(|x| key(*x)).collect();
    let (lo, hi) = keys.iter().fold((u64::MAX, 0), |(lo, hi), k| (lo.min(*k), hi.max(*k)));
    let span_bits = 64 - (hi - lo).leading_zeros();
    // about 16 values a bucket
    let bucket_bits = (usize::BITS - (v.len() / 16).leading_zeros()).clamp(8, 16);
    let shift = span_bits.saturating_sub(bucket_bits);
    let buckets = (((hi - lo) >> shift) + 1) as usize;
    let bucket = |k: u64| ((k - lo) >> shift) as usize;
    let mut starts = vec![0usize; buckets + 1];
    for k in &keys {
        starts[bucket(*k) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut sorted = vec![0u64; keys.len()];
    let mut next = starts.clone();
    for k in &keys {
        let b = bucket(*k);
        sorted[next[b]] = *k;
        next[b] += 1;
    }
    for w in starts.windows(2) {
        let part = &mut sorted[w[0]..w[1]];
        if part.len() > BUCKET_MIN {
            radix_sort_keys(part, &mut keys[..part.len()]);
        } else if part.len() > 1 {
            part.sort_unstable();
        }
    }
    for (x, k) in v.iter_mut().zip(&sorted) {
        *x = unkey(*k);
    }
}

/// A float's bit pattern, ordered as `f64::total_cmp` orders floats.
fn key(x: f64) -> u64 {
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

/// LSD radix sort of `keys`, 11 bits a pass (`buf`: scratch of the same length).
fn radix_sort_keys(keys: &mut [u64], buf: &mut [u64]) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const PASSES: usize = 64usize.div_ceil(BITS);
    // One pass over the data counts every digit's histogram.
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for k in keys.iter() {
        for (pass, c) in counts.iter_mut().enumerate() {
            c[((k >> (pass * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let (mut from, mut to) = (keys, buf);
    let mut in_buf = false;
    for (pass, c) in counts.iter().enumerate() {
        if c.contains(&from.len()) {
            continue; // every key has the same digit here: the pass would not move anything
        }
        let mut offsets = [0usize; BUCKETS];
        let mut total = 0;
        for (o, n) in offsets.iter_mut().zip(c.iter()) {
            *o = total;
            total += n;
        }
        for k in from.iter() {
            let d = ((k >> (pass * BITS)) as usize) & (BUCKETS - 1);
            to[offsets[d]] = *k;
            offsets[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        in_buf = !in_buf;
    }
    if in_buf {
        // the sorted keys are in the scratch: back where they belong
        to.copy_from_slice(from);
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
    fn radix_sort_agrees_with_total_cmp() {
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
