//! What happens between driftd and its Kafka group: lag, consumer errors, partials,
//! assignments and revokes, backpressure, state taken over from the changelog, windows
//! another replica claimed, bad messages the dead-letter topic did not take.

use std::fmt::Display;

use super::{InternalEvent, Telemetry};

/// librdkafka's statistics: each assigned partition's lag.
pub struct ConsumerLag<'a> {
    pub stats: &'a rdkafka::Statistics,
}

impl InternalEvent for ConsumerLag<'_> {
    fn emit(self, t: &Telemetry) {
        let lag = &t.metrics.kafka_consumer_lag;
        lag.reset();
        for (topic, tp) in &self.stats.topics {
            for (partition, p) in &tp.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    lag.with_label_values(&[topic.as_str(), &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

/// The consumer reported an error.
pub struct ConsumerError<'a> {
    pub error: &'a rdkafka::error::KafkaError,
    /// librdkafka's account of it, when it gave one (which broker, what the SASL
    /// exchange or TLS handshake said).
    pub reason: Option<&'a str>,
}

impl InternalEvent for ConsumerError<'_> {
    fn emit(self, t: &Telemetry) {
        let code = match self.error.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => "other".to_string(),
        };
        t.metrics.kafka_consumer_errors_total.with_label_values(&[code.as_str()]).inc();
        // a stuck partition repeats one error many times a second: one line a second
        if let Some(suppressed) = t.consumer_errors.allow() {
            match self.reason {
                Some(reason) => tracing::warn!(error = %self.error, reason, code, suppressed, "kafka consumer"),
                None => tracing::warn!(error = %self.error, code, suppressed, "kafka consumer"),
            }
        }
    }
}

/// Parts of spread models' windows: sent or not by this replica, and what its merger made
/// of those it read (counts since the last emit).
pub struct Partials {
    pub sent: u64,
    pub unsent: u64,
    pub merged: crate::pipeline::merge::MergeCounts,
}

impl InternalEvent for Partials {
    fn emit(self, t: &Telemetry) {
        let m = self.merged;
        let outcomes = [
            ("sent", self.sent),
            ("unsent", self.unsent),
            ("merged", m.merged),
            ("duplicate", m.duplicate),
            ("late", m.late),
            ("refused", m.refused),
            ("undecodable", m.undecodable),
        ];
        for (outcome, n) in outcomes.into_iter().filter(|(_, n)| *n > 0) {
            t.metrics.partials_total.with_label_values(&[outcome]).inc_by(n);
        }
        if m.timed_out_windows > 0 {
            t.metrics.merge_timeouts_total.with_label_values::<&str>(&[]).inc_by(m.timed_out_windows);
        }
        if self.unsent > 0 {
            tracing::warn!(unsent = self.unsent, "partials not acknowledged by the partials topic: kept, retried");
        }
    }
}

/// The group gave this member partitions.
pub struct PartitionsAssigned {
    pub partitions: usize,
}

impl InternalEvent for PartitionsAssigned {
    fn emit(self, _: &Telemetry) {
        tracing::info!(partitions = self.partitions, "partitions assigned");
    }
}

/// The report topic's worker is full (`paused` partitions, `backlog` reports waiting),
/// or has room again (0, 0).
pub struct Backpressure {
    pub paused: usize,
    pub backlog: usize,
}

impl InternalEvent for Backpressure {
    fn emit(self, t: &Telemetry) {
        t.metrics.kafka_paused_partitions.set(self.paused as i64);
        if self.paused > 0 {
            tracing::warn!(
                partitions = self.paused,
                backlog = self.backlog,
                "the report topic is behind: input partitions paused until it takes more"
            );
        } else {
            tracing::info!("the report topic caught up: input partitions resumed");
        }
    }
}

/// What this replica holds after a rebalance: partitions by topic.
pub struct AssignmentHeld<'a> {
    pub by_topic: &'a std::collections::BTreeMap<String, i64>,
}

impl InternalEvent for AssignmentHeld<'_> {
    fn emit(self, t: &Telemetry) {
        let g = &t.metrics.kafka_assigned_partitions;
        g.reset();
        for (topic, n) in self.by_topic {
            g.with_label_values(&[topic.as_str()]).set(*n);
        }
    }
}

/// The group took partitions away; the windows holding their events were reported.
pub struct PartitionsRevoked {
    pub partitions: usize,
    pub windows: usize,
}

impl InternalEvent for PartitionsRevoked {
    fn emit(self, _: &Telemetry) {
        tracing::info!(partitions = self.partitions, windows = self.windows, "partitions revoked");
    }
}

/// The group took partitions away without a revoke (this member missed its session
/// timeout): their windows were dropped for the new owner to report.
pub struct PartitionsLost {
    pub partitions: usize,
    /// Open windows dropped (events only from the lost partitions).
    pub dropped: usize,
    /// Open windows reported (they mixed events of partitions still held).
    pub reported: usize,
}

impl InternalEvent for PartitionsLost {
    fn emit(self, _: &Telemetry) {
        tracing::warn!(
            partitions = self.partitions,
            dropped = self.dropped,
            reported = self.reported,
            "partitions lost (session timed out): their open windows go to the new owner"
        );
    }
}

/// The group moved partitions away in a graceful rebalance, with the state changelog on:
/// their windows go to the new owner whole.
pub struct PartitionsHandedOver {
    pub partitions: usize,
    /// Open windows handed over (events only from those partitions): dropped here, read
    /// again by the new owner from the offset committed now.
    pub handed: usize,
    /// Open windows reported (they mixed events of partitions still held).
    pub windows: usize,
}

impl InternalEvent for PartitionsHandedOver {
    fn emit(self, _: &Telemetry) {
        tracing::info!(
            partitions = self.partitions,
            handed = self.handed,
            reported = self.windows,
            "partitions revoked: their open windows are handed over to the new owner"
        );
    }
}

/// A model's state (window marks, drift state) was taken from the changelog, as another
/// replica left it.
pub struct StateTakenOver<'a> {
    pub model: &'a str,
    pub writer: &'a str,
}

impl InternalEvent for StateTakenOver<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::info!(model = %self.model, from = %self.writer, "state taken over from the changelog");
    }
}

/// A window closed here is another replica's to report (its claim holds every event).
pub struct WindowFenced<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub start_ms: i64,
    pub events: u64,
}

impl InternalEvent for WindowFenced<'_> {
    fn emit(self, t: &Telemetry) {
        let version = super::v(self.version);
        t.metrics.windows_fenced_total.with_label_values(&[self.model, version]).inc();
        tracing::info!(
            model = %self.model,
            version,
            window_start_ms = self.start_ms,
            events = self.events,
            "window not reported: another replica claimed it with every event it holds"
        );
    }
}

/// A bad message could not be produced to the dead-letter topic.
pub struct DeadLetterNotProduced<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for DeadLetterNotProduced<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.dead_letter_errors_total.with_label_values::<&str>(&[]).inc();
        if let Some(suppressed) = t.dead_letter_errors.allow() {
            tracing::warn!(error = %self.error, suppressed, "cannot produce to the dead-letter topic");
        }
    }
}
