//! A monitored model and its tracks: the model's settings and references, one track per
//! stream of its traffic (the whole model, or one live version), each with its windows
//! and the marks that keep reported windows from reopening.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::decode::DecodeError;
use super::merge::PartWindows;
use super::offsets::PartitionTable;
use super::spec::ModelSpec;
use super::window::ModelWindows;
use crate::config::ModelConfig;
use crate::reference::ModelReferences;
use crate::stats::Kind;

/// A track whose traffic went quiet.
#[derive(Debug)]
pub struct Idle {
    pub model: String,
    pub version: Option<String>,
    /// The spec of a version's track retired (its series go); `None` for a pooled track.
    pub retired: Option<Arc<ModelSpec>>,
}

/// One stream of a model's traffic with its own windows: the whole model (pooled), or one
/// live version of it.
#[derive(Debug)]
pub struct Track {
    /// The traffic's `model_version`; `None` for a pooled model (or unversioned traffic).
    pub version: Option<String>,
    pub spec: Arc<ModelSpec>,
    pub windows: ModelWindows,
    /// When its last event came (processing time): idle tracks close their windows.
    pub last_event: Option<Instant>,
    /// A spread model's windows per input partition (when windows are merged across
    /// replicas); `windows` then stays empty.
    pub parts: Option<BTreeMap<u32, PartWindows>>,
    /// The slots of the last message's fields in their order: messages of one producer
    /// name their fields in the same order, so a field's slot is found by comparing its
    /// name with the one at its place, without hashing.
    pub(super) slot_cache: Vec<(Box<str>, Option<Slot>)>,
    /// The message layout (`Scratch::layout`) whose fields `slot_cache` holds, all of
    /// them: a message of that layout takes its slots without comparing names. 0: none.
    pub(super) slot_layout: u64,
    /// Its events lately (halved every `RECENT_HALVING` events of the model): a version
    /// with more traffic knocking takes the slot of the live one with the least.
    pub(super) recent: u64,
}

impl Track {
    fn new(
        version: Option<&str>,
        spec: Arc<ModelSpec>,
        marks: Option<&Marks>,
        partitions: &mut PartitionTable,
        spread: bool,
    ) -> Track {
        let mut windows = ModelWindows::new(spec.window, spec.shape(), spec.lateness_ms);
        if let Some(m) = marks {
            m.restore(&mut windows, partitions);
        }
        let parts = spread.then(BTreeMap::new);
        Track {
            version: version.map(str::to_string),
            spec,
            windows,
            last_event: None,
            parts,
            slot_cache: Vec::new(),
            slot_layout: 0,
            recent: 0,
        }
    }
}

/// A monitored feature's kind and slot in the accumulators.
type Slot = (Kind, usize);

/// Fields per message whose slots a track remembers by place.
pub(super) const SLOT_CACHE_FIELDS: usize = 256;

/// What keeps a track's reported windows from reopening: kept across restarts, and for a
/// version whose track was retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marks {
    pub closed_upto: i64,
    pub floor: i64,
    /// Count windows: per (topic, partition), the highest offset in a reported window;
    /// an event read again at or below it (after a crash) is not counted twice.
    pub reported: Vec<(String, i32, i64)>,
}

impl Marks {
    /// A track's marks, its partitions named.
    pub(super) fn of(w: &ModelWindows, partitions: &PartitionTable) -> Marks {
        let reported = w
            .reported()
            .iter()
            .filter_map(|(pid, offset)| partitions.name(*pid).map(|(t, p)| (t.to_string(), p, *offset)))
            .collect();
        Marks { closed_upto: w.closed_upto(), floor: w.floor(), reported }
    }

    /// Puts the marks on a track's windows.
    pub(super) fn restore(&self, w: &mut ModelWindows, partitions: &mut PartitionTable) {
        w.restore_marks(self.closed_upto, self.floor);
        for (topic, partition, offset) in &self.reported {
            w.restore_reported(partitions.id(topic, *partition), *offset);
        }
    }
}

/// A model the pipeline monitors: its settings, its references, its tracks.
#[derive(Debug)]
pub struct Model {
    pub config: Arc<ModelConfig>,
    /// The reference every version is compared with (file, URL, registry alias).
    pub shared: Option<Arc<ModelSpec>>,
    /// Each version's own reference (per-version registry references).
    pub by_version: BTreeMap<String, Arc<ModelSpec>>,
    pub tracks: Vec<Track>,
    /// Marks of tracks not live now (from the checkpoint, or retired versions).
    pub(super) marks: BTreeMap<Option<String>, Marks>,
    /// Specs swapped out lately: parts of a window made under them may still come in to
    /// be merged.
    pub(super) previous: Vec<Arc<ModelSpec>>,
    /// Versions refused for want of a slot, with their events lately (at most
    /// `KNOCKING_VERSIONS`, the least-heard replaced first).
    knocking: Vec<(String, u64)>,
    /// The model's events since the recent counts were last halved.
    since_halving: u64,
}

/// How many events of a model pass between two halvings of the recent counts: a
/// version's share of the traffic over the last few thousand events decides its slot.
const RECENT_HALVING: u64 = 4_096;
/// Versions without a slot whose traffic is counted.
const KNOCKING_VERSIONS: usize = 32;
/// A version knocking takes a slot once its recent events are this many times the live
/// version with the fewest (the margin keeps two versions of like traffic from
/// trading the slot back and forth).
const TAKEOVER_FACTOR: u64 = 2;

/// What became of a version that wanted a track.
#[derive(Debug)]
pub(super) enum Admission {
    /// Its track, live already or made now.
    Track(usize),
    /// Its track, made in place of the one of `evicted`'s version (whose windows the
    /// caller closes and reports).
    Replaced { track: usize, evicted: Box<Track> },
}

impl Model {
    pub(super) fn new(config: ModelConfig, refs: ModelReferences) -> Model {
        let shared = refs.shared.as_ref().map(|l| Arc::new(ModelSpec::new(&config, l)));
        let by_version =
            refs.by_version.iter().map(|(v, l)| (v.clone(), Arc::new(ModelSpec::new(&config, l)))).collect();
        Model {
            config: Arc::new(config),
            shared,
            by_version,
            tracks: Vec::new(),
            marks: BTreeMap::new(),
            previous: Vec::new(),
            knocking: Vec::new(),
            since_halving: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether windows can be compared: a reference for every version, or some version's.
    pub fn has_reference(&self) -> bool {
        self.shared.is_some() || !self.by_version.is_empty()
    }

    /// The spec whose id is `id` (a window's part was made under it), current or lately
    /// swapped out.
    pub fn spec_by_id(&self, id: &str, version: Option<&str>) -> Option<Arc<ModelSpec>> {
        let current = version.and_then(|v| self.by_version.get(v)).or(self.shared.as_ref());
        current
            .into_iter()
            .chain(&self.previous)
            .chain(self.tracks.iter().map(|t| &t.spec))
            .find(|s| s.id() == id)
            .cloned()
    }

    /// A spec swapped out: parts of windows made under it may still come in to be merged
    /// (the last two are kept).
    pub(super) fn remember_spec(&mut self, spec: Arc<ModelSpec>) {
        self.previous.push(spec);
        if self.previous.len() > 2 {
            self.previous.remove(0);
        }
    }

    /// The track of `version`, made on its first event. A split model tracks at most
    /// `max_live_versions`; past them, the versions with the most traffic lately hold
    /// the slots (a version knocking with `TAKEOVER_FACTOR` times the events of the
    /// quietest live one takes its place), so a producer making up versions cannot keep
    /// the real ones out. A version needs a reference.
    pub(super) fn track_for(
        &mut self,
        version: Option<&str>,
        partitions: &mut PartitionTable,
        merging: bool,
    ) -> Result<Admission, DecodeError> {
        let version = version.filter(|_| self.config.split_by_version);
        self.heard();
        if let Some(i) = self.tracks.iter().position(|t| t.version.as_deref() == version) {
            self.tracks[i].recent += 1;
            return Ok(Admission::Track(i));
        }
        let spec = match version.filter(|_| self.config.reference.per_version()) {
            Some(v) => self.by_version.get(v).cloned(),
            None => self.shared.clone(),
        };
        let spec = spec.ok_or(DecodeError::NoReference)?;
        let mut evicted = None;
        if self.config.split_by_version && self.tracks.len() >= self.config.max_live_versions {
            let knocks = self.knock(version.unwrap_or_default());
            let quietest = self.tracks.iter().enumerate().min_by_key(|(_, t)| t.recent).map(|(i, t)| (i, t.recent));
            match quietest {
                Some((i, recent)) if knocks > recent.saturating_mul(TAKEOVER_FACTOR) => {
                    let out = self.tracks.remove(i);
                    self.knocking.retain(|(v, _)| Some(v.as_str()) != version);
                    // the version leaving knocks with what it had
                    if let Some(v) = &out.version {
                        self.knocking.push((v.clone(), out.recent));
                        self.trim_knocking();
                    }
                    evicted = Some(out);
                }
                _ => return Err(DecodeError::TooManyVersions),
            }
        }
        let marks = self.marks.get(&version.map(str::to_string));
        let spread = merging && self.config.spread;
        let mut track = Track::new(version, spec, marks, partitions, spread);
        track.recent = 1;
        self.tracks.push(track);
        let track = self.tracks.len() - 1;
        Ok(match evicted {
            Some(evicted) => Admission::Replaced { track, evicted: Box::new(evicted) },
            None => Admission::Track(track),
        })
    }

    /// One event of the model: the recent counts halve every `RECENT_HALVING`.
    fn heard(&mut self) {
        self.since_halving += 1;
        if self.since_halving < RECENT_HALVING {
            return;
        }
        self.since_halving = 0;
        self.tracks.iter_mut().for_each(|t| t.recent /= 2);
        self.knocking.iter_mut().for_each(|(_, n)| *n /= 2);
        self.knocking.retain(|(_, n)| *n > 0);
    }

    /// One event of a version without a slot; returns its events lately.
    fn knock(&mut self, version: &str) -> u64 {
        if let Some((_, n)) = self.knocking.iter_mut().find(|(v, _)| v == version) {
            *n += 1;
            return *n;
        }
        self.knocking.push((version.to_string(), 1));
        self.trim_knocking();
        self.knocking.iter().find(|(v, _)| v == version).map_or(0, |(_, n)| *n)
    }

    /// At most `KNOCKING_VERSIONS` knocking: the least-heard goes (the newest stays).
    fn trim_knocking(&mut self) {
        while self.knocking.len() > KNOCKING_VERSIONS {
            let keep = self.knocking.len() - 1;
            let quietest = (0..keep).min_by_key(|&i| self.knocking[i].1).unwrap_or(0);
            self.knocking.remove(quietest);
        }
    }
}
