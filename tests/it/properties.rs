//! Invariants of the statistics, on random inputs.

use driftd::stats::binning::{native_bin, native_counts_sorted, quantiles_sorted};
use driftd::stats::{self, Aligned};
use proptest::prelude::*;

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn counts() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (1usize..12).prop_flat_map(|k| {
        (
            prop::collection::vec(0u32..1000, k).prop_filter("non-empty", |v| v.iter().any(|c| *c > 0)),
            prop::collection::vec(0u32..1000, k).prop_filter("non-empty", |v| v.iter().any(|c| *c > 0)),
        )
            .prop_map(|(a, b)| (a.into_iter().map(f64::from).collect(), b.into_iter().map(f64::from).collect()))
    })
}

fn aligned(a: &[f64], b: &[f64]) -> Aligned {
    Aligned { reference: a.to_vec(), current: b.to_vec(), n_reference: a.iter().sum(), n_current: b.iter().sum() }
}

proptest! {
    #[test]
    fn psi_is_non_negative_and_zero_on_identical_inputs((a, b) in counts()) {
        prop_assert!(stats::psi(&aligned(&a, &b)).statistic >= -1e-12);
        prop_assert!(stats::psi(&aligned(&a, &a)).statistic.abs() < 1e-12);
    }

    #[test]
    fn js_is_symmetric_and_bounded((a, b) in counts()) {
        let ab = stats::jensenshannon(&aligned(&a, &b)).statistic;
        let ba = stats::jensenshannon(&aligned(&b, &a)).statistic;
        prop_assert!((ab - ba).abs() < 1e-12);
        prop_assert!((0.0..=std::f64::consts::LN_2.sqrt() + 1e-12).contains(&ab));
        prop_assert!(stats::jensenshannon(&aligned(&a, &a)).statistic < 1e-7);
    }

    #[test]
    fn hellinger_and_kl_stay_in_range((a, b) in counts()) {
        let h = stats::hellinger(&aligned(&a, &b)).statistic;
        prop_assert!((0.0..=1.0).contains(&h));
        prop_assert!(stats::kl_div(&aligned(&a, &b)).statistic >= -1e-12);
    }

    #[test]
    fn p_values_are_probabilities((a, b) in counts()) {
        for o in [stats::chisquare(&aligned(&a, &b)), stats::z_test(&aligned(&a, &b))] {
            let p = o.p_value.unwrap();
            prop_assert!(p.is_nan() || (0.0..=1.0).contains(&p), "{p}");
        }
    }

    #[test]
    fn ks_d_is_in_unit_interval_and_p_is_a_probability(
        a in prop::collection::vec(-1e6f64..1e6, 1..300),
        b in prop::collection::vec(-1e6f64..1e6, 1..300),
    ) {
        let (a, b) = (sorted(a), sorted(b));
        let o = stats::ks(&a, a.len(), &b);
        prop_assert!((0.0..=1.0).contains(&o.statistic));
        prop_assert!((0.0..=1.0).contains(&o.p_value.unwrap()));
        prop_assert_eq!(stats::ks_statistic(&a, &a), 0.0);
        prop_assert!((stats::ks_statistic(&a, &b) - stats::ks_statistic(&b, &a)).abs() < 1e-12);
    }

    #[test]
    fn wasserstein_is_a_symmetric_non_negative_distance(
        a in prop::collection::vec(-1e3f64..1e3, 1..200),
        b in prop::collection::vec(-1e3f64..1e3, 1..200),
        shift in -50.0f64..50.0,
    ) {
        let (a, b) = (sorted(a), sorted(b));
        let ab = stats::wasserstein(&a, &b);
        prop_assert!(ab >= 0.0);
        prop_assert!((ab - stats::wasserstein(&b, &a)).abs() <= 1e-9 * (1.0 + ab));
        prop_assert!(stats::wasserstein(&a, &a).abs() < 1e-9);
        let shifted: Vec<f64> = a.iter().map(|x| x + shift).collect();
        prop_assert!((stats::wasserstein(&a, &shifted) - shift.abs()).abs() < 1e-6 * (1.0 + shift.abs()));
    }

    #[test]
    fn native_bins_count_every_value_once(
        reference in prop::collection::vec(-100f64..100.0, 2..200),
        current in prop::collection::vec(-150f64..150.0, 1..200),
        bins in 1usize..20,
    ) {
        let r = sorted(reference);
        let mut edges = quantiles_sorted(&r, bins + 1);
        edges.dedup();
        let c = sorted(current);
        let counts = native_counts_sorted(&c, &edges);
        prop_assert_eq!(counts.iter().sum::<f64>() as usize, c.len());
        let mut one_by_one = vec![0.0; counts.len()];
        for x in &c {
            one_by_one[native_bin(&edges, *x)] += 1.0;
        }
        prop_assert_eq!(one_by_one, counts);
    }
}
