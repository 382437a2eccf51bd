//! The Prometheus registry: every metric's name, help and labels (DESIGN.md's contract,
//! listed in `docs/metrics.md`). Only `telemetry::events` sets or counts them.

use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Every metric's name and help, in registration order (the docs are checked against it).
    pub described: Vec<(String, String)>,
    pub(super) feature_drift_score: GaugeVec,
    pub(super) feature_drift_threshold: GaugeVec,
    pub(super) feature_threshold_source: IntGaugeVec,
    pub(super) feature_drift_detected: GaugeVec,
    pub(super) dataset_drift_share: GaugeVec,
    pub(super) dataset_drift_detected: GaugeVec,
    pub(super) window_events: GaugeVec,
    pub(super) windows_closed_total: IntCounterVec,
    pub(super) windows_fenced_total: IntCounterVec,
    pub(super) events_total: IntCounterVec,
    pub(super) events_reread_total: IntCounterVec,
    pub(super) decode_errors_total: IntCounterVec,
    pub(super) pairs_joined_total: IntCounterVec,
    pub(super) unpaired_total: IntCounterVec,
    pub(super) pairs_pending_rows: IntGaugeVec,
    pub(super) kafka_consumer_errors_total: IntCounterVec,
    pub(super) late_events_total: IntCounterVec,
    pub(super) kafka_consumer_lag: IntGaugeVec,
    pub(super) kafka_assigned_partitions: IntGaugeVec,
    pub(super) kafka_paused_partitions: IntGauge,
    pub(super) report_sink_errors_total: IntCounterVec,
    pub(super) last_window_end_timestamp_seconds: GaugeVec,
    pub(super) build_info: IntGaugeVec,
    pub(super) model_drifting: IntGaugeVec,
    pub(super) drift_episodes_total: IntCounterVec,
    pub(super) prediction_drift_detected: GaugeVec,
    pub(super) retrain_triggers_total: IntCounterVec,
    pub(super) retrain_pending: IntGauge,
    pub(super) retrain_target_paused: IntGaugeVec,
    pub(super) alerts_pending: IntGauge,
    pub(super) alerts_sent_total: IntCounterVec,
    pub(super) reference_info: IntGaugeVec,
    pub(super) reference_swaps_total: IntCounterVec,
    pub(super) state_write_errors_total: IntCounterVec,
    pub(super) reference_last_swap_timestamp_seconds: GaugeVec,
    pub(super) reference_stale: IntGaugeVec,
    pub(super) reference_errors_total: IntCounterVec,
    pub(super) live_versions: IntGaugeVec,
    pub(super) feature_missing_share: GaugeVec,
    pub(super) feature_invalid_share: GaugeVec,
    pub(super) feature_out_of_range_share: GaugeVec,
    pub(super) feature_unseen_share: GaugeVec,
    pub(super) feature_data_quality_failing: GaugeVec,
    pub(super) invalid_values_total: IntCounterVec,
    pub(super) unmonitored_fields_total: IntCounterVec,
    pub(super) model_data_quality_failing: IntGaugeVec,
    pub(super) data_quality_incidents_total: IntCounterVec,
    pub(super) partials_total: IntCounterVec,
    pub(super) merge_timeouts_total: IntCounterVec,
    pub(super) dead_letter_errors_total: IntCounterVec,
}

/// The registry, and what was registered in it.
struct Reg {
    registry: Registry,
    described: std::cell::RefCell<Vec<(String, String)>>,
}

impl Reg {
    fn register<C: prometheus::core::Collector + Clone + 'static>(&self, c: C, name: &str, help: &str) -> C {
        self.registry.register(Box::new(c.clone())).expect("registered once");
        self.described.borrow_mut().push((name.to_string(), help.to_string()));
        c
    }
}

fn gauge(r: &Reg, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    r.register(GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"), name, help)
}

fn int_gauge(r: &Reg, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    r.register(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"), name, help)
}

fn counter(r: &Reg, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    r.register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"), name, help)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Reg { registry: Registry::new(), described: Default::default() };
        let m = Metrics {
            feature_drift_score: gauge(
                &r,
                "driftd_feature_drift_score",
                "Drift score of a feature in the last closed window: the p-value of a test or the distance.",
                &["model", "model_version", "feature", "stattest"],
            ),
            feature_drift_threshold: gauge(
                &r,
                "driftd_feature_drift_threshold",
                "Threshold the feature's drift score is held against.",
                &["model", "model_version", "feature"],
            ),
            feature_threshold_source: int_gauge(
                &r,
                "driftd_feature_threshold_source",
                "How the feature's threshold was set in the last closed window (value 1): calibrated, effect_floor, fixed, configured, too_few_values, uncalibrated.",
                &["model", "model_version", "feature", "source"],
            ),
            feature_drift_detected: gauge(
                &r,
                "driftd_feature_drift_detected",
                "1 when the feature drifted in the last closed window, else 0.",
                &["model", "model_version", "feature"],
            ),
            dataset_drift_share: gauge(
                &r,
                "driftd_dataset_drift_share",
                "Share of the model's features that drifted in the last closed window.",
                &["model", "model_version"],
            ),
            dataset_drift_detected: gauge(
                &r,
                "driftd_dataset_drift_detected",
                "1 when the last closed window showed dataset drift, else 0.",
                &["model", "model_version"],
            ),
            window_events: gauge(
                &r,
                "driftd_window_events",
                "Events in the model's last closed window.",
                &["model", "model_version"],
            ),
            windows_closed_total: counter(
                &r,
                "driftd_windows_closed_total",
                "Windows closed and reported.",
                &["model", "model_version"],
            ),
            windows_fenced_total: counter(
                &r,
                "driftd_windows_fenced_total",
                "Windows closed here and not reported: another replica claimed them with every event they held (state changelog on).",
                &["model", "model_version"],
            ),
            events_total: counter(&r, "driftd_events_total", "Inference events accepted.", &["model"]),
            events_reread_total: counter(
                &r,
                "driftd_events_reread_total",
                "Of driftd_events_total, events at an offset this process had read before (a partition read again after a rebalance or a lost assignment): the difference is the distinct events.",
                &["model"],
            ),
            decode_errors_total: counter(
                &r,
                "driftd_decode_errors_total",
                "Messages that could not be used, by reason.",
                &["reason"],
            ),
            pairs_joined_total: counter(
                &r,
                "driftd_pairs_joined_total",
                "Open Inference Protocol requests and responses joined by request id (two halves each).",
                &[],
            ),
            unpaired_total: counter(
                &r,
                "driftd_unpaired_total",
                "Open Inference Protocol halves taken without their other (not come within pair_timeout, no request id, pushed out by max_pending_rows, or at the end of input), by side: a request's rows have no prediction, a response's only the prediction.",
                &["side"],
            ),
            pairs_pending_rows: int_gauge(
                &r,
                "driftd_pairs_pending_rows",
                "Rows of Open Inference Protocol halves waiting for their other.",
                &[],
            ),
            kafka_consumer_errors_total: counter(
                &r,
                "driftd_kafka_consumer_errors_total",
                "Errors the Kafka consumer reported (broker down, authentication, a partition it cannot fetch), by librdkafka's error code.",
                &["code"],
            ),
            late_events_total: counter(
                &r,
                "driftd_late_events_total",
                "Events that arrived after one of their windows had closed.",
                &["model", "model_version"],
            ),
            kafka_consumer_lag: int_gauge(
                &r,
                "driftd_kafka_consumer_lag",
                "Messages between the consumer's position and the partition's high watermark.",
                &["topic", "partition"],
            ),
            kafka_assigned_partitions: int_gauge(
                &r,
                "driftd_kafka_assigned_partitions",
                "Partitions the group assigned this replica, by topic (a rebalance is over when the replicas' sum is the topic's partition count).",
                &["topic"],
            ),
            report_sink_errors_total: counter(
                &r,
                "driftd_report_sink_errors_total",
                "Lines a sink could not take, by sink: file, topic (window reports), changelog (model state).",
                &["sink"],
            ),
            kafka_paused_partitions: {
                let (name, help) = (
                    "driftd_kafka_paused_partitions",
                    "Input partitions paused because the report topic is behind (backpressure).",
                );
                r.register(IntGauge::with_opts(Opts::new(name, help)).expect("valid metric"), name, help)
            },
            last_window_end_timestamp_seconds: gauge(
                &r,
                "driftd_last_window_end_timestamp_seconds",
                "End of the model's last closed window, in Unix seconds.",
                &["model", "model_version"],
            ),
            build_info: int_gauge(&r, "driftd_build_info", "driftd build; the value is 1.", &["version"]),
            model_drifting: int_gauge(
                &r,
                "driftd_model_drifting",
                "1 while the model is in the drifting state (after fire_after drifted windows, until resolve_after clean ones), else 0.",
                &["model", "model_version"],
            ),
            drift_episodes_total: counter(
                &r,
                "driftd_drift_episodes_total",
                "Times the model entered the drifting state.",
                &["model", "model_version"],
            ),
            prediction_drift_detected: gauge(
                &r,
                "driftd_prediction_drift_detected",
                "1 when the model's prediction drifted in the last closed window, else 0.",
                &["model", "model_version"],
            ),
            retrain_triggers_total: counter(
                &r,
                "driftd_retrain_triggers_total",
                "Retrain requests by outcome: delivered, duplicate (the target already had the run), failed, dry_run, cooldown (held back).",
                &["model", "outcome"],
            ),
            retrain_target_paused: int_gauge(
                &r,
                "driftd_retrain_target_paused",
                "1 when the retrain target took the model's last request but will not run it (an Airflow DAG that is paused), else 0.",
                &["model"],
            ),
            retrain_pending: {
                let (name, help) =
                    ("driftd_retrain_outbox_pending", "Retrain requests in the outbox waiting for delivery.");
                r.register(IntGauge::with_opts(Opts::new(name, help)).expect("valid metric"), name, help)
            },
            alerts_pending: {
                let (name, help) = (
                    "driftd_alert_outbox_pending",
                    "Alert notifications in the alert outbox waiting for delivery (retrying, or held by a rate limit).",
                );
                r.register(IntGauge::with_opts(Opts::new(name, help)).expect("valid metric"), name, help)
            },
            alerts_sent_total: counter(
                &r,
                "driftd_alerts_sent_total",
                "Alert notifications by receiver and outcome: sent, failed (refused, or given up after 24 h), rate_limited (held back by max_per_minute, counted once).",
                &["receiver", "outcome"],
            ),
            reference_info: int_gauge(
                &r,
                "driftd_reference_info",
                "The reference in use (value 1): its source, registry version and digest (first 12 hex digits).",
                &["model", "model_version", "source", "reference_version", "digest"],
            ),
            reference_swaps_total: counter(
                &r,
                "driftd_reference_swaps_total",
                "Times a new reference was swapped in.",
                &["model", "model_version"],
            ),
            state_write_errors_total: counter(
                &r,
                "driftd_state_write_errors_total",
                "Writes to the state directory that failed, by file: checkpoint, outbox, alerts (each retried; /readyz is 503 while the checkpoint cannot be written), checkpoint_corrupt (set aside at start), state_dir (deleted under the daemon: made again), reports_file (deleted: opened again).",
                &["file"],
            ),
            reference_last_swap_timestamp_seconds: gauge(
                &r,
                "driftd_reference_last_swap_timestamp_seconds",
                "When the reference in use was swapped in (or loaded at start), in Unix seconds.",
                &["model", "model_version"],
            ),
            reference_stale: int_gauge(
                &r,
                "driftd_reference_stale",
                "1 while the reference's source fails and the reference in use may be out of date, else 0.",
                &["model", "model_version"],
            ),
            reference_errors_total: counter(
                &r,
                "driftd_reference_errors_total",
                "Failed looks at a reference's source, by reason: unreachable, not_found, unreadable, schema_mismatch.",
                &["model", "reason"],
            ),
            live_versions: int_gauge(
                &r,
                "driftd_live_versions",
                "Versions of the model with windows open now (models split by version).",
                &["model"],
            ),
            feature_missing_share: gauge(
                &r,
                "driftd_feature_missing_share",
                "Share of the last closed window's events without a value for the feature (null, NaN, or the field absent).",
                &["model", "model_version", "feature"],
            ),
            feature_invalid_share: gauge(
                &r,
                "driftd_feature_invalid_share",
                "Share of the last closed window's events whose value for the feature had the wrong type (text that is no number, for a numerical feature).",
                &["model", "model_version", "feature"],
            ),
            feature_out_of_range_share: gauge(
                &r,
                "driftd_feature_out_of_range_share",
                "Share of the last closed window's events with a number outside the reference's range (its underflow and overflow bins).",
                &["model", "model_version", "feature"],
            ),
            feature_unseen_share: gauge(
                &r,
                "driftd_feature_unseen_share",
                "Share of the last closed window's events with a category the reference never had.",
                &["model", "model_version", "feature"],
            ),
            feature_data_quality_failing: gauge(
                &r,
                "driftd_feature_data_quality_failing",
                "1 when the feature broke the model's data-quality rule in the last closed window, else 0.",
                &["model", "model_version", "feature"],
            ),
            invalid_values_total: counter(
                &r,
                "driftd_invalid_values_total",
                "Feature values of the wrong type (text that is no number, for a numerical feature), not counted as values.",
                &["model", "model_version"],
            ),
            unmonitored_fields_total: counter(
                &r,
                "driftd_unmonitored_fields_total",
                "Fields the model's messages carried that it does not monitor, one per message and field.",
                &["model"],
            ),
            model_data_quality_failing: int_gauge(
                &r,
                "driftd_model_data_quality_failing",
                "1 while the model's windows break its data-quality rule (drift is not judged meanwhile), else 0.",
                &["model", "model_version"],
            ),
            data_quality_incidents_total: counter(
                &r,
                "driftd_data_quality_incidents_total",
                "Times the model's data started breaking its data-quality rule.",
                &["model", "model_version"],
            ),
            partials_total: counter(
                &r,
                "driftd_partials_total",
                "Parts of spread models' windows, by what became of them: sent, unsent (kept to retry), \
                 and where merged: merged, duplicate, late, refused, undecodable.",
                &["outcome"],
            ),
            merge_timeouts_total: counter(
                &r,
                "driftd_merge_timeouts_total",
                "Spread models' windows merged without every input partition, after merge_timeout.",
                &[],
            ),
            dead_letter_errors_total: counter(
                &r,
                "driftd_dead_letter_errors_total",
                "Bad messages that could not be produced to the dead-letter topic (its queue full, or not acknowledged).",
                &[],
            ),
            described: r.described.into_inner(),
            registry: r.registry,
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for e in crate::pipeline::DecodeError::ALL {
            m.decode_errors_total.with_label_values(&[e.reason()]);
        }
        for side in ["request", "response"] {
            m.unpaired_total.with_label_values(&[side]);
        }
        m.pairs_joined_total.with_label_values::<&str>(&[]);
        m.pairs_pending_rows.with_label_values::<&str>(&[]);
        m
    }

    /// The exposition text for `/metrics`. A pooled model's series carry
    /// `model_version=""`, which Prometheus reads as no such label; it is left out, so
    /// they read as they always did.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("metrics encode");
        let text = String::from_utf8(buf).expect("metrics are utf-8");
        drop_empty_label(&text, "model_version")
    }
}

/// The text without `name=""` pairs. A label value in the exposition escapes its quotes,
/// so the sequence can only be a label pair.
fn drop_empty_label(text: &str, name: &str) -> String {
    let pair = format!("{name}=\"\"");
    text.replace(&format!(",{pair}"), "").replace(&format!("{{{pair},"), "{").replace(&format!("{{{pair}}}"), "")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::Metrics;

    #[test]
    fn an_empty_version_label_is_left_out() {
        let m = Metrics::new();
        m.model_drifting.with_label_values(&["a", ""]).set(1);
        m.model_drifting.with_label_values(&["a", "2"]).set(0);
        m.live_versions.with_label_values(&["a"]).set(1);
        let text = m.render();
        assert!(text.contains("driftd_model_drifting{model=\"a\"} 1"), "{text}");
        assert!(text.contains("driftd_model_drifting{model=\"a\",model_version=\"2\"} 0"), "{text}");
        assert_eq!(super::drop_empty_label("x{model_version=\"\"} 1", "model_version"), "x 1");
        assert_eq!(super::drop_empty_label("x{model_version=\"\",a=\"b\"} 1", "model_version"), "x{a=\"b\"} 1");
    }

    #[test]
    fn every_metric_is_documented() {
        let doc = include_str!("../../docs/metrics.md");
        let documented: BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|n| n.starts_with("driftd_"))
            .collect();
        let m = Metrics::new();
        let registered: BTreeSet<&str> = m.described.iter().map(|(n, _)| n.as_str()).collect();
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "undocumented {undocumented:?}, documented but absent {unknown:?}"
        );
        assert!(m.described.iter().all(|(_, help)| !help.is_empty()));
    }
}
