//! A topic fed line by line by a worker of its own (the report topic, the state
//! changelog).

use std::sync::{Arc, Mutex};

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc::error::TrySendError;

use super::{delivered, enqueue};
use crate::telemetry::events::ReportNotPublished;
use crate::telemetry::Telemetry;

/// A topic fed by a worker of its own (the report topic, the state changelog): the
/// consumer's loop hands it (key, line) and goes on, so a topic that is slow or missing
/// holds no model back. Lines handed over and not yet acknowledged are `in_flight` (the
/// report sink keeps them in the checkpoint, so a crash republishes them).
pub struct TopicWorker {
    tx: tokio::sync::mpsc::Sender<(String, String)>,
    in_flight: Arc<Mutex<Vec<String>>>,
    /// Lines taken by `try_send`, and lines the worker is done with (acknowledged or
    /// failed); the worker takes them in order, so `done >= n` means the first n are done.
    handed: std::sync::atomic::AtomicU64,
    done: Arc<std::sync::atomic::AtomicU64>,
}

/// Lines waiting for the topic; past it the loop waits for room (backpressure).
const TOPIC_QUEUE: usize = 1_000;

impl TopicWorker {
    /// Starts the worker (on the current runtime); `sink` names it in the failures.
    pub fn start(
        producer: FutureProducer,
        topic: String,
        sink: &'static str,
        telemetry: Arc<Telemetry>,
    ) -> TopicWorker {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String)>(TOPIC_QUEUE);
        let in_flight = Arc::new(Mutex::new(Vec::new()));
        let pending = in_flight.clone();
        let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let finished = done.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(next) = rx.try_recv() {
                    batch.push(next);
                }
                let mut deliveries = Vec::with_capacity(batch.len());
                for (model, line) in &batch {
                    let record = FutureRecord::to(&topic).key(model.as_str()).payload(line.as_str());
                    deliveries.push(enqueue(&producer, record).await);
                }
                for ((_, line), d) in batch.iter().zip(deliveries) {
                    if let Err(error) = delivered(d).await {
                        telemetry.emit(ReportNotPublished { sink, error: &format!("{topic}: {error}") });
                    }
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(i) = p.iter().position(|l| l == line) {
                        p.remove(i);
                    }
                    finished.fetch_add(1, std::sync::atomic::Ordering::Release);
                }
            }
        });
        TopicWorker { tx, in_flight, handed: std::sync::atomic::AtomicU64::new(0), done }
    }

    /// Hands a line over without waiting; false when the queue is full.
    /// Lines handed over and not yet acknowledged, shared (the checkpoint keeps them).
    pub fn in_flight(&self) -> Arc<Mutex<Vec<String>>> {
        self.in_flight.clone()
    }

    /// Hands over a line its caller already counts in flight (`in_flight`); a full queue
    /// gives it back.
    pub fn hand_over(&self, key: String, line: String) -> Result<(), TrySendError<(String, String)>> {
        self.tx.try_send((key, line))
    }

    pub fn try_send(&self, key: &str, line: String) -> bool {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).push(line.clone());
        let sent = self.tx.try_send((key.to_string(), line.clone())).is_ok();
        if sent {
            self.handed.fetch_add(1, std::sync::atomic::Ordering::Release);
        } else {
            let mut f = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = f.iter().rposition(|l| *l == line) {
                f.remove(i);
            }
        }
        sent
    }
}

impl TopicWorker {
    /// How many lines `try_send` has handed over so far: a mark for `done_upto`.
    pub fn handed(&self) -> u64 {
        self.handed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether the worker is done with the first `mark` lines.
    pub fn done_upto(&self, mark: u64) -> bool {
        self.done.load(std::sync::atomic::Ordering::Acquire) >= mark
    }

    /// Waits (blocking, up to `timeout`) until every line handed over is acknowledged or
    /// failed; false when some are still in flight.
    pub fn settle(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
