//! Sorting floats fast: the step that dominates a window close and `analyze`.

/// Sorts floats ascending (in `f64::total_cmp` order). Large inputs take an LSD radix sort
/// on the order-preserving bit pattern: several times faster than a comparison sort on
/// the million-row columns `analyze` meets, and the sort dominates its statistics.
pub fn sort_floats(v: &mut [f64]) {
    const RADIX_MIN: usize = 4096;
    if v.len() < RADIX_MIN {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    let key = |x: f64| {
        let b = x.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    };
    let unkey = |k: u64| {
        if k >> 63 == 1 {
            f64::from_bits(k & !(1 << 63))
        } else {
            f64::from_bits(!k)
        }
    };
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const PASSES: usize = 64usize.div_ceil(BITS);
    let mut keys: Vec<u64> = v.iter().map(|x| key(*x)).collect();
    let mut buf = vec![0u64; keys.len()];
    // One pass over the data counts every digit's histogram.
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for k in &keys {
        for (pass, c) in counts.iter_mut().enumerate() {
            c[((k >> (pass * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    for (pass, c) in counts.iter().enumerate() {
        if c.contains(&keys.len()) {
            continue; // every key has the same digit here: the pass would not move anything
        }
        let mut offsets = [0usize; BUCKETS];
        let mut total = 0;
        for (o, n) in offsets.iter_mut().zip(c.iter()) {
            *o = total;
            total += n;
        }
        for k in &keys {
            let d = ((k >> (pass * BITS)) as usize) & (BUCKETS - 1);
            buf[offsets[d]] = *k;
            offsets[d] += 1;
        }
        std::mem::swap(&mut keys, &mut buf);
    }
    for (x, k) in v.iter_mut().zip(&keys) {
        *x = unkey(*k);
    }
}

#[cfg(test)]
mod tests {
    use super::sort_floats;
    use crate::rand::XorShift64;

    #[test]
    fn radix_sort_agrees_with_total_cmp() {
        let mut rng = XorShift64::new(12345);
        let mut v: Vec<f64> = (0..50_000)
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
        let mut expected = v.clone();
        expected.sort_unstable_by(f64::total_cmp);
        sort_floats(&mut v);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
