//! Criterion benches of each statistic, and of a native window close: 50 features over
//! 100,000 events against their reference profiles (DESIGN.md budget: under 50 ms).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use driftd::analysis::profile::NumericSummary;
use driftd::stats::binning::{histogram_sorted, native_counts_sorted, sturges_edges};
use driftd::stats::{self, Aligned};
use std::hint::black_box;

const N: usize = 100_000;

/// Deterministic normal samples: no RNG crate needed.
fn normal(n: usize, mean: f64, seed: u64) -> Vec<f64> {
    let mut rng = driftd::rand::XorShift64::new(seed | 1);
    (0..n).map(|_| mean + rng.normal()).collect()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v
}

fn benches(c: &mut Criterion) {
    let reference = sorted(normal(N, 0.0, 1));
    let current = sorted(normal(N, 0.1, 2));
    let profile = NumericSummary::from_sorted(&reference, false, 10);
    let binned = Aligned {
        reference: profile.bin_counts.iter().map(|c| *c as f64).collect(),
        current: native_counts_sorted(&current, &profile.edges),
        n_reference: N as f64,
        n_current: N as f64,
    };

    let mut g = c.benchmark_group("stat_100k");
    g.bench_function("sort_100k_pdqsort", |b| {
        b.iter_batched(|| normal(N, 0.0, 3), |mut v| v.sort_unstable_by(f64::total_cmp), BatchSize::LargeInput)
    });
    g.bench_function("sort_100k_radix", |b| {
        b.iter_batched(|| normal(N, 0.0, 3), |mut v| driftd::stats::sort_floats(&mut v), BatchSize::LargeInput)
    });
    g.bench_function("ks_exact_path", |b| {
        b.iter(|| stats::ks(black_box(&reference[..10_000]), 10_000, &current[..10_000]))
    });
    g.bench_function("ks_asymptotic", |b| b.iter(|| stats::ks(black_box(&reference), N, &current)));
    g.bench_function("wasserstein_norm", |b| {
        b.iter(|| stats::wasserstein_norm(black_box(&reference), profile.std, &current))
    });
    g.bench_function("native_bin_counts", |b| b.iter(|| native_counts_sorted(black_box(&current), &profile.edges)));
    g.bench_function("sturges_histogram", |b| {
        b.iter(|| {
            let e = sturges_edges(reference[0], reference[N - 1], 2 * N, false);
            histogram_sorted(black_box(&current), &e)
        })
    });
    g.bench_function("psi", |b| b.iter(|| stats::psi(black_box(&binned))));
    g.bench_function("kl_div", |b| b.iter(|| stats::kl_div(black_box(&binned))));
    g.bench_function("jensenshannon", |b| b.iter(|| stats::jensenshannon(black_box(&binned))));
    g.bench_function("hellinger", |b| b.iter(|| stats::hellinger(black_box(&binned))));
    g.bench_function("chisquare", |b| b.iter(|| stats::chisquare(black_box(&binned))));
    g.bench_function("z", |b| b.iter(|| stats::z_test(black_box(&binned))));
    g.finish();

    // A native window close: 50 numerical features, 100k events each, unsorted as a
    // window accumulates them: sort, bin against the profile, PSI + KS + Wasserstein.
    let features: Vec<(NumericSummary, Vec<f64>)> = (0..50)
        .map(|i| {
            let r = sorted(normal(20_000, 0.0, 100 + i));
            (NumericSummary::from_sorted(&r, false, 10), normal(N, 0.05, 200 + i))
        })
        .collect();
    let mut g = c.benchmark_group("window_close");
    g.sample_size(10);
    g.bench_function("50_features_x_100k_events", |b| {
        b.iter_batched(
            || features.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            |windows| {
                use rayon::prelude::*;
                windows
                    .into_par_iter()
                    .zip(features.par_iter())
                    .map(|(mut w, (p, _))| {
                        driftd::stats::sort_floats(&mut w);
                        let counts = native_counts_sorted(&w, &p.edges);
                        let a = Aligned {
                            reference: p.bin_counts.iter().map(|c| *c as f64).collect(),
                            current: counts,
                            n_reference: 20_000.0,
                            n_current: w.len() as f64,
                        };
                        stats::psi(&a).statistic
                            + stats::ks(&p.quantiles, 20_000, &w).statistic
                            + stats::wasserstein_norm(&p.quantiles, p.std, &w).statistic
                    })
                    .sum::<f64>()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The real window close, end to end: a count window of 100,000 events with 50 numerical
/// features, accumulated by `Pipeline::ingest` from JSON logs (not timed), then closed and
/// reported by `report_window` (timed): sorting, binning against the reference profile,
/// the tests Evidently's rule picks, the report.
fn window_report_bench(c: &mut Criterion) {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = dir.path().join("reference.csv");
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let columns: Vec<Vec<f64>> = (0..50).map(|i| normal(20_000, 0.0, 100 + i)).collect();
    let mut csv = names.join(",") + "\n";
    for r in 0..20_000 {
        let row: Vec<String> = columns.iter().map(|c| format!("{:.6}", c[r])).collect();
        csv += &row.join(",");
        csv.push('\n');
    }
    std::fs::write(&reference, csv).expect("reference written");
    let settings = driftd::config::Settings::from_toml(&format!(
        "[state]\ndir = \"{}\"\n[[models]]\nname = \"m\"\nreference = \"{}\"\nwindow = {{ events = {N} }}\n",
        dir.path().join("state").display(),
        reference.display()
    ))
    .expect("config loads");
    let refs = driftd::reference::resolve_blocking(&settings).expect("the reference loads");
    let current: Vec<Vec<f64>> = (0..50).map(|i| normal(N, 0.05, 200 + i)).collect();
    let logs: Vec<String> = (0..N)
        .map(|e| {
            let mut line = String::from(r#"{"model":"m","timestamp":1795910400000,"features":{"#);
            for (i, c) in current.iter().enumerate() {
                let _ = write!(line, "{}\"f{i}\":{:.6}", if i == 0 { "" } else { "," }, c[e]);
            }
            line.push_str("}}");
            line
        })
        .collect();
    let mut g = c.benchmark_group("window_report");
    g.sample_size(10);
    g.bench_function("50_features_x_100k_events", |b| {
        b.iter_batched(
            || {
                let mut pipeline = driftd::pipeline::Pipeline::new(&settings, refs.clone()).expect("pipeline");
                for l in &logs {
                    pipeline.ingest(l.as_bytes(), None, None).expect("event accepted");
                }
                let closed = pipeline.take_closed();
                assert_eq!(closed.len(), 1, "the count window closed");
                closed
            },
            |closed| {
                for window in closed {
                    let report = driftd::pipeline::report_window(window);
                    assert_eq!(report.report.as_ref().map(|r| r.features_total), Some(50));
                    black_box(report);
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(stats_benches, benches, window_report_bench);
criterion_main!(stats_benches);
