//! One window's accumulated values, per feature: a column for numbers, counts for
//! categories. Adding an event allocates nothing once the window's buffers have grown.

use polars::prelude::PlHashMap;

use super::bounds::WindowBounds;
use super::decode::{Scratch, Val};
use crate::offline::dataset::{Column, Dataset, Key, Values};
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

/// The sizes a window's accumulator is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub numeric: usize,
    pub categorical: usize,
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
    numeric: Vec<Vec<f64>>,
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
            numeric: vec![Vec::new(); shape.numeric],
            numeric_invalid: vec![0; shape.numeric],
            categorical: (0..shape.categorical).map(|_| CategoryCounts::default()).collect(),
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
                        self.numeric[slot].push(x)
                    }
                }
                // a number sent as text ("16", " 2.5e3") is that number; "NaN" is missing
                (Kind::Numerical, Val::Text(..)) => match parse_number(event.scratch.text(value)) {
                    Some(x) if x.is_finite() => self.numeric[slot].push(x),
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

    /// The window as a dataset `analyze` takes (named `{model}@{start}`), and the features
    /// with no value in it. `numeric` and `categorical` name the slots.
    pub fn into_dataset(self, model: &str, numeric: &[String], categorical: &[String]) -> (Dataset, Vec<String>) {
        let rows = self.events as usize;
        let mut columns = Vec::with_capacity(numeric.len() + categorical.len());
        let mut empty = Vec::new();
        // sorting dominates a window close: one column per core
        let mut values = self.numeric;
        {
            use rayon::prelude::*;
            values.par_iter_mut().for_each(|v| sort_floats(v));
        }
        for ((name, sorted), invalid) in numeric.iter().zip(values).zip(self.numeric_invalid) {
            if sorted.is_empty() {
                empty.push(name.clone());
            }
            let invalid = invalid as usize;
            let missing = rows - sorted.len() - invalid;
            let values = Values::Numeric { sorted, integer: false };
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
