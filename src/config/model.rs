//! `[[models]]` and `[defaults]`: what each model is compared with and how its windows and
//! drift policy behave, resolved once into a typed [`ModelConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ReferenceSource;
use super::{ConfigError, HumanDuration};
use crate::analysis::analyze::DEFAULT_DRIFT_SHARE;
use crate::analysis::thresholds::{
    DatasetRule, EffectFloors, ThresholdMode, ThresholdOptions, DEFAULT_FALSE_ALARM_RATE,
};
use crate::policy::{Policy, QualityRule};
use crate::stats::StatTest;

/// A window as written: `{ size = "1h" }` (tumbling), `{ size = "1h", slide = "15m" }`
/// (sliding), or `{ events = 10000 }` (every N events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
}

/// The validated form of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// Event-time windows `[k·size, (k+1)·size)`.
    Tumbling { size: Duration },
    /// Event-time windows of `size` starting every `slide` (`slide` divides `size`).
    Sliding { size: Duration, slide: Duration },
    /// A window per `events` events, whatever their times.
    Count { events: u64 },
}

impl WindowSpec {
    /// One hour, tumbling: the window of a model that sets none.
    pub const DEFAULT: WindowSpec = WindowSpec::Tumbling { size: Duration::from_secs(3600) };

    pub fn is_count(&self) -> bool {
        matches!(self, WindowSpec::Count { .. })
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowSpec::Tumbling { size } => write!(f, "tumbling {}s", size.as_secs()),
            WindowSpec::Sliding { size, slide } => {
                write!(f, "sliding {}s every {}s", size.as_secs(), slide.as_secs())
            }
            WindowSpec::Count { events } => write!(f, "every {events} events"),
        }
    }
}

impl WindowSettings {
    pub fn spec(&self) -> Result<WindowSpec, String> {
        match (self.size, self.slide, self.events) {
            (None, None, Some(0)) => Err("events must be at least 1".into()),
            (None, None, Some(events)) => Ok(WindowSpec::Count { events }),
            (Some(size), None, None) => Ok(WindowSpec::Tumbling { size: size.get() }),
            (Some(size), Some(slide), None) => {
                let (size, slide) = (size.get(), slide.get());
                if slide > size || size.as_millis() % slide.as_millis() != 0 {
                    return Err("slide must divide size".into());
                }
                Ok(WindowSpec::Sliding { size, slide })
            }
            _ => Err("give either size (and optionally slide) or events".into()),
        }
    }
}

/// Keys a model may set, or inherit from `[defaults]`; each says its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// The model's windows (default `{ size = "1h" }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSettings>,
    /// How far behind the newest event time an event may arrive and still count
    /// (event-time windows; default none); later ones are counted as late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_lateness: Option<HumanDuration>,
    /// How far ahead of the wall clock an event's time may be (default 5m): later ones
    /// are counted (`future_timestamp`) and never move the windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_future: Option<HumanDuration>,
    /// Processing time without events after which a model's open windows close (default:
    /// never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    /// Test for numerical features (default: Evidently's selection rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_stattest: Option<StatTest>,
    /// Test for categorical features (default: Evidently's selection rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat_stattest: Option<StatTest>,
    /// Dataset drift when at least this share of features drifted (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
    /// Windows with fewer events are reported but never flagged (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// Consecutive drifted windows before the model counts as drifting (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_after: Option<u32>,
    /// Consecutive clean windows before it counts as ok again (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_after: Option<u32>,
    /// Features whose drift alone means dataset drift (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<Vec<String>>,
    /// Minimum event time between two automatic retrain requests for the model (default:
    /// `[retrain] cooldown`, else none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<HumanDuration>,
    /// Keep windows, reports, metrics and drift state per live `model_version` (default
    /// false; always on for a per-version registry reference, `mlflow:models:/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_by_version: Option<bool>,
    /// Versions of a model tracked at once (default 3); events of a further one are
    /// counted (`too_many_versions`) and not windowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_live_versions: Option<usize>,
    /// How often a file or URL reference is checked for new content (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_poll: Option<HumanDuration>,
    /// When a window's data is broken rather than drifted (each key inherits alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_quality: Option<DataQualitySettings>,
    /// `calibrated` (default): each feature's threshold is its no-drift quantile for the
    /// window's size at `false_alarm_rate`, never below the test's `min_effect`; `fixed`:
    /// the tests' defaults (Evidently's 0.1 and 0.05) at every size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdMode>,
    /// Calibrated thresholds: the share of no-drift windows allowed to flag a feature
    /// (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_alarm_rate: Option<f64>,
    /// Calibrated thresholds: the smallest effect worth an alarm, per test (`{ wasserstein
    /// = 0.1 }`; the others keep their defaults, see docs/tuning.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_effect: Option<BTreeMap<String, f64>>,
    /// How the features make the window's verdict: `share` (default: `drift_share` of
    /// them) or `bh` (Benjamini-Hochberg across them at `false_alarm_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_rule: Option<DatasetRule>,
    /// Values of a numerical feature a window keeps as they are (default 10,000); past
    /// them it holds counts over 1,000 fine bins (or per value, for a discrete feature), so
    /// its memory stops growing. KS and Wasserstein then come with an error bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_values: Option<usize>,
    /// The model's traffic is spread over partitions (logs not keyed by model): with
    /// several replicas, each sends its part of a window to `kafka.partials_topic` and one
    /// replica merges them (event-time windows only; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<bool>,
}

/// `data_quality = { ... }`: limits on shares of a window's events, per feature, past
/// which the window's data counts as broken (no drift verdict, a data-quality alert). A
/// feature with no valid value at all is always broken. A limit of 1 turns a check off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataQualitySettings {
    /// The window's missing share minus the reference's (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_missing_increase: Option<f64>,
    /// Values of the wrong type (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_invalid_share: Option<f64>,
    /// Numbers outside the reference's range (default 1: reported, never broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_out_of_range_share: Option<f64>,
    /// Categories the reference never had (default 1: reported, never broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unseen_share: Option<f64>,
}

impl DataQualitySettings {
    fn or(&self, d: &DataQualitySettings) -> DataQualitySettings {
        DataQualitySettings {
            max_missing_increase: self.max_missing_increase.or(d.max_missing_increase),
            max_invalid_share: self.max_invalid_share.or(d.max_invalid_share),
            max_out_of_range_share: self.max_out_of_range_share.or(d.max_out_of_range_share),
            max_unseen_share: self.max_unseen_share.or(d.max_unseen_share),
        }
    }

    fn fields(&self) -> [(&'static str, Option<f64>); 4] {
        [
            ("max_missing_increase", self.max_missing_increase),
            ("max_invalid_share", self.max_invalid_share),
            ("max_out_of_range_share", self.max_out_of_range_share),
            ("max_unseen_share", self.max_unseen_share),
        ]
    }

    fn rule(&self) -> QualityRule {
        let d = QualityRule::default();
        QualityRule {
            max_missing_increase: self.max_missing_increase.unwrap_or(d.max_missing_increase),
            max_invalid_share: self.max_invalid_share.unwrap_or(d.max_invalid_share),
            max_out_of_range_share: self.max_out_of_range_share.unwrap_or(d.max_out_of_range_share),
            max_unseen_share: self.max_unseen_share.unwrap_or(d.max_unseen_share),
        }
    }
}

impl PolicySettings {
    /// The threshold keys resolved (streaming default: calibrated), or the key at fault.
    fn threshold_options(&self) -> Result<ThresholdOptions, (String, String)> {
        let floors = self.min_effect.clone().unwrap_or_default();
        for name in floors.keys() {
            StatTest::parse(name).map_err(|e| (format!("min_effect.{name}"), e))?;
        }
        let t = ThresholdOptions {
            mode: self.thresholds.unwrap_or(ThresholdMode::Calibrated),
            false_alarm_rate: self.false_alarm_rate.unwrap_or(DEFAULT_FALSE_ALARM_RATE),
            min_effect: EffectFloors::with(floors).map_err(|e| ("min_effect".to_string(), e))?,
            dataset_rule: self.dataset_rule.unwrap_or_default(),
        };
        t.validate()?;
        Ok(t)
    }
}

/// Defaults of the keys above that have one.
const DEFAULT_MIN_EVENTS: u64 = 0;
/// Event times at most this far ahead of the wall clock are taken (clock skew).
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(300);
const DEFAULT_EXACT_VALUES: usize = 10_000;
const DEFAULT_FIRE_AFTER: u32 = 1;
const DEFAULT_RESOLVE_AFTER: u32 = 1;
const DEFAULT_MAX_LIVE_VERSIONS: usize = 3;
const DEFAULT_REFERENCE_POLL: Duration = Duration::from_secs(60);

impl PolicySettings {
    /// These keys, each filled from `fallback` where unset here.
    fn or(&self, fallback: &PolicySettings) -> PolicySettings {
        let d = fallback;
        PolicySettings {
            window: self.window.clone().or_else(|| d.window.clone()),
            allowed_lateness: self.allowed_lateness.or(d.allowed_lateness),
            max_future: self.max_future.or(d.max_future),
            idle_timeout: self.idle_timeout.or(d.idle_timeout),
            num_stattest: self.num_stattest.or(d.num_stattest),
            cat_stattest: self.cat_stattest.or(d.cat_stattest),
            drift_share: self.drift_share.or(d.drift_share),
            min_events: self.min_events.or(d.min_events),
            fire_after: self.fire_after.or(d.fire_after),
            resolve_after: self.resolve_after.or(d.resolve_after),
            critical: self.critical.clone().or_else(|| d.critical.clone()),
            cooldown: self.cooldown.or(d.cooldown),
            split_by_version: self.split_by_version.or(d.split_by_version),
            max_live_versions: self.max_live_versions.or(d.max_live_versions),
            reference_poll: self.reference_poll.or(d.reference_poll),
            data_quality: match (&self.data_quality, &d.data_quality) {
                (Some(a), Some(b)) => Some(a.or(b)),
                (a, b) => a.clone().or_else(|| b.clone()),
            },
            thresholds: self.thresholds.or(d.thresholds),
            false_alarm_rate: self.false_alarm_rate.or(d.false_alarm_rate),
            min_effect: match (&self.min_effect, &d.min_effect) {
                (Some(a), Some(b)) => Some(b.iter().chain(a).map(|(k, v)| (k.clone(), *v)).collect()),
                (a, b) => a.clone().or_else(|| b.clone()),
            },
            dataset_rule: self.dataset_rule.or(d.dataset_rule),
            exact_values: self.exact_values.or(d.exact_values),
            spread: self.spread.or(d.spread),
        }
    }

    /// Checks the keys types alone cannot; `key` is where they stand (`defaults`,
    /// `models[0]`).
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let at = |field: &str| format!("{key}.{field}");
        if let Some(w) = &self.window {
            w.spec().map_err(|e| ConfigError::new(at("window"), e))?;
        }
        if let Some(s) = self.drift_share {
            if !(s > 0.0 && s <= 1.0) {
                return Err(ConfigError::new(
                    at("drift_share"),
                    format!("{s} is out of range (expected a share in (0, 1])"),
                ));
            }
        }
        for (field, v) in [("fire_after", self.fire_after), ("resolve_after", self.resolve_after)] {
            if v == Some(0) {
                return Err(ConfigError::new(at(field), "must be at least 1"));
            }
        }
        for (field, limit) in self.data_quality.iter().flat_map(DataQualitySettings::fields) {
            if let Some(x) = limit.filter(|x| !(0.0..=1.0).contains(x)) {
                return Err(ConfigError::new(
                    at(&format!("data_quality.{field}")),
                    format!("{x} is out of range (expected a share in [0, 1]; 1 turns the check off)"),
                ));
            }
        }
        self.threshold_options().map_err(|(field, e)| ConfigError::new(at(&field), e))?;
        if self.max_live_versions == Some(0) {
            return Err(ConfigError::new(at("max_live_versions"), "must be at least 1"));
        }
        Ok(())
    }
}

/// A per-feature override of the test and its threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stattest: Option<StatTest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

impl FeatureOverride {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let Some(th) = self.threshold else { return Ok(()) };
        let checked = match self.stattest {
            Some(t) => t.check_threshold(th),
            None if th > 0.0 && th.is_finite() => Ok(()),
            None => Err(format!("threshold {th} must be positive and finite")),
        };
        checked.map_err(|e| ConfigError::new(format!("{key}.threshold"), e))
    }
}

/// One `[[models]]` entry as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// The model name, as inference logs carry it.
    pub name: String,
    /// The reference: a dataset (CSV, Parquet, JSONL) or a profile from `driftd baseline`,
    /// as a path or an `http(s)://` URL, or the MLflow registry
    /// (`mlflow:models:/NAME@ALIAS`, or `mlflow:models:/NAME` for one per live version).
    pub reference: String,
    /// Features to monitor (default: every column of the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Features to treat as categorical whatever their dtype.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    /// Open Inference Protocol: the names of a 2-D input tensor's columns, in order
    /// (default: the reference's feature columns, in its order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_columns: Option<Vec<String>>,
    /// Open Inference Protocol: the response output that is the prediction (default: the
    /// first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_output: Option<String>,
    /// Open Inference Protocol: the column of a 2-D output that is the prediction (e.g.
    /// 1 for the positive class's probability of `predict_proba`); default: the index of
    /// the row's largest value (the class a classifier predicts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_column: Option<usize>,
    /// Per-feature test and threshold overrides, by feature name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_feature: BTreeMap<String, FeatureOverride>,
    #[serde(flatten)]
    pub policy: PolicySettings,
}

/// A model's settings with `[defaults]` and every default filled in: what the pipeline,
/// the policy and the actions read.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub name: String,
    pub reference: ReferenceSource,
    /// Windows, reports and drift state per live `model_version`.
    pub split_by_version: bool,
    pub max_live_versions: usize,
    /// How often a file or URL reference is checked for new content.
    pub reference_poll: Duration,
    pub features: Option<Vec<String>>,
    pub categorical: Vec<String>,
    /// How Open Inference Protocol tensors map to features and the prediction.
    pub tensors: TensorNames,
    pub per_feature: BTreeMap<String, FeatureOverride>,
    pub window: WindowSpec,
    pub allowed_lateness: Duration,
    /// Event times further ahead of the wall clock are refused.
    pub max_future: Duration,
    pub idle_timeout: Option<Duration>,
    pub num_stattest: Option<StatTest>,
    pub cat_stattest: Option<StatTest>,
    pub drift_share: f64,
    /// Fixed or calibrated thresholds, the budget, the effect floors, the dataset rule.
    pub thresholds: ThresholdOptions,
    /// Values per numerical feature a window keeps before binning them.
    pub exact_values: usize,
    /// The window verdict and the drift state machine's keys.
    pub policy: Policy,
    /// Traffic spread over partitions: windows merged across replicas.
    pub spread: bool,
}

/// A model's Open Inference Protocol names: a 2-D input's columns, the output that is the
/// prediction, and its column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorNames {
    pub input_columns: Option<Vec<String>>,
    pub prediction_output: Option<String>,
    pub prediction_column: Option<usize>,
}

impl ModelSettings {
    /// Resolves this entry (number `index` in the file) against `[defaults]` and
    /// `[retrain] cooldown`.
    pub(super) fn resolve(
        &self,
        index: usize,
        defaults: &PolicySettings,
        retrain_cooldown: Option<HumanDuration>,
    ) -> Result<ModelConfig, ConfigError> {
        let key = format!("models[{index}]");
        if self.name.trim().is_empty() {
            return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
        }
        self.policy.validate(&key)?;
        for (feature, o) in &self.per_feature {
            o.validate(&format!("{key}.per_feature.{feature}"))?;
        }
        let reference =
            ReferenceSource::parse(&self.reference).map_err(|e| ConfigError::new(format!("{key}.reference"), e))?;
        let p = self.policy.or(defaults);
        let window = match &p.window {
            Some(w) => w.spec().map_err(|e| ConfigError::new(format!("{key}.window"), e))?,
            None => WindowSpec::DEFAULT,
        };
        if p.spread == Some(true) && window.is_count() {
            return Err(ConfigError::new(
                format!("{key}.spread"),
                "count windows cannot be spread over partitions (what a window holds would depend on how \
                 the partitions interleave): use an event-time window, or key the logs by model",
            ));
        }
        Ok(ModelConfig {
            name: self.name.clone(),
            split_by_version: reference.per_version() || p.split_by_version.unwrap_or(false),
            reference,
            max_live_versions: p.max_live_versions.unwrap_or(DEFAULT_MAX_LIVE_VERSIONS),
            reference_poll: p.reference_poll.map_or(DEFAULT_REFERENCE_POLL, HumanDuration::get),
            features: self.features.clone(),
            categorical: self.categorical.clone(),
            tensors: TensorNames {
                input_columns: self.input_columns.clone(),
                prediction_output: self.prediction_output.clone(),
                prediction_column: self.prediction_column,
            },
            per_feature: self.per_feature.clone(),
            window,
            allowed_lateness: p.allowed_lateness.map_or(Duration::ZERO, HumanDuration::get),
            max_future: p.max_future.map_or(DEFAULT_MAX_FUTURE, HumanDuration::get),
            idle_timeout: p.idle_timeout.map(HumanDuration::get),
            num_stattest: p.num_stattest,
            cat_stattest: p.cat_stattest,
            drift_share: p.drift_share.unwrap_or(DEFAULT_DRIFT_SHARE),
            thresholds: p.threshold_options().map_err(|(field, e)| ConfigError::new(format!("{key}.{field}"), e))?,
            exact_values: p.exact_values.unwrap_or(DEFAULT_EXACT_VALUES),
            spread: p.spread.unwrap_or(false),
            policy: Policy {
                min_events: p.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
                critical: p.critical.clone().unwrap_or_default(),
                fire_after: p.fire_after.unwrap_or(DEFAULT_FIRE_AFTER),
                resolve_after: p.resolve_after.unwrap_or(DEFAULT_RESOLVE_AFTER),
                cooldown_ms: p.cooldown.or(retrain_cooldown).map_or(0, HumanDuration::as_millis_i64),
                quality: p.data_quality.unwrap_or_default().rule(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(size: Option<&str>, slide: Option<&str>, events: Option<u64>) -> WindowSettings {
        let d = |s: &str| HumanDuration(super::super::duration::parse_duration(s).unwrap());
        WindowSettings { size: size.map(d), slide: slide.map(d), events }
    }

    #[test]
    fn windows_are_one_of_three_shapes() {
        assert!(matches!(window(Some("1h"), None, None).spec(), Ok(WindowSpec::Tumbling { .. })));
        assert!(matches!(window(Some("1h"), Some("15m"), None).spec(), Ok(WindowSpec::Sliding { .. })));
        assert!(matches!(window(None, None, Some(100)).spec(), Ok(WindowSpec::Count { events: 100 })));
        assert!(window(Some("1h"), Some("7m"), None).spec().is_err());
        assert!(window(Some("1h"), None, Some(5)).spec().is_err());
        assert!(window(None, None, Some(0)).spec().is_err());
    }

    #[test]
    fn a_model_inherits_defaults_and_its_own_keys_win() {
        let defaults = PolicySettings {
            drift_share: Some(0.3),
            fire_after: Some(2),
            cooldown: Some(HumanDuration(Duration::from_secs(60))),
            ..Default::default()
        };
        let m = ModelSettings {
            name: "m".into(),
            reference: "r.csv".into(),
            features: None,
            categorical: Vec::new(),
            input_columns: None,
            prediction_output: None,
            prediction_column: None,
            per_feature: BTreeMap::new(),
            policy: PolicySettings { fire_after: Some(4), ..Default::default() },
        };
        let c = m.resolve(0, &defaults, Some(HumanDuration(Duration::from_secs(7200)))).unwrap();
        assert_eq!(c.drift_share, 0.3);
        assert_eq!(c.policy.fire_after, 4);
        assert_eq!(c.policy.resolve_after, DEFAULT_RESOLVE_AFTER);
        assert_eq!(c.policy.cooldown_ms, 60_000, "the model's (inherited) cooldown wins over [retrain]'s");
        assert_eq!(c.window, WindowSpec::DEFAULT);
        let bare = ModelSettings { policy: PolicySettings::default(), ..m };
        let c = bare.resolve(0, &PolicySettings::default(), Some(HumanDuration(Duration::from_secs(7200)))).unwrap();
        assert_eq!(c.policy.cooldown_ms, 7_200_000);
        assert_eq!(c.drift_share, DEFAULT_DRIFT_SHARE);
    }
}
