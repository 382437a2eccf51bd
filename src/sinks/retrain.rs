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

use crate::config::{RetrainPreset, RetrainTarget};
use crate::outbound::{Auth, Body, Call, Dialect};

/// GitHub answers 422 to a dispatch body over 65,535 characters; the bound is on the body
/// as sent (bytes, which are never fewer than characters), the report's JSON escaping
/// included.
const GITHUB_BODY_MAX: usize = 65_535;
/// Airflow keeps `conf` in a TEXT column (64 KiB on MySQL): the same bound on the body.
const AIRFLOW_BODY_MAX: usize = 65_535;
/// A bound for string-typed parameters elsewhere (GitLab variables, Jenkins, Argo, and
/// Kubeflow, whose parameter becomes one command-line argument: Linux takes at most
/// 131,072 bytes in one).
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

    fn strings_with(&self, report: String) -> Vec<(&'static str, String)> {
        vec![
            ("model", self.model.clone()),
            ("run_id", self.run_id.clone()),
            ("reason", self.reason.clone()),
            ("drifted_features", self.drifted_features.join(",")),
            ("drift_report", report),
        ]
    }

    /// The parameters as JSON with the report as `report` (an object, or null).
    fn json_with(&self, report: Value) -> Value {
        let mut v = self.to_json();
        v["drift_report"] = report;
        v
    }
}

/// The report as compact JSON, the first form that `fits`: whole, else without the clean
/// features' details, else the dataset fields only (`"truncated": true` says it was cut,
/// and `full_report` links the whole request in driftd's API when `link` is known), else
/// `null`.
fn report_fitting(report: &Value, link: Option<&str>, fits: impl Fn(&str) -> bool) -> String {
    let whole = report.to_string();
    if fits(&whole) {
        return whole;
    }
    let Some(obj) = report.as_object() else { return "null".into() };
    let mut slim: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "features" && k.as_str() != "skipped")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    slim.insert("truncated".into(), Value::Bool(true));
    if let Some(link) = link {
        slim.insert("full_report".into(), Value::String(link.to_string()));
    }
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
        if fits(&s) {
            return s;
        }
    }
    let s = Value::Object(slim).to_string();
    if fits(&s) {
        s
    } else {
        "null".into()
    }
}

/// A report cut by `report_fitting`, as the JSON value a body embeds.
fn parsed(report: &str) -> Value {
    serde_json::from_str(report).unwrap_or(Value::Null)
}

/// Builds the target's request for these parameters. `created` (RFC 3339) stamps the
/// webhook's event.
pub fn build(target: &RetrainTarget, p: &RunParams, created: &str) -> Call {
    let link = target.settings.driftd_url.as_deref().and_then(|base| request_link(base, &p.model, &p.run_id));
    let req = Request { settings: &target.settings, secret: target.secret.as_deref(), params: p, link };
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
    let dialect = match target.settings.preset {
        RetrainPreset::Webhook | RetrainPreset::Airflow | RetrainPreset::Airflow3 => Dialect::RunKeyed,
        RetrainPreset::Argo => Dialect::Argo,
        RetrainPreset::Prefect | RetrainPreset::Kubeflow | RetrainPreset::Github => Dialect::Unkeyed,
        RetrainPreset::Gitlab => Dialect::Gitlab,
        RetrainPreset::Jenkins => Dialect::Jenkins,
    };
    Call { url: target.settings.url.clone(), headers, body, auth, dialect }
}

/// Where a delivered request's target says whether it will run it: an Airflow DAG's
/// `is_paused` (`GET .../dags/{dag_id}`, the run URL without `/dagRuns`).
pub fn paused_check_url(target: &RetrainTarget) -> Option<String> {
    match target.settings.preset {
        RetrainPreset::Airflow | RetrainPreset::Airflow3 => {
            let url = target.settings.url.trim_end_matches('/');
            url.strip_suffix("/dagRuns").map(str::to_string)
        }
        _ => None,
    }
}

/// Where driftd's API serves one retrain request whole (`[retrain] driftd_url`).
pub fn request_link(driftd_url: &str, model: &str, run_id: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(driftd_url).ok()?;
    url.path_segments_mut().ok()?.pop_if_empty().extend(["api", "v1", "models", model, "retrains", run_id]);
    Some(url.to_string())
}

/// What one preset's request is built from.
struct Request<'a> {
    settings: &'a crate::config::RetrainSettings,
    secret: Option<&'a str>,
    params: &'a RunParams,
    /// The whole request in driftd's API, for a report cut to fit.
    link: Option<String>,
}

type Parts = (Body, Auth, Vec<(&'static str, String)>);

impl Request<'_> {
    /// The parameters as strings, the report cut to `max` bytes (see `report_fitting`).
    fn strings(&self, max: usize) -> Vec<(&'static str, String)> {
        let report = report_fitting(&self.params.drift_report, self.link.as_deref(), |s| s.len() <= max);
        self.params.strings_with(report)
    }

    /// A body whose report was cut until the whole body, as sent, is at most `max` bytes.
    fn body_within(&self, max: usize, body: impl Fn(&str) -> Value) -> Value {
        let cut = report_fitting(&self.params.drift_report, self.link.as_deref(), |r| body(r).to_string().len() <= max);
        body(&cut)
    }

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
        let body =
            self.body_within(AIRFLOW_BODY_MAX, |r| json!({"dag_run_id": p.run_id, "conf": p.json_with(parsed(r))}));
        (Body::json(&body), self.basic_or_bearer(), Vec::new())
    }

    fn airflow3(&self) -> Parts {
        let (p, url) = (self.params, &self.settings.url);
        let base = url.split("/api/v2/").next().unwrap_or(url).trim_end_matches('/');
        let auth = Auth::TokenLogin {
            token_url: format!("{base}/auth/token"),
            user: self.settings.username.clone().unwrap_or_default(),
            password: self.secret.unwrap_or_default().to_string(),
        };
        let body = self.body_within(
            AIRFLOW_BODY_MAX,
            |r| json!({"dag_run_id": p.run_id, "logical_date": null, "conf": p.json_with(parsed(r))}),
        );
        (Body::json(&body), auth, Vec::new())
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
            self.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
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
            self.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
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
            // the inputs are strings: the report travels escaped, about 11% longer
            self.body_within(GITHUB_BODY_MAX, |report| {
                let inputs: Map<String, Value> = p
                    .strings_with(report.to_string())
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v)))
                    .collect();
                json!({"ref": r.git_ref, "inputs": inputs})
            })
        } else {
            self.body_within(GITHUB_BODY_MAX, |report| {
                json!({
                    "event_type": r.event_type.as_deref().unwrap_or("driftd-retrain"),
                    "client_payload": {
                        "model": p.model, "run_id": p.run_id, "reason": p.reason,
                        "drifted_features": p.drifted_features, "drift_report": parsed(report),
                    },
                })
            })
        };
        (Body::json(&body), self.bearer(), headers)
    }

    fn gitlab(&self) -> Parts {
        let mut form = vec![
            ("token".to_string(), self.secret.unwrap_or_default().to_string()),
            ("ref".to_string(), self.settings.git_ref.clone().unwrap_or_default()),
        ];
        // a project that refuses pipeline variables: its pipeline reads the request from
        // driftd's API instead (`variables = false`)
        if self.settings.variables == Some(false) {
            return (Body::Form(form), Auth::None, Vec::new());
        }
        for (k, v) in self.strings(STRING_REPORT_MAX) {
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
            self.strings(STRING_REPORT_MAX).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if self.settings.username.is_some() {
            // a user with an API token: no crumb needed
            return (Body::Form(form), self.basic_or_bearer(), Vec::new());
        }
        // anonymous, with the job's trigger token ("Trigger builds remotely"): Jenkins'
        // CSRF protection wants a crumb, from the issuer at Jenkins' root (before `/job/`)
        if let Some(token) = self.secret {
            form.push(("token".to_string(), token.to_string()));
        }
        let url = &self.settings.url;
        let root = url.split_once("/job/").map_or(url.as_str(), |(root, _)| root).trim_end_matches('/');
        (Body::Form(form), Auth::Crumb { issuer_url: format!("{root}/crumbIssuer/api/json") }, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn target(retrain: &str) -> RetrainTarget {
        let text = format!(
            "[kafka]\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"t\"]\ngroup_id = \"g\"\n\
             [[models]]\nname = \"m\"\nreference = \"/r.csv\"\n[retrain]\n{retrain}"
        );
        Settings::from_toml(&text).unwrap().retrain.unwrap().resolve().unwrap()
    }

    fn params(report: Value) -> RunParams {
        RunParams {
            model: "m".into(),
            run_id: "driftd-m-drift-20261201t000000z".into(),
            reason: "drift".into(),
            drifted_features: vec!["a\"b".into()],
            drift_report: report,
        }
    }

    /// A report of about `size` bytes whose JSON escaping is heavy (quotes and
    /// backslashes in the feature names, as real column names can have).
    fn report_of(size: usize) -> Value {
        let mut features = Vec::new();
        let mut len = 40;
        while len < size {
            let i = features.len();
            let f = json!({"name": format!("col\"{i}\\\"é"), "stattest": "psi", "score": 0.5, "threshold": 0.1,
                           "drifted": i % 7 == 0});
            len += f.to_string().len() + 1;
            features.push(f);
        }
        json!({"dataset_drift": true, "features": features})
    }

    fn body_of(call: &Call) -> &[u8] {
        match &call.body {
            Body::Json(b) => b,
            Body::Form(_) => panic!("a JSON body"),
        }
    }

    /// GitHub answers 422 past 65,535 characters: the body as sent stays within it at
    /// every size around the boundary, escaping included, and the report is whole
    /// whenever it fits.
    #[test]
    fn a_github_dispatch_body_stays_within_githubs_limit_at_the_boundary() {
        let workflow = target(
            "preset = \"github\"\nurl = \"https://api.github.com/repos/o/r/actions/workflows/driftd.yml/dispatches\"\n\
             ref = \"main\"\nsecret = \"t\"",
        );
        let repository =
            target("preset = \"github\"\nurl = \"https://api.github.com/repos/o/r/dispatches\"\nsecret = \"t\"");
        let mut over_before = 0;
        for size in (50_000..72_000).step_by(500) {
            let p = params(report_of(size));
            let whole = p.drift_report.to_string();
            // the old rule: cut at 60,000 bytes before escaping
            if whole.len() <= 60_000 && serde_json::to_string(&whole).unwrap().len() > 65_535 - 200 {
                over_before += 1;
            }
            for t in [&workflow, &repository] {
                let call = build(t, &p, "2026-12-01T00:00:00Z");
                let body = body_of(&call);
                assert!(body.len() <= GITHUB_BODY_MAX, "{size}: a body of {} bytes", body.len());
                let v: Value = serde_json::from_slice(body).unwrap();
                let report = match &v["inputs"]["drift_report"] {
                    Value::String(s) => serde_json::from_str::<Value>(s).unwrap(),
                    _ => v["client_payload"]["drift_report"].clone(),
                };
                let fits_whole = {
                    let mut full = v.clone();
                    match full.get_mut("inputs") {
                        Some(inputs) => inputs["drift_report"] = Value::String(whole.clone()),
                        None => full["client_payload"]["drift_report"] = p.drift_report.clone(),
                    }
                    full.to_string().len() <= GITHUB_BODY_MAX
                };
                if fits_whole {
                    assert_eq!(report, p.drift_report, "{size}: cut although it fitted");
                } else {
                    assert_eq!(report["truncated"], json!(true), "{size}");
                }
            }
        }
        assert!(over_before > 0, "the sizes tried include reports the old cut let through over the limit");
    }

    #[test]
    fn airflow_conf_stays_within_a_mysql_text_column() {
        let t = target("preset = \"airflow\"\nurl = \"http://airflow:8080/api/v1/dags/retrain/dagRuns\"");
        for size in [10_000, 64_000, 66_000, 200_000] {
            let call = build(&t, &params(report_of(size)), "2026-12-01T00:00:00Z");
            let body = body_of(&call);
            assert!(body.len() <= AIRFLOW_BODY_MAX, "{size}: {}", body.len());
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["conf"]["run_id"], json!("driftd-m-drift-20261201t000000z"));
            assert!(v["conf"]["drift_report"].is_object(), "{size}: the report is still an object");
        }
    }

    #[test]
    fn gitlab_without_variables_sends_the_token_and_ref_only() {
        let url = "preset = \"gitlab\"\nurl = \"https://gl/api/v4/projects/1/trigger/pipeline\"\nref = \"main\"\nsecret = \"t\"";
        let call = build(&target(&format!("{url}\nvariables = false")), &params(json!({"dataset_drift": true})), "x");
        let Body::Form(form) = &call.body else { panic!("a form") };
        assert_eq!(form, &[("token".to_string(), "t".to_string()), ("ref".to_string(), "main".to_string())]);
        let call = build(&target(url), &params(json!({"dataset_drift": true})), "x");
        let Body::Form(form) = &call.body else { panic!("a form") };
        assert_eq!(form.iter().filter(|(k, _)| k.starts_with("variables[DRIFTD_")).count(), 5);
        let text = "[kafka]\nbrokers = \"b:1\"\ntopics = [\"t\"]\ngroup_id = \"g\"\n[[models]]\nname = \"m\"\nreference = \"/r.csv\"\n\
                    [retrain]\npreset = \"webhook\"\nurl = \"https://h/x\"\nsecret = \"s\"\nvariables = false";
        assert_eq!(Settings::from_toml(text).unwrap_err().key, "retrain.variables");
    }

    #[test]
    fn jenkins_is_called_as_a_user_or_with_the_trigger_token_and_a_crumb() {
        let t = target(
            "preset = \"jenkins\"\nurl = \"https://ci/job/retrain/buildWithParameters\"\nusername = \"driftd\"\nsecret = \"tok\"",
        );
        let call = build(&t, &params(json!({"dataset_drift": true})), "x");
        assert_eq!(call.auth, Auth::Basic { user: "driftd".into(), password: "tok".into() });
        assert_eq!(call.dialect, Dialect::Jenkins);
        let Body::Form(form) = &call.body else { panic!("a form") };
        assert!(form.iter().all(|(k, _)| k != "token"), "no trigger token in the form");
        let text = "[kafka]\nbrokers = \"b:1\"\ntopics = [\"t\"]\ngroup_id = \"g\"\n[[models]]\nname = \"m\"\nreference = \"/r.csv\"\n\
                    [retrain]\npreset = \"jenkins\"\nurl = \"https://ci/job/retrain/buildWithParameters\"\nsecret = \"trigger\"";
        // without a user: the job's trigger token in the form, and Jenkins' crumb issuer at
        // its root (before the first `/job/`, folders and a context path kept)
        let t = Settings::from_toml(&text.replace("/job/retrain/", "/jenkins/job/ml/job/retrain/"))
            .unwrap()
            .retrain
            .unwrap()
            .resolve()
            .unwrap();
        let call = build(&t, &params(json!(null)), "x");
        assert_eq!(call.auth, Auth::Crumb { issuer_url: "https://ci/jenkins/crumbIssuer/api/json".into() });
        let Body::Form(form) = &call.body else { panic!("a form") };
        assert!(form.contains(&("token".to_string(), "trigger".to_string())));
        assert!(!call.body.to_text().contains("trigger"), "the token is masked in logs");
        let err = Settings::from_toml(&text.replace("\nsecret = \"trigger\"", "")).unwrap_err();
        assert_eq!(err.key, "retrain.secret");
    }

    /// A report cut to fit Kubeflow's command-line argument carries the link to the whole
    /// request in driftd's API, when `driftd_url` says where that is.
    #[test]
    fn a_cut_report_links_the_whole_request() {
        let big = report_of(300_000);
        let kubeflow =
            "preset = \"kubeflow\"\nurl = \"https://kfp/apis/v2beta1/runs\"\npipeline_id = \"p\"\nsecret = \"t\"";
        let report_sent = |t: &RetrainTarget| -> Value {
            let call = build(t, &params(big.clone()), "x");
            let sent = body_of(&call);
            let v: Value = serde_json::from_slice(sent).unwrap();
            let s = v["runtime_config"]["parameters"]["drift_report"].as_str().unwrap();
            assert!(s.len() <= STRING_REPORT_MAX, "{}", s.len());
            serde_json::from_str(s).unwrap()
        };
        let linked = report_sent(&target(&format!("{kubeflow}\ndriftd_url = \"http://driftd.mon:9464/\"")));
        assert_eq!(linked["truncated"], json!(true));
        assert_eq!(
            linked["full_report"],
            json!("http://driftd.mon:9464/api/v1/models/m/retrains/driftd-m-drift-20261201t000000z")
        );
        assert!(report_sent(&target(kubeflow)).get("full_report").is_none(), "no link without driftd_url");
        // a model name is one path segment
        assert_eq!(
            request_link("https://d.example/base", "a/b c", "r1").as_deref(),
            Some("https://d.example/base/api/v1/models/a%2Fb%20c/retrains/r1")
        );
        // the whole report, when it fits, goes without a link
        let small = build(&target(&format!("{kubeflow}\ndriftd_url = \"http://d:1\"")), &params(json!({"a": 1})), "x");
        assert!(!String::from_utf8_lossy(body_of(&small)).contains("full_report"));
    }

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
        let cut: Value = serde_json::from_str(&report_fitting(&report, None, |s| s.len() <= 20_000)).unwrap();
        assert_eq!(cut["truncated"], json!(true));
        assert_eq!(cut["features"].as_array().unwrap().len(), 5);
        let tiny: Value = serde_json::from_str(&report_fitting(&report, None, |s| s.len() <= 60)).unwrap();
        assert_eq!(tiny, json!({"dataset_drift": true, "truncated": true}));
        assert_eq!(report_fitting(&json!({"a": 1}), None, |s| s.len() <= 100), r#"{"a":1}"#);
    }
}
