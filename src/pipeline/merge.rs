//! One model's traffic spread over partitions held by several replicas: each replica
//! windows a spread model per input partition and sends each closed part (a partial) to
//! the internal partials topic, keyed by model; the replica that owns the model's
//! partition of that topic merges a window's partials and reports the window once.
//!
//! - What a partition contributes to a window depends on its log alone (its own
//!   watermark), so a partition read again after a crash or a rebalance gives the same
//!   partial; the merger keeps one per (partition, first offset).
//! - Every replica says how far each of its partitions has come (`Progress`, after the
//!   partials below it were acknowledged); a window is merged once every input partition
//!   has passed its end, or `merge_timeout` after the first did, naming the missing ones.
//! - The merger's own state is the partials topic: after a window, a `Done` record says
//!   where the next starts; a new owner reads its partition back to the end before it
//!   merges anything, so a window is not reported again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::accumulate::{Accumulator, AccumulatorWire};
use super::bounds::WindowBounds;
use super::spec::ModelSpec;
use super::window::ModelWindows;

/// A record of the partials topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Internal {
    Partial(Partial),
    Progress(Progress),
    Done(Done),
}

impl Internal {
    pub fn model(&self) -> &str {
        match self {
            Internal::Partial(p) => &p.model,
            Internal::Progress(p) => &p.model,
            Internal::Done(d) => &d.model,
        }
    }
}

/// One input partition's part of a pane: a tumbling window, or one slide of a sliding one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The spec it was made under (`ModelSpec::id`): parts merge only with the same.
    pub spec: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub topic: String,
    pub partition: i32,
    /// The offsets of its first and last events in the input partition.
    pub first_offset: i64,
    pub last_offset: i64,
    pub acc: AccumulatorWire,
}

/// How far an input partition has come: its newest event time (any model's). Every part
/// of a window ending at or before it (less the lateness) was sent before this record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub model: String,
    pub topic: String,
    pub partition: i32,
    pub newest_ms: i64,
    /// The model's traffic on this partition went quiet for its `idle_timeout`: its parts
    /// were sent, and no window needs to wait for it.
    #[serde(default)]
    pub idle: bool,
}

/// The merger's mark: a model's (version's) windows starting before `next_start` were
/// reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub next_start: i64,
}

/// The partition of the partials topic a model's records go to (and whose owner merges
/// it): a stable hash of its name.
pub fn internal_partition(model: &str, partitions: i32) -> i32 {
    (crate::rand::fnv1a(model) % partitions.max(1) as u64) as i32
}

/// What the merger needs from the daemon's setup.
#[derive(Debug, Clone)]
pub struct MergeSetup {
    pub topic: String,
    /// Partitions of the partials topic.
    pub partitions: i32,
    /// Every input partition (from the topics' metadata): a window waits for all of them.
    pub inputs: Vec<(String, i32)>,
    pub timeout: Duration,
}

/// What a merged window says of its parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MergeInfo {
    /// Partials merged.
    pub partials: usize,
    /// Input partitions that had not passed the window's end when it was merged (it then
    /// waited `merge_timeout`), as `topic/partition`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_partitions: Vec<String>,
    /// Events of parts that could not be merged (made under another reference or feature
    /// list than any this replica knows).
    #[serde(skip_serializing_if = "is_zero")]
    pub refused_events: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A part held until its window is merged.
#[derive(Debug)]
pub struct Part {
    pub partial: Partial,
    /// Where it was read in the partials topic (partition id, offset): the topic's offset
    /// is committed only below the oldest part not merged.
    pub at: (u32, i64),
}

/// One model's (version's) windows being merged.
#[derive(Debug, Default)]
struct Merging {
    /// Windows starting before this were reported.
    next_start: Option<i64>,
    /// Parts by pane start.
    panes: BTreeMap<i64, Vec<Part>>,
    /// When some partition first passed the end of the window waiting now.
    due_since: Option<Instant>,
    /// Events of parts that came after their windows were merged.
    late: u64,
    /// The parts of the panes merged lately (pane, topic, partition, first and last
    /// offset): one of them read again and sent again is a duplicate, not late events.
    recent: std::collections::VecDeque<(i64, String, i32, i64, i64)>,
}

/// Parts remembered per model once merged, to know them when they come again.
const RECENT_PARTS: usize = 256;

impl Merging {
    fn remember(&mut self, pane: i64, p: &Partial) {
        if self.recent.len() == RECENT_PARTS {
            self.recent.pop_front();
        }
        self.recent.push_back((pane, p.topic.clone(), p.partition, p.first_offset, p.last_offset));
    }

    /// Whether `p` (of pane `pane`) overlaps a part merged lately.
    fn merged_already(&self, pane: i64, p: &Partial) -> bool {
        self.recent.iter().any(|(q, topic, partition, first, last)| {
            *q == pane
                && *partition == p.partition
                && *topic == p.topic
                && p.first_offset <= *last
                && *first <= p.last_offset
        })
    }
}

/// Counts for the metrics: partials by what became of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeCounts {
    pub merged: u64,
    pub duplicate: u64,
    pub late: u64,
    pub refused: u64,
    pub undecodable: u64,
    pub timed_out_windows: u64,
}

/// A window ready to merge: its parts, and what was missing.
#[derive(Debug)]
pub struct Ready {
    pub model: String,
    pub version: Option<String>,
    pub bounds: WindowBounds,
    pub parts: Vec<Part>,
    pub missing: Vec<String>,
    pub late: u64,
}

/// Per input partition (topic, partition): its newest event time, and whether the model is
/// idle there.
type InputProgress = BTreeMap<(String, i32), (i64, bool)>;

/// The merger of the models whose partials-topic partitions this replica owns.
#[derive(Debug)]
pub struct Merger {
    pub setup: MergeSetup,
    merging: BTreeMap<(String, Option<String>), Merging>,
    /// Per model, per input partition: newest event time, and whether idle.
    progress: HashMap<String, InputProgress>,
    /// Partials-topic partitions being read back to their end (as when assigned): nothing
    /// of theirs is merged before, so a `Done` record further on is not missed.
    restoring: HashMap<i32, (i64, Instant)>,
    pub counts: MergeCounts,
}

/// How long a partition assigned is read back before its models merge anyway (its end
/// offset could not be read).
const RESTORE_LIMIT: Duration = Duration::from_secs(30);

impl Merger {
    pub fn new(setup: MergeSetup) -> Merger {
        Merger {
            setup,
            merging: BTreeMap::new(),
            progress: HashMap::new(),
            restoring: HashMap::new(),
            counts: MergeCounts::default(),
        }
    }

    pub fn partition_of(&self, model: &str) -> i32 {
        internal_partition(model, self.setup.partitions)
    }

    /// A partials-topic partition was assigned; its records up to `end` (exclusive) are
    /// read back before its models merge.
    pub fn assigned(&mut self, partition: i32, end: Option<i64>, now: Instant) {
        match end {
            Some(0) => {
                self.restoring.remove(&partition);
            }
            Some(end) => {
                self.restoring.insert(partition, (end, now + RESTORE_LIMIT));
            }
            None => {
                self.restoring.insert(partition, (i64::MAX, now + RESTORE_LIMIT));
            }
        }
    }

    /// A partials-topic partition was taken away: its models' state goes (the next owner
    /// reads it back from the committed offset).
    pub fn revoked(&mut self, partition: i32) {
        let parts = self.setup.partitions;
        self.restoring.remove(&partition);
        self.merging.retain(|(model, _), _| internal_partition(model, parts) != partition);
        self.progress.retain(|model, _| internal_partition(model, parts) != partition);
    }

    /// Takes one record read at `offset` of partition `partition` (id `pid`).
    pub fn take(&mut self, payload: &[u8], partition: i32, pid: u32, offset: i64) {
        if let Some((end, _)) = self.restoring.get(&partition) {
            if offset + 1 >= *end {
                self.restoring.remove(&partition);
            }
        }
        let record: Internal = match serde_json::from_slice(payload) {
            Ok(r) => r,
            Err(error) => {
                self.counts.undecodable += 1;
                tracing::warn!(partition, offset, %error, "a partials-topic record that is not driftd's");
                return;
            }
        };
        match record {
            Internal::Partial(p) => self.part(p, (pid, offset)),
            Internal::Progress(p) => {
                let inputs = self.progress.entry(p.model).or_default();
                let e = inputs.entry((p.topic, p.partition)).or_insert((p.newest_ms, p.idle));
                *e = (e.0.max(p.newest_ms), p.idle);
            }
            Internal::Done(d) => {
                let m = self.merging.entry((d.model, d.version)).or_default();
                m.next_start = Some(m.next_start.map_or(d.next_start, |n| n.max(d.next_start)));
                let next = d.next_start;
                let merged: Vec<(i64, Part)> = {
                    let keys: Vec<i64> = m.panes.range(..next).map(|(k, _)| *k).collect();
                    keys.into_iter()
                        .flat_map(|k| m.panes.remove(&k).unwrap_or_default().into_iter().map(move |p| (k, p)))
                        .collect()
                };
                for (pane, part) in merged {
                    m.remember(pane, &part.partial);
                }
            }
        }
    }

    fn part(&mut self, partial: Partial, at: (u32, i64)) {
        let key = (partial.model.clone(), partial.version.clone());
        let m = self.merging.entry(key).or_default();
        // the pane: a part cut short by a reference swap starts inside it
        let pane = partial.start_ms;
        if m.next_start.is_some_and(|n| pane < n) {
            if m.merged_already(pane, &partial) {
                self.counts.duplicate += 1;
            } else {
                m.late += partial.acc.events;
                self.counts.late += 1;
            }
            return;
        }
        let parts = m.panes.entry(pane).or_default();
        // the same partition's part of this pane again: read again after a crash or a
        // rebalance (the new reader starts below the oldest pane still open, so it may
        // make an earlier pane's tail again). Their offsets overlap; the one starting
        // first holds the events from the start, and the longer of two equal starts holds
        // the other whole.
        let overlaps = |p: &Part| {
            p.partial.topic == partial.topic
                && p.partial.partition == partial.partition
                && p.partial.spec == partial.spec
                && partial.first_offset <= p.partial.last_offset
                && p.partial.first_offset <= partial.last_offset
        };
        match parts.iter_mut().find(|p| overlaps(p)) {
            Some(existing) => {
                self.counts.duplicate += 1;
                let (a, b) = (&partial, &existing.partial);
                if (a.first_offset, std::cmp::Reverse(a.last_offset))
                    < (b.first_offset, std::cmp::Reverse(b.last_offset))
                {
                    *existing = Part { partial, at };
                }
            }
            None => parts.push(Part { partial, at }),
        }
    }

    /// The lowest partials-topic offset of partition `pid` still needed (a part not
    /// merged).
    pub fn pinned(&self, pid: u32) -> Option<i64> {
        self.merging.values().flat_map(|m| m.panes.values().flatten()).filter(|p| p.at.0 == pid).map(|p| p.at.1).min()
    }

    /// Windows ready to merge, in order per model: every input partition passed their end,
    /// or the timeout ran out. `window(model)` gives a model's (size, slide, lateness) in
    /// ms, `None` for a model not spread here.
    pub fn ready(&mut self, now: Instant, window: impl Fn(&str) -> Option<(i64, i64, i64)>) -> Vec<Ready> {
        let mut out = Vec::new();
        let restoring_done = |r: &(i64, Instant)| now >= r.1;
        self.restoring.retain(|_, r| !restoring_done(r));
        for ((model, version), m) in self.merging.iter_mut() {
            if self.restoring.contains_key(&internal_partition(model, self.setup.partitions)) {
                continue;
            }
            let Some((size, slide, lateness)) = window(model) else { continue };
            let progress = self.progress.get(model);
            while let Some(&first) = m.panes.keys().next() {
                let earliest = first - size + slide;
                let start = m.next_start.map_or(earliest, |n| n.max(earliest));
                let start = start - start.rem_euclid(slide);
                let end = start + size;
                let passed = |input: &(String, i32)| {
                    progress.and_then(|p| p.get(input)).is_some_and(|(newest, idle)| *idle || newest - lateness >= end)
                };
                // the topics' partitions; without metadata, those that said how far they came
                let heard: Vec<&(String, i32)> = match (self.setup.inputs.is_empty(), progress) {
                    (false, _) => self.setup.inputs.iter().collect(),
                    (true, Some(p)) => p.keys().collect(),
                    (true, None) => Vec::new(),
                };
                let missing: Vec<String> =
                    heard.iter().filter(|i| !passed(i)).map(|(t, p)| format!("{t}/{p}")).collect();
                if !missing.is_empty() {
                    if missing.len() == heard.len() {
                        break;
                    }
                    let since = *m.due_since.get_or_insert(now);
                    if now.duration_since(since) < self.setup.timeout {
                        break;
                    }
                    self.counts.timed_out_windows += 1;
                }
                let mut parts = Vec::new();
                let next = start + slide;
                // the panes of the window; those no later window needs leave
                let keys: Vec<i64> = m.panes.range(start..end).map(|(k, _)| *k).collect();
                for k in keys {
                    if k < next {
                        let done = m.panes.remove(&k).unwrap_or_default();
                        for p in &done {
                            m.remember(k, &p.partial);
                        }
                        parts.extend(done);
                    } else if let Some(ps) = m.panes.get(&k) {
                        parts.extend(ps.iter().map(|p| Part { partial: p.partial.clone(), at: p.at }));
                    }
                }
                m.panes.retain(|k, _| *k >= next);
                m.next_start = Some(next);
                m.due_since = None;
                self.counts.merged += parts.len() as u64;
                out.push(Ready {
                    model: model.clone(),
                    version: version.clone(),
                    bounds: WindowBounds { start_ms: start, end_ms: end },
                    parts,
                    missing,
                    late: std::mem::take(&mut m.late),
                });
            }
        }
        out
    }
}

/// One input partition's windows of a spread track: panes of the window's slide, closed by
/// the partition's own event time.
#[derive(Debug)]
pub struct PartWindows {
    pub windows: ModelWindows,
    pub(super) last_event: Instant,
    /// Quiet for the model's `idle_timeout`: its panes were sent.
    pub(super) idle: bool,
}

/// A record for the partials topic, with the input offsets it holds until it is
/// acknowledged.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub model: String,
    /// The partials topic's partition (the model's).
    pub partition: i32,
    pub payload: Vec<u8>,
    /// (input partition id, lowest offset) not to be committed past before it is sent.
    pins: Vec<(u32, i64)>,
}

impl Outgoing {
    pub(super) fn new(record: &Internal, partition: i32, pins: Vec<(u32, i64)>) -> Outgoing {
        let payload = serde_json::to_vec(record).expect("a partials-topic record serializes");
        Outgoing { model: record.model().to_string(), partition, payload, pins }
    }

    pub fn pin(&self, pid: u32) -> Option<i64> {
        self.pins.iter().filter(|(p, _)| *p == pid).map(|(_, o)| *o).min()
    }
}

/// A spread track's panes closed at once (a swap, a reload, a retired version): to send.
pub(super) type PartsClosed = Vec<(Arc<ModelSpec>, Option<String>, u32, Vec<Accumulator>)>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::accumulate::{Accumulator, Shape};

    const H: i64 = 3_600_000;

    fn partial(partition: i32, start: i64, first: i64, events: u64) -> Vec<u8> {
        let mut acc = Accumulator::new(Shape::exact(0, 0), WindowBounds::default()).to_wire();
        acc.events = events;
        let p = Partial {
            model: "m".into(),
            version: None,
            spec: "s".into(),
            start_ms: start,
            end_ms: start + H,
            topic: "logs".into(),
            partition,
            first_offset: first,
            last_offset: first + events as i64 - 1,
            acc,
        };
        serde_json::to_vec(&Internal::Partial(p)).unwrap()
    }

    fn progress(partition: i32, newest_ms: i64) -> Vec<u8> {
        let p = Progress { model: "m".into(), topic: "logs".into(), partition, newest_ms, idle: false };
        serde_json::to_vec(&Internal::Progress(p)).unwrap()
    }

    fn merger(inputs: i32) -> Merger {
        Merger::new(MergeSetup {
            topic: "partials".into(),
            partitions: 1,
            inputs: (0..inputs).map(|p| ("logs".to_string(), p)).collect(),
            timeout: Duration::from_secs(30),
        })
    }

    fn hourly(_: &str) -> Option<(i64, i64, i64)> {
        Some((H, H, 0))
    }

    #[test]
    fn a_window_merges_once_every_partition_passed_its_end_and_a_part_read_again_counts_once() {
        let mut m = merger(2);
        let now = Instant::now();
        let mut offset = 0;
        let mut take = |m: &mut Merger, record: Vec<u8>| {
            m.take(&record, 0, 0, offset);
            offset += 1;
        };
        take(&mut m, partial(0, 0, 10, 5));
        take(&mut m, partial(0, 0, 10, 5)); // the same part, after a crash
        take(&mut m, progress(0, H));
        assert!(m.ready(now, hourly).is_empty(), "partition 1 has not reported");
        take(&mut m, partial(1, 0, 3, 7));
        take(&mut m, progress(1, H + 5));
        assert_eq!(m.pinned(0), Some(0));
        let ready = m.ready(now, hourly);
        assert_eq!(ready.len(), 1);
        let events: u64 = ready[0].parts.iter().map(|p| p.partial.acc.events).sum();
        assert_eq!((events, ready[0].missing.len()), (12, 0));
        assert_eq!(m.counts.duplicate, 1);
        assert_eq!(m.pinned(0), None, "nothing left to hold the topic's offset");
        // a part of a merged window is late, never a second report
        take(&mut m, partial(1, 0, 50, 2));
        assert!(m.ready(now, hourly).is_empty());
        assert_eq!(m.counts.late, 1);
    }

    #[test]
    fn a_new_reader_making_an_earlier_panes_tail_again_is_not_counted_twice() {
        let mut m = merger(1);
        m.take(&partial(0, 0, 10, 11), 0, 0, 0); // offsets 10..=20, sent by the first owner
        m.take(&partial(0, 0, 15, 11), 0, 0, 1); // 15..=25: the next owner read from 15
        m.take(&progress(0, H), 0, 0, 2);
        let ready = m.ready(Instant::now(), hourly);
        let firsts: Vec<i64> = ready[0].parts.iter().map(|p| p.partial.first_offset).collect();
        assert_eq!(firsts, [10]);
        assert_eq!(m.counts.duplicate, 1);
    }

    #[test]
    fn a_silent_partition_holds_a_window_for_the_timeout_then_it_is_named() {
        let mut m = merger(3);
        let t0 = Instant::now();
        m.take(&partial(0, 0, 0, 4), 0, 0, 0);
        m.take(&progress(0, 2 * H), 0, 0, 1);
        m.take(&progress(1, 2 * H), 0, 0, 2);
        assert!(m.ready(t0, hourly).is_empty());
        assert!(m.ready(t0 + Duration::from_secs(29), hourly).is_empty());
        let ready = m.ready(t0 + Duration::from_secs(31), hourly);
        assert_eq!(ready[0].missing, ["logs/2"]);
        assert_eq!(m.counts.timed_out_windows, 1);
    }

    #[test]
    fn a_new_owner_reads_its_partition_back_before_merging_and_a_done_record_keeps_a_window_reported() {
        let mut m = merger(1);
        let now = Instant::now();
        m.assigned(0, Some(4), now);
        m.take(&partial(0, 0, 0, 4), 0, 0, 0);
        m.take(&progress(0, H), 0, 0, 1);
        assert!(m.ready(now, hourly).is_empty(), "still reading back");
        let done = Done { model: "m".into(), version: None, next_start: H };
        m.take(&serde_json::to_vec(&Internal::Done(done)).unwrap(), 0, 0, 2);
        m.take(&progress(0, H), 0, 0, 3);
        assert!(m.ready(now, hourly).is_empty(), "the window was reported by the last owner");
        m.take(&partial(0, H, 4, 2), 0, 0, 4);
        m.take(&progress(0, 2 * H), 0, 0, 5);
        let ready = m.ready(now, hourly);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].bounds.start_ms, H);
        m.revoked(0);
        assert_eq!(m.pinned(0), None);
    }

    #[test]
    fn sliding_windows_are_merged_from_their_panes() {
        let mut m = merger(1);
        let now = Instant::now();
        let q = H / 4;
        for (i, pane) in [0, q, 2 * q, 3 * q, 4 * q].iter().enumerate() {
            m.take(&partial(0, *pane, i as i64 * 10, 1), 0, 0, i as i64);
        }
        m.take(&progress(0, 5 * q), 0, 0, 9);
        let ready = m.ready(now, |_| Some((H, q, 0)));
        let got: Vec<(i64, usize)> = ready.iter().map(|r| (r.bounds.start_ms / q, r.parts.len())).collect();
        // windows of four panes ending at or before 5q: starting -3q .. q
        assert_eq!(got, [(-3, 1), (-2, 2), (-1, 3), (0, 4), (1, 4)]);
    }

    #[test]
    fn a_record_that_is_not_driftds_is_counted() {
        let mut m = merger(1);
        m.take(b"{\"kind\":\"other\"}", 0, 0, 0);
        assert_eq!(m.counts.undecodable, 1);
    }

    #[test]
    fn models_spread_over_the_partials_topics_partitions() {
        let owners: std::collections::BTreeSet<i32> =
            (0..50).map(|i| internal_partition(&format!("model-{i}"), 6)).collect();
        assert_eq!(owners.len(), 6);
        assert_eq!(internal_partition("m", 6), internal_partition("m", 6));
    }
}
