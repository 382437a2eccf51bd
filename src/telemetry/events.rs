//! One struct per thing that happens, in the manner of vector's `internal_events`: emitting
//! it logs it and counts it in one call, so the logic never names a metric or a label.

use std::fmt::Display;
use std::time::Duration;

use super::Telemetry;
use crate::offline::thresholds::ThresholdSource;
use crate::pipeline::{DecodeError, WindowReport};
use crate::policy::{Episode, QualityFailure, Resolution};
use crate::sinks::alerts::Phase;
use crate::stats::StatTest;

mod kafka;
mod reference;
mod state;
pub use kafka::*;
pub use reference::*;
pub use state::*;

/// The `model_version` label: empty (and so left out of `/metrics`) for pooled traffic.
fn v(version: Option<&str>) -> &str {
    version.unwrap_or("")
}

/// Something that happened, told to the logs and the metrics.
pub trait InternalEvent {
    fn emit(self, t: &Telemetry);
}

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
fn quality_gauges(m: &super::metrics::Metrics, w: &WindowReport) {
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

/// A report sink could not take a report.
pub struct ReportNotPublished<'a> {
    pub sink: &'a str,
    pub error: &'a dyn Display,
}

impl InternalEvent for ReportNotPublished<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.report_sink_errors_total.with_label_values(&[self.sink]).inc();
        tracing::warn!(sink = self.sink, error = %self.error, "cannot publish a window report");
    }
}

/// A bad message could not be produced to the dead-letter topic.
pub struct DeadLetterNotProduced<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for DeadLetterNotProduced<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.dead_letter_errors_total.with_label_values::<&str>(&[]).inc();
        if let Some(suppressed) = t.dead_letter_errors.allow() {
            tracing::warn!(error = %self.error, suppressed, "cannot produce to the dead-letter topic");
        }
    }
}

/// The models and receivers a config declares: their series exist from the start, at
/// zero, so dashboards and `increase()` in alerting rules see the first change.
pub struct ActionsDeclared<'a> {
    pub models: &'a [String],
    pub retrain: bool,
    pub receivers: &'a [String],
}

impl InternalEvent for ActionsDeclared<'_> {
    fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        for model in self.models {
            let model = model.as_str();
            m.model_drifting.with_label_values(&[model, ""]);
            m.drift_episodes_total.with_label_values(&[model, ""]);
            if self.retrain {
                for outcome in [RetrainOutcome::Delivered, RetrainOutcome::Duplicate, RetrainOutcome::Failed] {
                    m.retrain_triggers_total.with_label_values(&[model, outcome.label()]);
                }
            }
        }
        for r in self.receivers {
            for outcome in [AlertOutcome::Sent, AlertOutcome::Failed, AlertOutcome::RateLimited] {
                m.alerts_sent_total.with_label_values(&[r.as_str(), outcome.label()]);
            }
        }
    }
}

/// A model's (or version's) place in the state machine, as `driftd_model_drifting` shows it.
pub struct DriftStateSet<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub drifting: bool,
}

impl InternalEvent for DriftStateSet<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.model_drifting.with_label_values(&[self.model, v(self.version)]).set(i64::from(self.drifting));
    }
}

/// A model (or version) entered "drifting".
pub struct EpisodeStarted<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub episode: &'a Episode,
}

impl InternalEvent for EpisodeStarted<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, version) = (self.model, v(self.version));
        t.metrics.drift_episodes_total.with_label_values(&[model, version]).inc();
        let (episode, severity) = (self.episode.id.as_str(), self.episode.severity.as_str());
        match self.version {
            Some(model_version) => tracing::warn!(model, model_version, episode, severity, "model is drifting"),
            None => tracing::warn!(model, episode, severity, "model is drifting"),
        }
    }
}

/// A model (or version) left "drifting".
pub struct EpisodeEnded<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub episode: &'a Episode,
    pub resolution: &'a Resolution,
}

impl InternalEvent for EpisodeEnded<'_> {
    fn emit(self, _: &Telemetry) {
        let (model, episode, reason) = (self.model, self.episode.id.as_str(), self.resolution.reason());
        match self.version {
            Some(model_version) => tracing::info!(model, model_version, episode, reason, "model no longer drifting"),
            None => tracing::info!(model, episode, reason, "model no longer drifting"),
        }
    }
}

/// What became of a retrain request: the `outcome` label of `driftd_retrain_triggers_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrainOutcome {
    Delivered,
    /// The target already had the run.
    Duplicate,
    Failed,
    DryRun,
    /// Held back by the cooldown: no request was made.
    Cooldown,
}

impl RetrainOutcome {
    pub fn label(self) -> &'static str {
        match self {
            RetrainOutcome::Delivered => "delivered",
            RetrainOutcome::Duplicate => "duplicate",
            RetrainOutcome::Failed => "failed",
            RetrainOutcome::DryRun => "dry_run",
            RetrainOutcome::Cooldown => "cooldown",
        }
    }
}

/// A retrain request came to its end (or, `Cooldown`, was never made).
pub struct RetrainFinished<'a> {
    pub model: &'a str,
    pub run_id: &'a str,
    pub outcome: RetrainOutcome,
    pub attempts: u32,
    pub error: Option<&'a str>,
}

impl InternalEvent for RetrainFinished<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, run_id, attempts) = (self.model, self.run_id, self.attempts);
        t.metrics.retrain_triggers_total.with_label_values(&[model, self.outcome.label()]).inc();
        match self.outcome {
            RetrainOutcome::Failed => {
                tracing::error!(model, run_id, attempts, error = self.error.unwrap_or(""), "retrain request failed")
            }
            RetrainOutcome::Cooldown => tracing::info!(model, episode = run_id, "retrain held back by the cooldown"),
            RetrainOutcome::DryRun => tracing::info!(model, run_id, "dry run: retrain request recorded, not sent"),
            outcome => {
                tracing::info!(model, run_id, attempts, outcome = outcome.label(), "retrain request delivered")
            }
        }
    }
}

/// A retrain request was written to the outbox (`fresh`), or was there already.
pub struct RetrainQueued<'a> {
    pub model: &'a str,
    pub run_id: &'a str,
    pub preset: &'a str,
    pub fresh: bool,
}

impl InternalEvent for RetrainQueued<'_> {
    fn emit(self, _: &Telemetry) {
        let (model, run_id) = (self.model, self.run_id);
        if self.fresh {
            tracing::info!(model, run_id, preset = self.preset, "retrain request queued");
        } else {
            tracing::info!(model, run_id, "retrain request already queued or made: not again");
        }
    }
}

/// A retrain request could not be queued.
pub struct RetrainNotQueued<'a> {
    pub model: &'a str,
    pub error: &'a str,
}

impl InternalEvent for RetrainNotQueued<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::error!(model = self.model, error = self.error, "cannot queue the retrain request");
    }
}

/// `dry_run`: the request that would have gone out.
pub struct RetrainDryRun<'a> {
    pub model: &'a str,
    pub run_id: &'a str,
    pub url: &'a str,
    pub body: &'a str,
}

impl InternalEvent for RetrainDryRun<'_> {
    fn emit(self, _: &Telemetry) {
        let (model, run_id, body) = (self.model, self.run_id, self.body);
        let url = crate::redact::url_without_secrets(self.url);
        let url = url.as_str();
        tracing::info!(model, run_id, url, body, "dry run: retrain request not sent");
    }
}

/// An attempt failed in a way worth retrying.
pub struct RetrainRetrying<'a> {
    pub model: &'a str,
    pub run_id: &'a str,
    pub attempt: u32,
    pub error: &'a str,
    pub retry_in: Duration,
}

impl InternalEvent for RetrainRetrying<'_> {
    fn emit(self, _: &Telemetry) {
        let (model, run_id, attempt, error) = (self.model, self.run_id, self.attempt, self.error);
        let retry_in_ms = self.retry_in.as_millis() as u64;
        tracing::warn!(model, run_id, attempt, error, retry_in_ms, "retrain request not delivered; will retry");
    }
}

/// Whether the target that took a model's request will run it (Airflow: the DAG is not
/// paused).
pub struct RetrainTargetPaused<'a> {
    pub model: &'a str,
    pub run_id: &'a str,
    pub paused: bool,
}

impl InternalEvent for RetrainTargetPaused<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.retrain_target_paused.with_label_values(&[self.model]).set(i64::from(self.paused));
        if self.paused {
            tracing::warn!(
                model = self.model,
                run_id = self.run_id,
                "the retrain target took the request but its DAG is paused: the run will not start until it is unpaused"
            );
        }
    }
}

/// Requests waiting in the outbox.
pub struct OutboxPending {
    pub requests: usize,
}

impl InternalEvent for OutboxPending {
    fn emit(self, t: &Telemetry) {
        t.metrics.retrain_pending.set(self.requests as i64);
    }
}

/// An outbox file could not be written.
pub struct OutboxNotWritten<'a> {
    pub run_id: &'a str,
    pub error: &'a dyn Display,
}

impl InternalEvent for OutboxNotWritten<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.state_write_errors_total.with_label_values(&["outbox"]).inc();
        tracing::error!(run_id = self.run_id, error = %self.error, "cannot write the retrain outbox");
    }
}

/// The alert outbox could not be written (it is kept in memory and written again).
pub struct AlertsNotWritten<'a> {
    pub path: &'a std::path::Path,
    pub error: &'a dyn Display,
}

impl InternalEvent for AlertsNotWritten<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.state_write_errors_total.with_label_values(&["alerts"]).inc();
        tracing::error!(file = %self.path.display(), error = %self.error, "cannot write the alert outbox");
    }
}

/// Alert notifications waiting in the alert outbox.
pub struct AlertsPending {
    pub notifications: usize,
}

impl InternalEvent for AlertsPending {
    fn emit(self, t: &Telemetry) {
        t.metrics.alerts_pending.set(self.notifications as i64);
    }
}

/// An alert notification failed and waits for another attempt.
pub struct AlertRetrying<'a> {
    pub receiver: &'a str,
    pub model: &'a str,
    pub attempt: u32,
    pub error: &'a str,
    pub retry_in: Duration,
}

impl InternalEvent for AlertRetrying<'_> {
    fn emit(self, _: &Telemetry) {
        let (receiver, model, attempt, error) = (self.receiver, self.model, self.attempt, self.error);
        let retry_in_ms = self.retry_in.as_millis() as u64;
        tracing::warn!(receiver, model, attempt, error, retry_in_ms, "alert not delivered; will retry");
    }
}

/// What became of an alert notification: the `outcome` label of `driftd_alerts_sent_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOutcome {
    Sent,
    Failed,
    /// Held back by the receiver's `max_per_minute` (counted once).
    RateLimited,
}

impl AlertOutcome {
    pub fn label(self) -> &'static str {
        match self {
            AlertOutcome::Sent => "sent",
            AlertOutcome::Failed => "failed",
            AlertOutcome::RateLimited => "rate_limited",
        }
    }
}

/// A notification to one receiver came to its end.
pub struct AlertFinished<'a> {
    pub receiver: &'a str,
    pub model: &'a str,
    pub phase: Phase,
    pub outcome: AlertOutcome,
    pub error: Option<&'a str>,
}

impl InternalEvent for AlertFinished<'_> {
    fn emit(self, t: &Telemetry) {
        let (receiver, model, phase) = (self.receiver, self.model, self.phase);
        t.metrics.alerts_sent_total.with_label_values(&[receiver, self.outcome.label()]).inc();
        match self.outcome {
            AlertOutcome::Sent => tracing::debug!(receiver, model, ?phase, "alert sent"),
            AlertOutcome::Failed => {
                tracing::warn!(receiver, model, ?phase, error = self.error.unwrap_or(""), "alert not delivered")
            }
            AlertOutcome::RateLimited => {
                tracing::warn!(
                    receiver,
                    model,
                    "alert held back by the receiver's rate limit: sent when it has room, unless it resolves first"
                )
            }
        }
    }
}
