//! The real binary, driven as a user and a CI pipeline drive it: exit codes, the one-line
//! errors, the report formats, profiles, and garbage input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::driftd;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const REF: &str = "datasets/california_housing_reference.csv";
const CUR: &str = "datasets/california_housing_analysis.csv";
const NOT_FEATURES: &str = "id,timestamp,clf_target";
const SAME_A: &str = "tests/fixtures/data/size_1000_ref.csv";

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err:?}");
    lines[0].to_string()
}

#[test]
fn check_exits_1_on_the_drifting_housing_pair() {
    let o = driftd(&["check", "--reference", REF, "--current", CUR, "--exclude", NOT_FEATURES]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("DRIFT"), "{out}");
    // drifted features come first in the table
    let first_row = out.lines().nth(4).unwrap();
    assert!(first_row.contains("YES"), "{out}");
}

#[test]
fn check_exits_0_when_a_dataset_is_compared_with_itself() {
    for mode in ["native", "evidently"] {
        let o = driftd(&["check", "--reference", SAME_A, "--current", SAME_A, "--compat", mode]);
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stderr(&o));
    }
}

#[test]
fn json_report_follows_the_schema() {
    let o = driftd(&[
        "analyze",
        "--reference",
        REF,
        "--current",
        CUR,
        "--exclude",
        NOT_FEATURES,
        "--format",
        "json",
        "--compat",
        "evidently",
    ]);
    assert_eq!(o.status.code(), Some(0), "analyze exits 0 even on drift: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "dataset_drift",
        "drifted_features",
        "features_total",
        "share_of_drifted_features",
        "drift_share_threshold",
        "features",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["features_total"], 10);
    for f in v["features"].as_array().unwrap() {
        for key in ["name", "kind", "stattest", "score", "statistic", "p_value", "threshold", "drifted"] {
            assert!(f.get(key).is_some(), "feature misses {key}: {f}");
        }
        let kind = f["kind"].as_str().unwrap();
        assert!(kind == "numerical" || kind == "categorical");
        if f["stattest"] == "wasserstein" || f["stattest"] == "jensenshannon" {
            assert!(f["p_value"].is_null(), "distances have no p-value");
            assert_eq!(f["score"], f["statistic"]);
        }
    }
    // the five drifting census features of the provenance note
    let drifted: Vec<&str> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["drifted"] == true)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in ["MedInc", "HouseAge", "AveOccup", "Latitude", "Longitude"] {
        assert!(drifted.contains(&name), "{name} drifts: {drifted:?}");
    }
    for name in ["AveRooms", "AveBedrms", "Population"] {
        assert!(!drifted.contains(&name), "{name} does not drift: {drifted:?}");
    }
}

#[test]
fn output_flag_writes_the_report_to_a_file() {
    let dir = tmp();
    let out = dir.path().join("report.json");
    let o = driftd(&[
        "analyze",
        "--reference",
        SAME_A,
        "--current",
        SAME_A,
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["dataset_drift"], false);
}

#[test]
fn a_profile_gives_the_same_report_as_its_dataset() {
    let dir = tmp();
    let profile = dir.path().join("ref.json");
    let o = driftd(&["baseline", "--data", REF, "--out", profile.to_str().unwrap(), "--exclude", NOT_FEATURES]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(p["rows"], 5832);
    let medinc = p["features"].as_array().unwrap().iter().find(|f| f["name"] == "MedInc").unwrap();
    for key in ["edges", "bin_counts", "quantiles", "std", "n_unique"] {
        assert!(medinc["numeric"].get(key).is_some(), "profile misses {key}");
    }
    let run = |reference: &str| {
        let o = driftd(&[
            "analyze",
            "--reference",
            reference,
            "--current",
            CUR,
            "--format",
            "json",
            "--exclude",
            NOT_FEATURES,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["reference"] = serde_json::Value::Null;
        v
    };
    assert_eq!(run(profile.to_str().unwrap()), run(REF));
}

#[test]
fn evidently_mode_refuses_a_profile() {
    let dir = tmp();
    let profile = dir.path().join("ref.json");
    driftd(&["baseline", "--data", SAME_A, "--out", profile.to_str().unwrap()]);
    let o = driftd(&["check", "--reference", profile.to_str().unwrap(), "--current", SAME_A, "--compat", "evidently"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_error_line(&o).contains("--compat evidently"));
}

fn expect_input_error(args: &[&str], needles: &[&str]) {
    let o = driftd(args);
    assert_eq!(o.status.code(), Some(2), "args {args:?}: {}", stderr(&o));
    let line = one_error_line(&o);
    for n in needles {
        assert!(line.contains(n), "'{line}' should name '{n}'");
    }
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_culprit() {
    let dir = tmp();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(d("empty.csv"), "").unwrap();
    std::fs::write(d("header.csv"), "a,b\n").unwrap();
    std::fs::write(d("a.csv"), "x,y\n1,u\n2,v\n3,w\n").unwrap();
    std::fs::write(d("b.csv"), "x,z\n1,u\n2,v\n3,w\n").unwrap();
    std::fs::write(d("kind.csv"), "x,y\nfoo,u\nbar,v\nbaz,w\n").unwrap();
    std::fs::write(d("nan.csv"), "x,y\nnan,u\n,v\ninf,w\n").unwrap();
    std::fs::write(d("data.unknown"), "x\n1\n").unwrap();

    expect_input_error(&["check", "--reference", "no/such.csv", "--current", SAME_A], &["no/such.csv", "no such file"]);
    expect_input_error(&["check", "--reference", &d("empty.csv"), "--current", SAME_A], &["empty.csv", "empty"]);
    expect_input_error(&["check", "--reference", &d("header.csv"), "--current", SAME_A], &["header.csv", "no rows"]);
    expect_input_error(
        &["check", "--reference", &d("data.unknown"), "--current", SAME_A],
        &["data.unknown", "extension"],
    );
    expect_input_error(&["check", "--reference", &d("a.csv"), "--current", &d("b.csv")], &["column 'y'", "missing"]);
    expect_input_error(
        &["check", "--reference", &d("a.csv"), "--current", &d("kind.csv")],
        &["column 'x'", "kind differs"],
    );
    expect_input_error(
        &["check", "--reference", &d("a.csv"), "--current", &d("nan.csv")],
        &["column 'x'", "empty after"],
    );
    expect_input_error(
        &["check", "--reference", &d("a.csv"), "--current", &d("a.csv"), "--stattest", "kolmogorov"],
        &["--stattest", "unknown stattest 'kolmogorov'"],
    );
    expect_input_error(
        &["check", "--reference", SAME_A, "--current", SAME_A, "--num-stattest", "ks", "--threshold", "1.5"],
        &["--threshold", "out of range"],
    );
    expect_input_error(&["check", "--reference", SAME_A, "--current", SAME_A, "--threshold", "-1"], &["--threshold"]);
    expect_input_error(&["check", "--reference", SAME_A, "--current", SAME_A, "--threshold", "abc"], &["--threshold"]);
    expect_input_error(
        &["check", "--reference", SAME_A, "--current", SAME_A, "--drift-share", "0"],
        &["--drift-share"],
    );
    expect_input_error(
        &["check", "--reference", SAME_A, "--current", SAME_A, "--cat-stattest", "ks"],
        &["column 's'", "does not apply"],
    );
    expect_input_error(&["check", "--reference", SAME_A], &["--current"]);
}

#[test]
fn garbage_bytes_never_crash() {
    let dir = tmp();
    let mut rng = driftd::rand::XorShift64::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    for (i, ext) in ["csv", "parquet", "jsonl", "json", "csv", "parquet", "jsonl", "csv"].iter().enumerate() {
        let len = 1 + (next() % 4096) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i == 4 {
            // looks like a CSV until it doesn't
            bytes = b"a,b,c\n1,2,3\n4,\"5\n\xff\xfe,,,,\n".to_vec();
        }
        if i == 5 {
            bytes = b"PAR1\x00\x00\x00\x00garbage PAR1".to_vec();
        }
        let path: PathBuf = dir.path().join(format!("g{i}.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_str().unwrap();
        for args in [
            vec!["check", "--reference", p, "--current", SAME_A],
            vec!["check", "--reference", SAME_A, "--current", p],
            vec!["baseline", "--data", p, "--out", dir.path().join("o.json").to_str().unwrap()],
        ] {
            let o = driftd(&args);
            let code = o.status.code();
            assert!(code.is_some(), "{p}: killed by a signal");
            assert!(matches!(code, Some(0..=2)), "{p}: exit {code:?}");
            assert!(!stderr(&o).contains("panicked"), "{p}: {}", stderr(&o));
        }
    }
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["analyze", "--help"],
        vec!["check", "--help"],
        vec!["baseline", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let o = driftd(&args);
        assert_eq!(o.status.code(), Some(0));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let check = String::from_utf8_lossy(&driftd(&["check", "--help"]).stdout).into_owned();
    assert!(check.contains("exit 0 no dataset drift, 1 dataset drift, 2"));
}

#[test]
fn config_check_prints_the_resolved_config_or_the_key_at_fault() {
    let o = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["config", "check", "config/driftd.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRIFTD__KAFKA__BROKERS", "override:9092")
        .env("DRIFTD_RETRAIN_SECRET", "s3cr3t")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kafka"]["brokers"], "override:9092");
    assert_eq!(v["models"][0]["name"], "california-housing");

    let dir = tmp();
    let bad = dir.path().join("bad.toml");
    for (text, key) in [
        ("[defaults]\ndrift_share = 1.5\n", "defaults.drift_share"),
        ("[[models]]\nname = \"m\"\nreference = \"r.csv\"\nwindow = { size = \"1h\", slide = \"7m\" }\n", "models[0].window"),
        ("[retrain]\npreset = \"webhook\"\nurl = \"ftp://x\"\n", "retrain.url"),
        ("[retrain]\npreset = \"cron\"\nurl = \"http://x\"\n", "cron"),
        ("[kafka]\nbrokerz = \"x\"\n", "brokerz"),
        ("[[models]]\nname = \"m\"\nreference = \"r.csv\"\n[models.per_feature.age]\nstattest = \"ks\"\nthreshold = 2.0\n", "models[0].per_feature.age.threshold"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let o = driftd(&["config", "check", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(one_error_line(&o).contains(key), "{text}: {}", stderr(&o));
    }
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/driftd.toml").exists());

    // valid, but failing in a common setup: a warning naming the key, exit 0
    let model = "[[models]]\nname = \"m\"\nreference = \"r.csv\"\n";
    std::fs::write(
        &bad,
        format!(
            "{model}[retrain]\npreset = \"kubeflow\"\nurl = \"http://kfp/apis/v2beta1/runs\"\npipeline_id = \"p\"\n"
        ),
    )
    .unwrap();
    let o = driftd(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: retrain.experiment_id: not set: multi-user Kubeflow"), "{}", stderr(&o));
    // Jenkins without a user takes the job's trigger token (driftd fetches the crumb); with
    // neither, it is refused
    let jenkins = format!("{model}[retrain]\npreset = \"jenkins\"\nurl = \"http://ci/job/r/buildWithParameters\"\n");
    std::fs::write(&bad, format!("{jenkins}secret = \"trigger\"\n")).unwrap();
    let o = driftd(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(&bad, &jenkins).unwrap();
    let o = driftd(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        one_error_line(&o).contains("retrain.secret") && stderr(&o).contains("the job's trigger token"),
        "{}",
        stderr(&o)
    );
}

/// `analyze --thresholds calibrated`: every feature's threshold comes from the profile's
/// calibration (or the floor), the report says so, a budget out of range or `bh` without
/// calibration is refused with the flag at fault.
#[test]
fn calibrated_thresholds_on_the_command_line() {
    let dir = tmp();
    let profile = dir.path().join("ref.json");
    let o = driftd(&["baseline", "--data", REF, "--out", profile.to_str().unwrap(), "--exclude", NOT_FEATURES]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    let cal = &p["features"][0]["calibration"];
    assert_eq!(cal["replicates"], 1000);
    assert_eq!(cal["sizes"].as_array().unwrap().len(), 7);
    let report = |extra: &[&str]| -> serde_json::Value {
        let args = [
            &["analyze", "--reference", profile.to_str().unwrap(), "--current", CUR, "--format", "json"][..],
            &["--exclude", NOT_FEATURES],
            extra,
        ]
        .concat();
        let o = driftd(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let calibrated = report(&["--thresholds", "calibrated"]);
    for f in calibrated["features"].as_array().unwrap() {
        let source = f["threshold_source"].as_str().unwrap();
        assert!(["calibrated", "effect_floor"].contains(&source), "{f}");
        assert!(f["null_p_value"].as_f64().is_some(), "{f}");
        assert!(f["min_effect"].as_f64().is_some(), "{f}");
    }
    // the drifted analysis period: a big window, and the shift is large; both modes see it
    assert_eq!(calibrated["dataset_drift"], true);
    let fixed = report(&[]);
    assert!(fixed["features"].as_array().unwrap().iter().all(|f| f["threshold_source"] == "fixed"));
    let bh = report(&["--thresholds", "calibrated", "--dataset-rule", "bh"]);
    assert_eq!(bh["dataset_rule"], "bh");
    assert_eq!(bh["dataset_drift"], true);
    expect_input_error(
        &["analyze", "--reference", REF, "--current", CUR, "--false-alarm-rate", "0.9"],
        &["--false-alarm-rate"],
    );
    expect_input_error(
        &["analyze", "--reference", REF, "--current", CUR, "--dataset-rule", "bh"],
        &["--dataset-rule", "calibrated"],
    );
    expect_input_error(
        &["analyze", "--reference", REF, "--current", CUR, "--min-effect", "wasserstien=0.1"],
        &["--min-effect"],
    );
}
