//! The HTTP API over the daemon's read-only state: `/metrics`, `/healthz`, `/readyz`, the
//! models and their reports, the retrain history; and two actions, a manual retrain and a
//! reload, which it hands to the hub and the run loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

mod pages;
mod serve;

use serve::AdminToken;
pub use serve::{serve, tls_acceptor, Limits};

use crate::actions::{Actions, Manual, ManualError};
use crate::health::ConsumerHealth;
use crate::pipeline::{Model, WindowReport};
use crate::reference::ReferenceIdentity;
use crate::telemetry::Telemetry;

/// What a model looks like from the API.
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    pub name: String,
    /// The reference as configured (path, URL or registry URI).
    pub reference: String,
    pub window: String,
    /// Features monitored (of the model-wide reference, or the newest version's).
    pub features: usize,
    pub events_total: u64,
    pub late_events_total: u64,
    pub open_window_events: u64,
    pub split_by_version: bool,
    /// The references in use: the model-wide one, or one per version.
    pub references: Vec<ReferenceView>,
    /// The live versions' windows (models split by version).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionView>,
}

/// A reference in use.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceView {
    /// The traffic's version it is for (per-version references).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(flatten)]
    pub identity: ReferenceIdentity,
}

/// A live version's windows.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub model_version: Option<String>,
    pub events_total: u64,
    pub open_window_events: u64,
    pub reference: ReferenceIdentity,
}

impl ModelView {
    pub fn of(m: &Model) -> ModelView {
        let mut references: Vec<ReferenceView> = Vec::new();
        if let Some(s) = &m.shared {
            references.push(ReferenceView { model_version: None, identity: s.reference.clone() });
        }
        for (v, s) in &m.by_version {
            references.push(ReferenceView { model_version: Some(v.clone()), identity: s.reference.clone() });
        }
        let features = m.shared.as_ref().or(m.by_version.values().next_back()).map_or(0, |s| s.features().count());
        let versions = match m.config.split_by_version {
            true => m
                .tracks
                .iter()
                .map(|t| VersionView {
                    model_version: t.version.clone(),
                    events_total: t.events_total(),
                    open_window_events: t.open_events(),
                    reference: t.spec.reference.clone(),
                })
                .collect(),
            false => Vec::new(),
        };
        ModelView {
            name: m.config.name.clone(),
            reference: m.config.reference.to_string(),
            window: m.config.window.to_string(),
            features,
            events_total: m.tracks.iter().map(|t| t.events_total()).sum(),
            late_events_total: m.tracks.iter().map(|t| t.late_total()).sum(),
            open_window_events: m.tracks.iter().map(|t| t.open_events()).sum(),
            split_by_version: m.config.split_by_version,
            references,
            versions,
        }
    }
}

/// A reload request; the answer says whether the new config was taken.
/// The answer to a reload: taken (with the changed sections that need a restart), or
/// refused with why.
pub type ReloadRequest = oneshot::Sender<Result<Vec<String>, String>>;

pub struct ApiState {
    pub telemetry: Arc<Telemetry>,
    /// Policy, retrain and alerts; set once the daemon has started them.
    pub actions: RwLock<Option<Arc<Actions>>>,
    /// Each model's latest window report (any version), and each version's.
    pub latest: RwLock<BTreeMap<String, WindowReport>>,
    pub latest_by_version: RwLock<BTreeMap<(String, String), WindowReport>>,
    pub models: RwLock<Vec<ModelView>>,
    pub references_loaded: AtomicBool,
    /// Models with no reference yet, and why: not ready until each has one.
    pub missing_references: RwLock<BTreeMap<String, String>>,
    /// Set by the consumer once the group gave it partitions.
    pub assigned: Arc<AtomicBool>,
    /// Whether the Kafka consumer keeps failing (not ready while it does).
    pub consumer: Arc<ConsumerHealth>,
    /// What cannot be written (`checkpoint`, `outbox`, `reports`) and why, while it
    /// cannot (not ready).
    write_errors: RwLock<BTreeMap<&'static str, String>>,
    pub reload: mpsc::Sender<ReloadRequest>,
}

impl ApiState {
    pub fn new(telemetry: Arc<Telemetry>, reload: mpsc::Sender<ReloadRequest>) -> ApiState {
        ApiState {
            telemetry,
            actions: RwLock::new(None),
            latest: RwLock::new(BTreeMap::new()),
            latest_by_version: RwLock::new(BTreeMap::new()),
            models: RwLock::new(Vec::new()),
            references_loaded: AtomicBool::new(false),
            missing_references: RwLock::new(BTreeMap::new()),
            assigned: Arc::new(AtomicBool::new(false)),
            consumer: Arc::new(ConsumerHealth::default()),
            write_errors: RwLock::new(BTreeMap::new()),
            reload,
        }
    }

    pub fn actions(&self) -> Option<Arc<Actions>> {
        self.actions.read().expect("lock").clone()
    }

    fn has_model(&self, name: &str) -> bool {
        self.models.read().expect("lock").iter().any(|m| m.name == name)
    }

    /// Keeps a window report as its model's (and version's) latest.
    pub fn note_report(&self, report: &WindowReport) {
        if let Some(v) = &report.model_version {
            let key = (report.model.clone(), v.clone());
            self.latest_by_version.write().expect("lock").insert(key, report.clone());
        }
        self.latest.write().expect("lock").insert(report.model.clone(), report.clone());
    }

    pub fn ready(&self) -> bool {
        self.references_loaded.load(Ordering::Relaxed)
            && self.assigned.load(Ordering::Relaxed)
            && self.missing_references.read().expect("lock").is_empty()
            && self.consumer.failing().is_none()
            && self.write_errors.read().expect("lock").is_empty()
    }

    /// Notes that `what` cannot be written, and why (`None`: it can again). True when
    /// this changes whether it could.
    pub fn write_failing(&self, what: &'static str, error: Option<String>) -> bool {
        let mut errors = self.write_errors.write().expect("lock");
        match error {
            Some(e) => errors.insert(what, e).is_none(),
            None => errors.remove(what).is_some(),
        }
    }
}

/// `/metrics`, health, and the read-only API.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/models", get(models))
        .route("/api/v1/models/{name}", get(model))
        .route("/", get(index))
        .route("/api/v1/models/{name}/reports/latest", get(latest))
        .route("/api/v1/models/{name}/reports/latest.html", get(latest_page))
        .route("/api/v1/models/{name}/retrains", get(retrains))
        .route("/api/v1/models/{name}/retrains/latest", get(latest_retrain))
        .route("/api/v1/models/{name}/retrains/{run_id}", get(one_retrain))
        .with_state(state)
}

/// The endpoints that act (a manual retrain, a reload), for a bearer of `token` only.
pub fn admin_router(state: Arc<ApiState>, token: &str) -> Router {
    Router::new()
        .route("/api/v1/models/{name}/retrain", post(retrain))
        .route("/api/v1/reload", post(reload))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(AdminToken(token.into()), serve::bearer))
}

async fn metrics(State(s): State<Arc<ApiState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.telemetry.render()).into_response()
}

async fn readyz(State(s): State<Arc<ApiState>>) -> Response {
    if s.ready() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let missing = s.missing_references.read().expect("lock").clone();
    let unwritten = s.write_errors.read().expect("lock").clone();
    let why = if !s.references_loaded.load(Ordering::Relaxed) {
        "loading references\n".to_string()
    } else if !missing.is_empty() {
        missing.iter().map(|(m, why)| format!("model {m} has no reference: {why}\n")).collect()
    } else if let Some(error) = s.consumer.failing() {
        format!("the kafka consumer keeps failing: {error}\n")
    } else if !unwritten.is_empty() {
        unwritten.values().map(|e| format!("{e}\n")).collect()
    } else {
        "waiting for a partition assignment\n".to_string()
    };
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

async fn models(State(s): State<Arc<ApiState>>) -> Json<Vec<ModelView>> {
    Json(s.models.read().expect("lock").clone())
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": what }))).into_response()
}

async fn model(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let info = s.models.read().expect("lock").iter().find(|m| m.name == name).cloned();
    match info {
        Some(info) => {
            let latest = s.latest.read().expect("lock").get(&name).cloned();
            let actions = s.actions();
            let drift = actions.as_ref().and_then(|a| a.state_of(&name, None)).unwrap_or_default();
            let by_version: BTreeMap<String, crate::policy::DriftTracker> = actions
                .map(|a| a.states_of(&name).into_iter().filter_map(|(v, t)| Some((v?, t))).collect())
                .unwrap_or_default();
            let mut body = serde_json::json!({ "model": info, "drift": drift, "latest_report": latest });
            if !by_version.is_empty() {
                body["drift_by_version"] = serde_json::json!(by_version);
            }
            Json(body).into_response()
        }
        None => not_found(format!("no model named '{name}'")),
    }
}

/// `?model_version=V`: that version's latest report.
#[derive(Debug, serde::Deserialize)]
struct LatestQuery {
    model_version: Option<String>,
}

async fn latest(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<LatestQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    latest_as(&s, name, q, pages::wants_html(&headers))
}

/// `latest.html`: the page whatever the client accepts.
async fn latest_page(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<LatestQuery>,
) -> Response {
    latest_as(&s, name, q, true)
}

fn latest_as(s: &ApiState, name: String, q: LatestQuery, html: bool) -> Response {
    let found = match q.model_version {
        Some(v) => s.latest_by_version.read().expect("lock").get(&(name.clone(), v)).cloned(),
        None => s.latest.read().expect("lock").get(&name).cloned(),
    };
    match found {
        Some(r) if html => pages::html_response(pages::window_page(&r)),
        Some(r) => Json(r).into_response(),
        None if s.has_model(&name) => not_found(format!("model '{name}' has no closed window yet")),
        None => not_found(format!("no model named '{name}'")),
    }
}

/// `/`: the models, their state and last window, with links to their pages.
async fn index(State(s): State<Arc<ApiState>>) -> Response {
    let models = s.models.read().expect("lock").clone();
    let actions = s.actions();
    // what the page shows of each last window, read under the lock (no report copied)
    let latest: Vec<Option<pages::LastWindow>> = {
        let reports = s.latest.read().expect("lock");
        models.iter().map(|m| reports.get(&m.name).map(pages::LastWindow::of)).collect()
    };
    let rows: Vec<pages::IndexRow> = models
        .iter()
        .zip(latest)
        .map(|(m, latest)| pages::IndexRow {
            model: m,
            tracker: actions.as_ref().and_then(|a| a.state_of(&m.name, None)),
            latest,
        })
        .collect();
    pages::html_response(pages::index_page(&s, &rows))
}

/// The model's retrain requests, oldest first, pending ones included.
async fn retrains(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    if !s.has_model(&name) {
        return not_found(format!("no model named '{name}'"));
    }
    let history = s.actions().map(|a| a.history(&name)).unwrap_or_default();
    Json(serde_json::json!({ "model": name, "retrains": history })).into_response()
}

/// The model's newest retrain request, pending or finished, with its run parameters: what
/// a pipeline triggered without variables reads (GitLab's `variables = false`).
async fn latest_retrain(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    if !s.has_model(&name) {
        return not_found(format!("no model named '{name}'"));
    }
    let history = s.actions().map(|a| a.history(&name)).unwrap_or_default();
    match history.into_iter().max_by(|a, b| a.created.cmp(&b.created)) {
        Some(entry) => Json(entry).into_response(),
        None => not_found(format!("model '{name}' has no retrain request yet")),
    }
}

/// One retrain request with its parameters, whole (where a report cut to fit a target's
/// limit links: `[retrain] driftd_url`).
async fn one_retrain(State(s): State<Arc<ApiState>>, Path((name, run_id)): Path<(String, String)>) -> Response {
    if !s.has_model(&name) {
        return not_found(format!("no model named '{name}'"));
    }
    let history = s.actions().map(|a| a.history(&name)).unwrap_or_default();
    match history.into_iter().find(|e| e.run_id == run_id) {
        Some(entry) => Json(entry).into_response(),
        None => not_found(format!("model '{name}' has no retrain request '{run_id}'")),
    }
}

/// Triggers a retrain by hand: 202 with the queued request, or 200 with the model's last
/// manual request when it is recent (`[retrain] manual_interval`).
async fn retrain(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let Some(actions) = s.actions() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    };
    let latest = s.latest.read().expect("lock").get(&name).cloned();
    match actions.manual(&name, latest.as_ref()) {
        Ok(Manual::Queued(entry)) => (StatusCode::ACCEPTED, Json(entry)).into_response(),
        Ok(Manual::Recent(entry)) => (StatusCode::OK, Json(entry)).into_response(),
        Err(e @ ManualError::UnknownModel(_)) => not_found(e.to_string()),
        Err(e @ ManualError::NoTarget) => {
            (StatusCode::CONFLICT, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
        }
    }
}

async fn reload(State(s): State<Arc<ApiState>>) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(restart)) => Json(serde_json::json!({ "reloaded": true, "restart_needed": restart })).into_response(),
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "reloaded": false, "error": e })))
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}
