//! What driftd's Kafka clients share, consumers and producers alike: the clients'
//! settings (`[kafka.options]` and the security they carry), an error that names the
//! client librdkafka would not create, records handed to a producer and their
//! acknowledgements (`produce.rs`), and the producers that run as workers of their own:
//! the dead-letter topic's (`dead_letter.rs`) and a topic fed line by line (the report
//! topic, the state changelog: `topic_worker.rs`). The consumer itself is `source`'s.

use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

use crate::config::Settings;
use crate::redact::scrub_options;

mod dead_letter;
mod produce;
mod topic_worker;

pub use dead_letter::DeadLetter;
pub use produce::{delivered, enqueue};
pub use topic_worker::TopicWorker;

/// What librdkafka said when it would not create a client, as an error naming `what`:
/// its text may echo a property, so credentials are scrubbed from it.
pub fn refused<'a>(settings: &'a Settings, what: &'a str) -> impl FnOnce(KafkaError) -> anyhow::Error + 'a {
    move |e| anyhow::anyhow!("kafka: cannot create {what}: {}", scrub_options(&e.to_string(), &settings.kafka.options))
}

/// The consumer group's settings; `[kafka.options]` go last, as they are.
pub fn consumer_config(settings: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka.brokers)
        .set("group.id", &settings.kafka.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        // incremental rebalancing: a member joining or leaving takes only the partitions
        // that move, so the windows of the partitions that stay are not cut; but requests
        // and responses joined across topics need partition i of each on one member,
        // which only the range assignor promises (docs/model-servers.md)
        .set(
            "partition.assignment.strategy",
            if settings.kafka.pairs_across_topics() { "range" } else { "cooperative-sticky" },
        )
        // lag for the metrics, and whether the brokers answer (an outage is not a quiet
        // model: its windows are not cut by the idle timeout)
        .set("statistics.interval.ms", "1000")
        // librdkafka pauses a partition's fetching for fetch.queue.backoff.ms (1 s by
        // default) whenever its local queue is full; a consumer that does real work per
        // message then idles waiting for it. Short pauses keep the queue fed.
        .set("fetch.queue.backoff.ms", "10");
    for (k, v) in &settings.kafka.options {
        c.set(k, v);
    }
    c
}

/// The producer's settings (report topic, dead letters): `[kafka.options]` without the
/// consumer-only keys, which would make the producer refuse to start.
pub fn producer_config(settings: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka.brokers)
        // a record the broker does not take (a missing topic, an ACL) fails in 30 s, not
        // librdkafka's 300 s: what waits for it is not held that long
        .set("message.timeout.ms", "30000");
    for (k, v) in &settings.kafka.options {
        if !k.starts_with("session.") && !k.starts_with("group.") && !k.starts_with("auto.offset") {
            c.set(k, v);
        }
    }
    c
}
