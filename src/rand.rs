//! The one pseudo-random sequence driftd needs: Marsaglia's xorshift64, for reproducible
//! scenarios (the demo, the tests, the benches) where the same seed must give the same
//! traffic on every run. Not for anything secret.

/// FNV-1a of a text: a stable hash (the same on every machine and run), for seeds and for
/// placing a model on a partition. Not for anything secret.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Marsaglia's xorshift64 (shifts 13, 7, 17). A zero seed is replaced by 1, since zero is
/// the one state the generator never leaves.
#[derive(Debug, Clone)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    pub fn new(seed: u64) -> XorShift64 {
        XorShift64 { state: if seed == 0 { 1 } else { seed } }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut s = self.state;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.state = s;
        s
    }

    /// A number in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `0..n` (`n` > 0); the modulo bias is below 2^-40 for any `n` driftd uses.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A standard normal draw (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.next_f64().max(1e-300), self.next_f64());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_marsaglias_and_reproducible() {
        // xorshift64(13, 7, 17) from 1: the first outputs of the published generator
        let mut r = XorShift64::new(1);
        assert_eq!(r.next_u64(), 1_082_269_761);
        assert_eq!(r.next_u64(), 1_152_992_998_833_853_505);
        let a: Vec<u64> = (0..5).map(|_| XorShift64::new(42).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = XorShift64::new(7);
        assert!((0..1000).map(|_| r.next_f64()).all(|x| (0.0..1.0).contains(&x)));
        assert!((0..1000).all(|_| r.below(3) < 3));
        assert_eq!(XorShift64::new(0).next_u64(), XorShift64::new(1).next_u64());
    }
}
