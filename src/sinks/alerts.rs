//! Alert receivers: the notification each kind takes for a drift episode's firing, its
//! refresh and its resolution. Alertmanager (`POST /api/v2/alerts`, re-sent while firing,
//! resolved with `endsAt`), Slack incoming webhooks, PagerDuty Events v2 (trigger /
//! resolve on a stable `dedup_key`) and the generic signed webhook.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{AlertKind, Receiver};
use crate::outbound::{Auth, Body, Call, Dialect};
use crate::policy::{Episode, Phase, QualityFailure};
use crate::time::rfc3339_from_now;

/// The `alertname` label of driftd's drift alert in Alertmanager.
pub const ALERT_NAME: &str = "DriftdModelDrifting";
/// The `alertname` label of the data-quality alert.
pub const QUALITY_ALERT_NAME: &str = "DriftdDataQuality";

/// What an alert is about: the model's data drifting, or its data broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    #[default]
    Drift,
    DataQuality,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Drift => "drift",
            Topic::DataQuality => "data_quality",
        }
    }

    fn alert_name(self) -> &'static str {
        match self {
            Topic::Drift => ALERT_NAME,
            Topic::DataQuality => QUALITY_ALERT_NAME,
        }
    }
}

/// What an alert says about a drift episode, or a data-quality incident (`episode` then
/// holds the incident's id and start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub topic: Topic,
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
    /// A data-quality notice's failures (at firing: the window's).
    pub failures: Vec<QualityFailure>,
}

impl Notice {
    /// The model, or the model and its version: what the alert is about.
    pub fn subject(&self) -> String {
        match &self.version {
            Some(v) => format!("{} version {v}", self.model),
            None => self.model.clone(),
        }
    }

    /// What the alert workers key it by: one alert per topic and subject.
    pub fn key(&self) -> String {
        format!("{}:{}", self.topic.as_str(), self.subject())
    }

    /// The failing features, as a list for people.
    fn failures_text(&self) -> String {
        let parts: Vec<String> = self
            .failures
            .iter()
            .map(|f| match f.reason {
                "no_values" => format!("{} (no valid value)", f.feature),
                r => format!("{} ({r} {:.0}% > {:.0}%)", f.feature, f.share * 100.0, f.limit * 100.0),
            })
            .collect();
        parts.join(", ")
    }

    /// The features the alert names: drifted ones, or failing ones.
    fn features(&self) -> Vec<String> {
        match self.topic {
            Topic::Drift => self.drifted_features.clone(),
            Topic::DataQuality => self.failures.iter().map(|f| f.feature.clone()).collect(),
        }
    }
}

fn summary(n: &Notice) -> String {
    if n.topic == Topic::DataQuality {
        return format!(
            "Model {} has broken input data: {} feature(s) fail the data-quality rule in the window ending {} \
             (drift is not judged meanwhile)",
            n.subject(),
            n.failures.len(),
            n.window_end
        );
    }
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
        AlertKind::Slack => Call {
            url,
            headers: Vec::new(),
            body: Body::json(&slack(n, phase)),
            auth: Auth::None,
            dialect: Dialect::RunKeyed,
        },
        AlertKind::Pagerduty => {
            let key = r.secret.clone().unwrap_or_default();
            Call {
                url,
                headers: Vec::new(),
                body: Body::json(&pagerduty(&key, n, phase)),
                auth: Auth::None,
                dialect: Dialect::RunKeyed,
            }
        }
        AlertKind::Webhook => {
            let (kind, suffix) = match (n.topic, phase) {
                (Topic::Drift, Phase::Resolved) => ("driftd.alert.resolved", "resolved"),
                (Topic::Drift, _) => ("driftd.alert.firing", "firing"),
                (Topic::DataQuality, Phase::Resolved) => ("driftd.data_quality.resolved", "resolved"),
                (Topic::DataQuality, _) => ("driftd.data_quality.firing", "firing"),
            };
            let mut data = json!({
                "model": n.model, "model_version": n.version, "resolution": n.resolution,
                "severity": n.episode.severity.as_str(), "episode": n.episode.id,
                "since": n.episode.since, "window_end": n.window_end, "summary": summary(n),
            });
            match n.topic {
                Topic::Drift => {
                    data["drifted_features"] = json!(n.drifted_features);
                    data["share_of_drifted_features"] = json!(n.share_of_drifted_features);
                }
                Topic::DataQuality => data["failures"] = json!(n.failures),
            }
            let body = json!({"type": kind, "timestamp": rfc3339_from_now(0), "data": data});
            let id = format!("{}-{suffix}", n.episode.id);
            let auth = r.secret.clone().map_or(Auth::None, |secret| Auth::Sign { secret, id });
            Call { url, headers: Vec::new(), body: Body::json(&body), auth, dialect: Dialect::RunKeyed }
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
    let features = n.features().join(", ");
    let description = match n.topic {
        Topic::Drift => {
            format!("Drift episode {} since {}. Drifted features: {features}.", n.episode.id, n.episode.since)
        }
        Topic::DataQuality => format!(
            "Data-quality incident {} since {}. Failing features: {}.",
            n.episode.id,
            n.episode.since,
            n.failures_text()
        ),
    };
    let features_key = match n.topic {
        Topic::Drift => "drifted_features",
        Topic::DataQuality => "failing_features",
    };
    let mut alert = json!({
        "labels": {"alertname": n.topic.alert_name(), "model": n.model, "severity": n.episode.severity.as_str(), "service": "driftd"},
        "annotations": {
            "summary": summary(n),
            "description": description,
            features_key: features,
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
    Call { url, headers: Vec::new(), body: Body::json(&alert), auth: Auth::None, dialect: Dialect::RunKeyed }
}

fn slack(n: &Notice, phase: Phase) -> Value {
    if n.topic == Topic::DataQuality {
        let text = match phase {
            Phase::Resolved => format!(
                ":white_check_mark: *Resolved*: model `{}` has good input data again (incident {} since {}).",
                n.subject(),
                n.episode.id,
                n.episode.since
            ),
            _ => format!(":rotating_light: *DATA QUALITY*: {}. Failing: {}.", summary(n), n.failures_text()),
        };
        return json!({"text": text});
    }
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
                "class": match n.topic { Topic::Drift => "data-drift", Topic::DataQuality => "data-quality" },
                "custom_details": match n.topic {
                    Topic::Drift => json!({
                        "drifted_features": n.drifted_features,
                        "share_of_drifted_features": n.share_of_drifted_features,
                        "window_end": n.window_end,
                        "since": n.episode.since,
                    }),
                    Topic::DataQuality => json!({
                        "failures": n.failures,
                        "window_end": n.window_end,
                        "since": n.episode.since,
                    }),
                },
            },
        }),
    }
}
