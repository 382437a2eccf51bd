//! What happens in the pipeline: windows closed and reported (with their data quality),
//! messages that could not be decoded, model servers' halves joined or not, models gone
//! quiet, configs reloaded.

use super::{v, InternalEvent, Telemetry};
use crate::analysis::thresholds::ThresholdSource;
use crate::pipeline::{DecodeError, WindowReport};
use crate::policy::QualityFailure;
use crate::stats::StatTest;

/// A window closed and was reported.
pub struct WindowClosed<'a> {
    pub report: &'a WindowReport,
}

impl InternalEvent for WindowClosed<'_> {
    fn emit(self, t: &Telemetry) {
        let (m, w) = (&t.metrics, self.report);
        let (model, version) = (w.model.as_str(), v(w.model_version.as_deref()));
        let mv = [model, version];
        m.windows_closed_total.with_label_values(&mv).inc();
        m.window_events.with_label_values(&mv).set(w.events as f64);
        m.late_events_total.with_label_values(&mv).inc_by(w.late_events);
        m.last_window_end_timestamp_seconds.with_label_values(&mv).set(w.bounds.end_ms as f64 / 1000.0);
        if let Some(p) = w.prediction_drift {
            m.prediction_drift_detected.with_label_values(&mv).set(f64::from(u8::from(p)));
        }
        tracing::debug!(model, version, window_start = %w.bounds.start_rfc3339(), events = w.events, "window closed");
        m.invalid_values_total.with_label_values(&mv).inc_by(w.invalid_values);
        m.unmonitored_fields_total.with_label_values(&[model]).inc_by(w.data_quality.unmonitored_fields);
        quality_gauges(m, w);
        let Some(r) = &w.report else { return };
        m.dataset_drift_share.with_label_values(&mv).set(r.share_of_drifted_features);
        m.dataset_drift_detected.with_label_values(&mv).set(f64::from(u8::from(r.dataset_drift)));
        for f in &r.features {
            let name = f.name.as_str();
            // One stattest per feature: a test change by reload replaces the series.
            for other in StatTest::ALL.iter().filter(|t| **t != f.stattest) {
                let _ = m.feature_drift_score.remove_label_values(&[model, version, name, other.name()]);
            }
            m.feature_drift_score.with_label_values(&[model, version, name, f.stattest.name()]).set(f.score);
            m.feature_drift_threshold.with_label_values(&[model, version, name]).set(f.threshold);
            for source in ThresholdSource::ALL.iter().map(|s| s.as_str()).filter(|s| *s != f.threshold_source) {
                let _ = m.feature_threshold_source.remove_label_values(&[model, version, name, source]);
            }
            m.feature_threshold_source.with_label_values(&[model, version, name, f.threshold_source]).set(1);
            m.feature_drift_detected.with_label_values(&[model, version, name]).set(f64::from(u8::from(f.drifted)));
        }
    }
}

/// The window's per-feature data-quality shares, and which features broke the rule.
fn quality_gauges(m: &crate::telemetry::metrics::Metrics, w: &WindowReport) {
    let (model, version) = (w.model.as_str(), v(w.model_version.as_deref()));
    let failing = |name: &str| w.data_quality.failures.iter().any(|f| f.feature == name);
    for f in w.report.iter().flat_map(|r| &r.features) {
        let labels = [model, version, f.name.as_str()];
        m.feature_missing_share.with_label_values(&labels).set(f.current_missing_share);
        let shares = [
            (&m.feature_invalid_share, f.current_invalid_share),
            (&m.feature_out_of_range_share, f.current_out_of_range_share),
            (&m.feature_unseen_share, f.current_unseen_share),
        ];
        for (gauge, share) in shares {
            if let Some(s) = share {
                gauge.with_label_values(&labels).set(s);
            }
        }
        m.feature_data_quality_failing.with_label_values(&labels).set(f64::from(u8::from(failing(&f.name))));
    }
    // features with no valid value are not in the report's statistics
    for f in w.data_quality.failures.iter().filter(|f| f.reason == "no_values") {
        let labels = [model, version, f.feature.as_str()];
        m.feature_invalid_share.with_label_values(&labels).set(f.share);
        m.feature_missing_share.with_label_values(&labels).set(1.0 - f.share);
        m.feature_data_quality_failing.with_label_values(&labels).set(1.0);
    }
}

/// A model's (or version's) data-quality state, as `driftd_model_data_quality_failing` shows it.
pub struct DataQualitySet<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub failing: bool,
}

impl InternalEvent for DataQualitySet<'_> {
    fn emit(self, t: &Telemetry) {
        let labels = [self.model, v(self.version)];
        t.metrics.model_data_quality_failing.with_label_values(&labels).set(i64::from(self.failing));
    }
}

/// A model's (or version's) data started or stopped breaking its data-quality rule.
pub struct DataQualityChanged<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub incident: &'a str,
    pub failing: bool,
    pub failures: &'a [QualityFailure],
}

impl InternalEvent for DataQualityChanged<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, version, incident) = (self.model, v(self.version), self.incident);
        if self.failing {
            t.metrics.data_quality_incidents_total.with_label_values(&[model, version]).inc();
            let failing: Vec<String> = self.failures.iter().map(|f| format!("{}:{}", f.feature, f.reason)).collect();
            let failing = failing.join(",");
            tracing::warn!(
                model,
                version,
                incident,
                failing,
                "input data broken: drift is not judged until it is good again"
            );
        } else {
            tracing::info!(model, version, incident, "input data good again");
        }
    }
}

/// A message that could not be used; its offset moves on. Logged at most once a second.
pub struct DecodeFailed<'a> {
    pub reason: DecodeError,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl InternalEvent for DecodeFailed<'_> {
    fn emit(self, t: &Telemetry) {
        let reason = self.reason.reason();
        t.metrics.decode_errors_total.with_label_values(&[reason]).inc();
        if let Some(suppressed) = t.bad_messages.allow() {
            let (topic, partition, offset) = (self.topic, self.partition, self.offset);
            tracing::warn!(reason, topic, partition, offset, suppressed, "bad message skipped");
        }
    }
}

/// Open Inference Protocol halves so far (counts since start): joined, taken alone by side
/// (request, response), and rows waiting.
pub struct Pairing {
    pub joined: u64,
    pub unpaired: [u64; 2],
    pub pending_rows: usize,
}

impl InternalEvent for Pairing {
    fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        let catch_up = |c: prometheus::IntCounter, total: u64| c.inc_by(total.saturating_sub(c.get()));
        catch_up(m.pairs_joined_total.with_label_values::<&str>(&[]), self.joined);
        catch_up(m.unpaired_total.with_label_values(&["request"]), self.unpaired[0]);
        catch_up(m.unpaired_total.with_label_values(&["response"]), self.unpaired[1]);
        m.pairs_pending_rows.with_label_values::<&str>(&[]).set(self.pending_rows as i64);
    }
}

/// A model's traffic went quiet for its `idle_timeout`: its open windows close.
pub struct ModelIdle<'a> {
    pub model: &'a str,
}

impl InternalEvent for ModelIdle<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::info!(model = %self.model, "idle: closing open windows");
    }
}

/// A reload was asked for; `error` says why it was refused.
pub struct Reloaded<'a> {
    pub error: Option<&'a str>,
    /// Changed sections a reload does not apply.
    pub restart_needed: &'a [String],
}

impl InternalEvent for Reloaded<'_> {
    fn emit(self, _: &Telemetry) {
        match self.error {
            None if !self.restart_needed.is_empty() => tracing::warn!(
                sections = %self.restart_needed.join(", "),
                "config reloaded; these sections changed and take effect on a restart only"
            ),
            None => tracing::info!("config reloaded"),
            Some(error) => tracing::warn!(error, "reload refused; the running config stays"),
        }
    }
}
