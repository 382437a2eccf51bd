//! What happens to a model's references and its versions: in use, failed, recovered,
//! retired, live.

use super::{v, InternalEvent, Telemetry};
use crate::analysis::thresholds::ThresholdSource;
use crate::reference::{ReferenceError, ReferenceIdentity};
use crate::stats::StatTest;

/// A reference is in use: loaded at start (`previous` none) or swapped in.
pub struct ReferenceInUse<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub identity: &'a ReferenceIdentity,
    pub previous: Option<&'a ReferenceIdentity>,
    /// Swapped in now (not loaded at start).
    pub swapped: bool,
}

impl InternalEvent for ReferenceInUse<'_> {
    fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        let (model, version, id) = (self.model, v(self.version), self.identity);
        let info = |i: &ReferenceIdentity| {
            [
                model.to_string(),
                version.to_string(),
                i.source.clone(),
                v(i.version.as_deref()).to_string(),
                i.short_digest().to_string(),
            ]
        };
        if let Some(prev) = self.previous {
            let labels = info(prev);
            let _ = m.reference_info.remove_label_values(&labels.each_ref().map(String::as_str));
        }
        let labels = info(id);
        m.reference_info.with_label_values(&labels.each_ref().map(String::as_str)).set(1);
        m.reference_stale.with_label_values(&[model, version]).set(0);
        m.reference_last_swap_timestamp_seconds
            .with_label_values(&[model, version])
            .set(crate::time::now_ms() as f64 / 1000.0);
        let (source, digest) = (id.source.as_str(), id.short_digest());
        let reference_version = id.version.as_deref().unwrap_or("");
        if self.swapped {
            m.reference_swaps_total.with_label_values(&[model, version]).inc();
            tracing::info!(model, version, source, reference_version, digest, "reference swapped");
        } else {
            tracing::info!(model, version, source, reference_version, digest, "reference loaded");
        }
    }
}

/// A reference's source failed; the reference in use (if any) stays, and is stale.
pub struct ReferenceFailed<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub error: &'a ReferenceError,
}

impl InternalEvent for ReferenceFailed<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, version, error) = (self.model, v(self.version), self.error);
        t.metrics.reference_errors_total.with_label_values(&[model, error.reason()]).inc();
        t.metrics.reference_stale.with_label_values(&[model, version]).set(1);
        tracing::warn!(model, version, reason = error.reason(), error = %error, "reference source failed; the reference in use stays");
    }
}

/// A failing reference source answers again, with the reference in use.
pub struct ReferenceRecovered<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
}

impl InternalEvent for ReferenceRecovered<'_> {
    fn emit(self, t: &Telemetry) {
        let (model, version) = (self.model, v(self.version));
        t.metrics.reference_stale.with_label_values(&[model, version]).set(0);
        tracing::info!(model, version, "reference source answers again");
    }
}

/// A version of a model split by version went quiet for its `idle_timeout`: its windows
/// were closed, its series go (its drift state stays in the checkpoint).
pub struct VersionRetired<'a> {
    pub model: &'a str,
    pub version: &'a str,
    pub features: &'a [String],
    pub reference: &'a ReferenceIdentity,
}

impl InternalEvent for VersionRetired<'_> {
    fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        let mv = [self.model, self.version];
        for f in self.features {
            for test in StatTest::ALL {
                let _ = m.feature_drift_score.remove_label_values(&[self.model, self.version, f, test.name()]);
            }
            for source in ThresholdSource::ALL {
                let _ = m.feature_threshold_source.remove_label_values(&[self.model, self.version, f, source.as_str()]);
            }
            for g in [
                &m.feature_drift_threshold,
                &m.feature_drift_detected,
                &m.feature_missing_share,
                &m.feature_invalid_share,
                &m.feature_out_of_range_share,
                &m.feature_unseen_share,
                &m.feature_data_quality_failing,
            ] {
                let _ = g.remove_label_values(&[self.model, self.version, f]);
            }
        }
        for g in
            [&m.dataset_drift_share, &m.dataset_drift_detected, &m.window_events, &m.last_window_end_timestamp_seconds]
        {
            let _ = g.remove_label_values(&mv);
        }
        let _ = m.prediction_drift_detected.remove_label_values(&mv);
        let _ = m.reference_last_swap_timestamp_seconds.remove_label_values(&mv);
        let _ = m.model_data_quality_failing.remove_label_values(&mv);
        for c in [
            &m.windows_closed_total,
            &m.late_events_total,
            &m.drift_episodes_total,
            &m.invalid_values_total,
            &m.data_quality_incidents_total,
        ] {
            let _ = c.remove_label_values(&mv);
        }
        let _ = m.model_drifting.remove_label_values(&mv);
        let _ = m.reference_stale.remove_label_values(&mv);
        let r = self.reference;
        let info = [self.model, self.version, r.source.as_str(), v(r.version.as_deref()), r.short_digest()];
        let _ = m.reference_info.remove_label_values(&info);
        tracing::info!(model = self.model, version = self.version, "version idle: windows closed, series removed");
    }
}

/// How many versions of a model have open tracks.
pub struct LiveVersions<'a> {
    pub model: &'a str,
    pub versions: usize,
}

impl InternalEvent for LiveVersions<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.live_versions.with_label_values(&[self.model]).set(self.versions as i64);
    }
}
