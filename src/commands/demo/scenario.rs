//! The demo's traffic: inference logs built from the California housing pair, one event
//! per simulated minute, a window per simulated day: a stable period drawn from the
//! reference period's rows, then the analysis period's, which is where the world went and
//! where it stays.

use std::path::Path;

use polars::prelude::DataType;

use crate::rand::XorShift64;
use crate::time::format_rfc3339_ms;

pub const MODEL: &str = "california-housing";
pub const FEATURES: [&str; 8] =
    ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"];
/// One event per simulated minute; a window is one simulated day.
const STEP_MS: i64 = 60_000;
const EVENTS_PER_WINDOW: usize = (86_400_000 / STEP_MS) as usize;
const STABLE_WINDOWS: usize = 4;
/// Days of the shift before the retrain: the episode fires on the second.
const SHIFTED_WINDOWS: usize = 3;
/// Days of the (still shifted) traffic after the retrained model's reference is in.
pub const AFTER_WINDOWS: usize = 4;
/// 2026-11-29T00:00:00Z
const START_MS: i64 = 1_795_910_400_000;

/// The messages: before the retrain (stable, then the shift), and after it (the shift
/// stays: the same drifted distribution, for good).
pub struct Scenario {
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub stable: usize,
    pub drifting: usize,
}

/// A dataset's feature rows (missing cells as NaN).
fn rows(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let df = crate::analysis::dataset::read_frame(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cols: Vec<Vec<f64>> = FEATURES
        .iter()
        .map(|f| {
            let s = df.column(f)?.as_materialized_series().cast(&DataType::Float64)?;
            Ok(s.f64()?.downcast_iter().flat_map(|a| a.iter()).map(|v| v.copied().unwrap_or(f64::NAN)).collect())
        })
        .collect::<polars::prelude::PolarsResult<_>>()?;
    Ok((0..df.height()).map(|i| cols.iter().map(|c| c[i]).collect()).collect())
}

fn event(ts_ms: i64, values: &[f64], i: usize, version: &str) -> String {
    let features: serde_json::Map<String, serde_json::Value> =
        FEATURES.iter().zip(values).map(|(f, v)| (f.to_string(), serde_json::json!(v))).collect();
    serde_json::json!({
        "model": MODEL,
        "model_version": version,
        "timestamp": format_rfc3339_ms(ts_ms),
        "request_id": format!("r-{i}"),
        "features": features,
    })
    .to_string()
}

/// Builds the scenario from the pair: `STABLE_WINDOWS` days drawn from the reference
/// period, `SHIFTED_WINDOWS` days drawn from the analysis period (the world has moved),
/// then (after the retrain) `AFTER_WINDOWS` more days from it, on a day boundary.
pub fn build(reference: &Path, analysis: &Path) -> anyhow::Result<Scenario> {
    use anyhow::Context as _;
    let reference = rows(reference).with_context(|| format!("reading {}", reference.display()))?;
    let analysis = rows(analysis).with_context(|| format!("reading {}", analysis.display()))?;
    // a fixed sequence of rows: the same demo every run
    let mut rng = XorShift64::new(0x2545_f491_4f6c_dd1d);
    let at = |i: usize| START_MS + i as i64 * STEP_MS;
    let mut before = Vec::new();
    for i in 0..STABLE_WINDOWS * EVENTS_PER_WINDOW {
        before.push(event(at(i), &reference[rng.below(reference.len())], i, "1"));
    }
    let stable = before.len();
    for j in 0..SHIFTED_WINDOWS * EVENTS_PER_WINDOW {
        before.push(event(at(stable + j), &analysis[rng.below(analysis.len())], stable + j, "1"));
    }
    let drifting = before.len() - stable;
    // the retrained model serves from the next day on; the world stays shifted
    let resume = before.len().div_ceil(EVENTS_PER_WINDOW) * EVENTS_PER_WINDOW + EVENTS_PER_WINDOW;
    let after = (0..AFTER_WINDOWS * EVENTS_PER_WINDOW)
        .map(|i| event(at(resume + i), &analysis[rng.below(analysis.len())], resume + i, "2"))
        .collect();
    Ok(Scenario { before, after, stable, drifting })
}
