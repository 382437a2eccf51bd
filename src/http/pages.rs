//! The pages people open: `/`, the models with their state and last window, and each
//! model's latest window as the HTML drift report `analyze --format html` writes.

use std::fmt::Write as _;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::{ApiState, ModelView};
use crate::analysis::html::{self, escape, Notice, Page};
use crate::pipeline::WindowReport;
use crate::policy::{DriftState, DriftTracker};

/// Nothing a page shows comes from elsewhere: styles inline, no script, no image.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Whether the client asked for a page (a browser's `Accept`) rather than JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.split(',').any(|part| part.trim().split(';').next() == Some("text/html"))
}

pub fn html_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// A window's report as a page: the model and the window above the report's own facts,
/// and the data-quality verdict first when the data failed the model's rule.
pub fn window_page(w: &WindowReport) -> String {
    let mut facts: Vec<(String, String)> = vec![("Model".into(), escape(&w.model))];
    if let Some(v) = &w.model_version {
        facts.push(("Model version".into(), escape(v)));
    }
    facts.push((
        "Window".into(),
        format!(
            "<span id=\"window-start\">{}</span> to <span id=\"window-end\">{}</span>",
            w.bounds.start_rfc3339(),
            w.bounds.end_rfc3339()
        ),
    ));
    facts.push((
        "Events".into(),
        format!(
            "<span id=\"events\">{}</span> ({} late, {} values of the wrong type)",
            w.events, w.late_events, w.invalid_values
        ),
    ));
    if let Some(m) = &w.merged {
        let v = serde_json::to_string(m).unwrap_or_default();
        facts.push(("Merged from partitions".into(), escape(&v)));
    }
    let mut notices = Vec::new();
    if let Some(e) = &w.error {
        notices.push(Notice { text: format!("The window could not be analysed: {e}"), error: true });
    }
    for f in &w.data_quality.failures {
        notices.push(Notice {
            text: format!(
                "Data quality: {} broke the rule ({}: {}% against a limit of {}%)",
                f.feature,
                f.reason.replace('_', " "),
                html::fmt_num(f.share * 100.0),
                html::fmt_num(f.limit * 100.0)
            ),
            error: false,
        });
    }
    if w.insufficient_events {
        notices.push(Notice {
            text: "Fewer events than the model's min_events: the numbers are shown, nothing is flagged.".into(),
            error: false,
        });
    }
    let verdict = if !w.data_quality.passed {
        Some(("Data quality failed: not judged for drift".to_string(), "quality"))
    } else if w.insufficient_events {
        Some(("Too few events to judge".to_string(), "quality"))
    } else {
        None
    };
    html::render(&Page {
        title: format!("Drift report: {}, window ending {}", w.model, w.bounds.end_rfc3339()),
        facts,
        notices,
        report: w.report.as_ref(),
        verdict,
    })
}

/// One model's row on the index: its state and its last window.
pub struct IndexRow<'a> {
    pub model: &'a ModelView,
    pub tracker: Option<DriftTracker>,
    pub latest: Option<LastWindow>,
}

/// What the index shows of a model's last window (not the report: a fleet's reports are
/// not copied for one page).
pub struct LastWindow {
    pub end: String,
    pub events: u64,
    /// Drifted features, of how many; none when the window was not judged.
    pub drifted: Option<(usize, usize)>,
}

impl LastWindow {
    pub fn of(w: &WindowReport) -> LastWindow {
        LastWindow {
            end: w.bounds.end_rfc3339(),
            events: w.events,
            drifted: w.report.as_ref().map(|r| (r.drifted_features, r.features_total)),
        }
    }
}

/// `/`: every model, its state (ok, drifting, data quality), its last window, and links.
pub fn index_page(state: &ApiState, rows: &[IndexRow]) -> String {
    let mut body = String::from("<header>\n<h1>driftd</h1>\n");
    let drifting = rows.iter().filter(|r| state_of(r).0 == "drifting").count();
    let quality = rows.iter().filter(|r| state_of(r).0 == "data quality").count();
    let _ = writeln!(
        body,
        "<p class=\"verdict {}\" id=\"verdict\">{} model{}: {drifting} drifting, {quality} failing data quality</p>",
        if drifting > 0 {
            "drift"
        } else if quality > 0 {
            "quality"
        } else {
            "ok"
        },
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    let ready = if state.ready() { "ready" } else { "not ready (see /readyz)" };
    let _ = writeln!(
        body,
        "<p class=\"muted\">{ready} · <a href=\"/metrics\">metrics</a> · <a href=\"/api/v1/models\">models (JSON)</a></p>\n</header>\n<main>"
    );
    body.push_str(
        "<table class=\"models\">\n<thead><tr><th>model</th><th>state</th><th>last window</th>\
         <th>events</th><th>drifted features</th><th>report</th></tr></thead>\n<tbody>\n",
    );
    for r in rows {
        let name = &r.model.name;
        let path = format!("/api/v1/models/{}/reports/latest", percent_encode(name));
        let (state, class) = state_of(r);
        let (window, events, drifted, links) = match &r.latest {
            Some(w) => (
                escape(&w.end),
                w.events.to_string(),
                w.drifted.map_or("–".into(), |(drifted, total)| format!("{drifted} of {total}")),
                format!("<a href=\"{path}.html\">page</a> · <a href=\"{path}\">JSON</a>"),
            ),
            None => ("no window closed yet".into(), "–".into(), "–".into(), String::new()),
        };
        let _ = writeln!(
            body,
            "<tr data-model=\"{}\"><td><b>{}</b></td><td><span class=\"badge {class}\">{state}</span></td>\
             <td>{window}</td><td>{events}</td><td>{drifted}</td><td>{links}</td></tr>",
            escape(name),
            escape(name)
        );
    }
    body.push_str("</tbody>\n</table>\n</main>\n");
    html::document("driftd: models", &body)
}

/// The model's state as the index shows it, and its style.
fn state_of(r: &IndexRow) -> (&'static str, &'static str) {
    match &r.tracker {
        Some(t) if t.quality.failing => ("data quality", "quality"),
        Some(t) if t.state == DriftState::Drifting => ("drifting", "drift"),
        _ => ("ok", "ok"),
    }
}

/// A model name as one path segment.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_gets_the_page_and_curl_the_json() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"));
        assert!(wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html(&h));
    }

    /// A window whose data broke the quality rule says so first, not "no drift", and lists
    /// each failure; one too small to judge says that.
    #[test]
    fn a_window_that_failed_data_quality_says_so_before_anything_else() {
        use crate::pipeline::close::DataQuality;
        use crate::pipeline::WindowBounds;
        use crate::policy::QualityFailure;
        use crate::reference::ReferenceIdentity;
        let failure = QualityFailure { feature: "age<x>".into(), reason: "no_values", share: 0.9, limit: 0.5 };
        let mut w = WindowReport {
            model: "churn".into(),
            model_version: Some("7".into()),
            bounds: WindowBounds { start_ms: 0, end_ms: 3_600_000 },
            reference: ReferenceIdentity { source: "/r.csv".into(), version: None, digest: "ab".repeat(32) },
            events: 500,
            late_events: 3,
            invalid_values: 450,
            insufficient_events: false,
            prediction_drift: None,
            error: None,
            report: None,
            data_quality: DataQuality { passed: false, failures: vec![failure], unmonitored_fields: 0 },
            merged: None,
            verdict: Default::default(),
        };
        let page = window_page(&w);
        let verdict = page.find("id=\"verdict\"").unwrap();
        assert!(page[verdict..].starts_with("id=\"verdict\">Data quality failed"), "{page}");
        assert!(page.contains("Data quality: age&lt;x&gt; broke the rule (no values: 90% against a limit of 50%)"));
        assert!(page.contains("1970-01-01T01:00:00Z") && page.contains(">500</span> (3 late"));
        w.data_quality = DataQuality { passed: true, failures: Vec::new(), unmonitored_fields: 0 };
        w.insufficient_events = true;
        assert!(window_page(&w).contains("id=\"verdict\">Too few events to judge"));
    }

    #[test]
    fn model_names_are_one_path_segment() {
        assert_eq!(percent_encode("churn-v2.1"), "churn-v2.1");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
