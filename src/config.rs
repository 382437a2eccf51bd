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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainSettings {
    /// Which API the request speaks.
    pub preset: RetrainPreset,
    /// The endpoint (for presets, the API's base URL or the full path).
    pub url: String,
    #[serde(flatten)]
    pub credential: SecretSource,
    /// Minimum time between two requests for one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<String>,
    /// Log the request instead of sending it.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Alertmanager,
    Slack,
    Pagerduty,
    Webhook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    pub kind: AlertKind,
    pub url: String,
    /// Severity this receiver takes (`warning`, `critical`, ...); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(flatten)]
    pub credential: SecretSource,
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
            validate_url("retrain.url", &r.url)?;
            if r.credential.given() > 1 {
                return Err(ConfigError::new("retrain.secret", "give only one of secret, secret_env, secret_file"));
            }
            if let Some(c) = &r.cooldown {
                parse_duration(c).map_err(|e| ConfigError::new("retrain.cooldown", e))?;
            }
        }
        for (i, a) in self.alerts.iter().enumerate() {
            validate_url(&format!("alerts[{i}].url"), &a.url)?;
            if a.credential.given() > 1 {
                return Err(ConfigError::new(
                    format!("alerts[{i}].secret"),
                    "give only one of secret, secret_env, secret_file",
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
