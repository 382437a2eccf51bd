//! The dead-letter topic's producer, a worker of its own.

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{delivered, enqueue};
use crate::telemetry::events::DeadLetterNotProduced;
use crate::telemetry::Telemetry;

/// Bad messages go here as they came, with the reason in a `driftd-reason` header. A
/// worker of its own produces them, a batch per round trip: the consumer's loop only
/// queues them, and a dead-letter topic that is slow or missing holds no model back.
pub struct DeadLetter {
    tx: tokio::sync::mpsc::Sender<Letter>,
}

struct Letter {
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    reason: &'static str,
}

/// Bad messages waiting for the dead-letter topic; past it they are counted, not queued.
const DEAD_LETTER_QUEUE: usize = 10_000;

impl DeadLetter {
    /// Starts the worker (on the current runtime).
    pub fn start(producer: FutureProducer, topic: String, telemetry: Arc<Telemetry>) -> DeadLetter {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Letter>(DEAD_LETTER_QUEUE);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 1024 {
                    match rx.try_recv() {
                        Ok(l) => batch.push(l),
                        Err(_) => break,
                    }
                }
                let mut deliveries = Vec::with_capacity(batch.len());
                for l in &batch {
                    let headers = OwnedHeaders::new().insert(Header { key: "driftd-reason", value: Some(l.reason) });
                    let record = FutureRecord::<[u8], [u8]>::to(&topic).payload(&l.payload).headers(headers);
                    let record = match &l.key {
                        Some(k) => record.key(k.as_slice()),
                        None => record,
                    };
                    deliveries.push(enqueue(&producer, record).await);
                }
                for d in deliveries {
                    if let Err(error) = delivered(d).await {
                        telemetry.emit(DeadLetterNotProduced { error: &error });
                    }
                }
            }
        });
        DeadLetter { tx }
    }

    /// Queues a bad message; a full queue (the topic not keeping up) is counted instead.
    pub fn send(&self, payload: &[u8], key: Option<&[u8]>, reason: &'static str, telemetry: &Telemetry) {
        let letter = Letter { payload: payload.to_vec(), key: key.map(<[u8]>::to_vec), reason };
        if self.tx.try_send(letter).is_err() {
            telemetry.emit(DeadLetterNotProduced { error: &"the dead-letter queue is full" });
        }
    }
}
