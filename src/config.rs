//! Settings: `config/driftd.toml` plus `DRIFTD__SECTION__KEY` environment overrides,
//! validated as a whole so that a bad file is refused with the key at fault.
//!
//! This issue defines every section; the streaming daemon, policy, retrain and alert
//! stages read them as they land.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::stats::StatTest;

/// A configuration error: the key (dotted path) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        ConfigError { key: key.into(), reason: reason.to_string() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where inference logs come from.
    #[serde(default)]
    pub kafka: KafkaSettings,
    /// The HTTP server: `/metrics`, health and the JSON API.
    #[serde(default)]
    pub server: ServerSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Durable state: checkpoints and the retrain outbox.
    #[serde(default)]
    pub state: StateSettings,
    /// Window report sinks.
    #[serde(default)]
    pub reports: ReportSettings,
    /// Keys every model inherits unless it sets its own.
    #[serde(default)]
    pub defaults: ModelPolicy,
    /// The monitored models.
    #[serde(default)]
    pub models: Vec<ModelSettings>,
    /// The retrain trigger (absent: no retrain requests).
    #[serde(default)]
    pub retrain: Option<RetrainSettings>,
    /// Alert receivers.
    #[serde(default)]
    pub alerts: Vec<AlertSettings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma separated (librdkafka's `bootstrap.servers`).
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Topics holding inference logs.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Consumer group shared by the replicas of driftd.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Passed to librdkafka as they are (SASL, SSL, timeouts, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Where the message keeps each part, for layouts other than the default.
    #[serde(default)]
    pub mapping: MappingSettings,
    /// The model of messages that name none, by topic.
    #[serde(default)]
    pub topic_models: BTreeMap<String, String>,
    /// Larger messages are refused as `oversized`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Bad messages are produced here, with the reason in a `driftd-reason` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
}

fn default_max_message_bytes() -> usize {
    1 << 20
}

/// Field names or JSON pointers (starting with `/`) of the parts of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    #[serde(default = "default_model_field")]
    pub model: String,
    #[serde(default = "default_timestamp_field")]
    pub timestamp: String,
    #[serde(default = "default_features_field")]
    pub features: String,
    #[serde(default = "default_prediction_field")]
    pub prediction: String,
}

fn default_model_field() -> String {
    "model".into()
}
fn default_timestamp_field() -> String {
    "timestamp".into()
}
fn default_features_field() -> String {
    "features".into()
}
fn default_prediction_field() -> String {
    "prediction".into()
}

impl Default for MappingSettings {
    fn default() -> Self {
        MappingSettings {
            model: default_model_field(),
            timestamp: default_timestamp_field(),
            features: default_features_field(),
            prediction: default_prediction_field(),
        }
    }
}

impl MappingSettings {
    pub fn is_default(&self) -> bool {
        *self == MappingSettings::default()
    }
}

/// Where window reports go besides the HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Append each window report as a JSON line to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Produce each window report to this Kafka topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

fn default_brokers() -> String {
    "localhost:9092".into()
}
fn default_group_id() -> String {
    "driftd".into()
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: default_brokers(),
            topics: Vec::new(),
            group_id: default_group_id(),
            options: BTreeMap::new(),
            mapping: MappingSettings::default(),
            topic_models: BTreeMap::new(),
            max_message_bytes: default_max_message_bytes(),
            dead_letter_topic: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server binds.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings { listen: default_listen() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter, such as `info` or `driftd=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: default_log_format(), level: default_log_level() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// Directory for checkpoints and the retrain outbox.
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings { dir: default_state_dir() }
    }
}

/// A window: `{ size = "1h" }` (tumbling), `{ size = "1h", slide = "15m" }` (sliding), or
/// `{ events = 10000 }` (every N events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
}

/// The validated form of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    Tumbling { size: Duration },
    Sliding { size: Duration, slide: Duration },
    Count { events: u64 },
}

impl WindowSettings {
    pub fn spec(&self) -> Result<WindowSpec, String> {
        match (&self.size, &self.slide, self.events) {
            (None, None, Some(0)) => Err("events must be at least 1".into()),
            (None, None, Some(events)) => Ok(WindowSpec::Count { events }),
            (Some(size), None, None) => Ok(WindowSpec::Tumbling { size: parse_duration(size)? }),
            (Some(size), Some(slide), None) => {
                let (size, slide) = (parse_duration(size)?, parse_duration(slide)?);
                if slide > size || size.as_nanos() % slide.as_nanos() != 0 {
                    return Err("slide must divide size".into());
                }
                Ok(WindowSpec::Sliding { size, slide })
            }
            _ => Err("give either size (and optionally slide) or events".into()),
        }
    }
}

/// Parses `500ms`, `30s`, `15m`, `1h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration (expected e.g. 30s, 15m, 1h)"))?;
    let secs = match unit {
        "ms" => return non_zero(Duration::from_millis(n), s),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("'{s}' has an unknown unit (use ms, s, m, h or d)")),
    };
    non_zero(Duration::from_secs(secs), s)
}

/// An optional duration key's value, or `default` when absent. Keys are validated at load,
/// so an unparsable value never reaches here (it would also fall back to the default).
pub fn duration_or(v: Option<&str>, default: Duration) -> Duration {
    v.and_then(|s| parse_duration(s).ok()).unwrap_or(default)
}

fn non_zero(d: Duration, s: &str) -> Result<Duration, String> {
    if d.is_zero() {
        Err(format!("'{s}' must be longer than zero"))
    } else {
        Ok(d)
    }
}

/// Policy keys a model may set, or inherit from `[defaults]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSettings>,
    /// How far behind the newest event time an event may arrive and still count
    /// (event-time windows); later ones are counted as late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_lateness: Option<String>,
    /// Processing time without events after which a model's open windows close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Test for numerical features (default: Evidently's selection rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_stattest: Option<String>,
    /// Test for categorical features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat_stattest: Option<String>,
    /// Dataset drift when at least this share of features drifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
    /// Windows with fewer events are reported but never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// Consecutive drifted windows before the model counts as drifting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_after: Option<u32>,
    /// Consecutive clean windows before it counts as ok again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_after: Option<u32>,
    /// Features whose drift alone means dataset drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<Vec<String>>,
    /// Minimum time between two retrain requests for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<String>,
}

/// A per-feature override of the test and its threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stattest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// The model name, as inference logs carry it.
    pub name: String,
    /// Reference data: a dataset (CSV, Parquet, JSONL) or a profile from `driftd baseline`.
    pub reference: PathBuf,
    /// Features to monitor (default: every column of the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Features to treat as categorical whatever their dtype.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    /// Per-feature test and threshold overrides, by feature name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_feature: BTreeMap<String, FeatureOverride>,
    #[serde(flatten)]
    pub policy: ModelPolicy,
}

/// A secret given inline, by environment variable name, or by file path. Never printed.
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

/// Where a credential comes from: exactly one of `secret`, `secret_env`, `secret_file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default, skip_serializing_if = "secret_absent")]
    pub secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

fn secret_absent(s: &Secret) -> bool {
    s.0.is_none()
}

impl SecretSource {
    fn given(&self) -> usize {
        usize::from(self.secret.0.is_some())
            + usize::from(self.secret_env.is_some())
            + usize::from(self.secret_file.is_some())
    }

    /// Resolves the secret (reading the variable or file) or says which is missing.
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainSettings {
    /// Which API the request speaks.
    pub preset: RetrainPreset,
    /// The full endpoint, e.g. `http://airflow:8080/api/v1/dags/retrain/dagRuns`.
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
    /// Minimum time between two automatic requests for one model (event time; a model's
    /// own `cooldown` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<String>,
    /// Log the request instead of sending it.
    #[serde(default)]
    pub dry_run: bool,
    /// Time allowed for one attempt (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Attempts before a request counts as failed (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles per attempt up to 5 minutes, jittered (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    pub kind: AlertKind,
    /// Alertmanager's base URL, the Slack incoming webhook, PagerDuty's Events v2
    /// endpoint (`https://events.pagerduty.com/v2/enqueue`) or the webhook's URL.
    pub url: String,
    /// The receiver's name in `driftd_alerts_sent_total{receiver}` (default: the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Severity this receiver takes (`warning` or `critical`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The PagerDuty routing key, or the webhook's signing secret.
    #[serde(flatten)]
    pub credential: SecretSource,
    /// New notifications per minute at most (default 30); resolutions always go out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u32>,
    /// Alertmanager: how often a firing alert is sent again (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    /// Time allowed for one attempt (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl AlertSettings {
    pub fn receiver_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind.as_str().to_string())
    }
}

impl Settings {
    /// Reads `path`, applies `DRIFTD__SECTION__KEY` overrides, and validates.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::new(path.display().to_string(), "no such config file"));
        }
        let cfg = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("DRIFTD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("kafka.topics"),
            )
            .build()
            .map_err(|e| ConfigError::new(path.display().to_string(), one_line(&e)))?;
        let settings: Settings =
            cfg.try_deserialize().map_err(|e| ConfigError::new(path.display().to_string(), one_line(&e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot: names, ranges, windows, secrets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kafka.brokers.trim().is_empty() {
            return Err(ConfigError::new("kafka.brokers", "must not be empty"));
        }
        if self.kafka.max_message_bytes == 0 {
            return Err(ConfigError::new("kafka.max_message_bytes", "must be at least 1"));
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "server.listen",
                format!("'{}' is not an address like 127.0.0.1:9464", self.server.listen),
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::new("log.format", "must be text or json"));
        }
        validate_policy("defaults", &self.defaults)?;
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let key = format!("models[{i}]");
            if m.name.trim().is_empty() {
                return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
            }
            if !names.insert(m.name.as_str()) {
                return Err(ConfigError::new(format!("{key}.name"), format!("model '{}' is defined twice", m.name)));
            }
            validate_policy(&key, &m.policy)?;
            for (feature, o) in &m.per_feature {
                let fkey = format!("{key}.per_feature.{feature}");
                let test = match &o.stattest {
                    Some(t) => Some(StatTest::parse(t).map_err(|e| ConfigError::new(format!("{fkey}.stattest"), e))?),
                    None => None,
                };
                if let Some(th) = o.threshold {
                    let ok = match test {
                        Some(t) => t.check_threshold(th),
                        None if th > 0.0 && th.is_finite() => Ok(()),
                        None => Err(format!("threshold {th} must be positive and finite")),
                    };
                    ok.map_err(|e| ConfigError::new(format!("{fkey}.threshold"), e))?;
                }
            }
        }
        if let Some(r) = &self.retrain {
            validate_retrain(r)?;
        }
        let mut receivers = std::collections::BTreeSet::new();
        for (i, a) in self.alerts.iter().enumerate() {
            let key = |k: &str| format!("alerts[{i}].{k}");
            validate_url(&key("url"), &a.url)?;
            if a.credential.given() > 1 {
                return Err(ConfigError::new(key("secret"), "give only one of secret, secret_env, secret_file"));
            }
            if let Some(sev) = &a.severity {
                if !matches!(sev.as_str(), "warning" | "critical") {
                    return Err(ConfigError::new(key("severity"), format!("'{sev}' is not warning or critical")));
                }
            }
            if a.kind == AlertKind::Pagerduty && a.credential.given() == 0 {
                return Err(ConfigError::new(
                    key("secret"),
                    "pagerduty needs its routing key (secret, secret_env or secret_file)",
                ));
            }
            if a.max_per_minute == Some(0) {
                return Err(ConfigError::new(key("max_per_minute"), "must be at least 1"));
            }
            for (k, v) in [("repeat_interval", &a.repeat_interval), ("timeout", &a.timeout)] {
                if let Some(d) = v {
                    parse_duration(d).map_err(|e| ConfigError::new(key(k), e))?;
                }
            }
            if !receivers.insert(a.receiver_name()) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("receiver '{}' is defined twice; give each a distinct name", a.receiver_name()),
                ));
            }
        }
        Ok(())
    }

    /// The model's policy with `[defaults]` filled in.
    pub fn policy_for(&self, model: &ModelSettings) -> ModelPolicy {
        let d = &self.defaults;
        let m = &model.policy;
        ModelPolicy {
            window: m.window.clone().or_else(|| d.window.clone()),
            allowed_lateness: m.allowed_lateness.clone().or_else(|| d.allowed_lateness.clone()),
            idle_timeout: m.idle_timeout.clone().or_else(|| d.idle_timeout.clone()),
            num_stattest: m.num_stattest.clone().or_else(|| d.num_stattest.clone()),
            cat_stattest: m.cat_stattest.clone().or_else(|| d.cat_stattest.clone()),
            drift_share: m.drift_share.or(d.drift_share),
            min_events: m.min_events.or(d.min_events),
            fire_after: m.fire_after.or(d.fire_after),
            resolve_after: m.resolve_after.or(d.resolve_after),
            critical: m.critical.clone().or_else(|| d.critical.clone()),
            cooldown: m.cooldown.clone().or_else(|| d.cooldown.clone()),
        }
    }
}

fn validate_policy(key: &str, p: &ModelPolicy) -> Result<(), ConfigError> {
    if let Some(w) = &p.window {
        w.spec().map_err(|e| ConfigError::new(format!("{key}.window"), e))?;
    }
    for (field, v) in [("num_stattest", &p.num_stattest), ("cat_stattest", &p.cat_stattest)] {
        if let Some(t) = v {
            StatTest::parse(t).map_err(|e| ConfigError::new(format!("{key}.{field}"), e))?;
        }
    }
    if let Some(s) = p.drift_share {
        if !(s > 0.0 && s <= 1.0) {
            return Err(ConfigError::new(
                format!("{key}.drift_share"),
                format!("{s} is out of range (expected a share in (0, 1])"),
            ));
        }
    }
    for (field, v) in [("fire_after", p.fire_after), ("resolve_after", p.resolve_after)] {
        if v == Some(0) {
            return Err(ConfigError::new(format!("{key}.{field}"), "must be at least 1"));
        }
    }
    for (field, v) in
        [("cooldown", &p.cooldown), ("allowed_lateness", &p.allowed_lateness), ("idle_timeout", &p.idle_timeout)]
    {
        if let Some(c) = v {
            parse_duration(c).map_err(|e| ConfigError::new(format!("{key}.{field}"), e))?;
        }
    }
    Ok(())
}

/// What each preset's URL must look like: the path its API documents.
fn validate_retrain(r: &RetrainSettings) -> Result<(), ConfigError> {
    validate_url("retrain.url", &r.url)?;
    if r.credential.given() > 1 {
        return Err(ConfigError::new("retrain.secret", "give only one of secret, secret_env, secret_file"));
    }
    for (k, v) in [("cooldown", &r.cooldown), ("timeout", &r.timeout), ("backoff", &r.backoff)] {
        if let Some(d) = v {
            parse_duration(d).map_err(|e| ConfigError::new(format!("retrain.{k}"), e))?;
        }
    }
    if r.max_attempts == Some(0) {
        return Err(ConfigError::new("retrain.max_attempts", "must be at least 1"));
    }
    let path = r.url.split_once("://").map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = format!("/{}", path.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/'));
    let shape = |ok: bool, expected: &str| {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::new("retrain.url", format!("the {} preset expects {expected}", r.preset.as_str())))
        }
    };
    let need = |v: &Option<String>, k: &str| match v {
        Some(s) if !s.trim().is_empty() => Ok(()),
        _ => Err(ConfigError::new(format!("retrain.{k}"), format!("the {} preset needs it", r.preset.as_str()))),
    };
    let secret = |what: &str| {
        if r.credential.given() == 1 {
            Ok(())
        } else {
            Err(ConfigError::new("retrain.secret", format!("the {} preset needs {what}", r.preset.as_str())))
        }
    };
    match r.preset {
        RetrainPreset::Webhook => secret("the signing secret (secret, secret_env or secret_file)"),
        RetrainPreset::Airflow => {
            shape(path.contains("/api/v1/dags/") && path.ends_with("/dagRuns"), ".../api/v1/dags/{dag_id}/dagRuns")
        }
        RetrainPreset::Airflow3 => {
            shape(path.contains("/api/v2/dags/") && path.ends_with("/dagRuns"), ".../api/v2/dags/{dag_id}/dagRuns")?;
            need(&r.username, "username")?;
            secret("the password")
        }
        RetrainPreset::Prefect => shape(
            path.contains("/deployments/") && path.ends_with("/create_flow_run"),
            ".../api/deployments/{id}/create_flow_run",
        ),
        RetrainPreset::Kubeflow => {
            shape(path.ends_with("/apis/v2beta1/runs"), ".../apis/v2beta1/runs")?;
            need(&r.pipeline_id, "pipeline_id")
        }
        RetrainPreset::Argo => {
            let parts: Vec<&str> = path.split('/').collect();
            let ok = parts.len() >= 6 && parts[parts.len() - 1] == "submit" && parts[parts.len() - 3] == "workflows";
            shape(ok && path.contains("/api/v1/workflows/"), ".../api/v1/workflows/{namespace}/submit")?;
            need(&r.workflow_template, "workflow_template")
        }
        RetrainPreset::Github => {
            shape(
                path.contains("/repos/") && path.ends_with("/dispatches"),
                ".../repos/{owner}/{repo}/actions/workflows/{file}/dispatches or .../repos/{owner}/{repo}/dispatches",
            )?;
            if path.contains("/actions/workflows/") {
                need(&r.git_ref, "ref")?;
            }
            secret("a token")
        }
        RetrainPreset::Gitlab => {
            shape(path.ends_with("/trigger/pipeline"), ".../api/v4/projects/{id}/trigger/pipeline")?;
            need(&r.git_ref, "ref")?;
            secret("the trigger token")
        }
        RetrainPreset::Jenkins => shape(path.ends_with("/buildWithParameters"), ".../job/{name}/buildWithParameters"),
    }
}

fn validate_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("'{url}' is not an http(s) URL")))
    }
}

fn one_line(e: &impl fmt::Display) -> String {
    e.to_string().lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn windows_are_one_of_three_shapes() {
        let w = |size: Option<&str>, slide: Option<&str>, events| WindowSettings {
            size: size.map(String::from),
            slide: slide.map(String::from),
            events,
        };
        assert!(matches!(w(Some("1h"), None, None).spec(), Ok(WindowSpec::Tumbling { .. })));
        assert!(matches!(w(Some("1h"), Some("15m"), None).spec(), Ok(WindowSpec::Sliding { .. })));
        assert!(matches!(w(None, None, Some(100)).spec(), Ok(WindowSpec::Count { events: 100 })));
        assert!(w(Some("1h"), Some("7m"), None).spec().is_err());
        assert!(w(Some("1h"), None, Some(5)).spec().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretSource { secret: Secret(Some("hunter2".into())), ..Default::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }
}
