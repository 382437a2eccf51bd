//! Every number in tests/fixtures/expected.json (written by tests/fixtures/generate.py from
//! Evidently 0.7.23, scipy and numpy) held against driftd's engine, in both modes.

use std::path::{Path, PathBuf};

use driftd::analysis::analyze::{analyze, AnalyzeOptions, Reference, TestChoice};
use driftd::analysis::dataset::Dataset;
use driftd::analysis::plan::Selection;
use driftd::analysis::report::Mode;
use driftd::stats::kolmogorov::{kolmogn_sf, ks_2samp_pvalue};
use driftd::stats::StatTest;
use serde_json::Value;

const REL: f64 = 1e-6;

fn fixtures() -> (PathBuf, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    (dir, serde_json::from_str(&text).expect("valid json"))
}

/// Equal to 1e-6 relative; p-values that underflow toward zero are compared with an
/// absolute floor of 1e-12, where scipy's own double rounding (1 - cdf) is larger.
fn close(actual: f64, expected: f64) -> bool {
    if expected.is_nan() {
        return actual.is_nan();
    }
    (actual - expected).abs() <= REL * expected.abs() + 1e-12
}

fn options(case: &Value) -> AnalyzeOptions {
    let o = &case["options"];
    let test = |k: &str| o.get(k).and_then(Value::as_str).map(|s| StatTest::parse(s).unwrap());
    AnalyzeOptions {
        mode: if case["mode"] == "evidently" { Mode::Evidently } else { Mode::Native },
        tests: TestChoice {
            stattest: test("stattest"),
            num_stattest: test("num_stattest"),
            cat_stattest: test("cat_stattest"),
            threshold: o.get("threshold").and_then(Value::as_f64),
            ..TestChoice::default()
        },
        drift_share: o.get("drift_share").and_then(Value::as_f64).unwrap_or(0.5),
        selection: Selection::default(),
        bins: 10,
        thresholds: Default::default(),
    }
}

#[test]
fn every_fixture_number_matches_its_independent_implementation() {
    let (dir, fx) = fixtures();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "fixture set is complete");
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let reference = Dataset::load(&dir.join(case["reference"].as_str().unwrap()), None).unwrap();
        let current = Dataset::load(&dir.join(case["current"].as_str().unwrap()), None).unwrap();
        let report = match analyze(&Reference::Dataset(reference), &current, &options(case)) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{id}: error {e}"));
                continue;
            }
        };
        for key in ["dataset_drift", "drifted_features", "features_total"] {
            let actual = serde_json::to_value(&report).unwrap()[key].clone();
            if actual != case[key] {
                failures.push(format!("{id}: {key} {actual} != {}", case[key]));
            }
        }
        for (name, exp) in case["features"].as_object().unwrap() {
            let Some(f) = report.features.iter().find(|f| &f.name == name) else {
                failures.push(format!("{id}: feature {name} missing"));
                continue;
            };
            checked += 1;
            let mut check = |what: &str, ok: bool, actual: String, expected: &Value| {
                if !ok {
                    failures.push(format!("{id}: {name}.{what} = {actual}, expected {expected}"));
                }
            };
            check("kind", exp["kind"] == f.kind.as_str(), f.kind.as_str().into(), &exp["kind"]);
            check("stattest", exp["stattest"] == f.stattest.name(), f.stattest.name().into(), &exp["stattest"]);
            let num = |k: &str| exp[k].as_f64().unwrap_or(f64::NAN);
            check("score", close(f.score, num("score")), f.score.to_string(), &exp["score"]);
            check("threshold", close(f.threshold, num("threshold")), f.threshold.to_string(), &exp["threshold"]);
            check("drifted", exp["drifted"] == f.drifted, f.drifted.to_string(), &exp["drifted"]);
            if exp.get("statistic").is_some() {
                check("statistic", close(f.statistic, num("statistic")), f.statistic.to_string(), &exp["statistic"]);
            }
            for (k, v) in [
                ("reference_missing_share", f.reference_missing_share),
                ("current_missing_share", f.current_missing_share),
            ] {
                check(k, (v - num(k)).abs() < 1e-12, v.to_string(), &exp[k]);
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 300, "checked {checked} features");
}

#[test]
fn kolmogorov_distribution_matches_scipy_in_every_regime() {
    let (_, fx) = fixtures();
    let mut failures = Vec::new();
    for p in fx["kolmogorov"]["kstwo_sf"].as_array().unwrap() {
        let (n, x, sf) = (p["n"].as_i64().unwrap(), p["x"].as_f64().unwrap(), p["sf"].as_f64().unwrap());
        let ours = kolmogn_sf(n, x);
        if !close(ours, sf) {
            failures.push(format!("kstwo.sf({x}, {n}) = {ours}, scipy {sf}"));
        }
    }
    for p in fx["kolmogorov"]["ks_2samp"].as_array().unwrap() {
        let n1 = p["n1"].as_u64().unwrap() as usize;
        let n2 = p["n2"].as_u64().unwrap() as usize;
        let (d, expected) = (p["d"].as_f64().unwrap(), p["p"].as_f64().unwrap());
        let (_, ours) = ks_2samp_pvalue(n1, n2, d);
        if !close(ours, expected) {
            failures.push(format!("ks_2samp p({n1}, {n2}, {d}) = {ours}, scipy {expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
