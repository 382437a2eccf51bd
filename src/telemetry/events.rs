//! One struct per thing that happens, in the manner of vector's `internal_events`: emitting
//! it logs it and counts it in one call, so the logic never names a metric or a label.

use std::fmt::Display;
use std::time::Duration;

use super::Telemetry;
use crate::offline::thresholds::ThresholdSource;
use crate::pipeline::{DecodeError, WindowReport};
use crate::policy::{Episode, QualityFailure, Resolution};
use crate::reference::{ReferenceError, ReferenceIdentity};
use crate::sinks::alerts::Phase;
use crate::stats::StatTest;

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

/// librdkafka's statistics: each assigned partition's lag.
pub struct ConsumerLag<'a> {
    pub stats: &'a rdkafka::Statistics,
}

impl InternalEvent for ConsumerLag<'_> {
    fn emit(self, t: &Telemetry) {
        let lag = &t.metrics.kafka_consumer_lag;
        lag.reset();
        for (topic, tp) in &self.stats.topics {
            for (partition, p) in &tp.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    lag.with_label_values(&[topic.as_str(), &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

/// The consumer reported an error.
pub struct ConsumerError<'a> {
    pub error: &'a rdkafka::error::KafkaError,
}

impl InternalEvent for ConsumerError<'_> {
    fn emit(self, t: &Telemetry) {
        let code = match self.error.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => "other".to_string(),
        };
        t.metrics.kafka_consumer_errors_total.with_label_values(&[code.as_str()]).inc();
        // a stuck partition repeats one error many times a second: one line a second
        if let Some(suppressed) = t.consumer_errors.allow() {
            tracing::warn!(error = %self.error, code, suppressed, "kafka consumer");
        }
    }
}

/// Parts of spread models' windows: sent or not by this replica, and what its merger made
/// of those it read (counts since the last emit).
pub struct Partials {
    pub sent: u64,
    pub unsent: u64,
    pub merged: crate::pipeline::merge::MergeCounts,
}

impl InternalEvent for Partials {
    fn emit(self, t: &Telemetry) {
        let m = self.merged;
        let outcomes = [
            ("sent", self.sent),
            ("unsent", self.unsent),
            ("merged", m.merged),
            ("duplicate", m.duplicate),
            ("late", m.late),
            ("refused", m.refused),
            ("undecodable", m.undecodable),
        ];
        for (outcome, n) in outcomes.into_iter().filter(|(_, n)| *n > 0) {
            t.metrics.partials_total.with_label_values(&[outcome]).inc_by(n);
        }
        if m.timed_out_windows > 0 {
            t.metrics.merge_timeouts_total.with_label_values::<&str>(&[]).inc_by(m.timed_out_windows);
        }
        if self.unsent > 0 {
            tracing::warn!(unsent = self.unsent, "partials not acknowledged by the partials topic: kept, retried");
        }
    }
}

/// The group gave this member partitions.
pub struct PartitionsAssigned {
    pub partitions: usize,
}

impl InternalEvent for PartitionsAssigned {
    fn emit(self, _: &Telemetry) {
        tracing::info!(partitions = self.partitions, "partitions assigned");
    }
}

/// The report topic's worker is full (`paused` partitions, `backlog` reports waiting),
/// or has room again (0, 0).
pub struct Backpressure {
    pub paused: usize,
    pub backlog: usize,
}

impl InternalEvent for Backpressure {
    fn emit(self, t: &Telemetry) {
        t.metrics.kafka_paused_partitions.set(self.paused as i64);
        if self.paused > 0 {
            tracing::warn!(
                partitions = self.paused,
                backlog = self.backlog,
                "the report topic is behind: input partitions paused until it takes more"
            );
        } else {
            tracing::info!("the report topic caught up: input partitions resumed");
        }
    }
}

/// What this replica holds after a rebalance: partitions by topic.
pub struct AssignmentHeld<'a> {
    pub by_topic: &'a std::collections::BTreeMap<String, i64>,
}

impl InternalEvent for AssignmentHeld<'_> {
    fn emit(self, t: &Telemetry) {
        let g = &t.metrics.kafka_assigned_partitions;
        g.reset();
        for (topic, n) in self.by_topic {
            g.with_label_values(&[topic.as_str()]).set(*n);
        }
    }
}

/// The group took partitions away; the windows holding their events were reported.
pub struct PartitionsRevoked {
    pub partitions: usize,
    pub windows: usize,
}

impl InternalEvent for PartitionsRevoked {
    fn emit(self, _: &Telemetry) {
        tracing::info!(partitions = self.partitions, windows = self.windows, "partitions revoked");
    }
}

/// The group took partitions away without a revoke (this member missed its session
/// timeout): their windows were dropped for the new owner to report.
pub struct PartitionsLost {
    pub partitions: usize,
    /// Open windows dropped (events only from the lost partitions).
    pub dropped: usize,
    /// Open windows reported (they mixed events of partitions still held).
    pub reported: usize,
}

impl InternalEvent for PartitionsLost {
    fn emit(self, _: &Telemetry) {
        tracing::warn!(
            partitions = self.partitions,
            dropped = self.dropped,
            reported = self.reported,
            "partitions lost (session timed out): their open windows go to the new owner"
        );
    }
}

/// The group moved partitions away in a graceful rebalance, with the state changelog on:
/// their windows go to the new owner whole.
pub struct PartitionsHandedOver {
    pub partitions: usize,
    /// Open windows handed over (events only from those partitions): dropped here, read
    /// again by the new owner from the offset committed now.
    pub handed: usize,
    /// Open windows reported (they mixed events of partitions still held).
    pub windows: usize,
}

impl InternalEvent for PartitionsHandedOver {
    fn emit(self, _: &Telemetry) {
        tracing::info!(
            partitions = self.partitions,
            handed = self.handed,
            reported = self.windows,
            "partitions revoked: their open windows are handed over to the new owner"
        );
    }
}

/// A model's state (window marks, drift state) was taken from the changelog, as another
/// replica left it.
pub struct StateTakenOver<'a> {
    pub model: &'a str,
    pub writer: &'a str,
}

impl InternalEvent for StateTakenOver<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::info!(model = %self.model, from = %self.writer, "state taken over from the changelog");
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

/// The checkpoint could not be written.
pub struct CheckpointNotSaved<'a> {
    pub error: &'a std::io::Error,
}

impl InternalEvent for CheckpointNotSaved<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::warn!(error = %self.error, "cannot write the checkpoint");
    }
}

/// Reports left unconfirmed by the last run are published first.
pub struct RepublishingReports {
    pub reports: usize,
}

impl InternalEvent for RepublishingReports {
    fn emit(self, _: &Telemetry) {
        tracing::info!(reports = self.reports, "publishing the reports left by the last run");
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

/// A reference is in use: loaded at start (`previous` none) or swapped in.
pub struct ReferenceInUse<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub identity: &'a ReferenceIdentity,
    pub previous: Option<&'a ReferenceIdentity>,
    /// Swapped in now (not loaded at start).
    pub swapped: bool,
}

impl InternalEvent for ReferenceInUse<'_> {
    fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        let (model, version, id) = (self.model, v(self.version), self.identity);
        let info = |i: &ReferenceIdentity| {
            [
                model.to_string(),
                version.to_string(),
                i.source.clone(),
                v(i.version.as_deref()).to_string(),
                i.short_digest().to_string(),
            ]
        };
        if let Some(prev) = self.previous {
            let labels = info(prev);
            let _ = m.reference_info.remove_label_values(&labels.each_ref().map(String::as_str));
        }
        let labels = info(id);
        m.reference_info.with_label_values(&labels.each_ref().map(String::as_str)).set(1);
        m.reference_stale.with_label_values(&[model, version]).set(0);
        m.reference_last_swap_timestamp_seconds
            .with_label_values(&[model, version])
            .set(crate::time::now_ms() as f64 / 1000.0);
        let (source, digest) = (id.source.as_str(), id.short_digest());
        let reference_version = id.version.as_deref().unwrap_or("");
        if self.swapped {
            m.reference_swaps_total.with_label_values(&[model, version]).inc();
            tracing::info!(model, version, source, reference_version, digest, "reference swapped");
        } else {
            tracing::info!(model, version, source, reference_version, digest, "reference loaded");
        }
    }
}

/// A reference's source failed; the reference in use (if any) stays, and is stale.
pub struct ReferenceFailed<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub error: &'a ReferenceError,
}

impl InternalEvent for ReferenceFailed<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, version, error) = (self.model, v(self.version), self.error);
        t.metrics.reference_errors_total.with_label_values(&[model, error.reason()]).inc();
        t.metrics.reference_stale.with_label_values(&[model, version]).set(1);
        tracing::warn!(model, version, reason = error.reason(), error = %error, "reference source failed; the reference in use stays");
    }
}

/// A failing reference source answers again, with the reference in use.
pub struct ReferenceRecovered<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
}

impl InternalEvent for ReferenceRecovered<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, version) = (self.model, v(self.version));
        t.metrics.reference_stale.with_label_values(&[model, version]).set(0);
        tracing::info!(model, version, "reference source answers again");
    }
}

/// A version of a model split by version went quiet for its `idle_timeout`: its windows
/// were closed, its series go (its drift state stays in the checkpoint).
pub struct VersionRetired<'a> {
    pub model: &'a str,
    pub version: &'a str,
    pub features: &'a [String],
    pub reference: &'a ReferenceIdentity,
}

impl InternalEvent for VersionRetired<'_> {
    fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        let mv = [self.model, self.version];
        for f in self.features {
            for test in StatTest::ALL {
                let _ = m.feature_drift_score.remove_label_values(&[self.model, self.version, f, test.name()]);
            }
            for source in ThresholdSource::ALL {
                let _ = m.feature_threshold_source.remove_label_values(&[self.model, self.version, f, source.as_str()]);
            }
            for g in [
                &m.feature_drift_threshold,
                &m.feature_drift_detected,
                &m.feature_missing_share,
                &m.feature_invalid_share,
                &m.feature_out_of_range_share,
                &m.feature_unseen_share,
                &m.feature_data_quality_failing,
            ] {
                let _ = g.remove_label_values(&[self.model, self.version, f]);
            }
        }
        for g in
            [&m.dataset_drift_share, &m.dataset_drift_detected, &m.window_events, &m.last_window_end_timestamp_seconds]
        {
            let _ = g.remove_label_values(&mv);
        }
        let _ = m.prediction_drift_detected.remove_label_values(&mv);
        let _ = m.reference_last_swap_timestamp_seconds.remove_label_values(&mv);
        let _ = m.model_data_quality_failing.remove_label_values(&mv);
        for c in [
            &m.windows_closed_total,
            &m.late_events_total,
            &m.drift_episodes_total,
            &m.invalid_values_total,
            &m.data_quality_incidents_total,
        ] {
            let _ = c.remove_label_values(&mv);
        }
        let _ = m.model_drifting.remove_label_values(&mv);
        let _ = m.reference_stale.remove_label_values(&mv);
        let r = self.reference;
        let info = [self.model, self.version, r.source.as_str(), v(r.version.as_deref()), r.short_digest()];
        let _ = m.reference_info.remove_label_values(&info);
        tracing::info!(model = self.model, version = self.version, "version idle: windows closed, series removed");
    }
}

/// How many versions of a model have open tracks.
pub struct LiveVersions<'a> {
    pub model: &'a str,
    pub versions: usize,
}

impl InternalEvent for LiveVersions<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.live_versions.with_label_values(&[self.model]).set(self.versions as i64);
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
        let (model, run_id, url, body) = (self.model, self.run_id, self.url, self.body);
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
    fn emit(self, _: &Telemetry) {
        tracing::error!(run_id = self.run_id, error = %self.error, "cannot write the retrain outbox");
    }
}

/// What became of an alert notification: the `outcome` label of `driftd_alerts_sent_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOutcome {
    Sent,
    Failed,
    /// Dropped by the receiver's `max_per_minute`.
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
                tracing::warn!(receiver, model, "alert dropped by the receiver's rate limit")
            }
        }
    }
}
