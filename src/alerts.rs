//! Alerts that resolve on their own: Alertmanager (`POST /api/v2/alerts`, re-sent while
//! firing, resolved with `endsAt`), Slack incoming webhooks, PagerDuty Events v2 (trigger /
//! resolve on a stable `dedup_key`) and the generic signed webhook.
//!
//! One receiver per `[[alerts]]` entry, filtered by severity, each with its own rate limit
//! on new notifications (resolutions and Alertmanager's refreshes always go out: the one
//! closes what was opened, the other keeps Alertmanager from timing the alert out).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::{duration_or, AlertKind, AlertSettings};
use crate::delivery::{self, Attempt};
use crate::policy::{Episode, Severity};
use crate::retrain::{Auth, Body, Call};

pub const ALERT_NAME: &str = "DriftdModelDrifting";

/// What an alert says about a drift episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub model: String,
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

/// A configured receiver, its secret resolved.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub settings: AlertSettings,
    pub name: String,
    pub secret: Option<String>,
    pub timeout: Duration,
    pub repeat: Duration,
    pub max_per_minute: u32,
}

impl Receiver {
    pub fn new(settings: &AlertSettings, secret: Option<String>) -> Receiver {
        let dur = |v: &Option<String>, d: u64| duration_or(v.as_deref(), Duration::from_secs(d));
        Receiver {
            name: settings.receiver_name(),
            secret,
            timeout: dur(&settings.timeout, 10),
            repeat: dur(&settings.repeat_interval, 60),
            max_per_minute: settings.max_per_minute.unwrap_or(30),
            settings: settings.clone(),
        }
    }

    /// Whether this receiver takes alerts of this severity.
    pub fn takes(&self, severity: Severity) -> bool {
        self.settings.severity.as_deref().is_none_or(|s| s == severity.as_str())
    }
}

fn summary(n: &Notice) -> String {
    format!(
        "Model {} is drifting: {} drifted feature(s) ({:.0}% of features) in the window ending {}",
        n.model,
        n.drifted_features.len(),
        n.share_of_drifted_features * 100.0,
        n.window_end
    )
}

fn rfc3339_now_plus(d: Duration) -> String {
    crate::stream::time::format_rfc3339_ms(delivery::now_ms() + d.as_millis() as i64)
}

/// The request a receiver gets for a notice in a phase.
pub fn build(r: &Receiver, n: &Notice, phase: Phase) -> Call {
    let json_body = |v: Value| Body::Json(serde_json::to_vec(&v).expect("json serializes"));
    let severity = n.episode.severity.as_str();
    let features = n.drifted_features.join(", ");
    match r.settings.kind {
        AlertKind::Alertmanager => {
            let base = r.settings.url.trim_end_matches('/');
            let url = if base.ends_with("/api/v2/alerts") { base.to_string() } else { format!("{base}/api/v2/alerts") };
            // firing: valid for four re-send intervals, so a driftd that stopped lets it lapse
            let ends_at = match phase {
                Phase::Resolved => rfc3339_now_plus(Duration::ZERO),
                _ => rfc3339_now_plus(r.repeat * 4),
            };
            let alert = json!([{
                "labels": {"alertname": ALERT_NAME, "model": n.model, "severity": severity, "service": "driftd"},
                "annotations": {
                    "summary": summary(n),
                    "description": format!("Drift episode {} since {}. Drifted features: {}.", n.episode.id, n.episode.since, features),
                    "drifted_features": features,
                    "episode": n.episode.id,
                },
                "startsAt": n.fired_at,
                "endsAt": ends_at,
            }]);
            Call { url, headers: Vec::new(), body: json_body(alert), auth: Auth::None }
        }
        AlertKind::Slack => {
            let text = match phase {
                Phase::Resolved => format!(
                    ":white_check_mark: *Resolved*: model `{}` is no longer drifting (episode {} since {}).",
                    n.model, n.episode.id, n.episode.since
                ),
                _ => format!(
                    ":warning: *{}*: {}. Drifted: {}. Episode {}.",
                    severity.to_uppercase(),
                    summary(n),
                    features,
                    n.episode.id
                ),
            };
            Call {
                url: r.settings.url.clone(),
                headers: Vec::new(),
                body: json_body(json!({"text": text})),
                auth: Auth::None,
            }
        }
        AlertKind::Pagerduty => {
            let key = r.secret.clone().unwrap_or_default();
            let body = match phase {
                Phase::Resolved => json!({"routing_key": key, "event_action": "resolve", "dedup_key": n.episode.id}),
                _ => json!({
                    "routing_key": key,
                    "event_action": "trigger",
                    "dedup_key": n.episode.id,
                    "payload": {
                        "summary": summary(n),
                        "source": "driftd",
                        "severity": severity,
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
            };
            Call { url: r.settings.url.clone(), headers: Vec::new(), body: json_body(body), auth: Auth::None }
        }
        AlertKind::Webhook => {
            let (kind, suffix) = match phase {
                Phase::Resolved => ("driftd.alert.resolved", "resolved"),
                _ => ("driftd.alert.firing", "firing"),
            };
            let body = json!({
                "type": kind,
                "timestamp": rfc3339_now_plus(Duration::ZERO),
                "data": {
                    "model": n.model, "severity": severity, "episode": n.episode.id, "since": n.episode.since,
                    "drifted_features": n.drifted_features, "share_of_drifted_features": n.share_of_drifted_features,
                    "window_end": n.window_end, "summary": summary(n),
                },
            });
            let id = format!("{}-{suffix}", n.episode.id);
            let auth = r.secret.clone().map_or(Auth::None, |secret| Auth::Sign { secret, id });
            Call { url: r.settings.url.clone(), headers: Vec::new(), body: json_body(body), auth }
        }
    }
}

/// A token bucket: `per_minute` notifications, refilled continuously.
#[derive(Debug)]
pub struct RateLimit {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit { capacity: f64::from(per_minute), tokens: f64::from(per_minute), last: Instant::now() }
    }

    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.capacity / 60.0).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Sends a call with a few quick retries (alerts are not queued durably: a lost one is
/// re-sent by Alertmanager's refresh, or superseded by the next transition).
pub async fn send(http: &reqwest::Client, r: &Receiver, call: &Call) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match delivery::send(http, call, r.timeout).await {
            Attempt::Delivered { .. } | Attempt::Duplicate { .. } => return Ok(()),
            Attempt::Fail { reason, .. } => return Err(reason),
            Attempt::Retry { reason, after, .. } => {
                if attempt >= 3 {
                    return Err(reason);
                }
                let wait = delivery::backoff(Duration::from_millis(500), Duration::from_secs(5), attempt, after)
                    .min(Duration::from_secs(30));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_its_capacity_then_refuses() {
        let mut rl = RateLimit::new(3);
        assert!(rl.allow() && rl.allow() && rl.allow());
        assert!(!rl.allow());
    }
}
