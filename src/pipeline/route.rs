//! The pipeline whatever the source: decode a message, route it to its model, put it in
//! that model's windows; collect the windows that close; say which offsets are safe.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use polars::prelude::PlHashMap;

use super::accumulate::{Accumulator, Event};
use super::decode::{DecodeError, Decoder, Scratch, Val};
use super::offsets::PartitionTable;
use super::spec::ModelSpec;
use super::window::ModelWindows;
use crate::config::Settings;
use crate::error::InputError;
use crate::stats::Kind;

/// A model the pipeline monitors: what it is compared with, and its open windows.
#[derive(Debug)]
pub struct Model {
    pub spec: Arc<ModelSpec>,
    pub windows: ModelWindows,
}

impl Model {
    pub fn new(spec: ModelSpec) -> Model {
        let windows = ModelWindows::new(spec.window, spec.shape(), spec.lateness_ms);
        Model { spec: Arc::new(spec), windows }
    }
}

/// A closed window and the spec to report it with.
pub type ClosedWindow = (Arc<ModelSpec>, Accumulator);

pub struct Pipeline {
    decoder: Decoder,
    models: Vec<Model>,
    by_name: PlHashMap<String, usize>,
    topic_models: BTreeMap<String, String>,
    /// Bad messages by reason, in `DecodeError::ALL` order.
    decode_errors: [u64; DecodeError::ALL.len()],
    closed: Vec<(usize, Accumulator)>,
    partitions: PartitionTable,
    // buffers reused from message to message: no allocation per event
    scratch: Scratch,
    resolved: Vec<(Kind, usize, Val)>,
    closed_scratch: Vec<Accumulator>,
}

impl Pipeline {
    /// Loads every model's reference.
    pub fn from_settings(settings: &Settings) -> Result<Pipeline, InputError> {
        if settings.models.is_empty() {
            return Err(InputError::flag("models", "the config defines no [[models]]"));
        }
        let configs = settings.model_configs().map_err(|e| InputError::flag(&e.key, e.reason))?;
        let mut models = Vec::with_capacity(configs.len());
        let mut by_name = PlHashMap::default();
        for m in &configs {
            by_name.insert(m.name.clone(), models.len());
            models.push(Model::new(ModelSpec::load(m)?));
        }
        Ok(Pipeline {
            decoder: Decoder::new(&settings.kafka.mapping, settings.kafka.max_message_bytes),
            models,
            by_name,
            topic_models: settings.kafka.topic_models.clone(),
            decode_errors: [0; DecodeError::ALL.len()],
            closed: Vec::new(),
            partitions: PartitionTable::default(),
            scratch: Scratch::default(),
            resolved: Vec::new(),
            closed_scratch: Vec::new(),
        })
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// A small id for a source partition.
    pub fn partition_id(&mut self, topic: &str, partition: i32) -> u32 {
        self.partitions.id(topic, partition)
    }

    /// Takes one message from a file: `source_ts_ms` stands when the message has no
    /// timestamp; `topic` picks the default model. Returns the model's index.
    pub fn ingest(
        &mut self,
        payload: &[u8],
        source_ts_ms: Option<i64>,
        topic: Option<&str>,
    ) -> Result<usize, DecodeError> {
        let result = self.route(payload, source_ts_ms, topic, None);
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
    ) -> Result<usize, DecodeError> {
        self.partitions.read(pid, offset);
        let result = self.route(payload, source_ts_ms, topic, Some((pid, offset)));
        self.count(result)
    }

    fn count(&mut self, result: Result<usize, DecodeError>) -> Result<usize, DecodeError> {
        if let Err(e) = result {
            self.decode_errors[e.index()] += 1;
        }
        result
    }

    fn route(
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
            if let Some((kind, slot)) = model.spec.slot(name) {
                self.resolved.push((kind, slot, value));
            }
        }
        let event = Event { values: &self.resolved, scratch: &self.scratch };
        let mut closed = std::mem::take(&mut self.closed_scratch);
        let result = model.windows.ingest(&event, ts, position, &mut closed);
        self.closed.extend(closed.drain(..).map(|w| (idx, w)));
        self.closed_scratch = closed;
        result.map(|_| idx)
    }

    /// True when windows closed since the last `take_closed`.
    pub fn has_closed(&self) -> bool {
        !self.closed.is_empty()
    }

    /// Windows closed since the last call, with their model's spec, oldest first.
    pub fn take_closed(&mut self) -> Vec<ClosedWindow> {
        std::mem::take(&mut self.closed).into_iter().map(|(i, w)| (self.models[i].spec.clone(), w)).collect()
    }

    /// Closes the windows holding events of these partitions (a rebalance takes them).
    pub fn close_partitions(&mut self, revoked: &[(String, i32)]) {
        for (topic, partition) in revoked {
            let Some(pid) = self.partitions.find(topic, *partition) else { continue };
            for (i, m) in self.models.iter_mut().enumerate() {
                let mut closed = Vec::new();
                m.windows.close_partition(pid, &mut closed);
                self.closed.extend(closed.into_iter().map(|w| (i, w)));
            }
        }
    }

    /// Closes the open windows of one model (its traffic went idle).
    pub fn close_model(&mut self, idx: usize) {
        let mut closed = Vec::new();
        self.models[idx].windows.close_all(&mut closed);
        self.closed.extend(closed.into_iter().map(|w| (idx, w)));
    }

    /// Closes every open window of every model (end of input).
    pub fn close_all(&mut self) {
        for idx in 0..self.models.len() {
            self.close_model(idx);
        }
    }

    /// Per partition, the offset below which every event is safe (in a reported window,
    /// or bad, or late): what may be committed.
    pub fn safe_offsets(&self) -> Vec<(String, i32, i64)> {
        self.partitions.safe(|pid| self.models.iter().filter_map(|m| m.windows.min_open_offset(pid)).min())
    }

    /// Per model, the end of its last reported event-time window: what survives a restart,
    /// so events read again never reopen a reported window.
    pub fn closed_marks(&self) -> Vec<(String, i64)> {
        self.models.iter().map(|m| (m.spec.name.clone(), m.windows.closed_upto())).collect()
    }

    pub fn restore_closed_marks(&mut self, marks: impl IntoIterator<Item = (String, i64)>) {
        for (name, mark) in marks {
            if let Some(&i) = self.by_name.get(&name) {
                self.models[i].windows.restore_closed_upto(mark);
            }
        }
    }

    /// Takes the models of `new` (a reloaded config): a model whose windows and features
    /// are unchanged keeps its open windows and counters under its new thresholds and
    /// reference.
    pub fn reload(&mut self, new: Pipeline) {
        let mut old: HashMap<String, Model> = self.models.drain(..).map(|m| (m.spec.name.clone(), m)).collect();
        self.models = new
            .models
            .into_iter()
            .map(|fresh| match old.remove(&fresh.spec.name) {
                Some(mut kept) if kept.spec.keeps_windows_of(&fresh.spec) => {
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

    /// Bad messages so far, by reason.
    pub fn decode_errors(&self) -> impl Iterator<Item = (DecodeError, u64)> + '_ {
        DecodeError::ALL.iter().copied().zip(self.decode_errors.iter().copied())
    }
}
