//! The pipeline whatever the source: decode a message, route it to its model (and, when
//! the model is split by version, to that version's track), put it in that track's
//! windows; collect the windows that close; say which offsets are safe; swap references.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use polars::prelude::PlHashMap;

use super::accumulate::{Accumulator, Event};
use super::close::ClosedWindow;
use super::decode::{DecodeError, Decoded, Decoder, Decoding, Header, Message, Scratch};
use super::merge::{Merger, Outgoing};
use super::model::{Admission, Idle, Marks, Model, Track, SLOT_CACHE_FIELDS};
use super::offsets::PartitionTable;
use super::pair::{LaterRows, Pairer};
use super::spec::ModelSpec;
use crate::config::Settings;
use crate::error::InputError;
use crate::reference::{Loaded, ModelReferences};
use crate::stats::Kind;

/// Whether a slot comes twice among an event's values (slots past 64, rarely met).
fn repeats(values: &[(Kind, usize, u32)]) -> bool {
    let mut slots: Vec<(bool, usize)> = values.iter().map(|(k, s, _)| (*k == Kind::Categorical, *s)).collect();
    slots.sort_unstable();
    slots.windows(2).any(|w| w[0] == w[1])
}

/// The index of the model a message names, and its time.
fn locate(by_name: &PlHashMap<String, usize>, header: Header<'_>) -> Result<(usize, Option<i64>), DecodeError> {
    let idx = *by_name.get(header.model.as_ref()).ok_or(DecodeError::UnknownModel)?;
    Ok((idx, header.ts_ms))
}

/// Where an event went: the model (its index) and the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    pub model: usize,
    pub track: usize,
    /// Its offset had been read before by this pipeline (a partition read again after a
    /// rebalance): `driftd_events_reread_total` tells how many of the events counted are
    /// such.
    pub reread: bool,
    /// Events the message gave now: 1 in driftd's layout; a batch's rows once its other
    /// half is there (0 while it waits).
    pub events: u32,
}

pub struct Pipeline {
    /// Shared with the threads that decode a batch (see `decoding`).
    pub(super) decoding: Arc<Decoding>,
    pub(super) models: Vec<Model>,
    pub(super) by_name: PlHashMap<String, usize>,
    /// Bad messages by reason, in `DecodeError::ALL` order.
    pub(super) decode_errors: [u64; DecodeError::ALL.len()],
    pub(super) closed: Vec<ClosedWindow>,
    pub(super) partitions: PartitionTable,
    /// Versions whose traffic came with no reference yet: for the reference watcher.
    wanted: BTreeSet<(String, String)>,
    asked: BTreeSet<(String, String)>,
    // buffers reused from message to message: no allocation per event
    pub(super) scratch: Scratch,
    resolved: Vec<(Kind, usize, u32)>,
    /// The model, track and layout `resolved` was made for, and its unmonitored fields:
    /// the rows of a batch (and messages of one layout in a row) resolve their fields once.
    resolved_for: (usize, usize, u64, u32),
    /// The model and time of the half alone whose rows are being taken (`take_alone`):
    /// its windows, and those of the halves after it, stay open meanwhile.
    pub(super) in_flight: Option<(usize, i64)>,
    closed_scratch: Vec<Accumulator>,
    /// The processing time events are stamped with while a batch is taken, and the wall
    /// clock their times are held against (one clock read per batch, not per event);
    /// `None`: read per event.
    pub(super) clock: Option<(Instant, i64)>,
    /// Spread models' windows merged across replicas (see `spread.rs`).
    pub(super) merger: Option<Merger>,
    /// Records for the partials topic not yet acknowledged.
    pub(super) outgoing: Vec<Outgoing>,
    /// Versions whose slot a version with more traffic took: told with the idle ones.
    pub(super) evicted: Vec<Idle>,
    /// Open Inference Protocol halves waiting for their other.
    pub(super) pairer: Pairer,
    /// Rows taken since the last `take_later` outside their message's call.
    pub(super) later: Vec<LaterRows>,
}

impl Pipeline {
    /// The models of `settings` with their references (`refs`, by model name).
    pub fn new(settings: &Settings, mut refs: BTreeMap<String, ModelReferences>) -> Result<Pipeline, InputError> {
        if settings.models.is_empty() {
            return Err(InputError::flag("models", "the config defines no [[models]]"));
        }
        let configs = settings.model_configs().map_err(|e| InputError::flag(&e.key, e.reason))?;
        let mut models = Vec::with_capacity(configs.len());
        let mut by_name = PlHashMap::default();
        for m in configs {
            by_name.insert(m.name.clone(), models.len());
            let r = refs.remove(&m.name).unwrap_or_default();
            models.push(Model::new(m, r));
        }
        Ok(Pipeline {
            decoding: Arc::new(Decoding {
                decoder: Decoder::new(&settings.kafka.mapping, settings.kafka.max_message_bytes),
                topic_models: settings.kafka.topic_models.clone(),
                formats: settings.kafka.formats.clone(),
                file_format: crate::config::Format::Driftd,
                max_batch_rows: settings.kafka.max_batch_rows,
                sole_model: (settings.models.len() == 1).then(|| settings.models[0].name.clone()),
            }),
            models,
            by_name,
            decode_errors: [0; DecodeError::ALL.len()],
            closed: Vec::new(),
            partitions: PartitionTable::default(),
            wanted: BTreeSet::new(),
            asked: BTreeSet::new(),
            scratch: Scratch::default(),
            resolved: Vec::new(),
            resolved_for: (0, 0, 0, 0),
            in_flight: None,
            closed_scratch: Vec::new(),
            clock: None,
            merger: None,
            outgoing: Vec::new(),
            evicted: Vec::new(),
            pairer: Pairer::new(settings.kafka.pair_timeout(), settings.kafka.max_pending_rows),
            later: Vec::new(),
        })
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Stamps the events taken from now on with the time now (a batch of messages
    /// already there: `true`), or with the time each comes (`false`).
    pub fn hold_clock(&mut self, hold: bool) {
        self.clock = hold.then(|| (Instant::now(), crate::time::now_ms()));
    }

    /// A small id for a source partition.
    pub fn partition_id(&mut self, topic: &str, partition: i32) -> u32 {
        self.partitions.id(topic, partition)
    }

    /// Takes one message from a file: `source_ts_ms` stands when the message has no
    /// timestamp; `topic` picks the default model.
    pub fn ingest(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
    ) -> Result<Routed, DecodeError> {
        let result = self.decode_and_route(payload, source_ts_ms, topic, None);
        self.count(result)
    }

    /// Takes a message read at `offset` of partition `pid`.
    pub fn ingest_at(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
        pid: u32,
        offset: i64,
    ) -> Result<Routed, DecodeError> {
        let again = self.partitions.read(pid, offset);
        let result = self.decode_and_route(payload, source_ts_ms, topic, Some((pid, offset)));
        self.count(result.map(|r| Routed { reread: again, ..r }))
    }

    /// The largest message the decoder takes.
    pub fn max_message_bytes(&self) -> usize {
        self.decoding.decoder.max_bytes()
    }

    /// Counts a message refused before it reached the decoder (a line too long to read).
    pub fn refuse(&mut self, reason: DecodeError) {
        self.decode_errors[reason.index()] += 1;
    }

    /// The decoder of this configuration, for decoding messages on other threads; each
    /// result then goes to `ingest_decoded_at`, in the order the messages were read.
    pub fn decoding(&self) -> Arc<Decoding> {
        self.decoding.clone()
    }

    /// Takes a message read at `offset` of partition `pid` that `decoding` (of this
    /// configuration) decoded into `scratch`: as `ingest_at`, the decoding done.
    pub fn ingest_decoded_at(
        &mut self,
        decoded: Result<Decoded<'_>, DecodeError>,
        scratch: &Scratch,
        source_ts_ms: Option<i64>,
        pid: u32,
        offset: i64,
    ) -> Result<Routed, DecodeError> {
        let again = self.partitions.read(pid, offset);
        let result = decoded.and_then(|d| self.take_decoded(d, scratch, source_ts_ms, Some((pid, offset))));
        self.count(result.map(|r| Routed { reread: again, ..r }))
    }

    fn decode_and_route(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
        position: Option<(u32, i64)>,
    ) -> Result<Routed, DecodeError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let decoding = self.decoding.clone();
        let message = Message { payload, topic, key: None, headers: &() };
        match decoding.decode_message(&message, &mut scratch) {
            Ok(Decoded::Event(header)) => {
                let result = self.take_decoded(Decoded::Event(header), &scratch, source_ts_ms, position);
                self.scratch = scratch;
                result
            }
            decoded => {
                // a batch's rows are routed through the pipeline's own scratch: back first
                self.scratch = scratch;
                decoded.and_then(|d| self.take_decoded(d, &Scratch::new(), source_ts_ms, position))
            }
        }
    }

    fn take_decoded(
        &mut self,
        decoded: Decoded<'_>,
        scratch: &Scratch,
        source_ts_ms: Option<i64>,
        position: Option<(u32, i64)>,
    ) -> Result<Routed, DecodeError> {
        match decoded {
            Decoded::Event(header) => {
                let (model, ts) = locate(&self.by_name, header)?;
                self.route(model, ts.or(source_ts_ms), scratch, position, None)
            }
            Decoded::Batch(batch) => self.take_batch(batch, source_ts_ms, position),
            Decoded::Whole { request, response } => self.take_whole(request, response, source_ts_ms, position),
        }
    }

    pub fn set_file_format(&mut self, format: crate::config::Format) {
        Arc::make_mut(&mut self.decoding).file_format = format;
    }

    fn count(&mut self, result: Result<Routed, DecodeError>) -> Result<Routed, DecodeError> {
        if let Err(e) = result {
            self.decode_errors[e.index()] += 1;
        }
        result
    }

    /// Takes the event decoded into `scratch` into model `idx`'s windows.
    pub(super) fn route(
        &mut self,
        idx: usize,
        ts: Option<i64>,
        scratch: &Scratch,
        position: Option<(u32, i64)>,
        also: Option<(u32, i64)>,
    ) -> Result<Routed, DecodeError> {
        let model = &mut self.models[idx];
        let mut parts = Vec::new();
        let t = match model.track_for(scratch.version(), &mut self.partitions, self.merger.is_some()) {
            Ok(Admission::Track(t)) => t,
            Ok(Admission::Replaced { track, mut evicted }) => {
                // retired as an idle version is: its windows reported, its marks kept
                Self::close_track(&mut self.closed, &mut evicted, |w, c| w.close_all(c));
                evicted.close_parts(None, &mut parts);
                model.marks.insert(evicted.version.clone(), Marks::of(&evicted.windows, &self.partitions));
                let (name, version) = (model.config.name.clone(), evicted.version.clone());
                // bounded where nobody takes them (`replay`): a missed one leaves a series
                if self.evicted.len() >= 1_024 {
                    self.evicted.remove(0);
                }
                self.evicted.push(Idle { model: name, version, retired: Some(evicted.spec) });
                track
            }
            Err(DecodeError::NoReference) => {
                if let (Some(v), true) = (scratch.version(), model.config.reference.per_version()) {
                    let key = (model.config.name.clone(), v.to_string());
                    if !self.asked.contains(&key) {
                        self.wanted.insert(key);
                    }
                }
                return Err(DecodeError::NoReference);
            }
            Err(e) => return Err(e),
        };
        let track = &mut model.tracks[t];
        let (now, wall_ms) = self.clock.unwrap_or_else(|| (Instant::now(), crate::time::now_ms()));
        // one clock set far ahead must not close every window (and mark them closed)
        if ts.is_some_and(|ts| ts > wall_ms.saturating_add(track.spec.max_future_ms)) {
            return Err(DecodeError::FutureTimestamp);
        }
        let layout = scratch.layout();
        let known = layout != 0 && track.slot_layout == layout;
        let unmonitored = match self.resolved_for {
            (m, tr, l, unmonitored) if known && (m, tr, l) == (idx, t, layout) => unmonitored,
            _ => {
                self.resolved_for.2 = 0;
                let unmonitored = Self::resolve(&mut self.resolved, track, scratch, known)?;
                if layout != 0 {
                    self.resolved_for = (idx, t, layout, unmonitored);
                }
                unmonitored
            }
        };
        // windows a half waiting for its other would fall in stay open meanwhile
        let in_flight = self.in_flight.filter(|(m, _)| *m == idx).map(|(_, ts)| ts);
        track.windows.hold(self.pairer.oldest_ts(idx).into_iter().chain(in_flight).min());
        let event = Event { values: &self.resolved, scratch, unmonitored, also };
        let mut closed = std::mem::take(&mut self.closed_scratch);
        let result = match (&mut track.parts, position) {
            (Some(parts), Some(at)) => Track::ingest_part(parts, &track.spec, &event, ts, at, now, &mut closed),
            _ => track.windows.ingest(&event, ts, position, &mut closed),
        };
        track.last_event = Some(now);
        // how far each partition has come: what spread models' merges wait on
        if let (Ok(()), Some((pid, _)), Some(ts), true) = (&result, position, ts, self.merger.is_some()) {
            self.partitions.saw(pid, ts);
        }
        if !closed.is_empty() {
            let (spec, version, spread) = (track.spec.clone(), track.version.clone(), track.parts.is_some());
            match position.filter(|_| spread) {
                Some((pid, _)) => {
                    self.send_parts(&spec, version.as_ref(), pid, &closed);
                    closed.clear();
                }
                None => self.closed.extend(closed.drain(..).map(|acc| ClosedWindow {
                    spec: spec.clone(),
                    version: version.clone(),
                    acc,
                    merged: None,
                })),
            }
        }
        self.closed_scratch = closed;
        if !parts.is_empty() {
            self.send_closed_parts(parts);
        }
        result.map(|_| Routed { model: idx, track: t, reread: false, events: 1 })
    }

    /// The event's fields resolved to the track's slots (`known`: the track's slot cache
    /// holds the scratch's layout): how many fields it does not monitor.
    fn resolve(
        resolved: &mut Vec<(Kind, usize, u32)>,
        track: &mut Track,
        scratch: &Scratch,
        known: bool,
    ) -> Result<u32, DecodeError> {
        resolved.clear();
        let mut unmonitored = 0u32;
        // the slots met so far (those under 64, by kind), and whether one came twice
        let (mut seen, mut repeated, mut far) = ([0u64; 2], false, false);
        let layout = scratch.layout();
        if !known {
            track.slot_layout = 0;
        }
        for (i, (name, _)) in scratch.iter().enumerate() {
            let slot = match track.slot_cache.get(i) {
                Some((_, slot)) if known => *slot,
                Some((cached, slot)) if **cached == *name => *slot,
                _ => {
                    let slot = track.spec.slot(name);
                    if i < track.slot_cache.len() {
                        track.slot_cache[i] = (name.into(), slot);
                    } else if i < SLOT_CACHE_FIELDS {
                        track.slot_cache.push((name.into(), slot));
                    }
                    slot
                }
            };
            match slot {
                Some((kind, slot)) => {
                    // a feature named twice in one message would count twice in the window
                    let seen = &mut seen[usize::from(kind == Kind::Categorical)];
                    match 1u64.checked_shl(slot as u32) {
                        Some(bit) => {
                            repeated |= *seen & bit != 0;
                            *seen |= bit;
                        }
                        None => far = true,
                    }
                    resolved.push((kind, slot, i as u32))
                }
                // the prediction is part of the message, not a field the model forgot
                None if name != "prediction" => unmonitored += 1,
                None => {}
            }
        }
        if !known && layout != 0 && scratch.len() <= track.slot_cache.len() {
            track.slot_layout = layout;
        }
        if repeated || (far && repeats(resolved)) {
            return Err(DecodeError::DuplicateFeature);
        }
        Ok(unmonitored)
    }

    /// True when windows closed since the last `take_closed`.
    pub fn has_closed(&self) -> bool {
        !self.closed.is_empty()
    }

    /// Windows closed since the last call, oldest first.
    /// The topic and partition of a partition id.
    pub fn partition_name(&self, pid: u32) -> Option<(&str, i32)> {
        self.partitions.name(pid)
    }

    pub fn take_closed(&mut self) -> Vec<ClosedWindow> {
        std::mem::take(&mut self.closed)
    }

    /// Versions whose traffic came with no reference, once each: for the watcher.
    pub fn take_wanted(&mut self) -> Vec<(String, String)> {
        let wanted = std::mem::take(&mut self.wanted);
        self.asked.extend(wanted.iter().cloned());
        wanted.into_iter().collect()
    }

    /// Puts a new reference in for a model (or one version of it): the open windows it
    /// replaces are cut short now and reported against the reference they started with;
    /// later events are compared with the new one.
    pub fn swap(&mut self, model: &str, version: Option<&str>, loaded: &Loaded) -> bool {
        let Some(&idx) = self.by_name.get(model) else { return false };
        let m = &mut self.models[idx];
        let spec = Arc::new(ModelSpec::new(&m.config, loaded));
        let per_version = m.config.reference.per_version();
        let replaced = match version.filter(|_| per_version) {
            Some(v) => m.by_version.insert(v.to_string(), spec.clone()),
            None => m.shared.replace(spec.clone()),
        };
        if let Some(old) = replaced {
            m.remember_spec(old);
        }
        let mut parts = Vec::new();
        for t in m.tracks.iter_mut().filter(|t| !per_version || t.version.as_deref() == version) {
            let shape = spec.shape();
            Self::close_track(&mut self.closed, t, |w, c| w.cut(shape.clone(), c));
            t.close_parts(Some(&shape), &mut parts);
            t.spec = spec.clone();
            t.slot_cache.clear();
            t.slot_layout = 0;
        }
        self.send_closed_parts(parts);
        if let Some(v) = version {
            self.asked.remove(&(model.to_string(), v.to_string()));
        }
        true
    }

    /// Per partition, the offset below which every event is safe (in a reported window,
    /// or bad, or late): what may be committed.
    pub fn safe_offsets(&self) -> Vec<(String, i32, i64)> {
        let tracks = || self.models.iter().flat_map(|m| m.tracks.iter());
        self.partitions.safe(|pid| {
            let open = tracks().filter_map(|t| t.min_open_offset(pid));
            let unsent = self.outgoing.iter().filter_map(|o| o.pin(pid));
            let unmerged = self.merger.as_ref().and_then(|m| m.pinned(pid));
            let unpaired = self.pairer.pinned(pid);
            open.chain(unsent).chain(unmerged).chain(unpaired).min()
        })
    }

    /// Per model and version, the marks that keep reported windows from reopening: what
    /// survives a restart.
    pub fn marks(&self) -> Vec<(String, Option<String>, Marks)> {
        let mut out = Vec::new();
        for m in &self.models {
            let mut all = m.marks.clone();
            for t in &m.tracks {
                all.insert(t.version.clone(), Marks::of(&t.windows, &self.partitions));
            }
            out.extend(all.into_iter().map(|(v, mk)| (m.config.name.clone(), v, mk)));
        }
        out
    }

    /// Restores marks (from a checkpoint) before any event.
    pub fn restore_marks(&mut self, marks: impl IntoIterator<Item = (String, Option<String>, Marks)>) {
        for (name, version, mk) in marks {
            if let Some(&i) = self.by_name.get(&name) {
                let m = &mut self.models[i];
                // a mark ahead of the clock (an event from the future, before max_future
                // existed) would make every event late for good
                let limit = crate::time::now_ms().saturating_add(m.config.max_future.as_millis() as i64);
                let refuse = |mark: i64| if mark > limit { i64::MIN } else { mark };
                if mk.closed_upto > limit || mk.floor > limit {
                    tracing::warn!(
                        model = %name,
                        version = version.as_deref().unwrap_or(""),
                        closed_upto = %crate::time::format_rfc3339_ms(mk.closed_upto),
                        "a checkpoint mark in the future is refused"
                    );
                }
                let mk = Marks { closed_upto: refuse(mk.closed_upto), floor: refuse(mk.floor), reported: mk.reported };
                match m.tracks.iter_mut().find(|t| t.version == version) {
                    Some(t) => mk.restore(&mut t.windows, &mut self.partitions),
                    None => {
                        m.marks.insert(version, mk);
                    }
                }
            }
        }
    }

    /// Bad messages so far, by reason.
    pub fn decode_errors(&self) -> impl Iterator<Item = (DecodeError, u64)> + '_ {
        DecodeError::ALL.iter().copied().zip(self.decode_errors.iter().copied())
    }
}
