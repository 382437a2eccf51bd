//! The state changelog (`[state] changelog_topic`): each model's part of the checkpoint
//! (window marks, drift state) in a compacted topic keyed by model, the way Kafka Streams
//! backs its state stores. Every replica writes the models it changes and reads the topic
//! back: at start, and whenever the group assigns it input partitions, before their
//! messages are taken, so whichever replica gets a model continues its windows and its
//! episode where the last owner left them. The state directory stays a cache.
//!
//! A record also carries the windows its writer just closed ([`Claim`]s): with the
//! changelog on, a report waits until its claim has been read back ([`Changelog::decide`]),
//! and is not published when another replica claimed the same window with every event of
//! it (a partition the group gave to two members at once; see `docs/faults.md`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::Checkpoint;
use crate::config::Settings;
use crate::kafka::TopicWorker;
use crate::telemetry::Telemetry;

/// One model's state as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The replica that wrote it (host, process, start).
    pub writer: String,
    /// When (Unix ms).
    pub at_ms: i64,
    pub state: Checkpoint,
    /// Windows of the model this writer closed since its last record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
}

/// A window a replica closed and is about to report, with what it holds: which events
/// (per input partition, the first and last offset among them) and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub events: u64,
    /// Per input partition: topic, partition, first and last offset.
    pub offsets: Vec<(String, i32, i64, i64)>,
}

impl Claim {
    fn key(&self) -> ClaimKey {
        (self.model.clone(), self.version.clone(), self.start_ms, self.end_ms)
    }

    /// Whether this claim holds every event of `other` (the same window): as many events
    /// or more, and in each of its partitions a span of offsets around `other`'s.
    pub fn covers(&self, other: &Claim) -> bool {
        self.key() == other.key()
            && self.events >= other.events
            && other.offsets.iter().all(|(topic, partition, lo, hi)| {
                self.offsets.iter().any(|(t, p, l, h)| t == topic && p == partition && l <= lo && h >= hi)
            })
    }
}

/// A window: model, version, start and end.
type ClaimKey = (String, Option<String>, i64, i64);

/// A claim as read back: who made it, and its place among the claims read (the
/// changelog's order within the model's partition).
struct Seen {
    writer: String,
    claim: Claim,
    seq: u64,
}

/// How long claims read back are remembered (a report is decided within seconds).
const CLAIM_MEMORY: Duration = Duration::from_secs(600);

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
    /// Claims read back, by window, and when each window's first came (to forget them).
    claims: HashMap<ClaimKey, Vec<Seen>>,
    claimed: VecDeque<(Instant, ClaimKey)>,
    seq: u64,
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
        let producer = crate::kafka::producer_config(settings)
            .set("enable.idempotence", "true")
            .create()
            .map_err(crate::kafka::refused(settings, "the changelog's producer"))?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "driftd".into());
        let writer = format!("{host}-{}-{}", std::process::id(), crate::time::now_ms());
        let mut config = crate::kafka::producer_config(settings);
        // the reader is assigned every partition (no group membership) and commits nothing
        let consumer: BaseConsumer = config
            .remove("message.timeout.ms")
            .set("group.id", format!("driftd-changelog-{writer}"))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(crate::kafka::refused(settings, "the changelog's reader"))?;
        Ok(Changelog {
            topic: topic.to_string(),
            writer,
            worker: TopicWorker::start(producer, topic.to_string(), "changelog", telemetry),
            reader: Mutex::new(Reader {
                consumer,
                latest: BTreeMap::new(),
                assigned: false,
                claims: HashMap::new(),
                claimed: VecDeque::new(),
                seq: 0,
            }),
            sent: Mutex::new(HashMap::new()),
            behind: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Writes the models whose state changed since they were last written, with the
    /// windows of theirs just closed.
    pub fn write(&self, checkpoint: &Checkpoint, claims: &[Claim]) {
        let now = crate::time::now_ms();
        let mut sent = self.sent.lock().expect("changelog lock");
        let mut behind = false;
        let mut names = checkpoint.model_names();
        names.extend(claims.iter().map(|c| c.model.clone()));
        for name in names {
            let state = checkpoint.of_model(&name);
            let claims: Vec<Claim> = claims.iter().filter(|c| c.model == name).cloned().collect();
            if claims.is_empty() && sent.get(&name).is_some_and(|(last, _)| *last == state) {
                continue;
            }
            let record = Record { writer: self.writer.clone(), at_ms: now, state, claims };
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

    /// Decides each claim this replica made, from the claims read back so far (what the
    /// topic holds now is read first, without waiting): `None` while the claim itself has
    /// not been read back (claims before it may be missing), `Some(true)` when another
    /// replica's claim holds every event of it and either holds more or came first (the
    /// window is theirs to report), `Some(false)` when it is this replica's.
    pub fn decide(&self, mine: &[Claim]) -> Vec<Option<bool>> {
        let mut r = self.reader.lock().expect("changelog lock");
        if let Err(error) = r.read_available(&self.writer) {
            tracing::debug!(topic = %self.topic, %error, "cannot read the state changelog's claims");
        }
        mine.iter().map(|claim| r.fenced(&self.writer, claim)).collect()
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
                    let m = m.detach();
                    self.take(&m, me)
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => {}
            }
        }
        Ok(())
    }

    /// Takes what the topic holds now, without waiting (at most a few thousand records).
    fn read_available(&mut self, me: &str) -> Result<(), String> {
        if !self.assigned {
            return Err("not read yet".into());
        }
        for _ in 0..4096 {
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(m)) => {
                    let m = m.detach();
                    self.take(&m, me)
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => break,
            }
        }
        Ok(())
    }

    /// One record: merged into its model's state; its claims remembered in order.
    fn take(&mut self, m: &rdkafka::message::OwnedMessage, me: &str) {
        let (Some(key), Some(payload)) = (m.key(), m.payload()) else { return };
        let Ok(mut rec) = serde_json::from_slice::<Record>(payload) else {
            tracing::warn!(offset = m.offset(), "a changelog record that is not driftd's");
            return;
        };
        let now = Instant::now();
        while self.claimed.front().is_some_and(|(at, _)| now.duration_since(*at) > CLAIM_MEMORY) {
            if let Some((_, key)) = self.claimed.pop_front() {
                self.claims.remove(&key);
            }
        }
        for claim in std::mem::take(&mut rec.claims) {
            self.seq += 1;
            let key = claim.key();
            let seen = self.claims.entry(key.clone()).or_default();
            if seen.is_empty() {
                self.claimed.push_back((now, key));
            }
            seen.push(Seen { writer: rec.writer.clone(), claim, seq: self.seq });
        }
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

    fn fenced(&self, me: &str, mine: &Claim) -> Option<bool> {
        fenced(self.claims.get(&mine.key())?, me, mine)
    }
}

/// See [`Changelog::decide`]: `seen` are the window's claims read back, in order.
fn fenced(seen: &[Seen], me: &str, mine: &Claim) -> Option<bool> {
    let own = seen.iter().find(|s| s.writer == me && s.claim == *mine)?;
    Some(seen.iter().any(|s| s.writer != me && s.claim.covers(mine) && (s.seq < own.seq || !mine.covers(&s.claim))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(events: u64, offsets: &[(i32, i64, i64)]) -> Claim {
        Claim {
            model: "m".into(),
            version: None,
            start_ms: 0,
            end_ms: 3_600_000,
            events,
            offsets: offsets.iter().map(|(p, lo, hi)| ("in".to_string(), *p, *lo, *hi)).collect(),
        }
    }

    fn seen(order: &[(&str, &Claim)]) -> Vec<Seen> {
        order
            .iter()
            .enumerate()
            .map(|(i, (w, c))| Seen { writer: w.to_string(), claim: (*c).clone(), seq: i as u64 })
            .collect()
    }

    #[test]
    fn a_claim_covers_the_same_window_with_its_events() {
        let whole = claim(100, &[(0, 10, 200)]);
        assert!(whole.covers(&whole));
        assert!(whole.covers(&claim(40, &[(0, 120, 200)])), "a later pane's window");
        assert!(!claim(40, &[(0, 120, 200)]).covers(&whole));
        assert!(!whole.covers(&claim(100, &[(1, 10, 200)])), "another partition");
        assert!(!whole.covers(&claim(100, &[(0, 10, 201)])), "an offset past its span");
        assert!(!whole.covers(&claim(101, &[(0, 10, 200)])), "more events");
        assert!(!claim(100, &[(0, 10, 200)]).covers(&claim(60, &[(0, 10, 100), (1, 0, 5)])), "a partition it lacks");
        let mut other_window = whole.clone();
        other_window.start_ms += 1;
        assert!(!whole.covers(&other_window));
    }

    #[test]
    fn the_first_of_equal_claims_reports_and_a_covered_claim_yields() {
        let whole = claim(100, &[(0, 10, 200)]);
        let part = claim(40, &[(0, 120, 200)]);
        // equal claims: the first in the changelog reports, the other does not
        let order = seen(&[("a", &whole), ("b", &whole)]);
        assert_eq!(fenced(&order, "a", &whole), Some(false));
        assert_eq!(fenced(&order, "b", &whole), Some(true));
        // a partial window yields to a whole one, whichever came first
        for order in [seen(&[("a", &whole), ("b", &part)]), seen(&[("b", &part), ("a", &whole)])] {
            assert_eq!(fenced(&order, "a", &whole), Some(false));
            assert_eq!(fenced(&order, "b", &part), Some(true));
        }
        // neither holds the other's events (two partitions): both report
        let other = claim(100, &[(1, 0, 90)]);
        let order = seen(&[("a", &whole), ("b", &other)]);
        assert_eq!(fenced(&order, "a", &whole), Some(false));
        assert_eq!(fenced(&order, "b", &other), Some(false));
        // alone: its own; not read back yet: undecided
        assert_eq!(fenced(&seen(&[("a", &whole)]), "a", &whole), Some(false));
        assert_eq!(fenced(&seen(&[("b", &whole)]), "a", &whole), None);
    }
}
