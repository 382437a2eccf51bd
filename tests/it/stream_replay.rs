//! The streaming pipeline driven from a file by the real binary (`driftd replay`): each
//! window's report equals `driftd analyze` on the same rows, and poison messages are
//! counted by reason without changing any window.

use std::path::{Path, PathBuf};

use crate::helpers::{driftd, log_line, replay, root, rows, Row, FEATURES};
use serde_json::Value;

fn analysis_rows() -> Vec<Row> {
    rows("california_housing_analysis.csv")
}

fn event(r: &Row) -> String {
    log_line("housing", &r.ts, &r.values)
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    config_on(dir, &root().join("datasets/california_housing_reference.csv"), extra)
}

fn config_on(dir: &Path, reference: &Path, extra: &str) -> PathBuf {
    let path = dir.join("driftd.toml");
    let feats: Vec<String> = FEATURES.iter().map(|f| format!("\"{f}\"")).collect();
    std::fs::write(
        &path,
        format!(
            "{extra}\n[[models]]\nname = \"housing\"\nreference = \"{}\"\nfeatures = [{}]\nwindow = {{ size = \"30d\" }}\n",
            reference.display(),
            feats.join(", ")
        ),
    )
    .unwrap();
    path
}

/// The daemon's default (calibrated thresholds) and `analyze --thresholds calibrated` on
/// the same profile from `driftd baseline` (which holds the calibration), and the fixed
/// thresholds on the dataset itself.
#[test]
fn every_window_equals_analyze_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    let reference = root().join("datasets/california_housing_reference.csv");
    let o = driftd(&["baseline", "--data", reference.to_str().unwrap(), "--out", profile.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let calibrated = ["--reference", profile.to_str().unwrap(), "--thresholds", "calibrated"];
    let calibrated_cfg = config_on(dir.path(), &profile, "");
    windows_equal_analyze(dir.path(), &calibrated_cfg, &calibrated, "calibrated");
    let fixed = ["--reference", "datasets/california_housing_reference.csv", "--thresholds", "fixed"];
    let fixed_cfg = config(dir.path(), "[defaults]\nthresholds = \"fixed\"");
    windows_equal_analyze(dir.path(), &fixed_cfg, &fixed, "fixed");
}

fn windows_equal_analyze(dir: &Path, cfg: &Path, reference: &[&str], mode: &str) {
    let rows = analysis_rows();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, rows.iter().map(event).collect::<Vec<_>>().join("\n")).unwrap();
    let (reports, summary) = replay(cfg, &input);
    assert_eq!(summary["events"], 8232);
    assert!(reports.len() >= 12, "{} windows", reports.len());
    let total: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(total, 8232, "every event in exactly one tumbling window");
    for (i, r) in reports.iter().enumerate() {
        let (start, end) = (r["window_start"].as_str().unwrap(), r["window_end"].as_str().unwrap());
        // RFC 3339 UTC strings of one format compare as times
        let in_window: Vec<&Row> =
            rows.iter().filter(|row| row.ts.as_str() >= start && row.ts.as_str() < end).collect();
        assert_eq!(in_window.len() as u64, r["events"].as_u64().unwrap(), "window {start}");
        let csv = dir.join(format!("w{i}.csv"));
        let mut text = FEATURES.join(",") + "\n";
        for row in &in_window {
            text += &(row.values.join(",") + "\n");
        }
        std::fs::write(&csv, text).unwrap();
        let columns = FEATURES.join(",");
        let args = [&["analyze"], reference, &["--current", csv.to_str().unwrap(), "--columns", &columns]].concat();
        let o = driftd(&[&args[..], &["--format", "json"]].concat());
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let batch: Value = serde_json::from_slice(&o.stdout).unwrap();
        for key in ["dataset_drift", "drifted_features", "features_total", "share_of_drifted_features"] {
            assert_eq!(r[key], batch[key], "{mode} window {start}: {key}");
        }
        for (a, b) in r["features"].as_array().unwrap().iter().zip(batch["features"].as_array().unwrap()) {
            for key in [
                "name",
                "kind",
                "stattest",
                "score",
                "statistic",
                "p_value",
                "threshold",
                "threshold_source",
                "drifted",
            ] {
                assert_eq!(a[key], b[key], "{mode} window {start}, feature {}: {key}", a["name"]);
            }
            let expected = if mode == "fixed" { vec!["fixed"] } else { vec!["calibrated", "effect_floor"] };
            assert!(expected.contains(&a["threshold_source"].as_str().unwrap()), "{mode}: {a}");
        }
    }
}

/// Windows past `exact_values` hold counts over the reference's fine bins: PSI equals the
/// exact path's; KS and Wasserstein stay within the error bound each report states.
#[test]
fn binned_windows_match_the_exact_path_within_their_stated_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let rows = analysis_rows();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, rows.iter().map(event).collect::<Vec<_>>().join("\n")).unwrap();
    let run =
        |extra: &str| replay(&config(dir.path(), &format!("[defaults]\nthresholds = \"fixed\"\n{extra}")), &input).0;
    let mut compared = 0;
    for (test, extra) in [("wasserstein", ""), ("ks", "num_stattest = \"ks\"\n"), ("psi", "num_stattest = \"psi\"\n")] {
        let exact = run(extra);
        let binned = run(&format!("{extra}exact_values = 50\n"));
        assert_eq!(exact.len(), binned.len());
        for (e, b) in exact.iter().zip(&binned) {
            for (fe, fb) in e["features"].as_array().unwrap().iter().zip(b["features"].as_array().unwrap()) {
                assert_eq!(fe["path"], "exact");
                if fb["current_count"].as_u64().unwrap() <= 50 {
                    assert_eq!(fb["path"], "exact", "{fb}");
                    continue;
                }
                assert_eq!(fb["path"], "binned", "{fb}");
                assert_eq!(fe["current_count"], fb["current_count"]);
                let (se, sb) = (fe["statistic"].as_f64().unwrap(), fb["statistic"].as_f64().unwrap());
                if test == "psi" {
                    assert_eq!(se, sb, "PSI over coarse bins is exact: {fb}");
                    assert!(fb.get("error_bound").is_none());
                } else {
                    let bound = fb["error_bound"].as_f64().unwrap();
                    assert!((se - sb).abs() <= bound + 1e-9, "{test}: exact {se}, binned {sb} ± {bound}: {fb}");
                    // the bound shrinks with the window (a value is 1/n of it); heavy tails
                    // (Population, AveOccup, AveRooms, AveBedrms) have wide equal-mass bins
                    // there and a looser Wasserstein bound, still kept
                    let n = fb["current_count"].as_f64().unwrap();
                    let light = ["MedInc", "HouseAge", "Latitude", "Longitude"].contains(&fb["name"].as_str().unwrap());
                    let tight = if n >= 500.0 { 0.01 } else { 0.05 };
                    let small = bound < tight || bound < 0.05 * sb;
                    assert!(test == "wasserstein" && !light || small, "{test}: {bound} on {n} values: {fb}");
                }
                compared += 1;
            }
        }
    }
    assert!(compared >= 3 * 8 * 12, "{compared} features compared");
}

#[test]
fn poison_messages_are_counted_by_reason_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rows = analysis_rows();
    let clean: Vec<String> = rows.iter().map(event).collect();
    let clean_path = dir.path().join("clean.jsonl");
    std::fs::write(&clean_path, clean.join("\n")).unwrap();
    let poison = [
        ("not_json", "this is not json".to_string()),
        ("not_json", "{\"model\": \"housing\", \"features\": {".to_string()),
        (
            "unknown_model",
            "{\"model\": \"other\", \"timestamp\": \"2021-06-01T00:00:00Z\", \"features\": {}}".to_string(),
        ),
        ("missing_model", "{\"timestamp\": \"2021-06-01T00:00:00Z\", \"features\": {\"MedInc\": 1}}".to_string()),
        (
            "wrong_type",
            "{\"model\": \"housing\", \"timestamp\": \"2021-06-01T00:00:00Z\", \"features\": {\"MedInc\": {\"x\": 1}}}"
                .to_string(),
        ),
        ("wrong_type", "{\"model\": [1, 2]}".to_string()),
        ("bad_timestamp", "{\"model\": \"housing\", \"timestamp\": \"last tuesday\", \"features\": {}}".to_string()),
        ("missing_timestamp", "{\"model\": \"housing\", \"features\": {\"MedInc\": 1.0}}".to_string()),
        ("oversized", format!("{{\"model\": \"housing\", \"pad\": \"{}\"}}", "x".repeat(5000))),
        // one feature 50 times: it would count 50 values in one event (a missing share
        // that wraps below zero)
        (
            "duplicate_feature",
            format!(
                "{{\"model\": \"housing\", \"timestamp\": \"2021-06-01T00:00:00Z\", \"features\": {{{}}}}}",
                vec!["\"MedInc\": 1.5"; 50].join(", ")
            ),
        ),
    ];
    let mut mixed = Vec::new();
    for (i, line) in clean.iter().enumerate() {
        mixed.push(line.clone());
        if i % 900 == 0 {
            for (_, p) in &poison {
                mixed.push(p.clone());
            }
        }
    }
    let mixed_path = dir.path().join("mixed.jsonl");
    std::fs::write(&mixed_path, mixed.join("\n")).unwrap();
    let cfg = config(dir.path(), "[kafka]\nmax_message_bytes = 4096\n");
    let (clean_reports, _) = replay(&cfg, &clean_path);
    let (mixed_reports, summary) = replay(&cfg, &mixed_path);
    assert_eq!(clean_reports, mixed_reports, "poison changes no window");
    let rounds = clean.len().div_ceil(900) as u64;
    assert_eq!(summary["events"], 8232);
    assert_eq!(summary["messages"], 8232 + rounds * poison.len() as u64);
    for reason in [
        "not_json",
        "unknown_model",
        "missing_model",
        "wrong_type",
        "bad_timestamp",
        "missing_timestamp",
        "oversized",
        "duplicate_feature",
    ] {
        let expected = poison.iter().filter(|(r, _)| *r == reason).count() as u64 * rounds;
        assert_eq!(summary["decode_errors"][reason], expected, "{reason}: {summary}");
    }
}

fn replay_with(window: &str, extra: &str, lines: &[String]) -> (Vec<Value>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[models]]\nname = \"housing\"\nreference = \"{}\"\nfeatures = [\"MedInc\"]\nwindow = {window}\n{extra}\n",
            root().join("datasets/california_housing_reference.csv").display()
        ),
    )
    .unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    replay(&cfg, &input)
}

fn minute_event(minute: i64, value: f64) -> String {
    let ts = 1_795_910_400_000i64 + minute * 60_000;
    format!("{{\"model\": \"housing\", \"timestamp\": {ts}, \"features\": {{\"MedInc\": {value}}}}}")
}

#[test]
fn sliding_windows_hold_each_event_size_over_slide_times() {
    // one event a minute for 2 hours; 60-minute windows sliding by 15 minutes
    let lines: Vec<String> = (0..120).map(|m| minute_event(m, 3.0 + (m % 7) as f64)).collect();
    let (reports, summary) = replay_with("{ size = \"1h\", slide = \"15m\" }", "", &lines);
    assert_eq!(summary["events"], 120);
    let full: Vec<&Value> = reports.iter().filter(|r| r["events"] == 60).collect();
    assert!(full.len() >= 5, "{} full windows", full.len());
    let total: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(total, 120 * 4, "each event in size / slide = 4 windows");
    for r in &reports {
        let (s, e) = (r["window_start"].as_str().unwrap(), r["window_end"].as_str().unwrap());
        assert!(s < e);
    }
}

#[test]
fn count_windows_close_every_n_events_and_late_events_are_counted() {
    let lines: Vec<String> = (0..25).map(|m| minute_event(m, 2.0 + m as f64 / 10.0)).collect();
    let (reports, _) = replay_with("{ events = 10 }", "", &lines);
    let sizes: Vec<u64> = reports.iter().map(|r| r["events"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [10, 10, 5]);

    // tumbling 10-minute windows, no allowed lateness: an event 30 minutes behind the
    // newest one belongs to a closed window and is counted as late, not dropped silently
    let mut lines: Vec<String> = (0..40).map(|m| minute_event(m, 3.0)).collect();
    lines.push(minute_event(5, 9.0));
    lines.extend((40..45).map(|m| minute_event(m, 3.0)));
    let (reports, summary) = replay_with("{ size = \"10m\" }", "", &lines);
    assert_eq!(summary["late_events"], 1);
    let late: u64 = reports.iter().map(|r| r["late_events"].as_u64().unwrap()).sum();
    assert_eq!(late, 1);
    let counted: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(counted, 45, "the late event is in no window");

    // with 1 hour of allowed lateness the same event lands in its window
    let (reports, summary) = replay_with("{ size = \"10m\" }", "allowed_lateness = \"1h\"", &lines);
    assert_eq!(summary["late_events"], 0);
    let counted: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(counted, 46);
}

#[test]
fn windows_below_min_events_are_reported_but_not_flagged() {
    // a wildly shifted feature, but only 20 events against min_events = 100
    let lines: Vec<String> = (0..20).map(|m| minute_event(m, 50.0 + m as f64)).collect();
    let (reports, _) = replay_with("{ size = \"1d\" }", "min_events = 100", &lines);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["insufficient_events"], true);
    assert_eq!(r["dataset_drift"], false);
    assert_eq!(r["features"][0]["drifted"], false);
    assert!(r["features"][0]["score"].as_f64().unwrap() > 1.0, "the numbers are still reported");
}

#[test]
fn an_event_from_the_future_is_counted_and_moves_no_window() {
    // two hours of one event a minute, with one event dated 9999 and one a day ahead of
    // the wall clock in the middle: they are refused, and the windows are those of the
    // other events alone
    let lines: Vec<String> = (0..120).map(|m| minute_event(m, 3.0 + (m % 7) as f64)).collect();
    let (clean, clean_summary) = replay_with("{ size = \"1h\" }", "", &lines);
    let day_ahead =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64) + 86_400_000;
    let mut skewed = lines.clone();
    skewed
        .insert(30, r#"{"model": "housing", "timestamp": "9999-01-01T00:00:00Z", "features": {"MedInc": 3.0}}"#.into());
    skewed.insert(
        70,
        format!("{{\"model\": \"housing\", \"timestamp\": {day_ahead}, \"features\": {{\"MedInc\": 3.0}}}}"),
    );
    let (reports, summary) = replay_with("{ size = \"1h\" }", "", &skewed);
    assert_eq!(summary["decode_errors"], serde_json::json!({"future_timestamp": 2}), "{summary}");
    assert_eq!((summary["events"].as_u64(), summary["late_events"].as_u64()), (Some(120), Some(0)));
    assert_eq!(reports.len(), clean.len());
    for (a, b) in reports.iter().zip(&clean) {
        assert_eq!(
            (&a["window_start"], &a["events"], &a["share_of_drifted_features"]),
            (&b["window_start"], &b["events"], &b["share_of_drifted_features"])
        );
    }
    assert_eq!(clean_summary["decode_errors"], serde_json::json!({}));
    // within max_future (clock skew) an event counts; a setting of its own moves the bound
    let mut near = lines.clone();
    let soon = day_ahead - 86_400_000 + 60_000;
    near.push(format!("{{\"model\": \"housing\", \"timestamp\": {soon}, \"features\": {{\"MedInc\": 3.0}}}}"));
    let (_, summary) = replay_with("{ size = \"1h\" }", "", &near);
    assert_eq!(summary["decode_errors"], serde_json::json!({}));
    let (_, summary) = replay_with("{ size = \"1h\" }", "max_future = \"10s\"", &near);
    assert_eq!(summary["decode_errors"], serde_json::json!({"future_timestamp": 1}));
}

#[test]
fn a_checkpoint_mark_in_the_future_is_refused_at_load() {
    use driftd::pipeline::Marks;
    let settings = driftd::config::Settings::from_toml(&format!(
        "[[models]]\nname = \"housing\"\nreference = \"{}\"\nfeatures = [\"MedInc\"]\nwindow = {{ size = \"1h\" }}\n",
        root().join("datasets/california_housing_reference.csv").display()
    ))
    .unwrap();
    let refs = driftd::reference::resolve_blocking(&settings).unwrap();
    let mut pipeline = driftd::pipeline::Pipeline::new(&settings, refs).unwrap();
    // a year-9999 mark, as an event from the future left it before max_future existed
    let year_9999 = 253_370_764_800_000;
    pipeline.restore_marks([(
        "housing".to_string(),
        None,
        Marks { closed_upto: year_9999, floor: i64::MIN, reported: Vec::new() },
    )]);
    pipeline.ingest(minute_event(0, 3.0).as_bytes(), None, None).unwrap();
    let track = &pipeline.models()[0].tracks[0];
    assert_eq!((track.windows.late_total, track.windows.open_events()), (0, 1), "the event counts");
    // a mark in the past stays
    let mut pipeline =
        driftd::pipeline::Pipeline::new(&settings, driftd::reference::resolve_blocking(&settings).unwrap()).unwrap();
    pipeline.restore_marks([(
        "housing".to_string(),
        None,
        Marks { closed_upto: 1_795_914_000_000, floor: i64::MIN, reported: Vec::new() },
    )]);
    pipeline.ingest(minute_event(0, 3.0).as_bytes(), None, None).unwrap();
    assert_eq!(pipeline.models()[0].tracks[0].windows.late_total, 1, "the hour before the mark is closed");
}

/// A reload that changes a model's windows or features, or removes it, reports its open
/// windows as they were instead of dropping them.
#[test]
fn a_reload_reports_the_open_windows_of_changed_and_removed_models() {
    let pipeline_of = |models: &[(&str, &str)]| {
        let mut toml = String::new();
        for (name, features) in models {
            toml.push_str(&format!(
                "[[models]]\nname = \"{name}\"\nreference = \"{}\"\nfeatures = {features}\nwindow = {{ size = \"1h\" }}\n",
                root().join("datasets/california_housing_reference.csv").display()
            ));
        }
        let settings = driftd::config::Settings::from_toml(&toml).unwrap();
        driftd::pipeline::Pipeline::new(&settings, driftd::reference::resolve_blocking(&settings).unwrap()).unwrap()
    };
    let two = [("housing", "[\"MedInc\", \"HouseAge\"]"), ("other", "[\"MedInc\"]")];
    let mut pipeline = pipeline_of(&two);
    let event = |model: &str, minute: i64| {
        let ts = 1_795_910_400_000i64 + minute * 60_000;
        format!("{{\"model\": \"{model}\", \"timestamp\": {ts}, \"features\": {{\"MedInc\": 3.0, \"HouseAge\": 20}}}}")
    };
    for minute in 0..30 {
        pipeline.ingest(event("housing", minute).as_bytes(), None, None).unwrap();
        pipeline.ingest(event("other", minute).as_bytes(), None, None).unwrap();
    }
    assert!(!pipeline.has_closed());
    // housing loses a feature, other is removed
    pipeline.reload(pipeline_of(&[("housing", "[\"MedInc\"]")]));
    let closed = pipeline.take_closed();
    let mut got: Vec<(String, u64, usize)> =
        closed.iter().map(|c| (c.spec.name.clone(), c.acc.events, c.spec.features().count())).collect();
    got.sort();
    assert_eq!(got, [("housing".to_string(), 30, 2), ("other".to_string(), 30, 1)], "reported under the old spec");
    // the rest of the hour is housing's new window; an event before the cut is late
    pipeline.ingest(event("housing", 40).as_bytes(), None, None).unwrap();
    pipeline.ingest(event("housing", 10).as_bytes(), None, None).unwrap();
    let track = &pipeline.models()[0].tracks[0];
    assert_eq!((track.windows.open_events(), track.windows.late_total), (1, 1));
    assert_eq!(
        pipeline.ingest(event("other", 41).as_bytes(), None, None).err().map(|e| e.reason()),
        Some("unknown_model")
    );
}

/// One message's weight is bounded (#14): a value far outside the reference is clipped to
/// one reference range beyond its extremes, so k such values in a window of n move the
/// Wasserstein distance by at most k/n times three ranges (normed: over the reference's
/// std). One `1e300` among 2,000 reference values changes no verdict; 5% of them still
/// raise drift, and each counts as out of range.
#[test]
fn one_extreme_value_cannot_raise_drift_and_a_mass_of_them_still_does() {
    let reference = rows("california_housing_reference.csv");
    let medinc: Vec<f64> = reference.iter().map(|r| r.values[0].parse::<f64>().unwrap()).collect();
    assert_eq!(FEATURES[0], "MedInc");
    let (min, max) = medinc.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    let mean = medinc.iter().sum::<f64>() / medinc.len() as f64;
    let std = (medinc.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / medinc.len() as f64).sqrt();
    // 2,000 of the reference's values, spread over the file (it is in time order): no drift
    let clean: Vec<f64> = (0..2000).map(|i| medinc[i * 1001 % medinc.len()]).collect();
    let with = |k: usize| {
        // k values of 1e300 spread through the window, one event a minute
        let mut values = clean.clone();
        for j in 0..k {
            values.insert(j * 2000 / k, 1e300);
        }
        let lines: Vec<String> = values.iter().enumerate().map(|(i, v)| minute_event(i as i64, *v)).collect();
        let (reports, _) = replay_with(&format!("{{ events = {} }}", lines.len()), "", &lines);
        assert_eq!(reports.len(), 1);
        reports[0].clone()
    };
    let (base, one, mass) = (with(0), with(1), with(100));
    let f = |r: &Value| r["features"][0].clone();
    assert_eq!(f(&base)["stattest"], "wasserstein", "{base}");
    assert_eq!(base["dataset_drift"], false, "{base}");
    assert_eq!(one["dataset_drift"], false, "one extreme value raised drift: {one}");
    let moved = (f(&one)["score"].as_f64().unwrap() - f(&base)["score"].as_f64().unwrap()).abs();
    let bound = 3.0 * (max - min) / std / 2001.0;
    assert!(moved <= bound, "moved {moved}, bound {bound}");
    assert_eq!(f(&one)["current_out_of_range_share"].as_f64().unwrap(), 1.0 / 2001.0);
    assert_eq!(mass["dataset_drift"], true, "5% of extreme values is drift: {mass}");
    assert_eq!(f(&mass)["current_out_of_range_share"].as_f64().unwrap(), 100.0 / 2100.0);
}
