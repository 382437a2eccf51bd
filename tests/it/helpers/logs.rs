//! Inference logs built from the California housing pair in `datasets/`.

use std::path::PathBuf;

use driftd::rand::XorShift64;

pub const FEATURES: [&str; 8] =
    ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"];

pub fn reference_csv() -> PathBuf {
    super::root().join("datasets/california_housing_reference.csv")
}

/// A dataset's rows: the timestamp (RFC 3339) and the features' cells as written.
pub struct Row {
    pub ts: String,
    pub values: Vec<String>,
}

pub fn rows(file: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(super::root().join("datasets").join(file)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx: Vec<usize> = FEATURES.iter().map(|f| header.iter().position(|h| h == f).unwrap()).collect();
    let ts = header.iter().position(|h| *h == "timestamp").unwrap();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            Row { ts: cells[ts].replace(' ', "T") + "Z", values: idx.iter().map(|i| cells[*i].to_string()).collect() }
        })
        .collect()
}

/// One inference log for `model` with the row's values at time `ts`.
pub fn log_line(model: &str, ts: &str, values: &[String]) -> String {
    let feats: Vec<String> = FEATURES.iter().zip(values).map(|(f, v)| format!("\"{f}\": {v}")).collect();
    format!("{{\"model\": \"{model}\", \"timestamp\": \"{ts}\", \"features\": {{{}}}}}", feats.join(", "))
}

/// The analysis period's rows as logs, at their own timestamps.
pub fn analysis_logs(model: &str) -> Vec<String> {
    rows("california_housing_analysis.csv").iter().map(|r| log_line(model, &r.ts, &r.values)).collect()
}

/// A drift episode in `windows` of `per_window` events, one event per minute from
/// 2026-11-01: `stable` windows drawn from the reference period, `drifting` windows from
/// the analysis period, then `recovered` stable windows again.
pub fn episode_logs(model: &str, per_window: usize, stable: usize, drifting: usize, recovered: usize) -> Vec<String> {
    let reference = rows("california_housing_reference.csv");
    let analysis = rows("california_housing_analysis.csv");
    let mut rng = XorShift64::new(0x2545_f491_4f6c_dd1d);
    let start_ms: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z
    let mut out = Vec::new();
    let push = |values: &[String], out: &mut Vec<String>| {
        let ts = fmt_ms(start_ms + out.len() as i64 * 60_000);
        out.push(log_line(model, &ts, values));
    };
    for _ in 0..stable * per_window {
        push(&reference[rng.below(reference.len())].values, &mut out);
    }
    // the analysis period's last rows: the furthest from the reference
    for r in &analysis[analysis.len().saturating_sub(drifting * per_window)..] {
        push(&r.values, &mut out);
    }
    for _ in 0..recovered * per_window {
        push(&reference[rng.below(reference.len())].values, &mut out);
    }
    out
}

/// RFC 3339 (UTC, whole seconds) for Unix milliseconds.
pub fn fmt_ms(ms: i64) -> String {
    driftd::time::format_rfc3339_ms(ms.div_euclid(1000) * 1000)
}

/// `n` logs of `model` drawn at random (seeded) from a dataset's rows, one a minute from
/// `start_ms`, with `model_version` when given.
pub fn sampled_logs(model: &str, version: Option<&str>, file: &str, n: usize, start_ms: i64, seed: u64) -> Vec<String> {
    let rows = rows(file);
    let mut rng = XorShift64::new(seed);
    (0..n)
        .map(|i| {
            let r = &rows[rng.below(rows.len())];
            let line = log_line(model, &fmt_ms(start_ms + i as i64 * 60_000), &r.values);
            match version {
                Some(v) => line.replacen("{", &format!("{{\"model_version\": \"{v}\", "), 1),
                None => line,
            }
        })
        .collect()
}
