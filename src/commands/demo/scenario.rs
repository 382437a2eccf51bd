//! The demo's traffic: inference logs built from the California housing pair, one event
//! per simulated minute, a window per simulated day: a stable period drawn from the
//! reference period's rows, the drifting analysis period, then stable again.

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
/// Stable windows after the drifting period: enough for the episode to resolve.
const RECOVERY_WINDOWS: usize = 3;
/// 2026-11-29T00:00:00Z
const START_MS: i64 = 1_795_910_400_000;

/// The messages, and how many of each period.
pub struct Scenario {
    pub events: Vec<String>,
    pub stable: usize,
    pub drifting: usize,
    pub recovered: usize,
}

/// A dataset's feature rows (missing cells as NaN).
fn rows(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let df = crate::offline::dataset::read_frame(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cols: Vec<Vec<f64>> = FEATURES
        .iter()
        .map(|f| {
            let s = df.column(f)?.as_materialized_series().cast(&DataType::Float64)?;
            Ok(s.f64()?.downcast_iter().flat_map(|a| a.iter()).map(|v| v.copied().unwrap_or(f64::NAN)).collect())
        })
        .collect::<polars::prelude::PolarsResult<_>>()?;
    Ok((0..df.height()).map(|i| cols.iter().map(|c| c[i]).collect()).collect())
}

fn event(ts_ms: i64, values: &[f64], i: usize) -> String {
    let features: serde_json::Map<String, serde_json::Value> =
        FEATURES.iter().zip(values).map(|(f, v)| (f.to_string(), serde_json::json!(v))).collect();
    serde_json::json!({
        "model": MODEL,
        "model_version": "1",
        "timestamp": format_rfc3339_ms(ts_ms),
        "request_id": format!("r-{i}"),
        "features": features,
    })
    .to_string()
}

/// Builds the scenario from the pair in `datasets`.
pub fn build(reference: &Path, analysis: &Path) -> anyhow::Result<Scenario> {
    use anyhow::Context as _;
    let reference = rows(reference).with_context(|| format!("reading {}", reference.display()))?;
    let analysis = rows(analysis).with_context(|| format!("reading {}", analysis.display()))?;
    // a fixed sequence over the reference rows: the same demo every run
    let mut rng = XorShift64::new(0x2545_f491_4f6c_dd1d);
    let mut events = Vec::new();
    let at = |i: usize| START_MS + i as i64 * STEP_MS;
    for i in 0..STABLE_WINDOWS * EVENTS_PER_WINDOW {
        events.push(event(at(i), &reference[rng.below(reference.len())], i));
    }
    let stable = events.len();
    for (j, row) in analysis.iter().enumerate() {
        events.push(event(at(stable + j), row, stable + j));
    }
    // back to stable traffic, starting on a window boundary, until the episode resolves
    let resume = events.len().div_ceil(EVENTS_PER_WINDOW) * EVENTS_PER_WINDOW;
    let recovered = RECOVERY_WINDOWS * EVENTS_PER_WINDOW;
    for i in 0..recovered {
        events.push(event(at(resume + i), &reference[rng.below(reference.len())], resume + i));
    }
    Ok(Scenario { events, stable, drifting: analysis.len(), recovered })
}
