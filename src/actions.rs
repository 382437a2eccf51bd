//! From window reports to decisions and their effects: the per-model policy state
//! machine, the retrain outbox and its delivery worker, the alert worker.
//!
//! `observe` runs on the pipeline's thread and only decides and writes (the outbox entry
//! is on disk before it returns); the two workers do the network calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use crate::alerts::{self, Notice, Phase, RateLimit, Receiver};
use crate::config::{duration_or, RetrainSettings, Settings};
use crate::delivery::{self, Attempt};
use crate::metrics::Metrics;
use crate::outbox::{Entry, Outbox, Status};
use crate::policy::{run_id, DriftState, ModelPolicyState, Policy, Transition};
use crate::retrain::{self, RunParams};
use crate::stream::time::format_rfc3339_ms;
use crate::stream::WindowReport;

/// The resolved retrain target.
#[derive(Debug, Clone)]
pub struct RetrainTarget {
    pub settings: RetrainSettings,
    pub secret: Option<String>,
    pub timeout: Duration,
    pub backoff: Duration,
    pub max_attempts: u32,
}

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
    pub fn from_settings(settings: &Settings) -> Result<ActionConfig, String> {
        let retrain_cooldown = settings.retrain.as_ref().and_then(|r| r.cooldown.as_deref());
        let policies = settings
            .models
            .iter()
            .map(|m| (m.name.clone(), Policy::from_settings(&settings.policy_for(m), retrain_cooldown)))
            .collect();
        let retrain = match &settings.retrain {
            Some(r) => {
                let secret = r.credential.resolve().map_err(|e| format!("retrain.secret: {e}"))?;
                let dur = |v: &Option<String>, d: Duration| duration_or(v.as_deref(), d);
                Some(RetrainTarget {
                    secret,
                    timeout: dur(&r.timeout, Duration::from_secs(10)),
                    backoff: dur(&r.backoff, Duration::from_secs(1)),
                    max_attempts: r.max_attempts.unwrap_or(8),
                    settings: r.clone(),
                })
            }
            None => None,
        };
        let receivers = settings
            .alerts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let secret = a.credential.resolve().map_err(|e| format!("alerts[{i}].secret: {e}"))?;
                Ok(Receiver::new(a, secret))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ActionConfig { policies, retrain, receivers })
    }
}

#[derive(Debug)]
enum AlertEvent {
    Notify(Notice, Phase),
    /// A model drifting at start (from the checkpoint): Alertmanager re-sends resume,
    /// nothing new is notified.
    Restore(Notice),
}

/// How the workers should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    /// Deliver what is pending (with its retries), then stop: `replay`.
    Drain,
    /// Stop after the attempt in flight; pending requests stay in the outbox.
    Stop,
}

struct Inner {
    states: BTreeMap<String, ModelPolicyState>,
    outbox: Option<Arc<Outbox>>,
}

pub struct Actions {
    metrics: Arc<Metrics>,
    state_dir: std::path::PathBuf,
    config: RwLock<Arc<ActionConfig>>,
    inner: Mutex<Inner>,
    wake: Notify,
    alerts: Mutex<Option<mpsc::UnboundedSender<AlertEvent>>>,
    http: reqwest::Client,
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
    mode: watch::Sender<Mode>,
    retrain: tokio::task::JoinHandle<()>,
    alerts: tokio::task::JoinHandle<()>,
}

impl Workers {
    /// Stops the workers: `Drain` delivers everything pending first, `Stop` leaves it in
    /// the outbox. Alerts already decided are sent in both cases.
    pub async fn shutdown(self, actions: &Actions, mode: Mode) {
        let _ = self.mode.send(mode);
        actions.wake.notify_one();
        actions.alerts.lock().expect("alerts lock").take();
        let _ = self.alerts.await;
        let _ = self.retrain.await;
    }
}

fn params_of(report: Option<&WindowReport>, model: &str, run_id: &str, reason: &str) -> RunParams {
    let drifted_features = report
        .and_then(|w| w.report.as_ref())
        .map(|r| r.features.iter().filter(|f| f.drifted).map(|f| f.name.clone()).collect())
        .unwrap_or_default();
    RunParams {
        model: model.to_string(),
        run_id: run_id.to_string(),
        reason: reason.to_string(),
        drifted_features,
        drift_report: report.map_or(serde_json::Value::Null, |w| serde_json::to_value(w).expect("report serializes")),
    }
}

fn notice(report: &WindowReport, episode: &crate::policy::Episode, fired_at: String) -> Notice {
    let r = report.report.as_ref();
    Notice {
        model: report.model.clone(),
        episode: episode.clone(),
        drifted_features: r
            .map(|r| r.features.iter().filter(|f| f.drifted).map(|f| f.name.clone()).collect())
            .unwrap_or_default(),
        share_of_drifted_features: r.map_or(0.0, |r| r.share_of_drifted_features),
        window_end: report.window_end.clone(),
        fired_at,
    }
}

impl Actions {
    /// Builds the hub and starts its two workers on the current tokio runtime.
    pub fn start(settings: &Settings, metrics: Arc<Metrics>) -> Result<(Arc<Actions>, Workers), String> {
        let config = ActionConfig::from_settings(settings)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let actions = Arc::new(Actions {
            metrics,
            state_dir: settings.state.dir.clone(),
            config: RwLock::new(Arc::new(ActionConfig::default())),
            inner: Mutex::new(Inner { states: BTreeMap::new(), outbox: None }),
            wake: Notify::new(),
            alerts: Mutex::new(Some(tx)),
            http: delivery::client(),
        });
        actions.apply(config)?;
        let (mode_tx, mode_rx) = watch::channel(Mode::Run);
        let retrain = tokio::spawn(retrain_worker(actions.clone(), mode_rx.clone()));
        let alerts = tokio::spawn(alert_worker(actions.clone(), rx));
        Ok((actions, Workers { mode: mode_tx, retrain, alerts }))
    }

    /// Takes a new config (from `ActionConfig::from_settings`). The outbox opens once a
    /// retrain target exists.
    pub fn apply(&self, config: ActionConfig) -> Result<(), String> {
        if config.retrain.is_some() {
            let mut inner = self.inner.lock().expect("actions lock");
            if inner.outbox.is_none() {
                let ob = Outbox::open(&self.state_dir)
                    .map_err(|e| format!("state.dir: cannot open the outbox in {}: {e}", self.state_dir.display()))?;
                inner.outbox = Some(Arc::new(ob));
            }
        }
        // every model's series exist from the start, at zero: dashboards and `increase()`
        // in alerting rules see the first change
        for model in config.policies.keys() {
            let m = model.as_str();
            self.metrics.model_drifting.with_label_values(&[m]);
            self.metrics.drift_episodes_total.with_label_values(&[m]);
            if config.retrain.is_some() {
                for outcome in ["delivered", "duplicate", "failed"] {
                    self.metrics.retrain_triggers_total.with_label_values(&[m, outcome]);
                }
            }
        }
        for r in &config.receivers {
            for outcome in ["sent", "failed", "rate_limited"] {
                self.metrics.alerts_sent_total.with_label_values(&[r.name.as_str(), outcome]);
            }
        }
        *self.config.write().expect("config lock") = Arc::new(config);
        self.wake.notify_one();
        Ok(())
    }

    fn config(&self) -> Arc<ActionConfig> {
        self.config.read().expect("config lock").clone()
    }

    fn alert(&self, e: AlertEvent) {
        if let Some(tx) = &*self.alerts.lock().expect("alerts lock") {
            let _ = tx.send(e);
        }
    }

    /// The policy states, for the checkpoint.
    pub fn snapshot(&self) -> BTreeMap<String, ModelPolicyState> {
        self.inner.lock().expect("actions lock").states.clone()
    }

    pub fn state_of(&self, model: &str) -> Option<ModelPolicyState> {
        self.inner.lock().expect("actions lock").states.get(model).cloned()
    }

    /// Restores the policy states from a checkpoint; drifting models keep their firing
    /// alert alive in Alertmanager.
    pub fn restore(&self, states: BTreeMap<String, ModelPolicyState>) {
        let mut inner = self.inner.lock().expect("actions lock");
        for (model, st) in states {
            self.metrics
                .model_drifting
                .with_label_values(&[model.as_str()])
                .set(i64::from(st.state == DriftState::Drifting));
            if let (DriftState::Drifting, Some(ep)) = (st.state, &st.episode) {
                self.alert(AlertEvent::Restore(Notice {
                    model: model.clone(),
                    episode: ep.clone(),
                    drifted_features: Vec::new(),
                    share_of_drifted_features: 0.0,
                    window_end: ep.since.clone(),
                    fired_at: format_rfc3339_ms(delivery::now_ms()),
                }));
            }
            inner.states.insert(model, st);
        }
    }

    /// A model's retrain requests, finished and pending.
    pub fn history(&self, model: &str) -> Vec<Entry> {
        let outbox = self.inner.lock().expect("actions lock").outbox.clone();
        outbox.map(|o| o.for_model(model)).unwrap_or_default()
    }

    /// Moves the model's state machine by one window report and acts on the transition.
    pub fn observe(&self, report: &WindowReport) {
        let config = self.config();
        let model = report.model.as_str();
        if let Some(p) = report.prediction_drift {
            self.metrics.prediction_drift_detected.with_label_values(&[model]).set(f64::from(u8::from(p)));
        }
        let default = Policy::default();
        let policy = config.policies.get(model).unwrap_or(&default);
        let transition = {
            let mut inner = self.inner.lock().expect("actions lock");
            let st = inner.states.entry(model.to_string()).or_default();
            let t = st.observe(report, policy, config.retrain.is_some());
            self.metrics.model_drifting.with_label_values(&[model]).set(i64::from(st.state == DriftState::Drifting));
            t
        };
        match transition {
            Transition::Fired { episode } => {
                self.metrics.drift_episodes_total.with_label_values(&[model]).inc();
                tracing::warn!(model, episode = %episode.id, severity = episode.severity.as_str(), "model is drifting");
                if episode.retrain {
                    let params = params_of(Some(report), model, &episode.id, "drift");
                    if let Err(e) = self.queue(&config, params) {
                        tracing::error!(model, error = %e, "cannot queue the retrain request");
                    }
                } else if config.retrain.is_some() {
                    self.metrics.retrain_triggers_total.with_label_values(&[model, "cooldown"]).inc();
                    tracing::info!(model, episode = %episode.id, "retrain held back by the cooldown");
                }
                let fired_at = format_rfc3339_ms(delivery::now_ms());
                self.alert(AlertEvent::Notify(notice(report, &episode, fired_at), Phase::Firing));
            }
            Transition::Resolved { episode } => {
                tracing::info!(model, episode = %episode.id, "model no longer drifting");
                let fired_at = format_rfc3339_ms(delivery::now_ms());
                self.alert(AlertEvent::Notify(notice(report, &episode, fired_at), Phase::Resolved));
            }
            Transition::Continued | Transition::None => {}
        }
    }

    /// `POST /api/v1/models/{name}/retrain`: a request now, outside the policy and its
    /// cooldown, with the model's latest window report (the API's, when there is one).
    pub fn manual(&self, model: &str, latest: Option<&WindowReport>) -> Result<Entry, ManualError> {
        let config = self.config();
        if !config.policies.contains_key(model) {
            return Err(ManualError::UnknownModel(model.to_string()));
        }
        if config.retrain.is_none() {
            return Err(ManualError::NoTarget);
        }
        let id = run_id(model, delivery::now_ms(), "manual");
        let params = params_of(latest, model, &id, "manual");
        self.queue(&config, params).map_err(ManualError::Io)
    }

    /// Writes the request to the outbox (or, under `dry_run`, logs it into the history).
    fn queue(&self, config: &ActionConfig, params: RunParams) -> Result<Entry, String> {
        let target = config.retrain.as_ref().ok_or("no retrain target")?;
        let outbox = self.inner.lock().expect("actions lock").outbox.clone().ok_or("the outbox is not open")?;
        let mut entry = Entry::pending(
            &params.run_id,
            &params.model,
            &params.reason,
            format_rfc3339_ms(delivery::now_ms()),
            target.settings.preset.as_str(),
            params.to_json(),
        );
        if target.settings.dry_run {
            let call = retrain::build(&target.settings, None, &params, &entry.created);
            let body = match &call.body {
                retrain::Body::Json(b) => String::from_utf8_lossy(b).into_owned(),
                retrain::Body::Form(f) => f.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
            };
            tracing::info!(model = %entry.model, run_id = %entry.run_id, url = %call.url, body = %body, "dry run: retrain request not sent");
            entry.status = Status::DryRun;
            entry.finished = Some(entry.created.clone());
            if outbox.enqueue(&entry).map_err(|e| e.to_string())? {
                outbox.finish(&entry).map_err(|e| e.to_string())?;
                self.metrics.retrain_triggers_total.with_label_values(&[entry.model.as_str(), "dry_run"]).inc();
            }
            return Ok(entry);
        }
        if outbox.enqueue(&entry).map_err(|e| e.to_string())? {
            tracing::info!(model = %entry.model, run_id = %entry.run_id, preset = %entry.preset, "retrain request queued");
            self.wake.notify_one();
        } else {
            tracing::info!(model = %entry.model, run_id = %entry.run_id, "retrain request already queued or made: not again");
        }
        Ok(entry)
    }

    fn finish(&self, outbox: &Outbox, mut e: Entry, status: Status) {
        e.status = status;
        e.finished = Some(format_rfc3339_ms(delivery::now_ms()));
        let outcome = status.as_str();
        self.metrics.retrain_triggers_total.with_label_values(&[e.model.as_str(), outcome]).inc();
        match status {
            Status::Failed => tracing::error!(model = %e.model, run_id = %e.run_id, attempts = e.attempts,
                error = e.last_error.as_deref().unwrap_or(""), "retrain request failed"),
            _ => {
                tracing::info!(model = %e.model, run_id = %e.run_id, attempts = e.attempts, outcome, "retrain request delivered")
            }
        }
        if let Err(err) = outbox.finish(&e) {
            tracing::error!(run_id = %e.run_id, error = %err, "cannot record the retrain request's outcome");
        }
    }
}

async fn retrain_worker(actions: Arc<Actions>, mut mode: watch::Receiver<Mode>) {
    loop {
        let outbox = actions.inner.lock().expect("actions lock").outbox.clone();
        let pending = outbox.as_ref().map(|o| o.read_pending()).unwrap_or_default();
        actions.metrics.retrain_pending.set(pending.len() as i64);
        let current = *mode.borrow();
        if current == Mode::Stop || (current == Mode::Drain && pending.is_empty()) {
            return;
        }
        let config = actions.config();
        let mut next_due: Option<i64> = None;
        // entries still pending after this pass; ones queued meanwhile wake the worker
        // again (the `wake` permit), so the outbox needs no second read
        let mut left = 0usize;
        if let (Some(outbox), Some(target)) = (&outbox, &config.retrain) {
            for mut e in pending {
                if *mode.borrow() == Mode::Stop {
                    return;
                }
                let now = delivery::now_ms();
                if e.next_attempt_ms > now {
                    next_due = Some(next_due.map_or(e.next_attempt_ms, |d| d.min(e.next_attempt_ms)));
                    left += 1;
                    continue;
                }
                let Some(params) = RunParams::from_json(&e.params) else {
                    e.last_error = Some("unreadable run parameters".into());
                    actions.finish(outbox, e, Status::Failed);
                    continue;
                };
                let call = retrain::build(&target.settings, target.secret.as_deref(), &params, &e.created);
                e.attempts += 1;
                match delivery::send(&actions.http, &call, target.timeout).await {
                    Attempt::Delivered { status } => {
                        e.http_status = Some(status);
                        actions.finish(outbox, e, Status::Delivered);
                    }
                    Attempt::Duplicate { status } => {
                        e.http_status = Some(status);
                        actions.finish(outbox, e, Status::Duplicate);
                    }
                    Attempt::Fail { reason, status } => {
                        e.http_status = Some(status);
                        e.last_error = Some(reason);
                        actions.finish(outbox, e, Status::Failed);
                    }
                    Attempt::Retry { reason, status, after } => {
                        e.http_status = status;
                        e.last_error = Some(reason.clone());
                        if e.attempts >= target.max_attempts {
                            actions.finish(outbox, e, Status::Failed);
                            continue;
                        }
                        let wait = delivery::backoff(target.backoff, Duration::from_secs(300), e.attempts, after);
                        e.next_attempt_ms = delivery::now_ms() + wait.as_millis() as i64;
                        tracing::warn!(model = %e.model, run_id = %e.run_id, attempt = e.attempts, error = %reason,
                            retry_in_ms = wait.as_millis() as u64, "retrain request not delivered; will retry");
                        if let Err(err) = outbox.update(&e) {
                            tracing::error!(run_id = %e.run_id, error = %err, "cannot update the outbox entry");
                        }
                        next_due = Some(next_due.map_or(e.next_attempt_ms, |d| d.min(e.next_attempt_ms)));
                        left += 1;
                    }
                }
            }
        } else if *mode.borrow() == Mode::Drain {
            // nothing can deliver what is pending: leave it for a run with a target
            return;
        }
        if left == 0 && *mode.borrow() != Mode::Run {
            actions.metrics.retrain_pending.set(0);
            return;
        }
        let sleep = match next_due {
            Some(due) => Duration::from_millis((due - delivery::now_ms()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = actions.wake.notified() => {}
            _ = mode.changed() => {}
        }
    }
}

async fn alert_worker(actions: Arc<Actions>, mut rx: mpsc::UnboundedReceiver<AlertEvent>) {
    let mut limits: BTreeMap<String, RateLimit> = BTreeMap::new();
    // firing alerts by model, for Alertmanager's re-sends
    let mut firing: BTreeMap<String, Notice> = BTreeMap::new();
    let mut last_refresh: BTreeMap<String, std::time::Instant> = BTreeMap::new();
    // (receiver, model) pairs told of a firing alert not yet resolved
    let mut notified: std::collections::BTreeSet<(String, String)> = std::collections::BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            e = rx.recv() => match e { Some(e) => Some(e), None => return },
            _ = tick.tick() => None,
        };
        let config = actions.config();
        match event {
            Some(AlertEvent::Restore(n)) => {
                // which receivers were told before the restart is not known: all may be
                for r in config.receivers.iter().filter(|r| r.takes(n.episode.severity)) {
                    notified.insert((r.name.clone(), n.model.clone()));
                }
                firing.insert(n.model.clone(), n);
            }
            Some(AlertEvent::Notify(n, phase)) => {
                match phase {
                    Phase::Resolved => {
                        firing.remove(&n.model);
                    }
                    _ => {
                        firing.insert(n.model.clone(), n.clone());
                    }
                }
                for r in config.receivers.iter().filter(|r| r.takes(n.episode.severity)) {
                    let key = (r.name.clone(), n.model.clone());
                    // a resolution goes to the receivers that were told of the firing
                    if phase == Phase::Resolved && !notified.remove(&key) {
                        continue;
                    }
                    if phase == Phase::Firing {
                        let limit = limits.entry(r.name.clone()).or_insert_with(|| RateLimit::new(r.max_per_minute));
                        if !limit.allow() {
                            actions
                                .metrics
                                .alerts_sent_total
                                .with_label_values(&[r.name.as_str(), "rate_limited"])
                                .inc();
                            tracing::warn!(receiver = %r.name, model = %n.model, "alert dropped by the receiver's rate limit");
                            continue;
                        }
                    }
                    if phase == Phase::Firing {
                        notified.insert(key);
                    }
                    deliver(&actions, r, &n, phase).await;
                    if r.settings.kind == crate::config::AlertKind::Alertmanager {
                        last_refresh.insert(format!("{}\u{0}{}", r.name, n.model), std::time::Instant::now());
                    }
                }
            }
            None => {
                for r in config.receivers.iter().filter(|r| r.settings.kind == crate::config::AlertKind::Alertmanager) {
                    for n in firing.values().filter(|n| r.takes(n.episode.severity)) {
                        let key = format!("{}\u{0}{}", r.name, n.model);
                        if last_refresh.get(&key).is_some_and(|t| t.elapsed() < r.repeat) {
                            continue;
                        }
                        deliver(&actions, r, n, Phase::Refresh).await;
                        last_refresh.insert(key, std::time::Instant::now());
                    }
                }
            }
        }
    }
}

async fn deliver(actions: &Actions, r: &Receiver, n: &Notice, phase: Phase) {
    let call = alerts::build(r, n, phase);
    match alerts::send(&actions.http, r, &call).await {
        Ok(()) => {
            actions.metrics.alerts_sent_total.with_label_values(&[r.name.as_str(), "sent"]).inc();
            tracing::debug!(receiver = %r.name, model = %n.model, ?phase, "alert sent");
        }
        Err(e) => {
            actions.metrics.alerts_sent_total.with_label_values(&[r.name.as_str(), "failed"]).inc();
            tracing::warn!(receiver = %r.name, model = %n.model, ?phase, error = %e, "alert not delivered");
        }
    }
}
