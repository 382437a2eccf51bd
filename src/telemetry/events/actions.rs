//! What the policy and the actions hub do: the drift state and its episodes, retrains
//! (queued, retried, paused, finished), alerts (pending, retried, delivered), and the
//! outbox and alert book when they cannot be written.

use std::fmt::Display;
use std::time::Duration;

use super::{v, InternalEvent, Telemetry};
use crate::policy::{Episode, Phase, Resolution};

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
