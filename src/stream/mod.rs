//! The streaming pipeline, whatever the source: decode → route by model → window →
//! accumulate → (window closes) → the same statistics `analyze` computes, against the
//! model's reference profile. `driftd replay` drives it from a file; the Kafka daemon
//! drives it from a consumer group.

pub mod decode;
pub mod time;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::PlHashMap;
use serde::Serialize;

use crate::analyze::{self, AnalyzeOptions, Mode, Reference, Selection, TestChoice};
use crate::config::{parse_duration, ModelSettings, Settings, WindowSpec};
use crate::dataset::{sort_floats, Column, Dataset, Key, Values};
use crate::error::InputError;
use crate::profile::{Profile, DEFAULT_BINS};
use crate::report::Report;
use crate::stats::{Kind, StatTest};
use decode::{DecodeError, Decoder, Scratch, Val};

/// What a model is compared with, and how; fixed until a reload.
#[derive(Debug)]
pub struct ModelSpec {
    pub name: String,
    pub profile: Arc<Profile>,
    pub profile_path: PathBuf,
    pub opts: AnalyzeOptions,
    pub window: WindowSpec,
    pub lateness_ms: i64,
    pub min_events: u64,
    /// Features whose drift alone means dataset drift.
    pub critical: Vec<String>,
    /// feature name → (kind, slot in the numeric or categorical accumulators)
    slots: PlHashMap<String, (Kind, usize)>,
    numeric: Vec<String>,
    categorical: Vec<String>,
}

impl ModelSpec {
    /// Loads the model's reference (a profile, or a dataset profiled on the spot) and its
    /// policy from the settings.
    pub fn load(settings: &Settings, model: &ModelSettings) -> Result<ModelSpec, InputError> {
        let policy = settings.policy_for(model);
        let key = |k: &str| format!("models.{}.{k}", model.name);
        let window = policy
            .window
            .as_ref()
            .map(|w| w.spec().map_err(|e| InputError::flag(&key("window"), e)))
            .transpose()?
            .unwrap_or(WindowSpec::Tumbling { size: std::time::Duration::from_secs(3600) });
        let lateness_ms = policy
            .allowed_lateness
            .as_deref()
            .map(|d| parse_duration(d).map_err(|e| InputError::flag(&key("allowed_lateness"), e)))
            .transpose()?
            .map_or(0, |d| d.as_millis() as i64);
        let parse = |v: &Option<String>, k: &str| {
            v.as_deref().map(|s| StatTest::parse(s).map_err(|e| InputError::flag(&key(k), e))).transpose()
        };
        let mut tests = TestChoice {
            num_stattest: parse(&policy.num_stattest, "num_stattest")?,
            cat_stattest: parse(&policy.cat_stattest, "cat_stattest")?,
            ..TestChoice::default()
        };
        for (feature, o) in &model.per_feature {
            if let Some(t) = &o.stattest {
                let t = StatTest::parse(t).map_err(|e| InputError::flag(&key("per_feature"), e))?;
                tests.per_feature_stattest.insert(feature.clone(), t);
            }
            if let Some(th) = o.threshold {
                tests.per_feature_threshold.insert(feature.clone(), th);
            }
        }
        let selection = Selection {
            columns: model.features.clone(),
            categorical: model.categorical.clone(),
            ..Selection::default()
        };
        let opts = AnalyzeOptions {
            mode: Mode::Native,
            tests,
            drift_share: policy.drift_share.unwrap_or(0.5),
            selection: selection.clone(),
            bins: DEFAULT_BINS,
        };
        let profile = if Profile::is_profile_path(&model.reference) {
            let p = Profile::load(&model.reference)?;
            if let Some(cols) = &model.features {
                if let Some(missing) = cols.iter().find(|c| p.feature(c).is_none()) {
                    return Err(InputError::column(&model.reference, missing, "is not in the profile"));
                }
            }
            p
        } else {
            let data = Dataset::load(&model.reference, None)?;
            let (plan, _) = analyze::plan_single(&data, &opts)?;
            Profile::build(&data, &plan, DEFAULT_BINS)
        };
        let mut slots = PlHashMap::default();
        let (mut numeric, mut categorical) = (Vec::new(), Vec::new());
        for f in &profile.features {
            if model.features.as_ref().is_some_and(|cols| !cols.contains(&f.name)) {
                continue;
            }
            let list = match f.kind {
                Kind::Numerical => &mut numeric,
                Kind::Categorical => &mut categorical,
            };
            slots.insert(f.name.clone(), (f.kind, list.len()));
            list.push(f.name.clone());
        }
        Ok(ModelSpec {
            name: model.name.clone(),
            profile: Arc::new(profile),
            profile_path: model.reference.clone(),
            opts: AnalyzeOptions { selection: Selection::default(), ..opts },
            window,
            lateness_ms,
            min_events: policy.min_events.unwrap_or(0),
            critical: policy.critical.clone().unwrap_or_default(),
            slots,
            numeric,
            categorical,
        })
    }
}

#[derive(Debug, Default)]
struct CatAcc {
    strings: PlHashMap<String, u64>,
    numbers: PlHashMap<u64, u64>,
}

/// One category more; the string is copied only the first time it is seen.
fn count_text(map: &mut PlHashMap<String, u64>, s: &str) {
    match map.get_mut(s) {
        Some(c) => *c += 1,
        None => {
            map.insert(s.to_string(), 1);
        }
    }
}

/// An event's values resolved to the model's feature slots.
pub struct Event<'s> {
    values: &'s [(Kind, usize, Val)],
    scratch: &'s Scratch,
}

/// One window's accumulated values, per feature: columns for numbers, counts for
/// categories. A feature's missing count is the events minus its values.
#[derive(Debug)]
pub struct WindowAccum {
    pub start_ms: i64,
    pub end_ms: i64,
    pub events: u64,
    /// Events that arrived after one of their windows had closed.
    pub late: u64,
    /// Values of the wrong type (text for a numerical feature), counted as missing.
    pub invalid: u64,
    numeric: Vec<Vec<f64>>,
    categorical: Vec<CatAcc>,
    min_ts: i64,
    max_ts: i64,
    /// Lowest source offset per partition among the window's events: a partition's offset
    /// may be committed only below every open window's.
    min_offsets: Vec<(u32, i64)>,
}

impl WindowAccum {
    fn new(spec: &ModelSpec, start_ms: i64, end_ms: i64) -> WindowAccum {
        WindowAccum {
            start_ms,
            end_ms,
            events: 0,
            late: 0,
            invalid: 0,
            numeric: vec![Vec::new(); spec.numeric.len()],
            categorical: (0..spec.categorical.len()).map(|_| CatAcc::default()).collect(),
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            min_offsets: Vec::new(),
        }
    }

    fn note_position(&mut self, position: Option<(u32, i64)>) {
        let Some((pid, offset)) = position else { return };
        match self.min_offsets.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, o)) => *o = (*o).min(offset),
            None => self.min_offsets.push((pid, offset)),
        }
    }

    fn holds_partition(&self, pid: u32) -> bool {
        self.min_offsets.iter().any(|(p, _)| *p == pid)
    }

    fn add(&mut self, event: &Event<'_>, ts: i64, position: Option<(u32, i64)>) {
        self.note_position(position);
        self.events += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        for &(kind, slot, value) in event.values {
            match (kind, value) {
                (_, Val::Null) => {}
                (Kind::Numerical, Val::Num(x)) => {
                    if x.is_finite() {
                        self.numeric[slot].push(x)
                    }
                }
                (Kind::Numerical, _) => self.invalid += 1,
                (Kind::Categorical, Val::Text(..)) => {
                    count_text(&mut self.categorical[slot].strings, event.scratch.text(value))
                }
                (Kind::Categorical, Val::Bool(b)) => {
                    count_text(&mut self.categorical[slot].strings, if b { "true" } else { "false" })
                }
                (Kind::Categorical, Val::Num(x)) => {
                    if x.is_finite() {
                        *self.categorical[slot].numbers.entry(x.to_bits()).or_insert(0) += 1
                    }
                }
            }
        }
    }

    /// The window as a dataset `analyze` takes, and the features with no value in it.
    fn into_dataset(self, spec: &ModelSpec) -> (Dataset, Vec<String>) {
        let rows = self.events as usize;
        let mut columns = Vec::new();
        let mut empty = Vec::new();
        // sorting dominates a window close: one column per core
        let mut numeric = self.numeric;
        {
            use rayon::prelude::*;
            numeric.par_iter_mut().for_each(|values| sort_floats(values));
        }
        for (name, values) in spec.numeric.iter().zip(numeric) {
            if values.is_empty() {
                empty.push(name.clone());
            }
            columns.push(Column {
                name: name.clone(),
                rows,
                missing: rows - values.len(),
                values: Values::Numeric { sorted: values, integer: false },
            });
        }
        for (name, acc) in spec.categorical.iter().zip(self.categorical) {
            let mut counts: Vec<(Key, u64)> = acc.strings.into_iter().map(|(k, c)| (Key::Str(k), c)).collect();
            counts.extend(acc.numbers.into_iter().map(|(bits, c)| (Key::Num(f64::from_bits(bits)), c)));
            counts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let total: u64 = counts.iter().map(|(_, c)| *c).sum();
            if counts.is_empty() {
                empty.push(name.clone());
            }
            columns.push(Column {
                name: name.clone(),
                rows,
                missing: rows - total as usize,
                values: Values::Categorical { counts },
            });
        }
        // a count window starts at its first event
        let start = if matches!(spec.window, WindowSpec::Count { .. }) && self.events > 0 {
            self.min_ts
        } else {
            self.start_ms
        };
        let path = PathBuf::from(format!("{}@{}", spec.name, time::format_rfc3339_ms(start)));
        (Dataset { path, rows, columns }, empty)
    }
}

/// A closed window's report: the report schema plus the model and the window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    pub model: String,
    pub window_start: String,
    pub window_end: String,
    pub events: u64,
    pub late_events: u64,
    pub invalid_values: u64,
    /// Fewer events than `min_events`: the numbers are reported, nothing is flagged.
    pub insufficient_events: bool,
    /// Whether the model's output (`prediction`) drifted; absent when it is not monitored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_drift: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// The name under which the model's output is monitored, like a feature.
pub const PREDICTION: &str = "prediction";

/// Computes a closed window's report (pure: may run on any thread).
pub fn window_report(spec: &ModelSpec, acc: WindowAccum) -> WindowReport {
    let (events, late, invalid) = (acc.events, acc.late, acc.invalid);
    let (start, end) = match spec.window {
        WindowSpec::Count { .. } if events > 0 => (acc.min_ts, acc.max_ts),
        _ => (acc.start_ms, acc.end_ms),
    };
    let (dataset, empty) = acc.into_dataset(spec);
    let mut opts = spec.opts.clone();
    opts.selection.exclude = empty.clone();
    let reference = Reference::Profile(spec.profile.clone(), spec.profile_path.clone());
    let insufficient = events < spec.min_events;
    let (report, error) = match analyze::analyze(&reference, &dataset, &opts) {
        Ok(mut r) => {
            for name in empty {
                r.skipped.push(crate::report::Skipped { name, reason: "no values in this window".into() });
            }
            if insufficient {
                r.features.iter_mut().for_each(|f| f.drifted = false);
                r.drifted_features = 0;
                r.share_of_drifted_features = 0.0;
                r.dataset_drift = false;
            }
            // a drifted critical feature is dataset drift whatever the share
            if r.features.iter().any(|f| f.drifted && spec.critical.contains(&f.name)) {
                r.dataset_drift = true;
            }
            (Some(r), None)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let prediction_drift =
        report.as_ref().and_then(|r| r.features.iter().find(|f| f.name == PREDICTION)).map(|f| f.drifted);
    WindowReport {
        model: spec.name.clone(),
        window_start: time::format_rfc3339_ms(start),
        window_end: time::format_rfc3339_ms(end),
        events,
        late_events: late,
        invalid_values: invalid,
        insufficient_events: insufficient,
        prediction_drift,
        error,
        report,
    }
}

/// A model's windows and watermark.
#[derive(Debug)]
pub struct ModelState {
    pub spec: Arc<ModelSpec>,
    open: BTreeMap<i64, WindowAccum>,
    max_ts: Option<i64>,
    /// Windows ending at or before this are closed.
    closed_upto: i64,
    late_pending: u64,
    next_count_window: i64,
    pub events_total: u64,
    pub late_total: u64,
}

impl ModelState {
    pub fn new(spec: Arc<ModelSpec>) -> ModelState {
        ModelState {
            spec,
            open: BTreeMap::new(),
            max_ts: None,
            closed_upto: i64::MIN,
            late_pending: 0,
            next_count_window: 0,
            events_total: 0,
            late_total: 0,
        }
    }

    /// Events in windows not yet closed.
    pub fn open_events(&self) -> u64 {
        self.open.values().map(|w| w.events).sum()
    }

    fn ingest(
        &mut self,
        event: &Event<'_>,
        ts: Option<i64>,
        position: Option<(u32, i64)>,
        closed: &mut Vec<WindowAccum>,
    ) -> Result<(), DecodeError> {
        let spec = self.spec.clone();
        match spec.window {
            WindowSpec::Count { events } => {
                let ts = ts.unwrap_or(0);
                let key = self.next_count_window;
                let acc = self.open.entry(key).or_insert_with(|| WindowAccum::new(&spec, 0, 0));
                acc.add(event, ts, position);
                self.events_total += 1;
                if acc.events >= events {
                    let mut acc = self.open.remove(&key).expect("window is open");
                    acc.late = std::mem::take(&mut self.late_pending);
                    closed.push(acc);
                    self.next_count_window += 1;
                }
                Ok(())
            }
            WindowSpec::Tumbling { size } | WindowSpec::Sliding { size, .. } => {
                let ts = ts.ok_or(DecodeError::MissingTimestamp)?;
                let size_ms = size.as_millis() as i64;
                let slide_ms = match spec.window {
                    WindowSpec::Sliding { slide, .. } => slide.as_millis() as i64,
                    _ => size_ms,
                };
                // Windows [start, start + size) holding ts, newest first.
                let last_start = ts - ts.rem_euclid(slide_ms);
                let mut start = last_start;
                let mut placed = false;
                let mut missed = false;
                while start > ts - size_ms {
                    let end = start + size_ms;
                    if end <= self.closed_upto {
                        missed = true;
                    } else {
                        let acc = self.open.entry(start).or_insert_with(|| WindowAccum::new(&spec, start, end));
                        acc.add(event, ts, position);
                        placed = true;
                    }
                    start -= slide_ms;
                }
                self.events_total += 1;
                if missed {
                    self.late_total += 1;
                    self.late_pending += 1;
                }
                if !placed {
                    return Ok(());
                }
                let max_ts = self.max_ts.map_or(ts, |m| m.max(ts));
                self.max_ts = Some(max_ts);
                self.close_until(max_ts - spec.lateness_ms, closed);
                Ok(())
            }
        }
    }

    /// Closes every window that ends at or before `watermark`.
    fn close_until(&mut self, watermark: i64, closed: &mut Vec<WindowAccum>) {
        while let Some((&start, w)) = self.open.first_key_value() {
            if w.end_ms > watermark {
                break;
            }
            let mut acc = self.open.remove(&start).expect("window is open");
            acc.late = std::mem::take(&mut self.late_pending);
            self.closed_upto = self.closed_upto.max(acc.end_ms);
            closed.push(acc);
        }
    }

    /// Closes the open windows holding events from partition `pid` (handed back on a
    /// rebalance: reported now, so the new owner starts after them).
    fn flush_partition(&mut self, pid: u32, closed: &mut Vec<WindowAccum>) {
        let keys: Vec<i64> = self.open.iter().filter(|(_, w)| w.holds_partition(pid)).map(|(k, _)| *k).collect();
        for k in keys {
            let mut acc = self.open.remove(&k).expect("window is open");
            acc.late = std::mem::take(&mut self.late_pending);
            if !matches!(self.spec.window, WindowSpec::Count { .. }) {
                self.closed_upto = self.closed_upto.max(acc.end_ms);
            } else {
                self.next_count_window += 1;
            }
            closed.push(acc);
        }
    }

    fn min_open_offset(&self, pid: u32) -> Option<i64> {
        self.open.values().flat_map(|w| w.min_offsets.iter()).filter(|(p, _)| *p == pid).map(|(_, o)| *o).min()
    }

    /// Closes every open window (end of input, idle model, shutdown).
    pub fn flush(&mut self, closed: &mut Vec<WindowAccum>) {
        let keys: Vec<i64> = self.open.keys().copied().collect();
        for k in keys {
            let mut acc = self.open.remove(&k).expect("window is open");
            acc.late = std::mem::take(&mut self.late_pending);
            if !matches!(self.spec.window, WindowSpec::Count { .. }) {
                self.closed_upto = self.closed_upto.max(acc.end_ms);
            }
            closed.push(acc);
        }
        if matches!(self.spec.window, WindowSpec::Count { .. }) && !closed.is_empty() {
            self.next_count_window += 1;
        }
    }
}

/// The pipeline's state for every model, and its counters.
pub struct Engine {
    decoder: Decoder,
    pub models: Vec<ModelState>,
    by_name: PlHashMap<String, usize>,
    topic_models: BTreeMap<String, String>,
    /// Bad messages by reason, in `DecodeError::ALL` order.
    pub decode_errors: [u64; 7],
    closed: Vec<(usize, WindowAccum)>,
    scratch: Scratch,
    resolved: Vec<(Kind, usize, Val)>,
    closed_scratch: Vec<WindowAccum>,
    /// Source partitions seen, and the next offset to read in each.
    partitions: Vec<(String, i32)>,
    next_offsets: Vec<i64>,
}

/// What survives a restart: per model, the end of the last reported window, so events
/// read again after a restart never reopen a reported window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub models: BTreeMap<String, ModelCheckpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelCheckpoint {
    pub closed_upto: i64,
}

impl Engine {
    /// Loads every model's reference and policy.
    pub fn from_settings(settings: &Settings) -> Result<Engine, InputError> {
        if settings.models.is_empty() {
            return Err(InputError::flag("models", "the config defines no [[models]]"));
        }
        let mut models = Vec::new();
        let mut by_name = PlHashMap::default();
        for m in &settings.models {
            by_name.insert(m.name.clone(), models.len());
            models.push(ModelState::new(Arc::new(ModelSpec::load(settings, m)?)));
        }
        Ok(Engine {
            decoder: Decoder::new(&settings.kafka.mapping, settings.kafka.max_message_bytes),
            models,
            by_name,
            topic_models: settings.kafka.topic_models.clone(),
            decode_errors: [0; 7],
            closed: Vec::new(),
            scratch: Scratch::default(),
            resolved: Vec::new(),
            closed_scratch: Vec::new(),
            partitions: Vec::new(),
            next_offsets: Vec::new(),
        })
    }

    /// A small id for a source partition.
    pub fn partition_id(&mut self, topic: &str, partition: i32) -> u32 {
        // A consumer holds a handful of partitions: a scan beats hashing an owned key.
        if let Some(id) = self.partitions.iter().position(|(t, p)| *p == partition && t == topic) {
            return id as u32;
        }
        let id = self.partitions.len() as u32;
        self.partitions.push((topic.to_string(), partition));
        self.next_offsets.push(-1);
        id
    }

    /// True when windows closed since the last `take_closed`.
    pub fn has_closed(&self) -> bool {
        !self.closed.is_empty()
    }

    /// Takes a message read at `offset` of partition `pid`.
    pub fn ingest_at(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
        pid: u32,
        offset: i64,
    ) -> Result<usize, DecodeError> {
        self.next_offsets[pid as usize] = self.next_offsets[pid as usize].max(offset + 1);
        let result = self.ingest_inner(payload, source_ts_ms, topic, Some((pid, offset)));
        self.count(result)
    }

    fn count(&mut self, result: Result<usize, DecodeError>) -> Result<usize, DecodeError> {
        if let Err(e) = result {
            let i = DecodeError::ALL.iter().position(|x| *x == e).expect("listed");
            self.decode_errors[i] += 1;
        }
        result
    }

    /// Per partition, the offset below which every event is safe (in a reported window,
    /// or bad, or late): what may be committed.
    pub fn safe_offsets(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .enumerate()
            .filter(|(i, _)| self.next_offsets[*i] >= 0)
            .map(|(i, (t, p))| {
                let open = self.models.iter().filter_map(|m| m.min_open_offset(i as u32)).min();
                let safe = open.map_or(self.next_offsets[i], |o| o.min(self.next_offsets[i]));
                (t.clone(), *p, safe)
            })
            .collect()
    }

    /// Closes the windows holding events of these partitions (a rebalance takes them).
    pub fn flush_partitions(&mut self, revoked: &[(String, i32)]) {
        for (t, p) in revoked {
            let Some(pid) = self.partitions.iter().position(|(topic, part)| part == p && topic == t) else { continue };
            let pid = pid as u32;
            for (i, m) in self.models.iter_mut().enumerate() {
                let mut closed = Vec::new();
                m.flush_partition(pid, &mut closed);
                self.closed.extend(closed.into_iter().map(|w| (i, w)));
            }
        }
    }

    /// Closes the open windows of models without events for `idle_ms` of processing time.
    pub fn flush_model(&mut self, idx: usize) {
        let mut closed = Vec::new();
        self.models[idx].flush(&mut closed);
        self.closed.extend(closed.into_iter().map(|w| (idx, w)));
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            models: self
                .models
                .iter()
                .map(|m| (m.spec.name.clone(), ModelCheckpoint { closed_upto: m.closed_upto }))
                .collect(),
        }
    }

    pub fn apply_checkpoint(&mut self, c: &Checkpoint) {
        for m in &mut self.models {
            if let Some(mc) = c.models.get(&m.spec.name) {
                m.closed_upto = m.closed_upto.max(mc.closed_upto);
            }
        }
    }

    /// Takes the models of `new` (a reloaded config): a model whose window is unchanged
    /// keeps its open windows and counters under its new thresholds and reference.
    pub fn reload(&mut self, new: Engine) {
        let mut old: HashMap<String, ModelState> = self.models.drain(..).map(|m| (m.spec.name.clone(), m)).collect();
        self.models = new
            .models
            .into_iter()
            .map(|fresh| match old.remove(&fresh.spec.name) {
                Some(mut kept) if kept.spec.window == fresh.spec.window && kept.spec.slots == fresh.spec.slots => {
                    kept.spec = fresh.spec;
                    kept
                }
                _ => fresh,
            })
            .collect();
        self.by_name = new.by_name;
        self.decoder = new.decoder;
        self.topic_models = new.topic_models;
    }

    /// Takes one message. `source_ts_ms` (the Kafka timestamp) stands when the message has
    /// no timestamp; `topic` picks the default model. Returns the model's index.
    pub fn ingest(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
    ) -> Result<usize, DecodeError> {
        let result = self.ingest_inner(payload, source_ts_ms, topic, None);
        self.count(result)
    }

    fn ingest_inner(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
        position: Option<(u32, i64)>,
    ) -> Result<usize, DecodeError> {
        let default_model = topic.and_then(|t| self.topic_models.get(t)).map(String::as_str);
        let header = self.decoder.decode(payload, default_model, &mut self.scratch)?;
        let idx = *self.by_name.get(header.model.as_ref()).ok_or(DecodeError::UnknownModel)?;
        let ts = header.ts_ms.or(source_ts_ms);
        let model = &mut self.models[idx];
        self.resolved.clear();
        for (name, value) in self.scratch.iter() {
            if let Some(&(kind, slot)) = model.spec.slots.get(name) {
                self.resolved.push((kind, slot, value));
            }
        }
        let event = Event { values: &self.resolved, scratch: &self.scratch };
        let mut closed = std::mem::take(&mut self.closed_scratch);
        let result = model.ingest(&event, ts, position, &mut closed);
        self.closed.extend(closed.drain(..).map(|w| (idx, w)));
        self.closed_scratch = closed;
        result.map(|_| idx)
    }

    /// Closes every open window of every model.
    pub fn flush(&mut self) {
        for (i, m) in self.models.iter_mut().enumerate() {
            let mut closed = Vec::new();
            m.flush(&mut closed);
            self.closed.extend(closed.into_iter().map(|w| (i, w)));
        }
    }

    /// Windows closed since the last call, with their model's spec, oldest first.
    pub fn take_closed(&mut self) -> Vec<(Arc<ModelSpec>, WindowAccum)> {
        std::mem::take(&mut self.closed).into_iter().map(|(i, w)| (self.models[i].spec.clone(), w)).collect()
    }

    pub fn decode_error_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DecodeError::ALL.iter().map(|e| e.reason()).zip(self.decode_errors.iter().copied())
    }
}

/// `driftd replay`: runs the pipeline over a JSON Lines file and writes one window
/// report per line to `out`. Windows still open at the end of the file are closed.
/// `on_report` sees each report as it is written (the policy and its actions).
pub fn replay(
    settings: &Settings,
    input: &Path,
    out: &mut dyn std::io::Write,
    on_report: &mut dyn FnMut(&WindowReport),
) -> Result<ReplaySummary, InputError> {
    use std::io::BufRead;
    let mut engine = Engine::from_settings(settings)?;
    let file = std::fs::File::open(input).map_err(|e| InputError::file(input, format!("cannot open: {e}")))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut summary = ReplaySummary::default();
    let mut emit = |engine: &mut Engine, summary: &mut ReplaySummary| -> Result<(), InputError> {
        for (spec, acc) in engine.take_closed() {
            let report = window_report(&spec, acc);
            summary.windows += 1;
            let line = serde_json::to_string(&report).expect("report serializes");
            writeln!(out, "{line}").map_err(|e| InputError::file(input, format!("cannot write a report: {e}")))?;
            on_report(&report);
        }
        Ok(())
    };
    let mut reader = reader;
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n =
            reader.read_until(b'\n', &mut line).map_err(|e| InputError::file(input, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.messages += 1;
        if engine.ingest(&line, None, None).is_ok() {
            summary.events += 1;
        }
        emit(&mut engine, &mut summary)?;
    }
    engine.flush();
    emit(&mut engine, &mut summary)?;
    summary.decode_errors =
        engine.decode_error_counts().filter(|(_, n)| *n > 0).map(|(r, n)| (r.to_string(), n)).collect();
    summary.late_events = engine.models.iter().map(|m| m.late_total).sum();
    Ok(summary)
}

/// What a replay went through.
#[derive(Debug, Default, Serialize)]
pub struct ReplaySummary {
    pub messages: u64,
    pub events: u64,
    pub windows: u64,
    pub late_events: u64,
    pub decode_errors: BTreeMap<String, u64>,
    /// Drift episodes per model, and retrain requests by outcome (with a policy configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<serde_json::Value>,
}
