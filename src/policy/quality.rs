//! The data-quality rule: when a window's data is broken (a pipeline upstream fails, a
//! serialisation changed) rather than drifted, and the state of a model's incidents.

use serde::{Deserialize, Serialize};

use crate::analysis::report::Report;

/// When a window's data is broken (a pipeline upstream fails, a serialisation changed)
/// rather than drifted: limits on shares of a feature's rows. A feature with no valid value
/// at all always fails.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRule {
    /// Missing this much more often than in the reference (the window's missing share
    /// minus the reference's).
    pub max_missing_increase: f64,
    /// Values of the wrong type (text that is no number, for a numerical feature).
    pub max_invalid_share: f64,
    /// Numbers outside the reference's range (1: never a failure, only a signal).
    pub max_out_of_range_share: f64,
    /// Categories the reference never had (1: never a failure, only a signal).
    pub max_unseen_share: f64,
}

impl Default for QualityRule {
    fn default() -> Self {
        QualityRule {
            max_missing_increase: 0.5,
            max_invalid_share: 0.1,
            max_out_of_range_share: 1.0,
            max_unseen_share: 1.0,
        }
    }
}

/// A feature the quality rule failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityFailure {
    pub feature: String,
    /// `no_values`, `missing`, `invalid`, `out_of_range` or `unseen`.
    pub reason: &'static str,
    /// The share that broke the limit (the missing share's increase for `missing`; for
    /// `no_values`, the share of values of the wrong type, the rest being missing).
    pub share: f64,
    pub limit: f64,
}

/// The reasons a feature fails the rule, as `QualityFailure::reason` spells them.
const REASONS: [&str; 5] = ["no_values", "missing", "invalid", "out_of_range", "unseen"];

/// A `QualityFailure` as read back (the alert outbox).
#[derive(Deserialize)]
struct RawFailure {
    feature: String,
    reason: String,
    share: f64,
    limit: f64,
}

impl<'de> Deserialize<'de> for QualityFailure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<QualityFailure, D::Error> {
        let raw = RawFailure::deserialize(d)?;
        let reason = REASONS
            .iter()
            .find(|r| **r == raw.reason)
            .copied()
            .ok_or_else(|| serde::de::Error::custom(format!("unknown data-quality reason '{}'", raw.reason)))?;
        Ok(QualityFailure { feature: raw.feature, reason, share: raw.share, limit: raw.limit })
    }
}

impl QualityRule {
    /// The features of a report that break the rule; `without_values`: features with no
    /// valid value in the window (left out of the report's statistics), with the share of
    /// rows that held a value of the wrong type (the rest were missing).
    pub fn failures(&self, report: Option<&Report>, without_values: &[(String, f64)]) -> Vec<QualityFailure> {
        let mut out: Vec<QualityFailure> = without_values
            .iter()
            .map(|(f, invalid)| QualityFailure { feature: f.clone(), reason: "no_values", share: *invalid, limit: 0.0 })
            .collect();
        for f in report.iter().flat_map(|r| &r.features) {
            let checks = [
                ("missing", Some(f.current_missing_share - f.reference_missing_share), self.max_missing_increase),
                ("invalid", f.current_invalid_share, self.max_invalid_share),
                ("out_of_range", f.current_out_of_range_share, self.max_out_of_range_share),
                ("unseen", f.current_unseen_share, self.max_unseen_share),
            ];
            for (reason, share, limit) in checks {
                if let Some(share) = share.filter(|s| *s > limit && limit < 1.0) {
                    out.push(QualityFailure { feature: f.name.clone(), reason, share, limit });
                }
            }
        }
        out
    }
}

/// A model's data quality: failing from a window that breaks the quality rule to the
/// next that does not.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QualityState {
    pub failing: bool,
    /// The alert's id while failing (its dedup key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// End of the window that started the failure (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Failures so far.
    #[serde(default)]
    pub incidents: u64,
}

impl QualityState {
    pub(super) fn is_fine(&self) -> bool {
        !self.failing && self.incidents == 0
    }
}

/// What a window changed in the data-quality state.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityTransition {
    None,
    /// The data broke: `id` names the incident (the alerts' dedup key).
    Failed {
        id: String,
        since: String,
    },
    /// Good again.
    Restored {
        id: String,
        since: String,
    },
}
