//! Which test a feature gets when none is asked for: Evidently 0.7's default selection.

use super::{Kind, StatTest};

/// The selection only asks whether a feature has more than 5 distinct values: counting
/// can stop at 6.
pub const SELECTION_CAP: usize = 6;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidently_picks_by_reference_size_kind_and_distinct_values() {
        assert_eq!(default_test(Kind::Numerical, 1000, 6), StatTest::Ks);
        assert_eq!(default_test(Kind::Numerical, 1000, 5), StatTest::ChiSquare);
        assert_eq!(default_test(Kind::Categorical, 10, 2), StatTest::Z);
        assert_eq!(default_test(Kind::Numerical, 1001, 6), StatTest::Wasserstein);
        assert_eq!(default_test(Kind::Numerical, 1001, 5), StatTest::JensenShannon);
        assert_eq!(default_test(Kind::Categorical, 5000, 40), StatTest::JensenShannon);
    }
}
