//! Inference logs from Kafka: the consumer's callbacks (rebalances, errors, statistics),
//! and the offsets stored by hand. What producers share with it (client settings, the
//! dead-letter topic) is the `kafka` module's.
//!
//! At least once without double counting: `enable.auto.offset.store=false`, and an offset
//! is stored only once every event below it is safe (see `pipeline::offsets`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::redact::scrub_options;
use crate::telemetry::events::{ConsumerLag, PartitionsAssigned};
use crate::telemetry::Telemetry;

/// The consumer driftd runs, with its callbacks.
pub type KafkaConsumer = StreamConsumer<ConsumerHooks>;

/// Partitions to commit: (topic, partition, offset).
pub type Offsets = Vec<(String, i32, i64)>;

/// Who is told when the group moves partitions.
pub trait PartitionListener: Send + Sync {
    /// These partitions are being taken away: report what must be reported, and return
    /// the offsets to commit before they go.
    fn revoking(&self, partitions: &[(String, i32)]) -> Offsets;

    /// These partitions were lost (the member missed its session timeout): another member
    /// owns them already and reads them from the committed offset, so nothing of theirs
    /// is reported or committed here.
    fn lost(&self, partitions: &[(String, i32)]);

    /// A partition of the partials topic was assigned; its records end at `end` (`Some(0)`:
    /// nothing to read back; `None`: unknown).
    fn internal_assigned(&self, _partition: i32, _end: Option<i64>) {}

    /// Partitions were assigned: before their messages are taken, the models' state is
    /// brought up to what the last owners wrote (the state changelog).
    fn assigned(&self) {}
}

/// The consumer's context: lag from librdkafka's statistics, and the rebalance callbacks.
pub struct ConsumerHooks {
    telemetry: Arc<Telemetry>,
    listener: Arc<dyn PartitionListener>,
    assigned: Arc<AtomicBool>,
    health: Arc<crate::health::ConsumerHealth>,
    /// Set when the consumer is closing: the open windows are kept, not reported, when
    /// the partitions go (the next start reads their events again).
    closing: AtomicBool,
    /// The partials topic (spread models), whose assigned partitions are read back first.
    internal_topic: Option<String>,
    /// `[kafka.options]`, whose credentials are scrubbed from what librdkafka says.
    options: std::collections::BTreeMap<String, String>,
}

impl ConsumerHooks {
    /// `assigned` is set once the group has given this member its partitions.
    pub fn new(
        telemetry: Arc<Telemetry>,
        listener: Arc<dyn PartitionListener>,
        assigned: Arc<AtomicBool>,
        health: Arc<crate::health::ConsumerHealth>,
    ) -> Self {
        ConsumerHooks {
            telemetry,
            listener,
            assigned,
            health,
            closing: AtomicBool::new(false),
            internal_topic: None,
            options: Default::default(),
        }
    }

    /// librdkafka's log lines and errors may echo a property: these options' credentials
    /// are scrubbed from them.
    pub fn with_options(mut self, options: &std::collections::BTreeMap<String, String>) -> Self {
        self.options = options.clone();
        self
    }

    /// Partitions of `topic` are the partials topic's.
    pub fn with_internal_topic(mut self, topic: Option<String>) -> Self {
        self.internal_topic = topic;
        self
    }

    /// The consumer's errors, counted and held against readiness.
    pub fn consumer_error(&self, error: &rdkafka::error::KafkaError) {
        self.telemetry.emit(crate::telemetry::events::ConsumerError { error, reason: None });
        self.health.error(error, false);
    }

    pub fn closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

impl ClientContext for ConsumerHooks {
    /// librdkafka's own log lines, into ours (target `librdkafka`; its `debug` option's
    /// lines at debug level).
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        let message = scrub_options(message, &self.options);
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
            L::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            L::Notice | L::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
            L::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn stats(&self, stats: rdkafka::Statistics) {
        self.telemetry.emit(ConsumerLag { stats: &stats });
        let brokers = stats.brokers.values().filter(|b| b.nodeid >= 0 && b.state == "UP");
        self.health.broker_silence(brokers.map(|b| b.rxidle));
    }

    /// librdkafka's client-level errors (all brokers down, authentication failed).
    /// Client-level errors: `reason` says what went wrong (a SASL login refused, a
    /// certificate not verified), which the code alone does not.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let reason = scrub_options(reason, &self.options);
        let reason = (!reason.is_empty()).then_some(reason.as_str());
        self.telemetry.emit(crate::telemetry::events::ConsumerError { error: &error, reason });
        let summary = error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown);
        match reason {
            Some(reason) => self.health.error(&format_args!("{error}: {reason}"), !summary),
            None => self.health.error(&error, !summary),
        }
    }
}

impl ConsumerContext for ConsumerHooks {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        if self.closing.load(Ordering::Relaxed) {
            return;
        }
        let revoked: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        // Runs inside our own poll: the pipeline is not in use elsewhere.
        for (topic, partition) in &revoked {
            tracing::debug!(topic, partition, lost = consumer.assignment_lost(), "revoked");
        }
        if consumer.assignment_lost() {
            // a commit would fail, and a report would repeat what the new owner reports
            self.listener.lost(&revoked);
            return;
        }
        let offsets = self.listener.revoking(&revoked);
        store_offsets(consumer, offsets);
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "commit on revoke");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Ok(held) = consumer.assignment() {
            let mut by_topic = std::collections::BTreeMap::new();
            for e in held.elements() {
                *by_topic.entry(e.topic().to_string()).or_insert(0) += 1;
            }
            self.telemetry.emit(crate::telemetry::events::AssignmentHeld { by_topic: &by_topic });
        }
        if let Rebalance::Assign(tpl) = rebalance {
            for e in tpl.elements() {
                tracing::debug!(topic = e.topic(), partition = e.partition(), "assigned");
            }
            if let Some(internal) = &self.internal_topic {
                for e in tpl.elements().iter().filter(|e| e.topic() == internal) {
                    let end = read_back_to(consumer, internal, e.partition());
                    self.listener.internal_assigned(e.partition(), end);
                }
            }
            if tpl.count() > 0 {
                self.listener.assigned();
            }
            self.telemetry.emit(PartitionsAssigned { partitions: tpl.count() });
            self.assigned.store(true, Ordering::Relaxed);
        }
    }
}

/// Where a partials-topic partition just assigned must be read back to: its end, or 0
/// when the group's committed offset is there already; `None` when unknown.
fn read_back_to<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str, partition: i32) -> Option<i64> {
    let timeout = Duration::from_secs(2);
    let (_, high) = consumer.fetch_watermarks(topic, partition, timeout).ok()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, timeout).ok()?;
    let at = committed.find_partition(topic, partition).and_then(|e| e.offset().to_raw()).unwrap_or(-1);
    Some(if at >= high { 0 } else { high })
}

/// Stores offsets for the next commit; a partition no longer assigned refuses the store,
/// and needs nothing.
pub fn store_offsets<C: Consumer<X>, X: ConsumerContext>(consumer: &C, offsets: Offsets) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset));
    }
    if tpl.count() > 0 {
        let _ = consumer.store_offsets(&tpl);
    }
}
