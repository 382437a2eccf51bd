//! Inference logs from a JSON Lines file: `driftd replay` runs the whole pipeline over it
//! and writes one window report per line. Windows still open at the end are closed.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::error::InputError;
use crate::pipeline::{report_window, Pipeline, WindowReport};

/// What a replay went through.
#[derive(Debug, Default, Serialize)]
pub struct ReplaySummary {
    pub messages: u64,
    pub events: u64,
    pub windows: u64,
    pub late_events: u64,
    pub decode_errors: BTreeMap<String, u64>,
    /// Drift episodes per model, retrain requests by outcome and alerts sent (with a
    /// policy's actions configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<serde_json::Value>,
    /// Where the time went: for benchmarks.
    pub timing: Timing,
}

/// Seconds spent loading the references, streaming (decode to report, closes included)
/// and closing windows (their statistics); the slowest close.
#[derive(Debug, Default, Serialize)]
pub struct Timing {
    pub load_s: f64,
    pub stream_s: f64,
    pub events_per_s: f64,
    pub window_close_s: f64,
    pub slowest_close_s: f64,
}

/// Runs `pipeline` over `input`, one report line per closed window to `out`;
/// `on_report` sees each report as it is written (the policy and its actions).
pub fn replay(
    mut pipeline: Pipeline,
    input: &Path,
    out: &mut dyn std::io::Write,
    on_report: &mut dyn FnMut(&WindowReport),
) -> Result<ReplaySummary, InputError> {
    let file = std::fs::File::open(input).map_err(|e| InputError::file(input, format!("cannot open: {e}")))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut summary = ReplaySummary::default();
    let mut emit = |pipeline: &mut Pipeline, summary: &mut ReplaySummary| -> Result<(), InputError> {
        for closed in pipeline.take_closed() {
            let started = Instant::now();
            let report = report_window(closed);
            let took = started.elapsed().as_secs_f64();
            summary.timing.window_close_s += took;
            summary.timing.slowest_close_s = summary.timing.slowest_close_s.max(took);
            summary.windows += 1;
            writeln!(out, "{}", report.to_json_line())
                .map_err(|e| InputError::file(input, format!("cannot write a report: {e}")))?;
            on_report(&report);
        }
        Ok(())
    };
    let started = Instant::now();
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n =
            reader.read_until(b'\n', &mut line).map_err(|e| InputError::file(input, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.messages += 1;
        if summary.messages % 1024 == 1 {
            // one clock read for the lines read in the next moment
            pipeline.hold_clock(true);
        }
        if pipeline.ingest(&line, None, None).is_ok() {
            summary.events += 1;
        }
        if pipeline.has_closed() {
            emit(&mut pipeline, &mut summary)?;
        }
    }
    pipeline.close_all();
    emit(&mut pipeline, &mut summary)?;
    summary.timing.stream_s = started.elapsed().as_secs_f64();
    summary.timing.events_per_s = (summary.events as f64 / summary.timing.stream_s).round();
    summary.decode_errors =
        pipeline.decode_errors().filter(|(_, n)| *n > 0).map(|(e, n)| (e.reason().to_string(), n)).collect();
    summary.late_events = pipeline.models().iter().flat_map(|m| &m.tracks).map(|t| t.late_total()).sum();
    Ok(summary)
}
