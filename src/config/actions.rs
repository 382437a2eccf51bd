//! `[retrain]` and `[[alerts]]`: where decisions go, each preset's URL rules, and the
//! secrets they need (inline, from an environment variable, or from a file; never printed).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::{ConfigError, HumanDuration};
use crate::policy::Severity;

/// A secret given inline. Never printed: `Debug` and `Serialize` show `***`.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub Option<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Secret(***)" } else { "Secret(None)" })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(_) => s.serialize_str("***"),
            None => s.serialize_none(),
        }
    }
}

/// Where a credential comes from: at most one of `secret`, `secret_env`, `secret_file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default, skip_serializing_if = "Secret::is_absent")]
    pub secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

impl Secret {
    fn is_absent(&self) -> bool {
        self.0.is_none()
    }
}

impl SecretSource {
    /// How many of the three ways are given.
    pub fn given(&self) -> usize {
        usize::from(self.secret.0.is_some())
            + usize::from(self.secret_env.is_some())
            + usize::from(self.secret_file.is_some())
    }

    /// Reads the secret (the variable or the file) or says which is missing.
    pub fn resolve(&self) -> Result<Option<String>, String> {
        if let Some(s) = &self.secret.0 {
            return Ok(Some(s.clone()));
        }
        if let Some(var) = &self.secret_env {
            return std::env::var(var).map(Some).map_err(|_| format!("environment variable {var} is not set"));
        }
        if let Some(path) = &self.secret_file {
            return std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end().to_string()))
                .map_err(|e| format!("cannot read {}: {e}", path.display()));
        }
        Ok(None)
    }

    /// None of the three given.
    pub fn is_empty(&self) -> bool {
        self.given() == 0
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.given() > 1 {
            return Err(ConfigError::new(key, "give only one of secret, secret_env, secret_file"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetrainPreset {
    Webhook,
    Airflow,
    Airflow3,
    Prefect,
    Kubeflow,
    Argo,
    Github,
    Gitlab,
    Jenkins,
}

impl RetrainPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            RetrainPreset::Webhook => "webhook",
            RetrainPreset::Airflow => "airflow",
            RetrainPreset::Airflow3 => "airflow3",
            RetrainPreset::Prefect => "prefect",
            RetrainPreset::Kubeflow => "kubeflow",
            RetrainPreset::Argo => "argo",
            RetrainPreset::Github => "github",
            RetrainPreset::Gitlab => "gitlab",
            RetrainPreset::Jenkins => "jenkins",
        }
    }
}

/// `[retrain]`: the pipeline a drift episode starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainSettings {
    /// Which API the request speaks.
    pub preset: RetrainPreset,
    /// The full endpoint, e.g. `http://airflow:8080/api/v1/dags/retrain/dagRuns`.
    #[serde(serialize_with = "crate::redact::ser_url_without_secrets")]
    pub url: String,
    /// The signing secret (`webhook`), the password or API token (`airflow`, `airflow3`,
    /// `jenkins`, `prefect` with `username`), the bearer token (`prefect`, `kubeflow`,
    /// `argo`, `github`) or the trigger token (`gitlab`).
    #[serde(flatten)]
    pub credential: SecretSource,
    /// The user for presets that log in (`airflow`, `airflow3`, `jenkins`, `prefect`
    /// behind basic auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Minimum event time between two automatic requests for one model (a model's own
    /// `cooldown` wins; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<HumanDuration>,
    /// A manual retrain (`POST /api/v1/models/{name}/retrain`) within this long of the
    /// model's last one is that one again: answered with its run id, nothing sent
    /// (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_interval: Option<HumanDuration>,
    /// Log the request instead of sending it.
    #[serde(default)]
    pub dry_run: bool,
    /// Time allowed for one attempt (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Attempts before a request counts as failed (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles per attempt up to 5 minutes, jittered (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<HumanDuration>,
    /// Git ref to run on (`github` workflow_dispatch, `gitlab`).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// `github` repository_dispatch event type (default `driftd-retrain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// `argo`: the WorkflowTemplate to submit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_template: Option<String>,
    /// `kubeflow`: the pipeline, its version, and the experiment to run in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    /// `gitlab`: send the run parameters as pipeline variables (the default). `false` for a
    /// project that refuses pipeline variables (GitLab.com's default since 17.7): the
    /// trigger carries the token and the ref only, and the pipeline reads its request
    /// (run id, report) from driftd's API, `/api/v1/models/{name}/retrains/latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<bool>,
    /// driftd's API as the pipeline reaches it (e.g. `http://driftd.monitoring:9464`): a
    /// report cut to fit a target's limit then carries `full_report`, the link to the whole
    /// request (`/api/v1/models/{name}/retrains/{run_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driftd_url: Option<String>,
}

const DEFAULT_RETRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRAIN_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// `[retrain]` with its secret read and its defaults filled in.
#[derive(Debug, Clone)]
pub struct RetrainTarget {
    pub settings: RetrainSettings,
    pub secret: Option<String>,
    pub timeout: Duration,
    pub backoff: Duration,
    pub max_attempts: u32,
}

impl RetrainSettings {
    /// `manual_interval`, or its default.
    pub fn manual_interval(&self) -> Duration {
        self.manual_interval.map_or(Duration::from_secs(3600), HumanDuration::get)
    }

    /// Reads the secret and fills the defaults.
    pub fn resolve(&self) -> Result<RetrainTarget, ConfigError> {
        let secret = self.credential.resolve().map_err(|e| ConfigError::new("retrain.secret", e))?;
        Ok(RetrainTarget {
            secret,
            timeout: self.timeout.map_or(DEFAULT_RETRAIN_TIMEOUT, HumanDuration::get),
            backoff: self.backoff.map_or(DEFAULT_RETRAIN_BACKOFF, HumanDuration::get),
            max_attempts: self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            settings: self.clone(),
        })
    }

    /// Settings that are valid but fail in a common setup of the target: (key, why).
    pub fn warnings(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.preset == RetrainPreset::Kubeflow && self.experiment_id.is_none() {
            out.push((
                "retrain.experiment_id",
                "not set: multi-user Kubeflow (the platform install) answers 400 without it; \
                 single-user Kubeflow Pipelines uses its default experiment",
            ));
        }
        out
    }

    /// What each preset's URL must look like (the path its API documents) and the keys it
    /// needs.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        validate_url("retrain.url", &self.url)?;
        if let Some(u) = &self.driftd_url {
            validate_url("retrain.driftd_url", u)?;
        }
        if self.variables.is_some() && self.preset != RetrainPreset::Gitlab {
            return Err(ConfigError::new("retrain.variables", "only the gitlab preset sends pipeline variables"));
        }
        self.credential.validate("retrain.secret")?;
        if self.max_attempts == Some(0) {
            return Err(ConfigError::new("retrain.max_attempts", "must be at least 1"));
        }
        self.validate_preset()
    }

    /// Each preset's URL path and the keys it needs: a table, one arm per preset.
    fn validate_preset(&self) -> Result<(), ConfigError> {
        let path = url_path(&self.url);
        let preset = self.preset.as_str();
        let shape = |ok: bool, expected: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new("retrain.url", format!("the {preset} preset expects {expected}")))
            }
        };
        let need = |v: &Option<String>, k: &str| match v {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(ConfigError::new(format!("retrain.{k}"), format!("the {preset} preset needs it"))),
        };
        let secret = |what: &str| {
            if self.credential.given() == 1 {
                Ok(())
            } else {
                Err(ConfigError::new("retrain.secret", format!("the {preset} preset needs {what}")))
            }
        };
        match self.preset {
            RetrainPreset::Webhook => secret("the signing secret (secret, secret_env or secret_file)"),
            RetrainPreset::Airflow => {
                shape(path.contains("/api/v1/dags/") && path.ends_with("/dagRuns"), ".../api/v1/dags/{dag_id}/dagRuns")
            }
            RetrainPreset::Airflow3 => {
                shape(
                    path.contains("/api/v2/dags/") && path.ends_with("/dagRuns"),
                    ".../api/v2/dags/{dag_id}/dagRuns",
                )?;
                need(&self.username, "username")?;
                secret("the password")
            }
            RetrainPreset::Prefect => shape(
                path.contains("/deployments/") && path.ends_with("/create_flow_run"),
                ".../api/deployments/{id}/create_flow_run",
            ),
            RetrainPreset::Kubeflow => {
                shape(path.ends_with("/apis/v2beta1/runs"), ".../apis/v2beta1/runs")?;
                need(&self.pipeline_id, "pipeline_id")
            }
            RetrainPreset::Argo => {
                let parts: Vec<&str> = path.split('/').collect();
                let ok =
                    parts.len() >= 6 && parts[parts.len() - 1] == "submit" && parts[parts.len() - 3] == "workflows";
                shape(ok && path.contains("/api/v1/workflows/"), ".../api/v1/workflows/{namespace}/submit")?;
                need(&self.workflow_template, "workflow_template")
            }
            RetrainPreset::Github => {
                shape(
                    path.contains("/repos/") && path.ends_with("/dispatches"),
                    ".../repos/{owner}/{repo}/actions/workflows/{file}/dispatches or .../repos/{owner}/{repo}/dispatches",
                )?;
                if path.contains("/actions/workflows/") {
                    need(&self.git_ref, "ref")?;
                }
                secret("a token")
            }
            RetrainPreset::Gitlab => {
                shape(path.ends_with("/trigger/pipeline"), ".../api/v4/projects/{id}/trigger/pipeline")?;
                need(&self.git_ref, "ref")?;
                secret("the trigger token")
            }
            RetrainPreset::Jenkins => {
                shape(path.ends_with("/buildWithParameters"), ".../job/{name}/buildWithParameters")?;
                // a user with an API token, or anonymous with the job's trigger token (then
                // driftd fetches Jenkins' CSRF crumb for each attempt)
                secret(if self.username.is_some() { "the user's API token" } else { "the job's trigger token" })
            }
        }
    }
}

/// A URL's path without query or fragment, and without a trailing `/`.
fn url_path(url: &str) -> String {
    let path = url.split_once("://").map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    format!("/{}", path.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Alertmanager,
    Slack,
    Pagerduty,
    Webhook,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Alertmanager => "alertmanager",
            AlertKind::Slack => "slack",
            AlertKind::Pagerduty => "pagerduty",
            AlertKind::Webhook => "webhook",
        }
    }
}

/// One `[[alerts]]` receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    pub kind: AlertKind,
    /// Alertmanager's base URL, the Slack incoming webhook, PagerDuty's Events v2
    /// endpoint (`https://events.pagerduty.com/v2/enqueue`) or the webhook's URL. Shown
    /// without its path (a Slack webhook's path is its credential).
    #[serde(serialize_with = "crate::redact::ser_url_for_display")]
    pub url: String,
    /// The receiver's name in `driftd_alerts_sent_total{receiver}` (default: the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Severity this receiver takes (`warning` or `critical`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The PagerDuty routing key, or the webhook's signing secret.
    #[serde(flatten)]
    pub credential: SecretSource,
    /// New notifications per minute at most (default 30); resolutions always go out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u32>,
    /// Alertmanager: how often a firing alert is sent again (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<HumanDuration>,
    /// Time allowed for one attempt (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

const DEFAULT_ALERT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_MAX_PER_MINUTE: u32 = 30;

/// A receiver with its secret read and its defaults filled in.
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
    /// Whether this receiver takes alerts of this severity.
    pub fn takes(&self, severity: Severity) -> bool {
        self.settings.severity.is_none_or(|s| s == severity)
    }

    pub fn kind(&self) -> AlertKind {
        self.settings.kind
    }
}

impl AlertSettings {
    pub fn receiver_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind.as_str().to_string())
    }

    /// Reads the secret and fills the defaults; `index` names the entry in errors.
    pub fn resolve(&self, index: usize) -> Result<Receiver, ConfigError> {
        let secret = self.credential.resolve().map_err(|e| ConfigError::new(format!("alerts[{index}].secret"), e))?;
        Ok(Receiver {
            name: self.receiver_name(),
            secret,
            timeout: self.timeout.map_or(DEFAULT_ALERT_TIMEOUT, HumanDuration::get),
            repeat: self.repeat_interval.map_or(DEFAULT_REPEAT_INTERVAL, HumanDuration::get),
            max_per_minute: self.max_per_minute.unwrap_or(DEFAULT_MAX_PER_MINUTE),
            settings: self.clone(),
        })
    }

    pub(super) fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |k: &str| format!("alerts[{index}].{k}");
        validate_url(&key("url"), &self.url)?;
        self.credential.validate(&key("secret"))?;
        if self.kind == AlertKind::Pagerduty && self.credential.given() == 0 {
            return Err(ConfigError::new(
                key("secret"),
                "pagerduty needs its routing key (secret, secret_env or secret_file)",
            ));
        }
        if self.max_per_minute == Some(0) {
            return Err(ConfigError::new(key("max_per_minute"), "must be at least 1"));
        }
        Ok(())
    }
}

pub(super) fn validate_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("'{url}' is not an http(s) URL")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretSource { secret: Secret(Some("hunter2".into())), ..Default::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }

    #[test]
    fn url_paths_drop_query_and_trailing_slash() {
        assert_eq!(
            url_path("http://h:1/api/v4/projects/1/trigger/pipeline/?x=1"),
            "/api/v4/projects/1/trigger/pipeline"
        );
        assert_eq!(url_path("https://h"), "/");
    }
}
