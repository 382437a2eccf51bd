//! Settings: `config/driftd.toml` plus `DRIFTD__SECTION__KEY` environment overrides,
//! deserialized into typed values (durations, stattests, severities) and validated as a
//! whole, so a bad file is refused with the key at fault (`models[0].window`,
//! `retrain.url`) and nothing downstream parses a string again.
//!
//! - `model.rs`: `[[models]]` and `[defaults]`, resolved into a [`ModelConfig`] per model;
//! - `actions.rs`: `[retrain]` and `[[alerts]]`, their URL rules and secrets;
//! - `duration.rs`: the `15m` duration type.

mod actions;
mod duration;
mod model;
mod reference_source;
mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use actions::{
    AlertKind, AlertSettings, Receiver, RetrainPreset, RetrainSettings, RetrainTarget, Secret, SecretSource,
};
pub use duration::{parse_duration, HumanDuration};
pub use model::{FeatureOverride, ModelConfig, ModelSettings, PolicySettings, TensorNames, WindowSettings, WindowSpec};
pub use reference_source::ReferenceSource;
pub use registry::{Mlflow, MlflowSettings};

/// A configuration error: the key (dotted path) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl fmt::Display) -> Self {
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
    /// Logging of `driftd run` (the `--log-level` / `--log-format` flags and `DRIFTD_LOG`,
    /// `DRIFTD_LOG_FORMAT` win over it).
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
    pub defaults: PolicySettings,
    /// The monitored models.
    #[serde(default)]
    pub models: Vec<ModelSettings>,
    /// The retrain trigger (absent: no retrain requests).
    #[serde(default)]
    pub retrain: Option<RetrainSettings>,
    /// Alert receivers.
    #[serde(default)]
    pub alerts: Vec<AlertSettings>,
    /// The MLflow tracking server, for `mlflow:models:/` references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<MlflowSettings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma separated (librdkafka's `bootstrap.servers`).
    #[serde(default = "KafkaSettings::default_brokers")]
    pub brokers: String,
    /// Topics holding inference logs.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Consumer group shared by the replicas of driftd.
    #[serde(default = "KafkaSettings::default_group_id")]
    pub group_id: String,
    /// Passed to librdkafka as they are (SASL, SSL, timeouts, ...); credentials shown as
    /// `***`.
    #[serde(default, serialize_with = "crate::redact::ser_options")]
    pub options: BTreeMap<String, String>,
    /// Where the message keeps each part, for layouts other than the default.
    #[serde(default)]
    pub mapping: MappingSettings,
    /// The model of messages that name none, by topic.
    #[serde(default)]
    pub topic_models: BTreeMap<String, String>,
    /// Larger messages are refused as `oversized` (default 1 MiB).
    #[serde(default = "KafkaSettings::default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Bad messages are produced here, with the reason in a `driftd-reason` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
    /// The internal topic where replicas exchange the partial windows of models whose
    /// traffic is spread over partitions (`spread = true`); a window is merged and
    /// reported once by the replica that owns the model's partition of this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partials_topic: Option<String>,
    /// How long a spread model's window waits for the partitions that have not reported
    /// once another partition's event time has passed its end (default 30s); it is then
    /// reported with what came, naming the partitions missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_timeout: Option<HumanDuration>,
    /// Threads that decode a batch of messages (1 by default: the consumer's own). More
    /// pays where cores are free beside librdkafka's threads; on a machine the broker
    /// shares, one is faster (see docs/scaling.md).
    #[serde(default = "KafkaSettings::default_decode_threads")]
    pub decode_threads: usize,
    /// The payload format of a topic, by topic; a topic not named keeps driftd's layout
    /// (and `mapping`). See docs/inputs.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formats: BTreeMap<String, Format>,
    /// How long a request waits for its response, and a response for its request, to be
    /// joined into one event per row (default 30s; 0s: each half is its own event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_timeout: Option<HumanDuration>,
    /// Rows waiting for the other half at most (default 1,000,000): beyond, the oldest
    /// half is taken unpaired.
    #[serde(default = "KafkaSettings::default_max_pending_rows")]
    pub max_pending_rows: usize,
    /// A batch (request or response) of more rows is refused as `batch_too_large`
    /// (default 10,000).
    #[serde(default = "KafkaSettings::default_max_batch_rows")]
    pub max_batch_rows: usize,
}

/// What a topic's messages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// driftd's own layout (or `[kafka.mapping]`'s).
    Driftd,
    /// Open Inference Protocol (KServe V2) requests and responses, as JSON: MLServer's
    /// Kafka server, KServe's payload logger (CloudEvents in binary or structured mode,
    /// V2 or V1 bodies, told apart per message: `kserve-cloudevents` is another name for
    /// it), Triton behind a bridge.
    #[serde(alias = "kserve-cloudevents")]
    OpenInference,
    /// SageMaker Data Capture's records, an invocation's input and output together.
    SagemakerCapture,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Driftd => "driftd",
            Format::OpenInference => "open-inference",
            Format::SagemakerCapture => "sagemaker-capture",
        }
    }
}

impl KafkaSettings {
    fn default_decode_threads() -> usize {
        1
    }
    fn default_max_pending_rows() -> usize {
        1_000_000
    }
    fn default_max_batch_rows() -> usize {
        10_000
    }

    /// Whether requests and responses are joined across topics: two open-inference
    /// topics or more, pairing on.
    pub fn pairs_across_topics(&self) -> bool {
        !self.pair_timeout().is_zero() && self.formats.values().filter(|f| **f == Format::OpenInference).count() >= 2
    }

    /// How long a half waits for the other (default 30s).
    pub fn pair_timeout(&self) -> std::time::Duration {
        self.pair_timeout.map_or(std::time::Duration::from_secs(30), HumanDuration::get)
    }

    fn default_brokers() -> String {
        "localhost:9092".into()
    }
    fn default_group_id() -> String {
        "driftd".into()
    }
    fn default_max_message_bytes() -> usize {
        1 << 20
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: Self::default_brokers(),
            topics: Vec::new(),
            group_id: Self::default_group_id(),
            options: BTreeMap::new(),
            mapping: MappingSettings::default(),
            topic_models: BTreeMap::new(),
            max_message_bytes: Self::default_max_message_bytes(),
            dead_letter_topic: None,
            partials_topic: None,
            merge_timeout: None,
            decode_threads: Self::default_decode_threads(),
            formats: BTreeMap::new(),
            pair_timeout: None,
            max_pending_rows: Self::default_max_pending_rows(),
            max_batch_rows: Self::default_max_batch_rows(),
        }
    }
}

/// Field names or JSON pointers (starting with `/`) of the parts of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingSettings {
    /// The model's name (default `model`).
    pub model: String,
    /// RFC 3339 text or epoch milliseconds (default `timestamp`).
    pub timestamp: String,
    /// A flat object of feature values (default `features`).
    pub features: String,
    /// The model's output, monitored like a feature named `prediction` (default `prediction`).
    pub prediction: String,
    /// The model's version, text or number (default `model_version`).
    pub model_version: String,
}

impl Default for MappingSettings {
    fn default() -> Self {
        MappingSettings {
            model: "model".into(),
            timestamp: "timestamp".into(),
            features: "features".into(),
            prediction: "prediction".into(),
            model_version: "model_version".into(),
        }
    }
}

impl MappingSettings {
    pub fn is_default(&self) -> bool {
        *self == MappingSettings::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server binds (default `127.0.0.1:9464`).
    #[serde(default = "ServerSettings::default_listen")]
    pub listen: String,
    /// The bearer token of the admin endpoints (`POST /api/v1/reload`,
    /// `POST /api/v1/models/{name}/retrain`): `secret`, `secret_env` or `secret_file`.
    /// Without one, those endpoints are not served (SIGHUP still reloads).
    #[serde(default, skip_serializing_if = "SecretSource::is_empty")]
    pub admin_token: SecretSource,
    /// Serve the admin endpoints on this address only, apart from `/metrics` and the
    /// read-only API (which then has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    /// Connections served at once, per listener (default 256); more wait to be accepted.
    #[serde(default = "ServerSettings::default_max_connections")]
    pub max_connections: usize,
    /// A client must send a request's headers within this (default 10s).
    #[serde(default = "ServerSettings::default_header_timeout")]
    pub header_timeout: HumanDuration,
    /// A request is answered within this, or with 503 (default 30s).
    #[serde(default = "ServerSettings::default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// Serve HTTPS instead of HTTP, on every listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTls>,
}

/// `[server] tls`: the server's certificate chain and private key, PEM files (read at
/// start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerSettings {
    fn default_listen() -> String {
        "127.0.0.1:9464".into()
    }
    fn default_max_connections() -> usize {
        256
    }
    fn default_header_timeout() -> HumanDuration {
        std::time::Duration::from_secs(10).into()
    }
    fn default_request_timeout() -> HumanDuration {
        std::time::Duration::from_secs(30).into()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: Self::default_listen(),
            admin_token: SecretSource::default(),
            admin_listen: None,
            max_connections: Self::default_max_connections(),
            header_timeout: Self::default_header_timeout(),
            request_timeout: Self::default_request_timeout(),
            tls: None,
        }
    }
}

/// How log lines look on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (coloured when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, such as `info` (default) or `driftd=debug`.
    #[serde(default = "LogSettings::default_level")]
    pub level: String,
}

impl LogSettings {
    fn default_level() -> String {
        "info".into()
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: LogFormat::default(), level: Self::default_level() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// Directory for checkpoints and the retrain outbox (default `state`).
    #[serde(default = "StateSettings::default_dir")]
    pub dir: PathBuf,
    /// A compacted topic keyed by model holding each model's checkpoint (window marks,
    /// drift state): whichever replica gets a model continues from it, the directory
    /// being a cache. Needed with several replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog_topic: Option<String>,
}

impl StateSettings {
    fn default_dir() -> PathBuf {
        PathBuf::from("state")
    }
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings { dir: Self::default_dir(), changelog_topic: None }
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

impl Settings {
    /// Every secret the config names by variable or file that cannot be read now, with its
    /// key (a secret given inline always can).
    pub fn unreadable_secrets(&self) -> Vec<ConfigError> {
        let retrain = self.retrain.iter().map(|r| ("retrain.secret".to_string(), &r.credential));
        let alerts = self.alerts.iter().enumerate().map(|(i, a)| (format!("alerts[{i}].secret"), &a.credential));
        let mlflow = self.mlflow.iter().map(|m| ("mlflow.secret".to_string(), &m.credential));
        let admin = std::iter::once(("server.admin_token".to_string(), &self.server.admin_token));
        retrain
            .chain(alerts)
            .chain(mlflow)
            .chain(admin)
            .filter_map(|(key, source)| source.resolve().err().map(|why| ConfigError::new(key, why)))
            .collect()
    }

    /// Reads `path`, applies `DRIFTD__SECTION__KEY` overrides, and validates.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::new(path.display().to_string(), "no such config file"));
        }
        let file = config::File::from(path).format(config::FileFormat::Toml);
        Self::build(
            path.display().to_string(),
            config::Config::builder().add_source(file).add_source(
                config::Environment::with_prefix("DRIFTD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("kafka.topics"),
            ),
        )
    }

    /// Parses TOML text (no environment overrides) and validates.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let source = config::File::from_str(text, config::FileFormat::Toml);
        Self::build("config".into(), config::Config::builder().add_source(source))
    }

    fn build(
        origin: String,
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Settings, ConfigError> {
        let cfg = builder.build().map_err(|e| ConfigError::new(origin.clone(), one_line(&e)))?;
        let settings: Settings = cfg.try_deserialize().map_err(|e| ConfigError::new(origin, one_line(&e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot: names, ranges, windows, preset URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kafka.brokers.trim().is_empty() {
            return Err(ConfigError::new("kafka.brokers", "must not be empty"));
        }
        if let Some(t) = self.kafka.partials_topic.as_ref().filter(|t| self.kafka.topics.contains(t)) {
            return Err(ConfigError::new(
                "kafka.partials_topic",
                format!("'{t}' is one of kafka.topics: the partials topic is driftd's own, not inference logs"),
            ));
        }
        if self.kafka.max_batch_rows == 0 {
            return Err(ConfigError::new("kafka.max_batch_rows", "must be at least 1"));
        }
        for topic in self.kafka.formats.keys() {
            if !self.kafka.topics.is_empty() && !self.kafka.topics.contains(topic) {
                return Err(ConfigError::new(
                    format!("kafka.formats.{topic}"),
                    "names a topic not in kafka.topics: its messages would never be read",
                ));
            }
        }
        if !(1..=64).contains(&self.kafka.decode_threads) {
            return Err(ConfigError::new("kafka.decode_threads", "must be between 1 and 64"));
        }
        if self.kafka.max_message_bytes == 0 {
            return Err(ConfigError::new("kafka.max_message_bytes", "must be at least 1"));
        }
        if self.kafka.options.get("sasl.oauthbearer.method").is_some_and(|m| m.eq_ignore_ascii_case("oidc")) {
            return Err(ConfigError::new(
                "kafka.options.sasl.oauthbearer.method",
                "OIDC client credentials need librdkafka built with libcurl, which this build of driftd leaves out; \
                 OAUTHBEARER works here with sasl.oauthbearer.config (unsecured JWT, for testing) only",
            ));
        }
        for (key, addr) in
            [("server.listen", Some(&self.server.listen)), ("server.admin_listen", self.server.admin_listen.as_ref())]
        {
            if addr.is_some_and(|a| a.parse::<std::net::SocketAddr>().is_err()) {
                return Err(ConfigError::new(
                    key,
                    format!("'{}' is not an address like 127.0.0.1:9464", addr.unwrap()),
                ));
            }
        }
        self.server.admin_token.validate("server.admin_token")?;
        if self.server.admin_listen.is_some() && self.server.admin_token.given() == 0 {
            return Err(ConfigError::new(
                "server.admin_listen",
                "needs server.admin_token: the admin endpoints are served only to a bearer of it",
            ));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::new("server.max_connections", "must be at least 1"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new("log.level", format!("'{}' is not a log filter", self.log.level)));
        }
        self.defaults.validate("defaults")?;
        let mut names = BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if !names.insert(m.name.as_str()) {
                return Err(ConfigError::new(
                    format!("models[{i}].name"),
                    format!("model '{}' is defined twice", m.name),
                ));
            }
        }
        let models = self.model_configs()?;
        if let Some(m) = &self.mlflow {
            m.validate()?;
        }
        if let Some(i) = models.iter().position(|m| m.reference.is_registry()) {
            if self.mlflow.is_none() {
                return Err(ConfigError::new(
                    format!("models[{i}].reference"),
                    "a registry reference needs [mlflow] tracking_uri",
                ));
            }
        }
        if let Some(r) = &self.retrain {
            r.validate()?;
        }
        let mut receivers = BTreeSet::new();
        for (i, a) in self.alerts.iter().enumerate() {
            a.validate(i)?;
            if !receivers.insert(a.receiver_name()) {
                return Err(ConfigError::new(
                    format!("alerts[{i}].name"),
                    format!("receiver '{}' is defined twice; give each a distinct name", a.receiver_name()),
                ));
            }
        }
        Ok(())
    }

    /// Every model resolved: `[defaults]` and the defaults filled in.
    pub fn model_configs(&self) -> Result<Vec<ModelConfig>, ConfigError> {
        let retrain_cooldown = self.retrain.as_ref().and_then(|r| r.cooldown);
        self.models.iter().enumerate().map(|(i, m)| m.resolve(i, &self.defaults, retrain_cooldown)).collect()
    }
}

fn one_line(e: &impl fmt::Display) -> String {
    e.to_string().lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_typed_values_and_errors_name_the_key() {
        let s = Settings::from_toml(
            "[defaults]\ncooldown = \"6h\"\nnum_stattest = \"psi\"\n[[models]]\nname = \"m\"\nreference = \"r.csv\"\n\
             window = { size = \"1h\", slide = \"15m\" }\n",
        )
        .unwrap();
        let m = &s.model_configs().unwrap()[0];
        assert_eq!(m.policy.cooldown_ms, 6 * 3_600_000);
        assert_eq!(m.num_stattest, Some(crate::stats::StatTest::Psi));
        assert!(matches!(m.window, WindowSpec::Sliding { .. }));
        for (text, key) in [
            (
                "[[models]]\nname = \"m\"\nreference = \"r\"\nwindow = { size = \"1h\", slide = \"7m\" }\n",
                "models[0].window",
            ),
            ("[[models]]\nname = \"m\"\nreference = \"r\"\nfire_after = 0\n", "models[0].fire_after"),
            ("[defaults]\ncooldown = \"soon\"\n", "cooldown"),
            ("[defaults]\nnum_stattest = \"kolmogorov\"\n", "unknown stattest 'kolmogorov'"),
            ("[log]\nformat = \"xml\"\n", "format"),
            ("[[alerts]]\nkind = \"slack\"\nurl = \"http://x\"\nseverity = \"loud\"\n", "severity"),
            ("[defaults]\nfalse_alarm_rate = 2.0\n", "defaults.false_alarm_rate"),
            ("[defaults]\nmin_effect = { wasserstien = 0.1 }\n", "defaults.min_effect.wasserstien"),
            ("[defaults]\nthresholds = \"fixed\"\ndataset_rule = \"bh\"\n", "defaults.dataset_rule"),
            ("[defaults]\ndata_quality = { max_invalid_share = 1.5 }\n", "defaults.data_quality.max_invalid_share"),
            ("[defaults]\nthresholds = \"loose\"\n", "thresholds"),
            (
                "[[models]]\nname = \"m\"\nreference = \"r\"\nwindow = { events = 10 }\nspread = true\n",
                "models[0].spread",
            ),
            ("[kafka]\ntopics = [\"logs\"]\npartials_topic = \"logs\"\n", "kafka.partials_topic"),
        ] {
            let e = Settings::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
