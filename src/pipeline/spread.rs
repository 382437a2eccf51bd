//! The replica's side of a spread model (see `merge.rs`): its windows kept per input
//! partition, each part sent to the partials topic when that partition's event time has
//! passed its end; progress records; and, for the models whose partials-topic partition
//! this replica owns, the merged windows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accumulate::{Accumulator, Event};
use super::close::ClosedWindow;
use super::decode::DecodeError;
use super::merge::{Internal, MergeInfo, MergeSetup, Merger, Outgoing, PartWindows, Partial, PartsClosed, Progress};
use super::model::Track;
use super::offsets::PartitionTable;
use super::route::Pipeline;
use super::spec::ModelSpec;
use super::window::ModelWindows;
use crate::config::WindowSpec;

/// A spread track's panes: a tumbling window is one pane, a sliding window `size / slide`.
fn pane_spec(window: WindowSpec) -> WindowSpec {
    match window {
        WindowSpec::Sliding { slide, .. } => WindowSpec::Tumbling { size: slide },
        other => other,
    }
}

impl Track {
    /// Puts an event in its input partition's panes (a spread track); closed panes go to
    /// `closed`.
    pub(super) fn ingest_part(
        parts: &mut BTreeMap<u32, PartWindows>,
        spec: &ModelSpec,
        event: &Event<'_>,
        ts: Option<i64>,
        (pid, offset): (u32, i64),
        now: Instant,
        closed: &mut Vec<Accumulator>,
    ) -> Result<(), DecodeError> {
        let part = parts.entry(pid).or_insert_with(|| PartWindows {
            windows: ModelWindows::new(pane_spec(spec.window), spec.shape(), spec.lateness_ms),
            last_event: now,
            idle: false,
        });
        part.last_event = now;
        part.idle = false;
        part.windows.ingest(event, ts, Some((pid, offset)), closed)
    }
}

/// A closed pane of partition `pid` as a partial record.
fn partial_record(
    spec: &ModelSpec,
    version: Option<&String>,
    pid: u32,
    acc: &Accumulator,
    partitions: &PartitionTable,
    internal: i32,
) -> Option<Outgoing> {
    let (topic, partition) = partitions.name(pid)?;
    let first = acc.min_offset(pid)?;
    let last = acc.max_offsets().find(|(p, _)| *p == pid).map_or(first, |(_, o)| o);
    let record = Internal::Partial(Partial {
        model: spec.name.clone(),
        version: version.cloned(),
        spec: spec.id().to_string(),
        start_ms: acc.bounds.start_ms,
        end_ms: acc.bounds.end_ms,
        topic: topic.to_string(),
        partition,
        first_offset: first,
        last_offset: last,
        acc: acc.to_wire(),
    });
    Some(Outgoing::new(&record, internal, vec![(pid, first)]))
}

impl Pipeline {
    /// Spread models' windows are merged across replicas through `setup.topic`.
    pub fn enable_merge(&mut self, setup: MergeSetup) {
        self.merger = Some(Merger::new(setup));
    }

    pub fn merger(&self) -> Option<&Merger> {
        self.merger.as_ref()
    }

    /// The closed panes of a spread track, as partials to send.
    pub(super) fn send_parts(
        &mut self,
        spec: &Arc<ModelSpec>,
        version: Option<&String>,
        pid: u32,
        closed: &[Accumulator],
    ) {
        let Some(merger) = &self.merger else { return };
        let internal = merger.partition_of(&spec.name);
        for acc in closed.iter().filter(|a| a.events > 0) {
            if let Some(out) = partial_record(spec, version, pid, acc, &self.partitions, internal) {
                self.outgoing.push(out);
            }
        }
    }

    pub(super) fn send_closed_parts(&mut self, closed: PartsClosed) {
        for (spec, version, pid, accs) in closed {
            self.send_parts(&spec, version.as_ref(), pid, &accs);
        }
    }

    /// Takes a record of the partials topic read at `offset`.
    pub fn ingest_internal(&mut self, payload: &[u8], topic: &str, partition: i32, offset: i64) {
        let pid = self.partitions.id(topic, partition);
        self.partitions.read(pid, offset);
        if let Some(m) = &mut self.merger {
            m.take(payload, partition, pid, offset);
        }
    }

    /// A partials-topic partition was assigned, its records ending at `end`.
    pub fn internal_assigned(&mut self, partition: i32, end: Option<i64>) {
        if let Some(m) = &mut self.merger {
            m.assigned(partition, end, Instant::now());
        }
    }

    /// Closes the panes of spread tracks that their partition's event time has passed
    /// (every model's events move it), and those of partitions gone quiet for the
    /// model's `idle_timeout`: they become partials to send.
    pub fn advance_parts(&mut self, now: Instant, clock: super::closing::IdleClock) {
        if self.merger.is_none() {
            return;
        }
        let mut sends = Vec::new();
        for m in &mut self.models {
            for t in &mut m.tracks {
                let Some(parts) = &mut t.parts else { continue };
                for (pid, part) in parts.iter_mut() {
                    let mut closed = Vec::new();
                    let since = part.last_event.max(clock.gap_seen.unwrap_or(part.last_event));
                    let quiet = clock.receiving && t.spec.idle_timeout.is_some_and(|d| now.duration_since(since) >= d);
                    if quiet && !part.idle {
                        part.windows.close_all(&mut closed);
                        part.idle = true;
                    } else if let Some(newest) = self.partitions.newest(*pid) {
                        part.windows.close_before(newest - t.spec.lateness_ms, &mut closed);
                    }
                    if !closed.is_empty() {
                        sends.push((t.spec.clone(), t.version.clone(), *pid, closed));
                    }
                }
            }
        }
        self.send_closed_parts(sends);
    }

    /// Progress records: per spread model, how far each input partition this replica
    /// holds has come. Sent after the partials before them were acknowledged.
    pub fn progress_records(&self) -> Vec<Outgoing> {
        let Some(merger) = &self.merger else { return Vec::new() };
        let mut out = Vec::new();
        for m in self.models.iter().filter(|m| m.tracks.iter().any(|t| t.parts.is_some())) {
            let internal = merger.partition_of(m.name());
            for (pid, topic, partition, newest) in self.partitions.held() {
                if topic == merger.setup.topic {
                    continue;
                }
                let mut parts = m.tracks.iter().filter_map(|t| t.parts.as_ref()?.get(&pid)).peekable();
                let idle = parts.peek().is_some() && parts.all(|p| p.idle);
                let record = Internal::Progress(Progress {
                    model: m.name().to_string(),
                    topic: topic.to_string(),
                    partition,
                    newest_ms: newest,
                    idle,
                });
                out.push(Outgoing::new(&record, internal, Vec::new()));
            }
        }
        out
    }

    /// Merges the windows whose parts are all in (or whose wait ran out): they close, to
    /// be reported like any other; `Done` records for the partials topic are returned.
    pub fn merge_ready(&mut self, now: Instant) -> Vec<Outgoing> {
        let Some(merger) = &mut self.merger else { return Vec::new() };
        let (models, by_name) = (&self.models, &self.by_name);
        let window = |name: &str| {
            let m = &models[*by_name.get(name)?];
            let (size, slide) = match m.config.window {
                WindowSpec::Tumbling { size } => (size, size),
                WindowSpec::Sliding { size, slide } => (size, slide),
                WindowSpec::Count { .. } => return None,
            };
            let ms = |d: Duration| d.as_millis() as i64;
            Some((ms(size), ms(slide), ms(m.config.allowed_lateness)))
        };
        let ready = merger.ready(now, window);
        let mut done = Vec::new();
        for r in ready {
            let Some(&idx) = self.by_name.get(&r.model) else { continue };
            let model = &self.models[idx];
            // parts by the spec they were made under: one report per spec (a reference
            // swapped mid-window gives two, as on one replica)
            let mut groups: BTreeMap<String, (Arc<ModelSpec>, Accumulator, MergeInfo)> = BTreeMap::new();
            let (mut refused, mut refused_parts) = (0, 0);
            for part in r.parts {
                let p = part.partial;
                let Some(spec) = model.spec_by_id(&p.spec, r.version.as_deref()) else {
                    refused += p.acc.events;
                    refused_parts += 1;
                    continue;
                };
                let (_, acc, info) = groups
                    .entry(p.spec.clone())
                    .or_insert_with(|| (spec.clone(), Accumulator::new(spec.shape(), r.bounds), MergeInfo::default()));
                let pane = super::bounds::WindowBounds { start_ms: p.start_ms, end_ms: p.end_ms };
                let events = p.acc.events;
                match Accumulator::from_wire(spec.shape(), pane, p.acc) {
                    Ok(part_acc) => {
                        acc.merge(&part_acc);
                        info.partials += 1;
                    }
                    Err(error) => {
                        tracing::warn!(model = %r.model, %error, "a partial that does not fit its spec");
                        refused += events;
                        refused_parts += 1;
                    }
                }
            }
            merger.counts.refused += refused_parts;
            merger.counts.merged -= refused_parts;
            let n = groups.len();
            for (i, (_, (spec, mut acc, mut info))) in groups.into_iter().enumerate() {
                info.missing_partitions = r.missing.clone();
                if i == 0 {
                    acc.late += r.late;
                    info.refused_events = refused;
                }
                if acc.events > 0 || n == 1 {
                    self.closed.push(ClosedWindow { spec, version: r.version.clone(), acc, merged: Some(info) });
                }
            }
            let record = Internal::Done(super::merge::Done {
                model: r.model.clone(),
                version: r.version.clone(),
                next_start: r.bounds.start_ms + window(&r.model).map_or(0, |(_, slide, _)| slide),
            });
            done.push(Outgoing::new(&record, merger.partition_of(&r.model), Vec::new()));
        }
        done
    }

    /// What the merger made of the partials it read since the last call.
    pub fn take_merge_counts(&mut self) -> super::merge::MergeCounts {
        self.merger.as_mut().map(|m| std::mem::take(&mut m.counts)).unwrap_or_default()
    }

    /// The records waiting for the partials topic (partials first); those not sent come
    /// back with `return_outgoing`.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outgoing)
    }

    pub fn return_outgoing(&mut self, unsent: Vec<Outgoing>) {
        let later = std::mem::replace(&mut self.outgoing, unsent);
        self.outgoing.extend(later);
    }

    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Partitions taken away: a spread track's panes of an input partition are dropped
    /// (the next owner reads them again from the committed offset, below them); a
    /// partials-topic partition's merging state goes.
    pub fn forget_partitions(&mut self, revoked: &[(String, i32)]) {
        for (topic, partition) in revoked {
            if let Some(m) = self.merger.as_mut().filter(|m| m.setup.topic == *topic) {
                m.revoked(*partition);
            }
            let Some(pid) = self.partitions.find(topic, *partition) else { continue };
            for t in self.models.iter_mut().flat_map(|m| m.tracks.iter_mut()) {
                if let Some(parts) = &mut t.parts {
                    parts.remove(&pid);
                }
            }
            self.partitions.forget(pid);
        }
    }
}

impl Track {
    /// Closes every pane of a spread track, cut at its newest event when `shape` is given
    /// (the panes after are made with it).
    pub(super) fn close_parts(&mut self, shape: Option<&super::accumulate::Shape>, out: &mut PartsClosed) {
        for (pid, part) in self.parts.iter_mut().flatten() {
            let mut closed = Vec::new();
            match shape {
                Some(shape) => part.windows.cut(shape.clone(), &mut closed),
                None => part.windows.close_all(&mut closed),
            }
            if !closed.is_empty() {
                out.push((self.spec.clone(), self.version.clone(), *pid, closed));
            }
        }
    }

    /// The lowest offset of partition `pid` in an open window.
    pub fn min_open_offset(&self, pid: u32) -> Option<i64> {
        let part = self.parts.as_ref().and_then(|p| p.get(&pid)).and_then(|p| p.windows.min_open_offset(pid));
        self.windows.min_open_offset(pid).into_iter().chain(part).min()
    }

    /// Events taken (a spread track: over its partitions' panes too).
    pub fn events_total(&self) -> u64 {
        self.windows.events_total + self.each_part().map(|w| w.events_total).sum::<u64>()
    }

    pub fn late_total(&self) -> u64 {
        self.windows.late_total + self.each_part().map(|w| w.late_total).sum::<u64>()
    }

    pub fn open_events(&self) -> u64 {
        self.windows.open_events() + self.each_part().map(ModelWindows::open_events).sum::<u64>()
    }

    fn each_part(&self) -> impl Iterator<Item = &ModelWindows> {
        self.parts.iter().flat_map(|p| p.values().map(|w| &w.windows))
    }
}
