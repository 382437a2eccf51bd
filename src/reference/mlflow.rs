//! The MLflow model registry over its REST API (checked against MLflow 3.17's server):
//! `registered-models/alias` and `model-versions/get|search` for versions and their tags,
//! `runs/get` for a run's logged dataset inputs, `get-artifact` and `mlflow-artifacts`
//! for the files.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::fetch::{self, read_file, FetchError, Fetched};
use crate::config::Mlflow;

/// The tag a model version names its reference with.
pub const REFERENCE_TAG: &str = "driftd.reference";

/// A registered model version, as far as driftd cares.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub model: String,
    pub version: String,
    pub run_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl VersionInfo {
    fn from_json(v: &Value) -> Option<VersionInfo> {
        let tags = v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["key"].as_str()?.to_string(), t["value"].as_str()?.to_string())))
            .collect();
        Some(VersionInfo {
            model: v["name"].as_str()?.to_string(),
            version: v["version"].as_str()?.to_string(),
            run_id: v["run_id"].as_str().filter(|r| !r.is_empty()).map(str::to_string),
            tags,
        })
    }
}

pub struct Registry {
    http: reqwest::Client,
    cfg: Mlflow,
}

/// Query-string escaping for names and paths.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Registry {
    pub fn new(http: reqwest::Client, cfg: Mlflow) -> Registry {
        Registry { http, cfg }
    }

    pub fn poll(&self) -> std::time::Duration {
        self.cfg.poll
    }

    async fn get(&self, path: &str) -> Result<Fetched, FetchError> {
        let url = format!("{}{path}", self.cfg.base);
        let (user, secret) = (self.cfg.username.clone(), self.cfg.secret.clone());
        let auth = move |r: reqwest::RequestBuilder| match (&user, &secret) {
            (Some(u), s) => r.basic_auth(u, s.as_deref()),
            (None, Some(token)) => r.bearer_auth(token),
            (None, None) => r,
        };
        let got = fetch::get(&self.http, &url, auth, None, self.cfg.timeout).await?;
        got.ok_or_else(|| FetchError::Refused(format!("{url}: 304 without a validator")))
    }

    async fn get_json(&self, path: &str) -> Result<Value, FetchError> {
        let f = self.get(path).await?;
        serde_json::from_slice(&f.bytes).map_err(|e| FetchError::Refused(format!("{path}: not JSON: {e}")))
    }

    /// The version an alias points at.
    pub async fn alias(&self, model: &str, alias: &str) -> Result<VersionInfo, FetchError> {
        let path = format!("/api/2.0/mlflow/registered-models/alias?name={}&alias={}", escape(model), escape(alias));
        let v = self.get_json(&path).await.map_err(|e| alias_missing(e, model, alias))?;
        VersionInfo::from_json(&v["model_version"])
            .ok_or_else(|| FetchError::Refused(format!("{path}: no model_version in the answer")))
    }

    pub async fn version(&self, model: &str, version: &str) -> Result<VersionInfo, FetchError> {
        let path = format!("/api/2.0/mlflow/model-versions/get?name={}&version={}", escape(model), escape(version));
        let v = self.get_json(&path).await?;
        VersionInfo::from_json(&v["model_version"])
            .ok_or_else(|| FetchError::Refused(format!("{path}: no model_version in the answer")))
    }

    /// The model's newest `n` versions that name a reference (by tag), newest first.
    pub async fn tagged_versions(&self, model: &str, n: usize) -> Result<Vec<VersionInfo>, FetchError> {
        let filter = format!("name='{}'", model.replace('\'', "\\'"));
        let path = format!("/api/2.0/mlflow/model-versions/search?filter={}&max_results=1000", escape(&filter));
        let v = self.get_json(&path).await?;
        let mut versions: Vec<VersionInfo> = v["model_versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(VersionInfo::from_json)
            .filter(|v| v.tags.contains_key(REFERENCE_TAG))
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.version.parse::<u64>().unwrap_or(0)));
        versions.truncate(n);
        Ok(versions)
    }

    /// Where a version's reference is: its `driftd.reference` tag, else the dataset its
    /// run logged as input (context `eval`, else `training`) when that is a file or URL
    /// driftd can read. The error names the version.
    pub async fn reference_of(&self, v: &VersionInfo) -> Result<Fetched, FetchError> {
        let what = format!("model {} version {}", v.model, v.version);
        if let Some(uri) = v.tags.get(REFERENCE_TAG) {
            return self.artifact(uri, v.run_id.as_deref()).await.map_err(|e| prefix(&what, e));
        }
        let Some(run) = &v.run_id else {
            return Err(FetchError::NotFound(format!("{what} has no {REFERENCE_TAG} tag and no run")));
        };
        let inputs = self.get_json(&format!("/api/2.0/mlflow/runs/get?run_id={}", escape(run))).await?;
        match dataset_input(&inputs["run"]["inputs"]["dataset_inputs"]) {
            Some(uri) => self.artifact(&uri, Some(run)).await.map_err(|e| prefix(&what, e)),
            None => Err(FetchError::NotFound(format!(
                "{what} has no {REFERENCE_TAG} tag, and its run logged no dataset (eval or training) at a file or URL"
            ))),
        }
    }

    /// An artifact's bytes: `runs:/RUN/PATH`, `mlflow-artifacts:/PATH`, an http(s) URL, or
    /// a local path (`file://` or absolute).
    async fn artifact(&self, uri: &str, run: Option<&str>) -> Result<Fetched, FetchError> {
        let mut f = if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((run.unwrap_or(rest), ""));
            self.get(&format!("/get-artifact?path={}&run_uuid={}", escape(path), escape(run_id))).await?
        } else if let Some(path) = uri.strip_prefix("mlflow-artifacts:/") {
            self.get(&format!("/api/2.0/mlflow-artifacts/artifacts/{}", escape(path.trim_start_matches('/')))).await?
        } else if uri.starts_with("http://") || uri.starts_with("https://") {
            let fetched = fetch::get(&self.http, uri, |r| r, None, self.cfg.timeout).await?;
            fetched.ok_or_else(|| FetchError::Refused(format!("{uri}: 304 without a validator")))?
        } else if let Some(path) = uri.strip_prefix("file://").or(uri.starts_with('/').then_some(uri)) {
            read_file(Path::new(path))?
        } else {
            return Err(FetchError::Refused(format!("'{uri}' is not a location driftd can read")));
        };
        f.name = fetch::url_file_name(uri);
        Ok(f)
    }
}

fn prefix(what: &str, e: FetchError) -> FetchError {
    match e {
        FetchError::Unreachable(m) => FetchError::Unreachable(format!("{what}: {m}")),
        FetchError::NotFound(m) => FetchError::NotFound(format!("{what}: {m}")),
        FetchError::Refused(m) => FetchError::Refused(format!("{what}: {m}")),
    }
}

/// MLflow answers an unknown alias with 400 INVALID_PARAMETER_VALUE, not 404.
fn alias_missing(e: FetchError, model: &str, alias: &str) -> FetchError {
    match e {
        FetchError::Refused(m) if m.contains("HTTP 400") && m.contains("not found") => {
            FetchError::NotFound(format!("registered model {model} has no alias {alias}: {m}"))
        }
        FetchError::Refused(m) if m.contains("HTTP 404") || m.contains("RESOURCE_DOES_NOT_EXIST") => {
            FetchError::NotFound(format!("registered model {model} not found: {m}"))
        }
        other => other,
    }
}

/// The location of a run's dataset input, `eval` before `training`, when it is a file or
/// a URL (MLflow keeps the source as JSON: `{"uri": ...}`, `{"url": ...}` or `{"path": ...}`).
fn dataset_input(inputs: &Value) -> Option<String> {
    let context = |i: &Value| {
        i["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == "mlflow.data.context")
            .and_then(|t| t["value"].as_str().map(str::to_string))
    };
    let location = |i: &Value| -> Option<String> {
        let source: Value = serde_json::from_str(i["dataset"]["source"].as_str()?).ok()?;
        let loc = ["uri", "url", "path"].iter().find_map(|k| source[k].as_str())?.to_string();
        let readable = loc.starts_with('/')
            || loc.starts_with("file://")
            || loc.starts_with("http")
            || loc.starts_with("runs:/")
            || loc.starts_with("mlflow-artifacts:/");
        readable.then_some(loc)
    };
    let all: Vec<&Value> = inputs.as_array().map(|a| a.iter().collect()).unwrap_or_default();
    ["eval", "training"]
        .iter()
        .find_map(|ctx| all.iter().filter(|i| context(i).as_deref() == Some(*ctx)).find_map(|i| location(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_reads_from_mlflows_answer() {
        let answer = serde_json::json!({"model_version": {"name": "m1", "version": "2", "run_id": "abc",
            "status": "READY", "tags": [{"key": "driftd.reference", "value": "runs:/abc/driftd/profile.json"}]}});
        let v = VersionInfo::from_json(&answer["model_version"]).unwrap();
        assert_eq!((v.model.as_str(), v.version.as_str(), v.run_id.as_deref()), ("m1", "2", Some("abc")));
        assert_eq!(v.tags[REFERENCE_TAG], "runs:/abc/driftd/profile.json");
    }

    #[test]
    fn the_eval_dataset_wins_over_the_training_one_and_only_readable_ones_count() {
        let input = |ctx: &str, source: &str| {
            serde_json::json!({"tags": [{"key": "mlflow.data.context", "value": ctx}],
                "dataset": {"name": "d", "source_type": "local", "source": source}})
        };
        let inputs = serde_json::json!([
            input("training", r#"{"uri": "/data/train.csv"}"#),
            input("eval", r#"{"uri": "/data/eval.csv"}"#),
        ]);
        assert_eq!(dataset_input(&inputs).as_deref(), Some("/data/eval.csv"));
        let inputs = serde_json::json!([
            input("eval", r#"{"uri": "s3://b/eval.csv"}"#),
            input("training", r#"{"url": "https://h/t.parquet"}"#)
        ]);
        assert_eq!(dataset_input(&inputs).as_deref(), Some("https://h/t.parquet"));
        assert_eq!(dataset_input(&serde_json::json!([input("training", r#"{"uri": "s3://b/t.csv"}"#)])), None);
    }

    #[test]
    fn names_are_escaped_for_the_query_string() {
        assert_eq!(escape("credit risk&v=2"), "credit%20risk%26v%3D2");
        assert_eq!(escape("driftd/profile.json"), "driftd/profile.json");
    }
}
