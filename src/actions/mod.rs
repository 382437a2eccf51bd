//! From window reports to decisions and their effects: the hub moves each model's drift
//! state machine and hands what it decided to two workers, one delivering retrain
//! requests from the durable outbox (`retrain.rs`), one delivering alerts from the alert
//! outbox (`alerts.rs`, `alert_book.rs`).
//!
//! `observe` runs on the pipeline's thread and only decides and writes (a retrain request
//! and an alert are on disk before it returns); the workers make the network calls.

mod alert_book;
mod alerts;
mod retrain;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{watch, Notify};

use crate::config::{ConfigError, Receiver, RetrainTarget, Settings};
use crate::pipeline::WindowReport;
use crate::policy::Phase;
use crate::policy::{
    run_id, subject, DriftState, DriftTracker, Episode, Policy, QualityState, QualityTransition, Resolution, Severity,
    Transition,
};
use crate::sinks::alerts::{Notice, Topic};
use crate::sinks::retrain::{self as presets, RunParams};
use crate::state::checkpoint::TrackKey;
use crate::state::{Entry, Outbox, Status};
use crate::telemetry::events::{
    ActionsDeclared, AlertsNotWritten, DataQualityChanged, DataQualitySet, DriftStateSet, EpisodeEnded, EpisodeStarted,
    OutboxNotWritten, RetrainDryRun, RetrainFinished, RetrainNotQueued, RetrainOutcome, RetrainQueued,
};
use crate::telemetry::Telemetry;
use crate::time::{format_rfc3339_ms, now_ms};

/// Everything in the config the actions use, secrets resolved; swapped whole on reload.
#[derive(Debug, Clone, Default)]
pub struct ActionConfig {
    pub policies: BTreeMap<String, Policy>,
    pub retrain: Option<RetrainTarget>,
    pub receivers: Vec<Receiver>,
}

impl ActionConfig {
    /// Resolves the config's policies, retrain target and receivers (reading secrets from
    /// the environment or files); the error names the key.
    pub fn from_settings(settings: &Settings) -> Result<ActionConfig, ConfigError> {
        let policies = settings.model_configs()?.into_iter().map(|m| (m.name, m.policy)).collect();
        let retrain = settings.retrain.as_ref().map(|r| r.resolve()).transpose()?;
        let receivers = settings.alerts.iter().enumerate().map(|(i, a)| a.resolve(i)).collect::<Result<Vec<_>, _>>()?;
        Ok(ActionConfig { policies, retrain, receivers })
    }
}

/// How the workers stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Not yet: keep working.
    No,
    /// Deliver what is pending (with its retries), then stop: `replay`.
    Drain,
    /// Stop after the attempt in flight; pending requests stay in the outbox.
    Stop,
}

/// The drift state machines (per model, or per model version) and the outbox, changed
/// together under one lock.
struct Ledger {
    trackers: BTreeMap<TrackKey, DriftTracker>,
    outbox: Option<Arc<Outbox>>,
}

pub struct Actions {
    telemetry: Arc<Telemetry>,
    state_dir: std::path::PathBuf,
    config: RwLock<Arc<ActionConfig>>,
    ledger: Mutex<Ledger>,
    wake: Notify,
    /// The alert outbox and the alert worker's memory; `alert_wake` tells it of news.
    alert_book: Mutex<alert_book::AlertBook>,
    alert_wake: Notify,
    http: reqwest::Client,
    /// Held while a manual trigger looks for a recent one and queues.
    manual_lock: Mutex<()>,
}

/// What a manual trigger did.
#[derive(Debug)]
pub enum Manual {
    /// A new request, queued.
    Queued(Entry),
    /// The model's last manual request, made within `manual_interval`: nothing new.
    Recent(Entry),
}

/// Why a manual trigger was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("no model named '{0}'")]
    UnknownModel(String),
    #[error("no [retrain] target is configured")]
    NoTarget,
    #[error("cannot queue the request: {0}")]
    Io(String),
}

/// The running workers.
pub struct Workers {
    shutdown: watch::Sender<Shutdown>,
    retrain: tokio::task::JoinHandle<()>,
    alerts: tokio::task::JoinHandle<BTreeMap<String, u64>>,
}

impl Workers {
    /// Stops the workers: `Drain` delivers every retrain request pending first, `Stop`
    /// leaves them in the outbox. In both, the alert notifications due within 5 s are
    /// attempted (for 15 s at most); the rest stay in the alert outbox for the next start.
    /// Returns the alert notifications sent, per receiver.
    pub async fn shutdown(self, actions: &Actions, how: Shutdown) -> BTreeMap<String, u64> {
        let _ = self.shutdown.send(how);
        actions.wake.notify_one();
        actions.alert_wake.notify_one();
        let sent = self.alerts.await.unwrap_or_default();
        let _ = self.retrain.await;
        sent
    }
}

fn run_params(report: Option<&WindowReport>, model: &str, run_id: &str, reason: &str) -> RunParams {
    RunParams {
        model: model.to_string(),
        run_id: run_id.to_string(),
        reason: reason.to_string(),
        drifted_features: report.map(WindowReport::drifted_features).unwrap_or_default(),
        drift_report: report.map_or(serde_json::Value::Null, |w| serde_json::to_value(w).expect("report serializes")),
    }
}

fn notice(report: &WindowReport, episode: &Episode) -> Notice {
    Notice {
        topic: Topic::Drift,
        model: report.model.clone(),
        version: report.model_version.clone(),
        resolution: None,
        episode: episode.clone(),
        drifted_features: report.drifted_features(),
        share_of_drifted_features: report.share_of_drifted_features(),
        window_end: report.bounds.end_rfc3339(),
        fired_at: format_rfc3339_ms(now_ms()),
        failures: Vec::new(),
    }
}

/// A data-quality incident as an alert's episode: its id and start; warning severity (the
/// data is broken, the model may be fine).
/// The notice of a drift episode ended by no window (a new reference, a removed model):
/// `act` fills in the episode and its resolution.
fn episode_end_notice(model: String, version: Option<String>) -> Notice {
    Notice {
        topic: Topic::Drift,
        model,
        version,
        resolution: None,
        episode: Episode::placeholder(),
        drifted_features: Vec::new(),
        share_of_drifted_features: 0.0,
        window_end: String::new(),
        fired_at: format_rfc3339_ms(now_ms()),
        failures: Vec::new(),
    }
}

fn incident(id: String, since: String) -> Episode {
    Episode { id, since, severity: Severity::Warning, retrain: false }
}

impl Actions {
    /// Builds the hub and starts its two workers on the current tokio runtime.
    pub fn start(settings: &Settings, telemetry: Arc<Telemetry>) -> Result<(Arc<Actions>, Workers), ConfigError> {
        let config = ActionConfig::from_settings(settings)?;
        let actions = Arc::new(Actions {
            telemetry,
            state_dir: settings.state.dir.clone(),
            config: RwLock::new(Arc::new(ActionConfig::default())),
            ledger: Mutex::new(Ledger { trackers: BTreeMap::new(), outbox: None }),
            wake: Notify::new(),
            alert_book: Mutex::new(alert_book::AlertBook::open(&settings.state.dir)),
            alert_wake: Notify::new(),
            http: crate::outbound::action_client(),
            manual_lock: Mutex::new(()),
        });
        actions.apply(config)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(Shutdown::No);
        let alerts = tokio::spawn(alerts::worker(actions.clone(), shutdown_rx.clone()));
        let retrain = tokio::spawn(retrain::worker(actions.clone(), shutdown_rx));
        Ok((actions, Workers { shutdown: shutdown_tx, retrain, alerts }))
    }

    /// Takes a new config (from `ActionConfig::from_settings`). The outbox opens once a
    /// retrain target exists.
    pub fn apply(&self, config: ActionConfig) -> Result<(), ConfigError> {
        if config.retrain.is_some() {
            let mut ledger = self.ledger.lock().expect("actions lock");
            if ledger.outbox.is_none() {
                let ob = Outbox::open(&self.state_dir).map_err(|e| {
                    ConfigError::new(
                        "state.dir",
                        format!("cannot open the outbox in {}: {e}", self.state_dir.display()),
                    )
                })?;
                ledger.outbox = Some(Arc::new(ob));
            }
        }
        let models: Vec<String> = config.policies.keys().cloned().collect();
        let receivers: Vec<String> = config.receivers.iter().map(|r| r.name.clone()).collect();
        self.telemetry.emit(ActionsDeclared {
            models: &models,
            retrain: config.retrain.is_some(),
            receivers: &receivers,
        });
        let config = Arc::new(config);
        *self.config.write().expect("config lock") = config.clone();
        self.forget_removed(&config);
        self.wake.notify_one();
        Ok(())
    }

    /// Models no longer configured: an episode in course ends (`model_removed`), its alert
    /// resolves, a data-quality incident in course resolves too, and their state goes, so
    /// nothing is re-sent for them.
    fn forget_removed(&self, config: &ActionConfig) {
        let ended: Vec<(String, Option<String>, Transition, QualityState)> = {
            let mut ledger = self.ledger.lock().expect("actions lock");
            let removed: Vec<TrackKey> =
                ledger.trackers.keys().filter(|(m, _)| !config.policies.contains_key(m)).cloned().collect();
            removed
                .into_iter()
                .filter_map(|key| {
                    let mut st = ledger.trackers.remove(&key)?;
                    let t = st.reference_updated(Resolution::ModelRemoved);
                    self.telemetry.emit(DriftStateSet { model: &key.0, version: key.1.as_deref(), drifting: false });
                    self.telemetry.emit(DataQualitySet { model: &key.0, version: key.1.as_deref(), failing: false });
                    Some((key.0, key.1, t, st.quality))
                })
                .collect()
        };
        for (model, version, transition, quality) in ended {
            if let (true, Some(id), Some(since)) = (quality.failing, quality.incident, quality.since) {
                let notice = Notice {
                    topic: Topic::DataQuality,
                    resolution: Some("the model was removed from the config".to_string()),
                    episode: incident(id, since),
                    ..episode_end_notice(model.clone(), version.clone())
                };
                self.alert(notice, Phase::Resolved);
            }
            self.act(config, transition, episode_end_notice(model, version), None);
        }
    }

    fn config(&self) -> Arc<ActionConfig> {
        self.config.read().expect("config lock").clone()
    }

    fn outbox(&self) -> Option<Arc<Outbox>> {
        self.ledger.lock().expect("actions lock").outbox.clone()
    }

    fn alert_book(&self) -> std::sync::MutexGuard<'_, alert_book::AlertBook> {
        self.alert_book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a decided notification in the alert outbox (written before this returns)
    /// and wakes the alert worker.
    fn alert(&self, notice: Notice, phase: Phase) {
        let config = self.config();
        let mut book = self.alert_book();
        if book.queue(&config.receivers, &notice, phase, now_ms()) == 0 {
            return;
        }
        if let Err(error) = book.save() {
            self.telemetry.emit(AlertsNotWritten { path: book.path(), error: &error });
        }
        drop(book);
        self.alert_wake.notify_one();
    }

    /// A model firing at start (from the checkpoint): Alertmanager's re-sends resume;
    /// nothing new is notified. Without the alert outbox of the last run, which receivers
    /// were told is unknown: all may have been.
    fn alert_restored(&self, notice: Notice) {
        let config = self.config();
        let mut book = self.alert_book();
        if !book.loaded {
            for r in config.receivers.iter().filter(|r| r.takes(notice.episode.severity)) {
                book.assume_notified(&r.name, notice.key());
            }
        }
        book.firing.insert(notice.key(), notice);
    }

    /// The drift state machines, for the checkpoint.
    pub fn snapshot(&self) -> BTreeMap<TrackKey, DriftTracker> {
        self.ledger.lock().expect("actions lock").trackers.clone()
    }

    /// A model's (or one version's) drift state machine.
    pub fn state_of(&self, model: &str, version: Option<&str>) -> Option<DriftTracker> {
        let key = (model.to_string(), version.map(str::to_string));
        self.ledger.lock().expect("actions lock").trackers.get(&key).cloned()
    }

    /// Every drift state machine of a model, by version (`None`: pooled).
    pub fn states_of(&self, model: &str) -> Vec<(Option<String>, DriftTracker)> {
        let ledger = self.ledger.lock().expect("actions lock");
        ledger.trackers.iter().filter(|((m, _), _)| m == model).map(|((_, v), t)| (v.clone(), t.clone())).collect()
    }

    /// Queues `entry`; true when its run id is new. A write that fails is counted: the
    /// request is queued in memory all the same (see `Outbox::enqueue`).
    fn enqueue(&self, outbox: &Outbox, entry: &Entry) -> bool {
        outbox.enqueue(entry).unwrap_or_else(|error| {
            self.telemetry.emit(OutboxNotWritten { run_id: &entry.run_id, error: &error });
            true
        })
    }

    /// Writes what the outbox could not write before; the error says why it still cannot.
    pub fn flush_outbox(&self) -> Result<(), String> {
        let Some(outbox) = self.outbox() else { return Ok(()) };
        outbox.flush().map_err(|e| format!("cannot write the retrain outbox in {}: {e}", self.state_dir.display()))
    }

    /// The state directory was made again (deleted under the daemon): the outboxes held
    /// in memory are written to it anew by the next flushes.
    pub fn rewrite_state(&self) {
        if let Some(outbox) = self.outbox() {
            outbox.rewrite_all();
        }
        self.alert_book().dirty = true;
    }

    /// Writes the alert outbox if its last write failed; the error says why it still
    /// cannot be.
    pub fn flush_alerts(&self) -> Result<(), String> {
        let mut book = self.alert_book();
        if !book.dirty {
            return Ok(());
        }
        book.save().map_err(|e| format!("cannot write the alert outbox {}: {e}", book.path().display()))
    }

    /// Whether part of the outbox is only in memory (a write failed).
    pub fn outbox_failing(&self) -> bool {
        self.outbox().is_some_and(|o| o.failing())
    }

    /// How many times the outbox's pending requests changed (0 when it is not open).
    pub fn outbox_changes(&self) -> u64 {
        self.outbox().map_or(0, |o| o.changes())
    }

    /// Pending retrain requests by model (what the state changelog carries).
    pub fn pending_retrains(&self) -> BTreeMap<String, Vec<Entry>> {
        self.outbox().map(|o| o.pending_by_model()).unwrap_or_default()
    }

    /// Queues the requests another replica (or an earlier run) left undelivered, due now;
    /// a run id this replica queued before, delivered or not, is not queued again, and the
    /// target sees one run id however many replicas try it (the idempotency key).
    pub fn take_requests<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) {
        let Some(outbox) = self.outbox() else { return };
        let mut fresh = false;
        for e in entries {
            let entry = Entry { next_attempt_ms: 0, ..e.clone() };
            if self.enqueue(&outbox, &entry) {
                let (model, run_id) = (&entry.model, &entry.run_id);
                self.telemetry.emit(RetrainQueued { model, run_id, preset: &entry.preset, fresh: true });
                fresh = true;
            }
        }
        if fresh {
            self.wake.notify_one();
        }
    }

    /// Restores the state machines from a checkpoint; drifting models keep their firing
    /// alert alive in Alertmanager.
    pub fn restore(&self, trackers: BTreeMap<TrackKey, DriftTracker>) {
        let mut ledger = self.ledger.lock().expect("actions lock");
        for ((model, version), st) in trackers {
            let drifting = st.state == DriftState::Drifting;
            self.telemetry.emit(DriftStateSet { model: &model, version: version.as_deref(), drifting });
            if let (true, Some(id), Some(since)) = (st.quality.failing, &st.quality.incident, &st.quality.since) {
                self.alert_restored(Notice {
                    topic: Topic::DataQuality,
                    model: model.clone(),
                    version: version.clone(),
                    resolution: None,
                    episode: incident(id.clone(), since.clone()),
                    drifted_features: Vec::new(),
                    share_of_drifted_features: 0.0,
                    window_end: since.clone(),
                    fired_at: format_rfc3339_ms(now_ms()),
                    failures: Vec::new(),
                });
            }
            if let (DriftState::Drifting, Some(ep)) = (st.state, &st.episode) {
                self.alert_restored(Notice {
                    topic: Topic::Drift,
                    model: model.clone(),
                    version: version.clone(),
                    resolution: None,
                    episode: ep.clone(),
                    drifted_features: Vec::new(),
                    share_of_drifted_features: 0.0,
                    window_end: ep.since.clone(),
                    fired_at: format_rfc3339_ms(now_ms()),
                    failures: Vec::new(),
                });
            }
            ledger.trackers.insert((model, version), st);
        }
    }

    /// A model's retrain requests, finished and pending.
    pub fn history(&self, model: &str) -> Vec<Entry> {
        self.outbox().map(|o| o.for_model(model)).unwrap_or_default()
    }

    /// Moves the model's (or version's) state machine by one window report and acts on
    /// the transition.
    pub fn observe(&self, report: &WindowReport) {
        let config = self.config();
        let (model, version) = report.track();
        let default = Policy::default();
        let policy = config.policies.get(model).unwrap_or(&default);
        let name = subject(model, version);
        let (transition, quality) = {
            let mut ledger = self.ledger.lock().expect("actions lock");
            let st = ledger.trackers.entry((model.to_string(), version.map(str::to_string))).or_default();
            let t = st.observe(&name, report.bounds.end_ms, report.verdict, policy, config.retrain.is_some());
            let q = st.observe_quality(&name, report.bounds.end_ms, report.quality_judged());
            self.telemetry.emit(DriftStateSet { model, version, drifting: st.state == DriftState::Drifting });
            self.telemetry.emit(DataQualitySet { model, version, failing: st.quality.failing });
            (t, q)
        };
        self.act(&config, transition, notice(report, &Episode::placeholder()), Some(report));
        let base = Notice {
            topic: Topic::DataQuality,
            failures: report.data_quality.failures.clone(),
            ..notice(report, &Episode::placeholder())
        };
        let (id, since, phase) = match quality {
            QualityTransition::Failed { id, since } => (id, since, Phase::Firing),
            QualityTransition::Restored { id, since } => (id, since, Phase::Resolved),
            QualityTransition::None => return,
        };
        let failing = phase == Phase::Firing;
        let failures = if failing { base.failures.as_slice() } else { &[] };
        self.telemetry.emit(DataQualityChanged { model, version, incident: &id, failing, failures });
        let resolution = (!failing).then(|| "the data is good again".to_string());
        self.alert(Notice { episode: incident(id, since), resolution, ..base }, phase);
    }

    /// The model's reference (or this version's) was replaced: an episode in course ends
    /// with reason `reference_updated`, its alerts resolve saying so, and its retrain
    /// request records which reference resolved it. `version`: the traffic's version for
    /// a per-version reference, `None` for a model-wide one (every version's episode ends).
    pub fn reference_updated(&self, model: &str, version: Option<&str>, resolution: Resolution) {
        let config = self.config();
        let changed: Vec<(Option<String>, Transition)> = {
            let mut ledger = self.ledger.lock().expect("actions lock");
            let mut out = Vec::new();
            for ((m, v), st) in ledger.trackers.iter_mut() {
                if m != model || (version.is_some() && v.as_deref() != version) {
                    continue;
                }
                let t = st.reference_updated(resolution.clone());
                self.telemetry.emit(DriftStateSet {
                    model,
                    version: v.as_deref(),
                    drifting: st.state == DriftState::Drifting,
                });
                out.push((v.clone(), t));
            }
            out
        };
        for (v, transition) in changed {
            self.act(&config, transition, episode_end_notice(model.to_string(), v), None);
        }
    }

    /// What a transition does: an episode's start queues the retrain request and fires
    /// the alert; its end resolves the alert (and notes a `reference_updated` on the
    /// request's history entry).
    fn act(&self, config: &ActionConfig, transition: Transition, base: Notice, report: Option<&WindowReport>) {
        let model = base.model.clone();
        let version = base.version.clone();
        match transition {
            Transition::Fired { episode } => {
                self.telemetry.emit(EpisodeStarted { model: &model, version: version.as_deref(), episode: &episode });
                if episode.retrain {
                    let params = run_params(report, &model, &episode.id, "drift");
                    if let Err(error) = self.queue(config, params) {
                        self.telemetry.emit(RetrainNotQueued { model: &model, error: &error });
                    }
                } else if config.retrain.is_some() {
                    let (run_id, outcome) = (episode.id.as_str(), RetrainOutcome::Cooldown);
                    self.telemetry.emit(RetrainFinished { model: &model, run_id, outcome, attempts: 0, error: None });
                }
                self.alert(Notice { episode, ..base }, Phase::Firing);
            }
            Transition::Resolved { episode, resolution } => {
                let v = version.as_deref();
                self.telemetry.emit(EpisodeEnded {
                    model: &model,
                    version: v,
                    episode: &episode,
                    resolution: &resolution,
                });
                if resolution != Resolution::Clean && episode.retrain {
                    if let Some(outbox) = self.outbox() {
                        if let Err(error) = outbox.record_resolution(&episode.id, &resolution) {
                            self.telemetry.emit(OutboxNotWritten { run_id: &episode.id, error: &error });
                        }
                    }
                }
                let notice = Notice { episode, resolution: Some(resolution.describe()), ..base };
                self.alert(notice, Phase::Resolved);
            }
            Transition::Continued | Transition::None => {}
        }
    }

    /// `POST /api/v1/models/{name}/retrain`: a request now, outside the policy and its
    /// cooldown, with the model's latest window report (the API's, when there is one);
    /// within `manual_interval` of the model's last manual request, that request again.
    pub fn manual(&self, model: &str, latest: Option<&WindowReport>) -> Result<Manual, ManualError> {
        let config = self.config();
        if !config.policies.contains_key(model) {
            return Err(ManualError::UnknownModel(model.to_string()));
        }
        let Some(target) = config.retrain.as_ref() else {
            return Err(ManualError::NoTarget);
        };
        // one at a time: two calls at once must not both find no recent request
        let _one = self.manual_lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        let interval = i64::try_from(target.settings.manual_interval().as_millis()).unwrap_or(i64::MAX);
        let recent = self.history(model).into_iter().rev().find(|e| {
            e.reason == "manual"
                && crate::time::parse_rfc3339_ms(&e.created).is_some_and(|at| now.saturating_sub(at) < interval)
        });
        if let Some(entry) = recent {
            return Ok(Manual::Recent(entry));
        }
        let id = run_id(model, now, "manual");
        self.queue(&config, run_params(latest, model, &id, "manual")).map(Manual::Queued).map_err(ManualError::Io)
    }

    /// Writes the request to the outbox (or, under `dry_run`, logs it into the history).
    fn queue(&self, config: &ActionConfig, params: RunParams) -> Result<Entry, String> {
        let target = config.retrain.as_ref().ok_or("no retrain target")?;
        let outbox = self.outbox().ok_or("the outbox is not open")?;
        let mut entry = Entry::pending(
            &params.run_id,
            &params.model,
            &params.reason,
            format_rfc3339_ms(now_ms()),
            target.settings.preset.as_str(),
            params.to_json(),
        );
        let (model, run_id) = (entry.model.clone(), entry.run_id.clone());
        if target.settings.dry_run {
            let call = presets::build(target, &params, &entry.created);
            let body = call.body.to_text();
            self.telemetry.emit(RetrainDryRun { model: &model, run_id: &run_id, url: &call.url, body: &body });
            entry.status = Status::DryRun;
            entry.finished = Some(entry.created.clone());
            if self.enqueue(&outbox, &entry) {
                if let Err(error) = outbox.finish(&entry) {
                    self.telemetry.emit(OutboxNotWritten { run_id: &run_id, error: &error });
                }
                let outcome = RetrainOutcome::DryRun;
                self.telemetry.emit(RetrainFinished {
                    model: &model,
                    run_id: &run_id,
                    outcome,
                    attempts: 0,
                    error: None,
                });
            }
            return Ok(entry);
        }
        let fresh = self.enqueue(&outbox, &entry);
        self.telemetry.emit(RetrainQueued { model: &model, run_id: &run_id, preset: &entry.preset, fresh });
        if fresh {
            self.wake.notify_one();
        }
        Ok(entry)
    }
}
