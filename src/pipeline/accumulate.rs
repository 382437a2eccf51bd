//! One window's accumulated values, per feature: a column for numbers, counts for
//! categories. Adding an event allocates nothing once the window's buffers have grown.

use polars::prelude::PlHashMap;

use super::bounds::WindowBounds;
use super::decode::{Scratch, Val};
use std::sync::Arc;

use crate::offline::dataset::{Column, Dataset, Key, Values};
use crate::stats::binned::{BinnedSample, Bins};
use crate::stats::{sort_floats, Kind};

/// An event's values resolved to the model's feature slots.
#[derive(Clone, Copy)]
pub struct Event<'s> {
    pub(super) values: &'s [(Kind, usize, Val)],
    pub(super) scratch: &'s Scratch,
    /// Fields the message carried that the model does not monitor.
    pub(super) unmonitored: u32,
}

static NO_SCRATCH: Scratch = Scratch::new();

impl Event<'static> {
    /// An event with no feature values (every monitored feature missing).
    pub fn empty() -> Event<'static> {
        Event { values: &[], scratch: &NO_SCRATCH, unmonitored: 0 }
    }
}

#[derive(Debug, Default)]
struct CategoryCounts {
    strings: PlHashMap<String, u64>,
    numbers: PlHashMap<u64, u64>,
}

impl CategoryCounts {
    /// One category more; the string is copied only the first time it is seen.
    fn count_text(&mut self, s: &str) {
        match self.strings.get_mut(s) {
            Some(c) => *c += 1,
            None => {
                self.strings.insert(s.to_string(), 1);
            }
        }
    }

    /// The counts sorted by key, as a dataset column holds them.
    fn into_sorted(self) -> Vec<(Key, u64)> {
        let mut counts: Vec<(Key, u64)> = self.strings.into_iter().map(|(k, c)| (Key::Str(k), c)).collect();
        counts.extend(self.numbers.into_iter().map(|(bits, c)| (Key::Num(f64::from_bits(bits)), c)));
        counts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        counts
    }
}

/// What a window's accumulator is made with: its slots, and how numbers are held.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    pub numeric: usize,
    pub categorical: usize,
    /// Per numerical slot, the fine bins its values go into once there are too many to keep
    /// (`None`: a discrete feature, counted by value). Empty: every slot keeps its values.
    pub bins: Arc<Vec<Option<Arc<Bins>>>>,
    /// Values a numerical slot keeps as they are before it is binned.
    pub exact_up_to: usize,
}

impl Shape {
    /// Slots only, every value kept (tests, and models without a profile yet).
    pub fn exact(numeric: usize, categorical: usize) -> Shape {
        Shape { numeric, categorical, bins: Arc::new(Vec::new()), exact_up_to: usize::MAX }
    }
}

/// A numerical slot's values: kept as they are while few, then binned (a continuous
/// feature) or counted by value (a discrete one): memory no longer grows with events.
#[derive(Debug)]
enum Numbers {
    Exact(Vec<f64>),
    Binned(BinnedSample),
    Counted(PlHashMap<u64, u64>),
}

/// A value's key when counted: -0 and 0 are one value.
fn value_key(x: f64) -> u64 {
    (x + 0.0).to_bits()
}

/// One window's values. A feature's missing count is the events minus its values.
#[derive(Debug)]
pub struct Accumulator {
    pub bounds: WindowBounds,
    pub events: u64,
    /// Events that arrived after one of their windows had closed.
    pub late: u64,
    /// Values of the wrong type (text that is no number, for a numerical feature).
    pub invalid: u64,
    /// Fields carried by the window's messages that the model does not monitor.
    pub unmonitored: u64,
    numeric: Vec<Numbers>,
    shape: Shape,
    /// Per numerical slot: its values of the wrong type.
    numeric_invalid: Vec<u64>,
    categorical: Vec<CategoryCounts>,
    min_ts: i64,
    max_ts: i64,
    /// Lowest source offset per partition among the window's events: a partition's offset
    /// may be committed only below every open window's.
    min_offsets: Vec<(u32, i64)>,
}

impl Accumulator {
    pub fn new(shape: Shape, bounds: WindowBounds) -> Accumulator {
        Accumulator {
            bounds,
            events: 0,
            late: 0,
            invalid: 0,
            unmonitored: 0,
            numeric: (0..shape.numeric).map(|_| Numbers::Exact(Vec::new())).collect(),
            numeric_invalid: vec![0; shape.numeric],
            categorical: (0..shape.categorical).map(|_| CategoryCounts::default()).collect(),
            shape,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            min_offsets: Vec::new(),
        }
    }

    pub fn holds_partition(&self, pid: u32) -> bool {
        self.min_offsets.iter().any(|(p, _)| *p == pid)
    }

    pub fn min_offset(&self, pid: u32) -> Option<i64> {
        self.min_offsets.iter().find(|(p, _)| *p == pid).map(|(_, o)| *o)
    }

    /// The first and last event times, once an event came.
    pub fn event_time_span(&self) -> Option<WindowBounds> {
        (self.events > 0).then_some(WindowBounds { start_ms: self.min_ts, end_ms: self.max_ts })
    }

    fn note_position(&mut self, position: Option<(u32, i64)>) {
        let Some((pid, offset)) = position else { return };
        match self.min_offsets.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, o)) => *o = (*o).min(offset),
            None => self.min_offsets.push((pid, offset)),
        }
    }

    pub fn add(&mut self, event: &Event<'_>, ts: i64, position: Option<(u32, i64)>) {
        self.note_position(position);
        self.events += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        self.unmonitored += u64::from(event.unmonitored);
        for &(kind, slot, value) in event.values {
            match (kind, value) {
                (_, Val::Null) => {}
                (Kind::Numerical, Val::Num(x)) => {
                    if x.is_finite() {
                        self.push_number(slot, x)
                    }
                }
                // a number sent as text ("16", " 2.5e3") is that number; "NaN" is missing
                (Kind::Numerical, Val::Text(..)) => match parse_number(event.scratch.text(value)) {
                    Some(x) if x.is_finite() => self.push_number(slot, x),
                    Some(_) => {}
                    None => {
                        self.invalid += 1;
                        self.numeric_invalid[slot] += 1;
                    }
                },
                (Kind::Numerical, Val::Bool(_)) => {
                    self.invalid += 1;
                    self.numeric_invalid[slot] += 1;
                }
                (Kind::Categorical, Val::Text(..)) => self.categorical[slot].count_text(event.scratch.text(value)),
                (Kind::Categorical, Val::Bool(b)) => {
                    self.categorical[slot].count_text(if b { "true" } else { "false" })
                }
                (Kind::Categorical, Val::Num(x)) => {
                    if x.is_finite() {
                        *self.categorical[slot].numbers.entry(x.to_bits()).or_insert(0) += 1
                    }
                }
            }
        }
    }

    fn push_number(&mut self, slot: usize, x: f64) {
        match &mut self.numeric[slot] {
            Numbers::Exact(v) => {
                v.push(x);
                if v.len() > self.shape.exact_up_to {
                    self.spill(slot);
                }
            }
            Numbers::Binned(b) => b.add(x),
            Numbers::Counted(m) => *m.entry(value_key(x)).or_insert(0) += 1,
        }
    }

    /// A slot with too many values to keep: into its fine bins, or counted by value.
    fn spill(&mut self, slot: usize) {
        let Numbers::Exact(values) = &mut self.numeric[slot] else { return };
        let values = std::mem::take(values);
        self.numeric[slot] = match self.shape.bins.get(slot).cloned().flatten() {
            Some(bins) => Numbers::Binned(BinnedSample::from_values(bins, &values)),
            None => {
                let mut m = PlHashMap::default();
                for x in values {
                    *m.entry(value_key(x)).or_insert(0) += 1;
                }
                Numbers::Counted(m)
            }
        };
    }

    /// The window as a dataset `analyze` takes (named `{model}@{start}`), and the features
    /// with no value in it. `numeric` and `categorical` name the slots.
    pub fn into_dataset(self, model: &str, numeric: &[String], categorical: &[String]) -> (Dataset, Vec<String>) {
        let rows = self.events as usize;
        let mut columns = Vec::with_capacity(numeric.len() + categorical.len());
        let mut empty = Vec::new();
        // sorting dominates a window close: one column per core
        let values: Vec<Values> = {
            use rayon::prelude::*;
            self.numeric
                .into_par_iter()
                .map(|n| match n {
                    Numbers::Exact(mut v) => {
                        sort_floats(&mut v);
                        Values::Numeric { sorted: v, integer: false }
                    }
                    Numbers::Binned(b) => Values::Binned(b),
                    Numbers::Counted(m) => {
                        let mut counts: Vec<(f64, u64)> = m.into_iter().map(|(k, c)| (f64::from_bits(k), c)).collect();
                        counts.sort_by(|a, b| a.0.total_cmp(&b.0));
                        Values::Counted { counts }
                    }
                })
                .collect()
        };
        for ((name, values), invalid) in numeric.iter().zip(values).zip(self.numeric_invalid) {
            let n = match &values {
                Values::Numeric { sorted, .. } => sorted.len(),
                Values::Binned(b) => b.n as usize,
                Values::Counted { counts } => counts.iter().map(|(_, c)| *c as usize).sum(),
                _ => 0,
            };
            if n == 0 {
                empty.push(name.clone());
            }
            let invalid = invalid as usize;
            let missing = rows - n - invalid;
            columns.push(Column { name: name.clone(), rows, missing, invalid, values });
        }
        for (name, acc) in categorical.iter().zip(self.categorical) {
            let counts = acc.into_sorted();
            let total: u64 = counts.iter().map(|(_, c)| *c).sum();
            if counts.is_empty() {
                empty.push(name.clone());
            }
            let missing = rows - total as usize;
            columns.push(Column {
                name: name.clone(),
                rows,
                missing,
                invalid: 0,
                values: Values::Categorical { counts },
            });
        }
        let path = format!("{model}@{}", self.bounds.start_rfc3339()).into();
        (Dataset { path, rows, columns }, empty)
    }
}

/// A number sent as text: `Some(NaN)` for the texts that mean missing (`""`, `"NaN"`,
/// `"null"`), `None` for text that is no number.
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("null") {
        return Some(f64::NAN);
    }
    t.parse::<f64>().ok()
}
