//! The partials topic (spread models, see `pipeline::merge`): its setup from the topics'
//! metadata, and the producer that sends partials, progress and done records.
//!
//! The producer is idempotent (`enable.idempotence`): a retry inside librdkafka neither
//! duplicates nor reorders a record, so a progress record never overtakes the partials
//! before it. Not transactional: the input offsets are stored only after the partials are
//! acknowledged, and a partial sent twice (a crash before the offsets were committed) is
//! made again identical and kept once by the merger, so transactions would add a broker
//! feature to depend on and nothing to the count.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::config::Settings;
use crate::kafka::{delivered, enqueue, producer_config};
use crate::pipeline::merge::MergeSetup;
use crate::pipeline::merge::Outgoing;

/// How long a record may wait for the broker before it counts as not sent (and is kept
/// to be sent again): short, so a missing topic or a broker away does not hold the loop.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PartialsOut {
    producer: FutureProducer,
    topic: String,
}

/// Whether any model is spread over partitions, and the key that says so.
pub fn spread_models(settings: &Settings) -> Vec<String> {
    settings
        .model_configs()
        .map(|models| models.into_iter().filter(|m| m.spread).map(|m| m.name).collect())
        .unwrap_or_default()
}

impl PartialsOut {
    /// The producer, and the merge setup from the metadata of the input topics and the
    /// partials topic (which must exist: its partitions decide which replica merges which
    /// model).
    pub async fn start(settings: &Settings, topic: &str) -> anyhow::Result<(PartialsOut, MergeSetup)> {
        let producer: FutureProducer = producer_config(settings)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
            .set("linger.ms", "5")
            .create()
            .map_err(crate::kafka::refused(settings, "the partials producer"))?;
        let client = producer.clone();
        let inputs = settings.kafka.topics.clone();
        let internal = topic.to_string();
        let metadata = tokio::task::spawn_blocking(move || {
            client.client().fetch_metadata(None, Duration::from_secs(10)).map(|md| {
                let partitions = |name: &str| {
                    md.topics()
                        .iter()
                        .find(|t| t.name() == name && t.error().is_none())
                        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<i32>>())
                };
                let inputs: Vec<(String, Vec<i32>)> =
                    inputs.iter().map(|t| (t.clone(), partitions(t).unwrap_or_default())).collect();
                (inputs, partitions(&internal))
            })
        })
        .await?
        .context("kafka: cannot read the topics' metadata")?;
        let (inputs, internal) = metadata;
        let Some(internal) = internal.filter(|p| !p.is_empty()) else {
            anyhow::bail!(
                "config kafka.partials_topic: topic {topic:?} does not exist; create it (one partition per replica \
                 or more; records are kept until their window is merged, so its retention must exceed the longest \
                 window)"
            );
        };
        let mut all = Vec::new();
        for (name, partitions) in inputs {
            if partitions.is_empty() {
                tracing::warn!(topic = %name, "no partitions in the metadata: spread windows will wait merge_timeout");
            }
            all.extend(partitions.into_iter().map(|p| (name.clone(), p)));
        }
        let setup = MergeSetup {
            topic: topic.to_string(),
            partitions: internal.len() as i32,
            inputs: all,
            timeout: settings.kafka.merge_timeout.map_or(Duration::from_secs(30), |d| d.get()),
        };
        Ok((PartialsOut { producer, topic: topic.to_string() }, setup))
    }

    /// Sends the records, in order, and waits for the broker's acknowledgements; returns
    /// those not acknowledged (to keep and send again).
    pub async fn send(&self, records: Vec<Outgoing>) -> Vec<Outgoing> {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let record =
                FutureRecord::<str, [u8]>::to(&self.topic).partition(r.partition).key(&r.model).payload(&r.payload);
            let delivery = enqueue(&self.producer, record).await;
            pending.push((r, delivery));
        }
        let mut unsent = Vec::new();
        for (r, delivery) in pending {
            if delivered(delivery).await.is_err() {
                unsent.push(r);
            }
        }
        unsent
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn flush(&self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
