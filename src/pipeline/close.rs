//! A closed window's report: the same statistics `analyze` computes, against the model's
//! reference profile, judged by the model's policy.

use std::sync::Arc;

use serde::Serialize;

use super::accumulate::Accumulator;
use super::bounds::WindowBounds;
use super::merge::MergeInfo;
use super::spec::ModelSpec;
use crate::analysis::analyze::{analyze, Reference};
use crate::analysis::dataset::share;
use crate::analysis::report::{Report, Skipped};
use crate::policy::{QualityFailure, Verdict};
use crate::reference::ReferenceIdentity;

/// A closed window, the spec to report it with, and the version it belongs to.
#[derive(Debug)]
pub struct ClosedWindow {
    pub spec: Arc<ModelSpec>,
    pub version: Option<String>,
    pub acc: Accumulator,
    /// A spread model's window merged from its parts: what they were.
    pub merged: Option<MergeInfo>,
}

/// Whether a window's data can be trusted: a pipeline that broke upstream is not drift.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataQuality {
    /// False when a feature broke the model's data-quality rule: the window then counts as
    /// neither drifted nor clean, and raises the data-quality alert.
    pub passed: bool,
    /// The features that broke the rule, and why.
    pub failures: Vec<QualityFailure>,
    /// Fields the window's messages carried that the model does not monitor (one per
    /// message and field).
    pub unmonitored_fields: u64,
}

/// The report schema plus the model and the window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    pub model: String,
    /// The traffic's version, for a model split by version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(flatten)]
    pub bounds: WindowBounds,
    /// The reference the window was compared with (in the JSON, the report's `reference`
    /// section names it: its source as `path`, its `version` and `digest`).
    #[serde(skip)]
    pub reference: ReferenceIdentity,
    pub events: u64,
    pub late_events: u64,
    pub invalid_values: u64,
    /// Fewer events than `min_events`: the numbers are reported, nothing is flagged.
    pub insufficient_events: bool,
    /// Whether the model's output (`prediction`) drifted; absent when it is not monitored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_drift: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// The window's data quality, judged apart from drift.
    pub data_quality: DataQuality,
    /// A spread model's window, merged from its partitions' parts: how many, and the
    /// partitions it did not wait for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
    /// What the policy made of the window (not part of the JSON: the fields above say it).
    #[serde(skip)]
    pub verdict: Verdict,
}

impl WindowReport {
    /// The names of the features that drifted.
    pub fn drifted_features(&self) -> Vec<String> {
        self.report
            .as_ref()
            .map(|r| r.features.iter().filter(|f| f.drifted).map(|f| f.name.clone()).collect())
            .unwrap_or_default()
    }

    pub fn share_of_drifted_features(&self) -> f64 {
        self.report.as_ref().map_or(0.0, |r| r.share_of_drifted_features)
    }

    /// The model and version, as the policy keys its state machines.
    pub fn track(&self) -> (&str, Option<&str>) {
        (&self.model, self.model_version.as_deref())
    }

    /// For the data-quality state machine: whether the window's data broke the rule;
    /// `None` when nothing could be judged (the window could not be analysed).
    pub fn quality_judged(&self) -> Option<bool> {
        (self.report.is_some() || !self.data_quality.passed).then_some(!self.data_quality.passed)
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a window report serializes")
    }
}

/// Computes a closed window's report (pure: may run on any thread).
pub fn report_window(closed: ClosedWindow) -> WindowReport {
    let ClosedWindow { spec, version, acc, merged } = closed;
    let (bounds, events, late, invalid) = (acc.bounds, acc.events, acc.late, acc.invalid);
    let unmonitored = acc.unmonitored;
    let (dataset, empty) = acc.into_dataset(&spec.name, spec.numeric(), spec.categorical());
    let invalid_of = |name: &str| dataset.column(name).map_or(0, |c| c.invalid);
    let mut opts = spec.opts.clone();
    opts.selection.exclude = empty.clone();
    let reference = Reference::Profile(spec.profile.clone(), spec.reference.source.clone().into());
    let (mut report, error) = match analyze(&reference, &dataset, &opts) {
        Ok(mut r) => {
            r.reference.version = spec.reference.version.clone();
            r.reference.digest = Some(spec.reference.digest.clone());
            for name in &empty {
                let reason = match invalid_of(name) {
                    0 => "no values in this window".to_string(),
                    n => format!("no valid values in this window ({n} of the wrong type)"),
                };
                r.skipped.push(Skipped { name: name.clone(), reason });
            }
            (Some(r), None)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let without_values: Vec<(String, f64)> =
        empty.iter().map(|name| (name.clone(), share(invalid_of(name), dataset.rows))).collect();
    let judgement = spec.policy.judge(events, report.as_mut(), &without_values);
    let failures = judgement.quality_failures;
    let data_quality = DataQuality { passed: failures.is_empty(), failures, unmonitored_fields: unmonitored };
    WindowReport {
        model: spec.name.clone(),
        model_version: version,
        bounds,
        reference: spec.reference.clone(),
        events,
        late_events: late,
        invalid_values: invalid,
        insufficient_events: judgement.insufficient_events,
        prediction_drift: judgement.prediction_drift,
        error,
        report,
        data_quality,
        merged,
        verdict: judgement.verdict,
    }
}
