//! The state changelog (`[state] changelog_topic`): each model's part of the checkpoint
//! (window marks, drift state) in a compacted topic keyed by model, the way Kafka Streams
//! backs its state stores. Every replica writes the models it changes and reads the topic
//! back: at start, and whenever the group assigns it input partitions, before their
//! messages are taken, so whichever replica gets a model continues its windows and its
//! episode where the last owner left them. The state directory stays a cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::Checkpoint;
use crate::config::Settings;
use crate::sinks::reports::TopicWorker;
use crate::telemetry::Telemetry;

/// One model's state as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The replica that wrote it (host, process, start).
    pub writer: String,
    /// When (Unix ms).
    pub at_ms: i64,
    pub state: Checkpoint,
}

pub struct Changelog {
    topic: String,
    writer: String,
    worker: TopicWorker,
    reader: Mutex<Reader>,
    /// Per model: the state last written (to write only changes), and when.
    sent: Mutex<HashMap<String, (Checkpoint, i64)>>,
    /// A write found the worker's queue full: some model's state is not in the topic yet.
    behind: std::sync::atomic::AtomicBool,
}

/// The changelog read so far: per model, its records merged (`Checkpoint::follow`) and
/// when another replica last wrote one; and where each partition is.
struct Reader {
    consumer: BaseConsumer,
    latest: BTreeMap<String, Merged>,
    assigned: bool,
}

struct Merged {
    record: Record,
    /// The newest record's time among those other replicas wrote (Unix ms).
    theirs_at: Option<i64>,
}

/// How long a read back may take before the replica goes on with what it has.
const READ_LIMIT: Duration = Duration::from_secs(10);

impl Changelog {
    pub fn start(settings: &Settings, topic: &str, telemetry: Arc<Telemetry>) -> anyhow::Result<Changelog> {
        let producer = crate::source::kafka::producer_config(settings)
            .set("enable.idempotence", "true")
            .create()
            .context("kafka: cannot create the changelog's producer")?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "driftd".into());
        let writer = format!("{host}-{}-{}", std::process::id(), crate::time::now_ms());
        let mut config = crate::source::kafka::producer_config(settings);
        // the reader is assigned every partition (no group membership) and commits nothing
        let consumer: BaseConsumer = config
            .remove("message.timeout.ms")
            .set("group.id", format!("driftd-changelog-{writer}"))
            .set("enable.auto.commit", "false")
            .create()
            .context("kafka: cannot create the changelog's reader")?;
        Ok(Changelog {
            topic: topic.to_string(),
            writer,
            worker: TopicWorker::start(producer, topic.to_string(), "changelog", telemetry),
            reader: Mutex::new(Reader { consumer, latest: BTreeMap::new(), assigned: false }),
            sent: Mutex::new(HashMap::new()),
            behind: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Writes the models whose state changed since they were last written.
    pub fn write(&self, checkpoint: &Checkpoint) {
        let now = crate::time::now_ms();
        let mut sent = self.sent.lock().expect("changelog lock");
        let mut behind = false;
        for name in checkpoint.model_names() {
            let state = checkpoint.of_model(&name);
            if sent.get(&name).is_some_and(|(last, _)| *last == state) {
                continue;
            }
            let record = Record { writer: self.writer.clone(), at_ms: now, state };
            let line = serde_json::to_string(&record).expect("a record serializes");
            if self.worker.try_send(&name, line) {
                sent.insert(name, (record.state, now));
            } else {
                behind = true;
                tracing::warn!(model = %name, "the changelog's queue is full: the model's state is written later");
            }
        }
        self.behind.store(behind, std::sync::atomic::Ordering::Release);
    }

    /// A mark of what has been written so far (for `taken_upto`).
    pub fn mark(&self) -> u64 {
        self.worker.handed()
    }

    /// Whether the topic holds every state written up to `mark` (so input offsets stored
    /// now cannot get ahead of the marks the next owner reads).
    pub fn taken_upto(&self, mark: u64) -> bool {
        !self.behind.load(std::sync::atomic::Ordering::Acquire) && self.worker.done_upto(mark)
    }

    /// Waits (up to `timeout`) until every record written is in the topic: before this
    /// replica hands a model over, so that the next owner reads its latest state.
    pub fn settle(&self, timeout: Duration) -> bool {
        self.worker.settle(timeout)
    }

    /// Reads the topic up to its end (as of now), and returns the newest record of each
    /// model that another replica wrote after this one last wrote it.
    pub fn catch_up(&self) -> Vec<Record> {
        let mut r = self.reader.lock().expect("changelog lock");
        if let Err(error) = r.read_to_end(&self.topic, &self.writer) {
            tracing::warn!(topic = %self.topic, %error, "cannot read the state changelog: going on with the local state");
        }
        let sent = self.sent.lock().expect("changelog lock");
        // a model another replica wrote since this one last wrote or took it (the merged
        // record: a later write of this replica's covers none of their marks)
        r.latest
            .iter()
            .filter(|(name, m)| m.theirs_at.is_some_and(|theirs| sent.get(*name).is_none_or(|(_, at)| theirs > *at)))
            .map(|(_, m)| m.record.clone())
            .collect()
    }

    /// Notes that the state of `records` was taken, and that `now` is this replica's state
    /// after it: only what changes after this is written (a replica that merely read a
    /// model's state writes nothing of it, so it never covers its owner's newer state).
    pub fn taken(&self, records: &[Record], now: &Checkpoint) {
        let mut sent = self.sent.lock().expect("changelog lock");
        for rec in records {
            for name in rec.state.model_names() {
                sent.insert(name.clone(), (now.of_model(&name), rec.at_ms));
            }
        }
    }
}

impl Reader {
    fn read_to_end(&mut self, topic: &str, me: &str) -> Result<(), String> {
        let deadline = Instant::now() + READ_LIMIT;
        let md = self.consumer.fetch_metadata(Some(topic), READ_LIMIT).map_err(|e| e.to_string())?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(format!("topic {topic:?} does not exist; create it (cleanup.policy=compact)"));
        }
        if !self.assigned {
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition_offset(topic, *p, Offset::Beginning).map_err(|e| e.to_string())?;
            }
            self.consumer.assign(&tpl).map_err(|e| e.to_string())?;
            self.assigned = true;
        }
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        for p in &partitions {
            let (_, high) = self.consumer.fetch_watermarks(topic, *p, READ_LIMIT).map_err(|e| e.to_string())?;
            ends.insert(*p, high);
        }
        let done = |c: &BaseConsumer, ends: &BTreeMap<i32, i64>| {
            let Ok(pos) = c.position() else { return false };
            ends.iter().all(|(p, high)| {
                *high == 0
                    || pos.find_partition(topic, *p).and_then(|e| e.offset().to_raw()).is_some_and(|o| o >= *high)
            })
        };
        while !done(&self.consumer, &ends) {
            if Instant::now() > deadline {
                return Err("not read to its end within 10 s".into());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let (Some(key), Some(payload)) = (m.key(), m.payload()) else { continue };
                    let Ok(rec) = serde_json::from_slice::<Record>(payload) else {
                        tracing::warn!(offset = m.offset(), "a changelog record that is not driftd's");
                        continue;
                    };
                    let key = String::from_utf8_lossy(key).into_owned();
                    let theirs = (rec.writer != me).then_some(rec.at_ms);
                    match self.latest.get_mut(&key) {
                        Some(known) => {
                            known.record.state.follow(rec.state);
                            (known.record.writer, known.record.at_ms) = (rec.writer, rec.at_ms);
                            known.theirs_at = theirs.or(known.theirs_at);
                        }
                        None => {
                            self.latest.insert(key, Merged { record: rec, theirs_at: theirs });
                        }
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => {}
            }
        }
        Ok(())
    }
}
