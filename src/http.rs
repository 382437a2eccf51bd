//! The HTTP API over the daemon's read-only state: `/metrics`, `/healthz`, `/readyz`, the
//! models and their reports, the retrain history; and two actions, a manual retrain and a
//! reload, which it hands to the hub and the run loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::actions::{Actions, ManualError};
use crate::pipeline::WindowReport;
use crate::telemetry::Telemetry;

/// What a model looks like from the API.
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    pub name: String,
    pub reference: String,
    pub window: String,
    pub features: usize,
    pub events_total: u64,
    pub late_events_total: u64,
    pub open_window_events: u64,
}

impl ModelView {
    pub fn of(m: &crate::pipeline::Model) -> ModelView {
        ModelView {
            name: m.spec.name.clone(),
            reference: m.spec.profile_path.display().to_string(),
            window: m.spec.window.to_string(),
            features: m.spec.profile.features.len(),
            events_total: m.windows.events_total,
            late_events_total: m.windows.late_total,
            open_window_events: m.windows.open_events(),
        }
    }
}

/// A reload request; the answer says whether the new config was taken.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

pub struct ApiState {
    pub telemetry: Arc<Telemetry>,
    /// Policy, retrain and alerts; set once the daemon has started them.
    pub actions: RwLock<Option<Arc<Actions>>>,
    pub latest: RwLock<BTreeMap<String, WindowReport>>,
    pub models: RwLock<Vec<ModelView>>,
    pub references_loaded: AtomicBool,
    /// Set by the consumer once the group gave it partitions.
    pub assigned: Arc<AtomicBool>,
    pub reload: mpsc::Sender<ReloadRequest>,
}

impl ApiState {
    pub fn new(telemetry: Arc<Telemetry>, reload: mpsc::Sender<ReloadRequest>) -> ApiState {
        ApiState {
            telemetry,
            actions: RwLock::new(None),
            latest: RwLock::new(BTreeMap::new()),
            models: RwLock::new(Vec::new()),
            references_loaded: AtomicBool::new(false),
            assigned: Arc::new(AtomicBool::new(false)),
            reload,
        }
    }

    pub fn actions(&self) -> Option<Arc<Actions>> {
        self.actions.read().expect("lock").clone()
    }

    fn has_model(&self, name: &str) -> bool {
        self.models.read().expect("lock").iter().any(|m| m.name == name)
    }

    pub fn ready(&self) -> bool {
        self.references_loaded.load(Ordering::Relaxed) && self.assigned.load(Ordering::Relaxed)
    }
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/models", get(models))
        .route("/api/v1/models/{name}", get(model))
        .route("/api/v1/models/{name}/reports/latest", get(latest))
        .route("/api/v1/models/{name}/retrains", get(retrains))
        .route("/api/v1/models/{name}/retrain", post(retrain))
        .route("/api/v1/reload", post(reload))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn metrics(State(s): State<Arc<ApiState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.telemetry.render()).into_response()
}

async fn readyz(State(s): State<Arc<ApiState>>) -> Response {
    if s.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = if s.references_loaded.load(Ordering::Relaxed) {
            "waiting for a partition assignment\n"
        } else {
            "loading references\n"
        };
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
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
            let drift = s.actions().and_then(|a| a.state_of(&name)).unwrap_or_default();
            Json(serde_json::json!({ "model": info, "drift": drift, "latest_report": latest })).into_response()
        }
        None => not_found(format!("no model named '{name}'")),
    }
}

async fn latest(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    match s.latest.read().expect("lock").get(&name) {
        Some(r) => Json(r.clone()).into_response(),
        None if s.models.read().expect("lock").iter().any(|m| m.name == name) => {
            not_found(format!("model '{name}' has no closed window yet"))
        }
        None => not_found(format!("no model named '{name}'")),
    }
}

/// The model's retrain requests, oldest first, pending ones included.
async fn retrains(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    if !s.has_model(&name) {
        return not_found(format!("no model named '{name}'"));
    }
    let history = s.actions().map(|a| a.history(&name)).unwrap_or_default();
    Json(serde_json::json!({ "model": name, "retrains": history })).into_response()
}

/// Triggers a retrain by hand: 202 with the queued request.
async fn retrain(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let Some(actions) = s.actions() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    };
    let latest = s.latest.read().expect("lock").get(&name).cloned();
    match actions.manual(&name, latest.as_ref()) {
        Ok(entry) => (StatusCode::ACCEPTED, Json(entry)).into_response(),
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
        Ok(Ok(())) => Json(serde_json::json!({ "reloaded": true })).into_response(),
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "reloaded": false, "error": e })))
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}
