//! Retrain presets: the request each orchestrator's API documents, built from one set of
//! run parameters.
//!
//! Every preset gets the same five parameters — `model`, `run_id`, `reason`,
//! `drifted_features` and `drift_report` (the window's report) — as native JSON where
//! the target takes JSON values (webhook, Airflow `conf`, Prefect `parameters`) and as
//! strings where it takes strings (Kubeflow, Argo, GitHub inputs, GitLab variables,
//! Jenkins parameters; the list comma-separated, the report as JSON).
//!
//! The run id is the idempotency key: Airflow's `dag_run_id` and Argo's workflow name
//! answer 409 when it exists, Prefect's `idempotency_key` returns the existing run, the
//! webhook's `webhook-id` lets a receiver drop a repeat. Kubeflow, GitHub, GitLab and
//! Jenkins have no such key: a request that timed out after the target took it may start
//! a second run there; the run id travels as a parameter so the pipeline can check.

use serde_json::{json, Map, Value};

use crate::config::{RetrainPreset, RetrainSettings};
use crate::webhook;

/// GitHub's dispatch payloads are limited to 65,535 characters; leave room for the rest.
const GITHUB_REPORT_MAX: usize = 60_000;
/// A bound for string-typed parameters elsewhere (GitLab variables, Jenkins, Argo).
const STRING_REPORT_MAX: usize = 100_000;

/// The run parameters every preset carries.
#[derive(Debug, Clone, PartialEq)]
pub struct RunParams {
    pub model: String,
    pub run_id: String,
    /// `drift` or `manual`.
    pub reason: String,
    pub drifted_features: Vec<String>,
    /// The window report (JSON object), or null when a manual trigger has none yet.
    pub drift_report: Value,
}

impl RunParams {
    pub fn to_json(&self) -> Value {
        json!({
            "model": self.model,
            "run_id": self.run_id,
            "reason": self.reason,
            "drifted_features": self.drifted_features,
            "drift_report": self.drift_report,
        })
    }

    pub fn from_json(v: &Value) -> Option<RunParams> {
        Some(RunParams {
            model: v.get("model")?.as_str()?.to_string(),
            run_id: v.get("run_id")?.as_str()?.to_string(),
            reason: v.get("reason")?.as_str()?.to_string(),
            drifted_features: v
                .get("drifted_features")?
                .as_array()?
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            drift_report: v.get("drift_report").cloned().unwrap_or(Value::Null),
        })
    }

    /// The parameters as strings, the report cut to `max` characters (see `report_within`).
    fn strings(&self, max: usize) -> Vec<(&'static str, String)> {
        vec![
            ("model", self.model.clone()),
            ("run_id", self.run_id.clone()),
            ("reason", self.reason.clone()),
            ("drifted_features", self.drifted_features.join(",")),
            ("drift_report", report_within(&self.drift_report, max)),
        ]
    }
}

/// The report as compact JSON within `max` characters: whole if it fits, else without the
/// clean features' details, else the dataset fields only; `"truncated": true` says so.
pub fn report_within(report: &Value, max: usize) -> String {
    let whole = report.to_string();
    if whole.len() <= max {
        return whole;
    }
    let Some(obj) = report.as_object() else { return "null".into() };
    let mut slim: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "features" && k.as_str() != "skipped")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    slim.insert("truncated".into(), Value::Bool(true));
    if let Some(features) = obj.get("features").and_then(Value::as_array) {
        let drifted: Vec<Value> = features
            .iter()
            .filter(|f| f.get("drifted") == Some(&Value::Bool(true)))
            .map(|f| {
                let pick = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
                json!({"name": pick("name"), "stattest": pick("stattest"), "score": pick("score"),
                       "threshold": pick("threshold"), "drifted": true})
            })
            .collect();
        let mut with = slim.clone();
        with.insert("features".into(), Value::Array(drifted));
        let s = Value::Object(with).to_string();
        if s.len() <= max {
            return s;
        }
    }
    let s = Value::Object(slim).to_string();
    if s.len() <= max {
        s
    } else {
        "null".into()
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Vec<u8>),
    Form(Vec<(String, String)>),
}

/// How the request authenticates; applied per attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// Airflow 3: a JWT from `POST {base}/auth/token` with these credentials.
    AirflowToken {
        token_url: String,
        user: String,
        password: String,
    },
    /// Standard Webhooks signature with this secret; the message id is the run id.
    Sign {
        secret: String,
        id: String,
    },
}

/// One prepared call to a preset's endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    pub auth: Auth,
}

/// Builds the preset's request for these parameters. `secret` is the resolved credential;
/// `created` (RFC 3339) stamps the webhook's event.
pub fn build(r: &RetrainSettings, secret: Option<&str>, p: &RunParams, created: &str) -> Call {
    let params = p.to_json();
    let json_body = |v: Value| Body::Json(serde_json::to_vec(&v).expect("json serializes"));
    let bearer = || secret.map_or(Auth::None, |s| Auth::Bearer(s.to_string()));
    let basic_or_bearer = || match (&r.username, secret) {
        (Some(u), Some(s)) => Auth::Basic { user: u.clone(), password: s.to_string() },
        (Some(u), None) => Auth::Basic { user: u.clone(), password: String::new() },
        (None, _) => bearer(),
    };
    let mut headers = Vec::new();
    let (body, auth) = match r.preset {
        RetrainPreset::Webhook => (
            json_body(json!({"type": "driftd.retrain", "timestamp": created, "data": params})),
            secret.map_or(Auth::None, |s| Auth::Sign { secret: s.to_string(), id: p.run_id.clone() }),
        ),
        RetrainPreset::Airflow => (json_body(json!({"dag_run_id": p.run_id, "conf": params})), basic_or_bearer()),
        RetrainPreset::Airflow3 => {
            let base = r.url.split("/api/v2/").next().unwrap_or(&r.url).trim_end_matches('/');
            (
                json_body(json!({"dag_run_id": p.run_id, "logical_date": null, "conf": params})),
                Auth::AirflowToken {
                    token_url: format!("{base}/auth/token"),
                    user: r.username.clone().unwrap_or_default(),
                    password: secret.unwrap_or_default().to_string(),
                },
            )
        }
        RetrainPreset::Prefect => (
            json_body(json!({
                "name": p.run_id,
                "parameters": params,
                "idempotency_key": p.run_id,
                "tags": ["driftd", format!("model:{}", p.model)],
            })),
            basic_or_bearer(),
        ),
        RetrainPreset::Kubeflow => {
            let parameters: Map<String, Value> =
                p.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
            let mut body = json!({
                "display_name": p.run_id,
                "description": format!("driftd retrain of {} ({})", p.model, p.reason),
                "pipeline_version_reference": {"pipeline_id": r.pipeline_id},
                "runtime_config": {"parameters": parameters},
            });
            if let Some(v) = &r.pipeline_version_id {
                body["pipeline_version_reference"]["pipeline_version_id"] = json!(v);
            }
            if let Some(e) = &r.experiment_id {
                body["experiment_id"] = json!(e);
            }
            (json_body(body), bearer())
        }
        RetrainPreset::Argo => {
            let parameters: Vec<String> =
                p.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            (
                json_body(json!({
                    "resourceKind": "WorkflowTemplate",
                    "resourceName": r.workflow_template,
                    "submitOptions": {
                        "name": p.run_id,
                        "parameters": parameters,
                        "labels": format!("driftd.io/run-id={}", p.run_id),
                    },
                })),
                bearer(),
            )
        }
        RetrainPreset::Github => {
            headers.push(("accept", "application/vnd.github+json".to_string()));
            headers.push(("x-github-api-version", "2022-11-28".to_string()));
            let body = if r.url.contains("/actions/workflows/") {
                let inputs: Map<String, Value> =
                    p.strings(GITHUB_REPORT_MAX).into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
                json!({"ref": r.git_ref, "inputs": inputs})
            } else {
                let report: Value =
                    serde_json::from_str(&report_within(&p.drift_report, GITHUB_REPORT_MAX)).unwrap_or(Value::Null);
                json!({
                    "event_type": r.event_type.as_deref().unwrap_or("driftd-retrain"),
                    "client_payload": {
                        "model": p.model, "run_id": p.run_id, "reason": p.reason,
                        "drifted_features": p.drifted_features, "drift_report": report,
                    },
                })
            };
            (json_body(body), bearer())
        }
        RetrainPreset::Gitlab => {
            let mut form = vec![
                ("token".to_string(), secret.unwrap_or_default().to_string()),
                ("ref".to_string(), r.git_ref.clone().unwrap_or_default()),
            ];
            for (k, v) in p.strings(STRING_REPORT_MAX) {
                let name = match k {
                    "drift_report" => "REPORT".to_string(),
                    other => other.to_ascii_uppercase(),
                };
                form.push((format!("variables[DRIFTD_{name}]"), v));
            }
            (Body::Form(form), Auth::None)
        }
        RetrainPreset::Jenkins => {
            let mut form: Vec<(String, String)> =
                p.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let auth = match (&r.username, secret) {
                (Some(_), _) => basic_or_bearer(),
                // without a user, the secret is the job's remote-trigger token
                (None, Some(t)) => {
                    form.push(("token".to_string(), t.to_string()));
                    Auth::None
                }
                (None, None) => Auth::None,
            };
            (Body::Form(form), auth)
        }
    };
    Call { url: r.url.clone(), headers, body, auth }
}

/// The headers of a webhook signed now (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`).
pub fn signature_headers(secret: &str, id: &str, body: &[u8], now_s: i64) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", now_s.to_string()),
        ("webhook-signature", webhook::sign(secret, id, now_s, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_shrink_to_fit_and_say_so() {
        let features: Vec<Value> = (0..500)
            .map(|i| {
                json!({"name": format!("f{i}"), "stattest": "psi", "score": 0.5, "threshold": 0.1,
                            "drifted": i % 100 == 0, "reference_count": 1000, "current_count": 1000})
            })
            .collect();
        let report = json!({"dataset_drift": true, "features": features});
        assert!(report.to_string().len() > 20_000);
        let cut: Value = serde_json::from_str(&report_within(&report, 20_000)).unwrap();
        assert_eq!(cut["truncated"], json!(true));
        assert_eq!(cut["features"].as_array().unwrap().len(), 5);
        let tiny: Value = serde_json::from_str(&report_within(&report, 60)).unwrap();
        assert_eq!(tiny, json!({"dataset_drift": true, "truncated": true}));
        assert_eq!(report_within(&json!({"a": 1}), 100), r#"{"a":1}"#);
    }
}
