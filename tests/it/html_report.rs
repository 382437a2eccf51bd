//! The HTML drift report, opened in a real browser: headless Chromium (Debian's package,
//! which `scripts/test` installs) driven over the DevTools protocol by
//! `tests/browser/page_check.py`. Each page: no console error, no request but the page
//! itself (the file ones with the network off), one visible chart per feature with the
//! report's bins, drifted features first, and the numbers of the JSON report. Screenshots
//! go to `target/screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{driftd, free_port, http_get, http_with, root};

const REFERENCE: &str = "datasets/california_housing_reference.csv";
const CURRENT: &str = "datasets/california_housing_analysis.csv";

/// What Chromium showed: `{console, requests, page}` (see the script).
fn page_check(url: &str, shot: &Path, offline: bool) -> Value {
    page_check_with(url, shot, offline, &[])
}

fn page_check_with(url: &str, shot: &Path, offline: bool, extra: &[&str]) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/browser/page_check.py")).arg(url).arg(shot).args(extra);
    if offline {
        cmd.arg("--offline");
    }
    let out = cmd.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "page_check {url}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("page_check prints JSON");
    assert_eq!(seen["console"], serde_json::json!([]), "{url}: console errors or failed loads");
    assert_eq!(seen["requests"], serde_json::json!([url]), "{url}: the page asked for more than itself");
    let png = std::fs::read(shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{}: {} bytes", shot.display(), png.len());
    seen
}

fn screenshot(name: &str) -> PathBuf {
    let dir = root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A number as the page shows it (four significant digits, `%` for shares) is the JSON's.
fn shown_equals(what: &str, shown: &Value, expected: f64, percent: bool) {
    let exact: f64 = shown["value"].as_str().unwrap().parse().unwrap();
    assert_eq!(exact, expected, "{what}: the page's exact value");
    let text = shown["text"].as_str().unwrap().trim_end_matches('%');
    let visible: f64 = text.parse().unwrap_or_else(|_| panic!("{what}: '{text}' is not a number"));
    let expected = if percent { expected * 100.0 } else { expected };
    let tolerance = 5e-4 * expected.abs() + 1e-12;
    assert!((visible - expected).abs() <= tolerance, "{what}: the page shows {text}, the report says {expected}");
}

/// The page shows what the JSON report says, feature by feature, drifted ones first.
fn assert_page_shows(page: &Value, report: &Value) {
    let features = report["features"].as_array().unwrap();
    let shown = page["features"].as_array().unwrap();
    assert_eq!(shown.len(), features.len(), "one section per feature");
    assert_eq!(shown.len(), report["features_total"].as_u64().unwrap() as usize);
    let flags: Vec<bool> = shown.iter().map(|f| f["drifted"].as_bool().unwrap()).collect();
    let first_clean = flags.iter().position(|d| !d).unwrap_or(flags.len());
    assert!(flags[first_clean..].iter().all(|d| !d), "drifted features come first: {flags:?}");
    let drifted = report["drifted_features"].as_u64().unwrap();
    assert_eq!(first_clean as u64, drifted);
    let facts = &page["facts"];
    assert_eq!(facts["Drifted features"], format!("{drifted} of {}", features.len()).as_str());
    let verdict = page["verdict"].as_str().unwrap();
    let expected = if report["dataset_drift"].as_bool().unwrap() { "Dataset drift" } else { "No dataset drift" };
    assert_eq!(verdict, expected);
    for f in features {
        let name = f["name"].as_str().unwrap();
        let s = shown.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no section for {name}"));
        assert_eq!(s["drifted"], f["drifted"], "{name}");
        assert_eq!(s["badge"], if f["drifted"].as_bool().unwrap() { "DRIFTED" } else { "no drift" }, "{name}");
        let charts = s["charts"].as_array().unwrap();
        assert_eq!(charts.len(), 1, "{name}: one chart");
        let c = &charts[0];
        assert!(c["width"].as_f64().unwrap() > 300.0 && c["height"].as_f64().unwrap() > 100.0, "{name}: {c}");
        let bins = f["distribution"]["reference"].as_array().unwrap().len();
        assert!(bins >= 2, "{name}: {bins} bins");
        assert_eq!(c["bins"].as_u64().unwrap() as usize, bins, "{name}: the chart draws the report's bins");
        let n = &s["numbers"];
        for (class, key) in
            [("score", "score"), ("threshold", "threshold"), ("statistic", "statistic"), ("p-value", "p_value")]
        {
            match f[key].as_f64() {
                Some(v) => shown_equals(&format!("{name} {key}"), &n[class], v, false),
                None => assert!(n.get(class).is_none(), "{name}: no {key} in the report, none on the page"),
            }
        }
        shown_equals(
            &format!("{name} missing"),
            &n["current-missing"],
            f["current_missing_share"].as_f64().unwrap(),
            true,
        );
    }
}

fn json_report(args: &[&str]) -> Value {
    let o = driftd(&[&["analyze", "--reference", REFERENCE, "--current", CURRENT, "--format", "json"], args].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn analyze_html_in_both_modes_shows_every_feature_drifted_first_with_the_reports_numbers() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["native", "evidently"] {
        let args = ["--compat", mode, "--exclude", "clf_target"];
        let report = json_report(&args);
        let html = dir.path().join(format!("{mode}.html"));
        let o = driftd(
            &[
                &["analyze", "--reference", REFERENCE, "--current", CURRENT, "--format", "html"][..],
                &args,
                &["--output", html.to_str().unwrap()],
            ]
            .concat(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let pdf = dir.path().join(format!("{mode}.pdf"));
        let seen = page_check_with(
            &format!("file://{}", html.display()),
            &screenshot(&format!("analyze-{mode}.png")),
            true,
            &["--pdf", pdf.to_str().unwrap()],
        );
        let page = &seen["page"];
        // it prints: a PDF of several A4 pages (a card is never cut across two)
        let printed = std::fs::read(&pdf).unwrap();
        let pages = printed.windows(12).filter(|w| w.starts_with(b"/Type /Page") && w[11] != b's').count();
        assert!(printed.starts_with(b"%PDF") && pages >= 3, "{} pages", pages);
        assert_page_shows(page, &report);
        assert_eq!(page["facts"]["Mode"], mode);
        // a categorical feature of many categories: the most common, then "other"
        let ts = report["features"].as_array().unwrap().iter().find(|f| f["name"] == "timestamp").unwrap();
        let d = &ts["distribution"];
        let cats = d["categories"].as_array().unwrap();
        assert_eq!(cats.len(), 12, "{d}");
        assert_eq!(cats[11], "other");
        let total = |side: &str| d[side].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum::<u64>();
        assert_eq!(total("reference"), ts["reference_count"].as_u64().unwrap(), "no category lost into 'other'");
        assert_eq!(total("current"), ts["current_count"].as_u64().unwrap());
    }
}

#[test]
fn check_writes_its_html_beside_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("gate.html");
    let o = driftd(&[
        "check",
        "--reference",
        REFERENCE,
        "--current",
        CURRENT,
        "--exclude",
        "clf_target",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "drift: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Dataset: DRIFT"), "the text report still goes to stdout");
    let seen = page_check(&format!("file://{}", html.display()), &screenshot("check.png"), true);
    assert_page_shows(&seen["page"], &json_report(&["--exclude", "clf_target"]));

    // no drift: the same data on both sides
    let o = driftd(&["check", "--reference", REFERENCE, "--current", REFERENCE, "--html", html.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let seen = page_check(&format!("file://{}", html.display()), &screenshot("check-clean.png"), true);
    assert_eq!(seen["page"]["verdict"], "No dataset drift");
}

/// The README's first command, with `--forever`: the demo tells its whole story, then
/// serves its pages; the model's latest window and the index open in the browser.
#[test]
fn the_demo_tells_its_whole_story_and_serves_its_pages() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["demo", "--forever", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut story = String::new();
    let started = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        story.push_str(&line);
        story.push('\n');
        if line.contains("serving on") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{story}");
    }
    assert!(story.contains("serving on"), "the demo stopped:\n{story}");

    let model = "california-housing";
    let (code, json) = http_get(port, &format!("/api/v1/models/{model}/reports/latest")).unwrap();
    assert_eq!(code, 200, "{json}");
    let latest: Value = serde_json::from_str(&json).unwrap();
    // a browser's Accept gets the page at the same address
    let (code, body) =
        http_with(port, "GET", &format!("/api/v1/models/{model}/reports/latest"), "Accept: text/html\r\n").unwrap();
    assert_eq!(code, 200);
    assert!(body.starts_with("<!doctype html>"), "{}", &body[..body.len().min(200)]);

    let url = format!("http://127.0.0.1:{port}/api/v1/models/{model}/reports/latest.html");
    let seen = page_check(&url, &screenshot("demo-latest.png"), false);
    let page = &seen["page"];
    assert_page_shows(page, &latest);
    assert_eq!(page["facts"]["Model"], model);
    assert!(page["facts"]["Window"].as_str().unwrap().contains(latest["window_end"].as_str().unwrap()));

    let url = format!("http://127.0.0.1:{port}/");
    let seen = page_check(&url, &screenshot("demo-index.png"), false);
    let rows = seen["page"]["models"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["model"], model);
    // the episode ended on the retrained model's reference
    assert_eq!(rows[0]["state"], "ok");
    assert!(rows[0]["cells"][2].as_str().unwrap().contains(latest["window_end"].as_str().unwrap()), "{rows:?}");
    let links = rows[0]["links"].as_array().unwrap();
    assert!(links.contains(&Value::from(format!("/api/v1/models/{model}/reports/latest.html"))), "{links:?}");

    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    for line in lines {
        story.push_str(&line.unwrap());
        story.push('\n');
    }
    let status = child.wait().unwrap();
    let err = err_thread.join().unwrap();
    assert!(status.success(), "{story}{err}");
    assert!(story.contains("scenario complete"), "{story}");
    assert!(story.contains("1 retrain request(s) and 2 alert notification(s) received"), "{story}");
    assert!(story.contains("0 of them drifted"), "{story}");
    assert!(!err.contains("future_timestamp"), "the scenario's clock is not a broken one");
}
