//! Alert receivers: the notification each kind takes for a drift episode's firing, its
//! refresh and its resolution. Alertmanager (`POST /api/v2/alerts`, re-sent while firing,
//! resolved with `endsAt`), Slack incoming webhooks, PagerDuty Events v2 (trigger /
//! resolve on a stable `dedup_key`) and the generic signed webhook.

use std::time::Duration;

use serde_json::{json, Value};

use super::http::{self, Attempt, Auth, Body, Call};
use crate::config::{AlertKind, Receiver};
use crate::policy::Episode;
use crate::time::rfc3339_from_now;

/// The `alertname` label of driftd's own alert in Alertmanager.
pub const ALERT_NAME: &str = "DriftdModelDrifting";

/// What an alert says about a drift episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub model: String,
    /// The model version the episode is of, for a model split by version.
    pub version: Option<String>,
    /// How the episode ended, said for people (resolutions only).
    pub resolution: Option<String>,
    pub episode: Episode,
    /// The last window's drifted features and share (at firing: the firing window's).
    pub drifted_features: Vec<String>,
    pub share_of_drifted_features: f64,
    pub window_end: String,
    /// Wall clock when the episode fired (RFC 3339): Alertmanager's `startsAt`.
    pub fired_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Firing,
    Resolved,
    /// Alertmanager's periodic re-send of a firing alert.
    Refresh,
}

impl Notice {
    /// The model, or the model and its version: what the alert is about.
    pub fn subject(&self) -> String {
        match &self.version {
            Some(v) => format!("{} version {v}", self.model),
            None => self.model.clone(),
        }
    }
}

fn summary(n: &Notice) -> String {
    format!(
        "Model {} is drifting: {} drifted feature(s) ({:.0}% of features) in the window ending {}",
        n.subject(),
        n.drifted_features.len(),
        n.share_of_drifted_features * 100.0,
        n.window_end
    )
}

/// The request a receiver gets for a notice in a phase.
pub fn build(r: &Receiver, n: &Notice, phase: Phase) -> Call {
    let url = r.settings.url.clone();
    match r.kind() {
        AlertKind::Alertmanager => alertmanager(r, n, phase),
        AlertKind::Slack => Call { url, headers: Vec::new(), body: Body::json(&slack(n, phase)), auth: Auth::None },
        AlertKind::Pagerduty => {
            let key = r.secret.clone().unwrap_or_default();
            Call { url, headers: Vec::new(), body: Body::json(&pagerduty(&key, n, phase)), auth: Auth::None }
        }
        AlertKind::Webhook => {
            let (kind, suffix) = match phase {
                Phase::Resolved => ("driftd.alert.resolved", "resolved"),
                _ => ("driftd.alert.firing", "firing"),
            };
            let body = json!({
                "type": kind,
                "timestamp": rfc3339_from_now(0),
                "data": {
                    "model": n.model, "model_version": n.version, "resolution": n.resolution,
                    "severity": n.episode.severity.as_str(), "episode": n.episode.id,
                    "since": n.episode.since, "drifted_features": n.drifted_features,
                    "share_of_drifted_features": n.share_of_drifted_features,
                    "window_end": n.window_end, "summary": summary(n),
                },
            });
            let id = format!("{}-{suffix}", n.episode.id);
            let auth = r.secret.clone().map_or(Auth::None, |secret| Auth::Sign { secret, id });
            Call { url, headers: Vec::new(), body: Body::json(&body), auth }
        }
    }
}

fn alertmanager(r: &Receiver, n: &Notice, phase: Phase) -> Call {
    let base = r.settings.url.trim_end_matches('/');
    let url = if base.ends_with("/api/v2/alerts") { base.to_string() } else { format!("{base}/api/v2/alerts") };
    // firing: valid for four re-send intervals, so a driftd that stopped lets it lapse
    let ends_at = match phase {
        Phase::Resolved => rfc3339_from_now(0),
        _ => rfc3339_from_now((r.repeat * 4).as_millis() as i64),
    };
    let features = n.drifted_features.join(", ");
    let mut alert = json!({
        "labels": {"alertname": ALERT_NAME, "model": n.model, "severity": n.episode.severity.as_str(), "service": "driftd"},
        "annotations": {
            "summary": summary(n),
            "description": format!("Drift episode {} since {}. Drifted features: {}.", n.episode.id, n.episode.since, features),
            "drifted_features": features,
            "episode": n.episode.id,
        },
        "startsAt": n.fired_at,
        "endsAt": ends_at,
    });
    if let Some(v) = &n.version {
        alert["labels"]["model_version"] = json!(v);
    }
    if let Some(r) = &n.resolution {
        alert["annotations"]["resolution"] = json!(r);
    }
    let alert = json!([alert]);
    Call { url, headers: Vec::new(), body: Body::json(&alert), auth: Auth::None }
}

fn slack(n: &Notice, phase: Phase) -> Value {
    let text = match phase {
        Phase::Resolved => format!(
            ":white_check_mark: *Resolved*: model `{}` is no longer drifting (episode {} since {}){}.",
            n.subject(),
            n.episode.id,
            n.episode.since,
            n.resolution.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        ),
        _ => format!(
            ":warning: *{}*: {}. Drifted: {}. Episode {}.",
            n.episode.severity.as_str().to_uppercase(),
            summary(n),
            n.drifted_features.join(", "),
            n.episode.id
        ),
    };
    json!({"text": text})
}

fn pagerduty(routing_key: &str, n: &Notice, phase: Phase) -> Value {
    match phase {
        Phase::Resolved => json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": n.episode.id}),
        _ => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": n.episode.id,
            "payload": {
                "summary": summary(n),
                "source": "driftd",
                "severity": n.episode.severity.as_str(),
                "component": n.model,
                "group": "driftd",
                "class": "data-drift",
                "custom_details": {
                    "drifted_features": n.drifted_features,
                    "share_of_drifted_features": n.share_of_drifted_features,
                    "window_end": n.window_end,
                    "since": n.episode.since,
                },
            },
        }),
    }
}

/// Sends a call with a few quick retries (alerts are not queued durably: a lost one is
/// re-sent by Alertmanager's refresh, or superseded by the next transition).
pub async fn send(client: &reqwest::Client, r: &Receiver, call: &Call) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match http::send(client, call, r.timeout).await {
            Attempt::Delivered { .. } | Attempt::Duplicate { .. } => return Ok(()),
            Attempt::Fail { reason, .. } => return Err(reason),
            Attempt::Retry { reason, after, .. } => {
                if attempt >= 3 {
                    return Err(reason);
                }
                let wait = http::backoff(Duration::from_millis(500), Duration::from_secs(5), attempt, after)
                    .min(Duration::from_secs(30));
                tokio::time::sleep(wait).await;
            }
        }
    }
}
