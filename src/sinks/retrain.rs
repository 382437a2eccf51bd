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

use super::http::{Auth, Body, Call};
use crate::config::{RetrainPreset, RetrainTarget};

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

/// Builds the target's request for these parameters. `created` (RFC 3339) stamps the
/// webhook's event.
pub fn build(target: &RetrainTarget, p: &RunParams, created: &str) -> Call {
    let req = Request { settings: &target.settings, secret: target.secret.as_deref(), params: p };
    let (body, auth, headers) = match target.settings.preset {
        RetrainPreset::Webhook => req.webhook(created),
        RetrainPreset::Airflow => req.airflow2(),
        RetrainPreset::Airflow3 => req.airflow3(),
        RetrainPreset::Prefect => req.prefect(),
        RetrainPreset::Kubeflow => req.kubeflow(),
        RetrainPreset::Argo => req.argo(),
        RetrainPreset::Github => req.github(),
        RetrainPreset::Gitlab => req.gitlab(),
        RetrainPreset::Jenkins => req.jenkins(),
    };
    Call { url: target.settings.url.clone(), headers, body, auth }
}

/// What one preset's request is built from.
struct Request<'a> {
    settings: &'a crate::config::RetrainSettings,
    secret: Option<&'a str>,
    params: &'a RunParams,
}

type Parts = (Body, Auth, Vec<(&'static str, String)>);

impl Request<'_> {
    fn bearer(&self) -> Auth {
        self.secret.map_or(Auth::None, |s| Auth::Bearer(s.to_string()))
    }

    /// Basic auth with `username` (and the secret as password), else the secret as bearer.
    fn basic_or_bearer(&self) -> Auth {
        match &self.settings.username {
            Some(u) => Auth::Basic { user: u.clone(), password: self.secret.unwrap_or_default().to_string() },
            None => self.bearer(),
        }
    }

    fn webhook(&self, created: &str) -> Parts {
        let p = self.params;
        let body = Body::json(&json!({"type": "driftd.retrain", "timestamp": created, "data": p.to_json()}));
        let auth = self.secret.map_or(Auth::None, |s| Auth::Sign { secret: s.to_string(), id: p.run_id.clone() });
        (body, auth, Vec::new())
    }

    fn airflow2(&self) -> Parts {
        let p = self.params;
        (Body::json(&json!({"dag_run_id": p.run_id, "conf": p.to_json()})), self.basic_or_bearer(), Vec::new())
    }

    fn airflow3(&self) -> Parts {
        let (p, url) = (self.params, &self.settings.url);
        let base = url.split("/api/v2/").next().unwrap_or(url).trim_end_matches('/');
        let auth = Auth::TokenLogin {
            token_url: format!("{base}/auth/token"),
            user: self.settings.username.clone().unwrap_or_default(),
            password: self.secret.unwrap_or_default().to_string(),
        };
        let body = Body::json(&json!({"dag_run_id": p.run_id, "logical_date": null, "conf": p.to_json()}));
        (body, auth, Vec::new())
    }

    fn prefect(&self) -> Parts {
        let p = self.params;
        let body = Body::json(&json!({
            "name": p.run_id,
            "parameters": p.to_json(),
            "idempotency_key": p.run_id,
            "tags": ["driftd", format!("model:{}", p.model)],
        }));
        (body, self.basic_or_bearer(), Vec::new())
    }

    fn kubeflow(&self) -> Parts {
        let (p, r) = (self.params, self.settings);
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
        (Body::json(&body), self.bearer(), Vec::new())
    }

    fn argo(&self) -> Parts {
        let p = self.params;
        let parameters: Vec<String> =
            p.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let body = Body::json(&json!({
            "resourceKind": "WorkflowTemplate",
            "resourceName": self.settings.workflow_template,
            "submitOptions": {
                "name": p.run_id,
                "parameters": parameters,
                "labels": format!("driftd.io/run-id={}", p.run_id),
            },
        }));
        (body, self.bearer(), Vec::new())
    }

    fn github(&self) -> Parts {
        let (p, r) = (self.params, self.settings);
        let headers = vec![
            ("accept", "application/vnd.github+json".to_string()),
            ("x-github-api-version", "2022-11-28".to_string()),
        ];
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
        (Body::json(&body), self.bearer(), headers)
    }

    fn gitlab(&self) -> Parts {
        let mut form = vec![
            ("token".to_string(), self.secret.unwrap_or_default().to_string()),
            ("ref".to_string(), self.settings.git_ref.clone().unwrap_or_default()),
        ];
        for (k, v) in self.params.strings(STRING_REPORT_MAX) {
            let name = match k {
                "drift_report" => "REPORT".to_string(),
                other => other.to_ascii_uppercase(),
            };
            form.push((format!("variables[DRIFTD_{name}]"), v));
        }
        (Body::Form(form), Auth::None, Vec::new())
    }

    fn jenkins(&self) -> Parts {
        let mut form: Vec<(String, String)> =
            self.params.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let auth = match (&self.settings.username, self.secret) {
            (Some(_), _) => self.basic_or_bearer(),
            // without a user, the secret is the job's remote-trigger token
            (None, Some(t)) => {
                form.push(("token".to_string(), t.to_string()));
                Auth::None
            }
            (None, None) => Auth::None,
        };
        (Body::Form(form), auth, Vec::new())
    }
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
