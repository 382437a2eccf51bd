//! One window's accumulated values, per feature: a column for numbers, counts for
//! categories. Adding an event allocates nothing once the window's buffers have grown.

use polars::prelude::PlHashMap;

use super::bounds::WindowBounds;
use super::decode::{Scratch, Val};
use std::sync::Arc;

use crate::analysis::dataset::{Column, Dataset, Key, Values};
use crate::stats::binned::{BinnedSample, Bins};
use crate::stats::{sort_floats, Kind};

mod wire;
pub use wire::AccumulatorWire;

/// An event's values resolved to the model's feature slots.
#[derive(Clone, Copy)]
pub struct Event<'s> {
    /// Per monitored field: its kind, its slot, and its place in `scratch`.
    pub(super) values: &'s [(Kind, usize, u32)],
    pub(super) scratch: &'s Scratch,
    /// Fields the message carried that the model does not monitor.
    pub(super) unmonitored: u32,
    /// A second message the event was read from (a response joined to its request): its
    /// offset is held by the window as the event's own is.
    pub(super) also: Option<(u32, i64)>,
}

static NO_SCRATCH: Scratch = Scratch::new();

impl Event<'static> {
    /// An event with no feature values (every monitored feature missing).
    pub fn empty() -> Event<'static> {
        Event { values: &[], scratch: &NO_SCRATCH, unmonitored: 0, also: None }
    }
}

/// Distinct categories a feature keeps per window; past them, and for values longer than
/// `CATEGORY_MAX_BYTES`, events count under `OTHER_CATEGORY`. A window's memory then
/// does not grow with what producers make up (unique ids sent as categories).
pub const CATEGORY_LIMIT: usize = 10_000;
/// The longest category value kept as itself.
pub const CATEGORY_MAX_BYTES: usize = 256;
/// Where the categories past the limit count: a category no reference has, so mass in it
/// reads as unseen values.
pub const OTHER_CATEGORY: &str = "(other)";

#[derive(Debug, Default, Clone)]
struct CategoryCounts {
    strings: PlHashMap<String, u64>,
    numbers: PlHashMap<u64, u64>,
}

impl CategoryCounts {
    /// One category more; the string is copied only the first time it is seen.
    fn count_text(&mut self, s: &str) {
        self.add_text(s, 1);
    }

    /// `n` of category `s` (or of `OTHER_CATEGORY`, past the limits).
    fn add_text(&mut self, s: &str, n: u64) {
        if let Some(c) = self.strings.get_mut(s) {
            *c += n;
        } else if s.len() > CATEGORY_MAX_BYTES || self.len() >= CATEGORY_LIMIT {
            *self.strings.entry(OTHER_CATEGORY.to_string()).or_insert(0) += n;
        } else {
            self.strings.insert(s.to_string(), n);
        }
    }

    /// `n` of the numerical category `bits` (or of `OTHER_CATEGORY`, past the limit).
    fn add_number(&mut self, bits: u64, n: u64) {
        if let Some(c) = self.numbers.get_mut(&bits) {
            *c += n;
        } else if self.len() >= CATEGORY_LIMIT {
            self.add_text(OTHER_CATEGORY, n);
        } else {
            self.numbers.insert(bits, n);
        }
    }

    fn len(&self) -> usize {
        self.strings.len() + self.numbers.len()
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
    /// Per numerical slot, the range its values are clipped to (`stats::clip_range`);
    /// empty: none.
    pub clip: Arc<Vec<(f64, f64)>>,
}

impl Shape {
    /// Slots only, every value kept (tests, and models without a profile yet).
    pub fn exact(numeric: usize, categorical: usize) -> Shape {
        Shape { numeric, categorical, bins: Arc::new(Vec::new()), exact_up_to: usize::MAX, clip: Arc::default() }
    }
}

/// A numerical slot's values: kept as they are while few, then binned (a continuous
/// feature) or counted by value (a discrete one): memory no longer grows with events.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
    /// Per partition, the lowest and highest source offsets among the window's events: a
    /// partition's offset may be committed only below every open window's lowest; a count
    /// window's highest marks what it reported.
    offsets: Vec<(u32, i64, i64)>,
    /// A closed sliding window's panes, their counts taken, their values not yet added
    /// (`into_dataset` adds them): the windows one close ends share their panes, so
    /// memory holds each pane once however many windows end at once, and one window's
    /// values at a time while they are reported.
    deferred: Vec<Arc<Accumulator>>,
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
            offsets: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// A window made of `panes` (a sliding window's), their counts taken now and their
    /// values when the window is reported.
    pub fn of_panes(shape: Shape, bounds: WindowBounds, panes: Vec<Arc<Accumulator>>) -> Accumulator {
        let mut acc = Accumulator::new(shape, bounds);
        for pane in &panes {
            acc.merge_counts(pane);
        }
        acc.deferred = panes;
        acc
    }

    /// The deferred panes' values added: the window whole.
    fn realize(&mut self) {
        for pane in std::mem::take(&mut self.deferred) {
            self.merge_values(&pane);
        }
    }

    pub fn holds_partition(&self, pid: u32) -> bool {
        self.offsets.iter().any(|(p, ..)| *p == pid)
    }

    pub fn min_offset(&self, pid: u32) -> Option<i64> {
        self.offsets.iter().find(|(p, ..)| *p == pid).map(|(_, lo, _)| *lo)
    }

    /// Per partition, the lowest and highest offsets among the window's events.
    pub fn offset_spans(&self) -> impl Iterator<Item = (u32, i64, i64)> + '_ {
        self.offsets.iter().copied()
    }

    /// Per partition, the highest offset among the window's events.
    pub fn max_offsets(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.offsets.iter().map(|(p, _, hi)| (*p, *hi))
    }

    /// The first and last event times, once an event came.
    pub fn event_time_span(&self) -> Option<WindowBounds> {
        (self.events > 0).then_some(WindowBounds { start_ms: self.min_ts, end_ms: self.max_ts })
    }

    fn note_position(&mut self, position: Option<(u32, i64)>) {
        let Some((pid, offset)) = position else { return };
        self.note_range(pid, offset, offset);
    }

    fn note_range(&mut self, pid: u32, lo: i64, hi: i64) {
        match self.offsets.iter_mut().find(|(p, ..)| *p == pid) {
            Some((_, a, b)) => (*a, *b) = ((*a).min(lo), (*b).max(hi)),
            None => self.offsets.push((pid, lo, hi)),
        }
    }

    pub fn add(&mut self, event: &Event<'_>, ts: i64, position: Option<(u32, i64)>) {
        self.note_position(position);
        self.note_position(event.also);
        self.events += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        self.unmonitored += u64::from(event.unmonitored);
        for &(kind, slot, at) in event.values {
            let value = event.scratch.value(at);
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
                        self.categorical[slot].add_number(x.to_bits(), 1)
                    }
                }
            }
        }
    }

    fn push_number(&mut self, slot: usize, x: f64) {
        let x = match self.shape.clip.get(slot) {
            Some(&(lo, hi)) => x.clamp(lo, hi),
            None => x,
        };
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

    /// Adds `other`'s events (a pane of a sliding window, or another partition's part of
    /// the same window): counts add, kept values join, and a slot past `exact_up_to` on
    /// either side is binned (or counted) on both. The bounds stay `self`'s.
    pub fn merge(&mut self, other: &Accumulator) {
        self.merge_counts(other);
        self.merge_values(other);
    }

    /// `other`'s counts of events and where they came from.
    fn merge_counts(&mut self, other: &Accumulator) {
        self.events += other.events;
        self.late += other.late;
        self.invalid += other.invalid;
        self.unmonitored += other.unmonitored;
        self.min_ts = self.min_ts.min(other.min_ts);
        self.max_ts = self.max_ts.max(other.max_ts);
        for &(pid, lo, hi) in &other.offsets {
            self.note_range(pid, lo, hi);
        }
    }

    /// `other`'s values (its deferred panes' too).
    fn merge_values(&mut self, other: &Accumulator) {
        for pane in &other.deferred {
            self.merge_values(pane);
        }
        for (a, b) in self.numeric_invalid.iter_mut().zip(&other.numeric_invalid) {
            *a += b;
        }
        for (a, b) in self.categorical.iter_mut().zip(&other.categorical) {
            for (k, c) in &b.strings {
                a.add_text(k, *c);
            }
            for (k, c) in &b.numbers {
                a.add_number(*k, *c);
            }
        }
        for slot in 0..self.numeric.len().min(other.numeric.len()) {
            if !matches!(other.numeric[slot], Numbers::Exact(_)) {
                self.spill(slot);
            }
            match (&mut self.numeric[slot], &other.numeric[slot]) {
                (Numbers::Exact(a), Numbers::Exact(b)) => {
                    a.extend_from_slice(b);
                    if a.len() > self.shape.exact_up_to {
                        self.spill(slot);
                    }
                }
                (Numbers::Binned(a), Numbers::Exact(b)) => b.iter().for_each(|x| a.add(*x)),
                (Numbers::Counted(a), Numbers::Exact(b)) => {
                    b.iter().for_each(|x| *a.entry(value_key(*x)).or_insert(0) += 1)
                }
                (Numbers::Binned(a), Numbers::Binned(b)) => a.merge(b),
                (Numbers::Counted(a), Numbers::Counted(b)) => {
                    for (k, c) in b {
                        *a.entry(*k).or_insert(0) += c;
                    }
                }
                // one shape: a slot is binned or counted, never both
                (Numbers::Exact(_), _)
                | (Numbers::Binned(_), Numbers::Counted(_))
                | (Numbers::Counted(_), Numbers::Binned(_)) => {
                    debug_assert!(false, "accumulators of different shapes merged")
                }
            }
        }
    }

    /// Every numerical slot binned (or counted by value) from now on.
    pub fn spill_all(&mut self) {
        (0..self.numeric.len()).for_each(|slot| self.spill(slot));
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
    pub fn into_dataset(mut self, model: &str, numeric: &[String], categorical: &[String]) -> (Dataset, Vec<String>) {
        self.realize();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::XorShift64;

    fn shape() -> Shape {
        let sketch: Vec<f64> = (0..1001).map(|i| i as f64 / 100.0).collect();
        let bins = Bins::new(&sketch, &[2.5, 5.0, 7.5], 40);
        Shape {
            numeric: 1,
            categorical: 1,
            bins: Arc::new(vec![Some(Arc::new(bins))]),
            exact_up_to: 50,
            clip: Arc::default(),
        }
    }

    fn add(acc: &mut Accumulator, x: f64, cat: &str, scratch: &mut Scratch) {
        scratch.clear();
        scratch.push("x", crate::pipeline::decode::Scalar::Num(x));
        scratch.push("c", crate::pipeline::decode::Scalar::Str(cat.into()));
        let values = [(Kind::Numerical, 0, 0), (Kind::Categorical, 0, 1)];
        acc.add(
            &Event { values: &values, scratch, unmonitored: 1, also: None },
            (x * 1000.0) as i64,
            Some((0, x as i64)),
        );
    }

    /// Categories made up per message (unique ids, long blobs) stop growing a window at
    /// the limit: every event still counts, the rest under "(other)", also after a merge.
    #[test]
    fn made_up_categories_are_capped_and_every_event_counts() {
        let mut scratch = Scratch::new();
        let mut acc = Accumulator::new(shape(), WindowBounds::default());
        let unique = CATEGORY_LIMIT + 5_000;
        for i in 0..unique {
            add(&mut acc, 1.0, &format!("u{i}"), &mut scratch);
        }
        let long = "x".repeat(CATEGORY_MAX_BYTES + 1);
        for _ in 0..5 {
            add(&mut acc, 1.0, &long, &mut scratch);
        }
        let counts = &acc.categorical[0].strings;
        assert_eq!(counts.len(), CATEGORY_LIMIT + 1);
        assert_eq!(counts.values().sum::<u64>(), unique as u64 + 5);
        assert_eq!(counts[OTHER_CATEGORY], 5_000 + 5);
        assert!(!counts.contains_key(&long));
        // merging two full windows stays within the limit too
        let mut other = Accumulator::new(shape(), WindowBounds::default());
        for i in 0..CATEGORY_LIMIT {
            add(&mut other, 1.0, &format!("v{i}"), &mut scratch);
        }
        acc.merge(&other);
        let counts = &acc.categorical[0].strings;
        assert_eq!(counts.len(), CATEGORY_LIMIT + 1);
        assert_eq!(counts.values().sum::<u64>(), (unique + 5 + CATEGORY_LIMIT) as u64);
    }

    /// The counts a slot holds, whatever its form.
    fn binned(acc: &Accumulator) -> (Vec<u64>, u64) {
        match &acc.numeric[0] {
            Numbers::Binned(b) => (b.counts.clone(), b.n),
            other => panic!("not binned: {other:?}"),
        }
    }

    #[test]
    fn merged_parts_equal_the_whole_whichever_form_each_part_holds() {
        let mut rng = XorShift64::new(9);
        let mut scratch = Scratch::new();
        let (mut small, mut big, mut whole) = (
            Accumulator::new(shape(), WindowBounds::default()),
            Accumulator::new(shape(), WindowBounds::default()),
            Accumulator::new(shape(), WindowBounds::default()),
        );
        for i in 0..130 {
            let x = rng.next_f64() * 12.0 - 1.0;
            let cat = ["a", "b", "c"][i % 3];
            add(if i < 30 { &mut small } else { &mut big }, x, cat, &mut scratch);
            add(&mut whole, x, cat, &mut scratch);
        }
        assert!(matches!(small.numeric[0], Numbers::Exact(_)) && matches!(big.numeric[0], Numbers::Binned(_)));
        let mut kept_first = Accumulator::new(shape(), WindowBounds::default());
        kept_first.merge(&small);
        kept_first.merge(&big);
        big.merge(&small);
        for merged in [&kept_first, &big] {
            assert_eq!(binned(merged), binned(&whole));
            assert_eq!((merged.events, merged.unmonitored), (130, 130));
            assert_eq!((merged.min_ts, merged.max_ts), (whole.min_ts, whole.max_ts));
            assert_eq!(merged.min_offset(0), whole.min_offset(0));
            assert_eq!(merged.categorical[0].strings, whole.categorical[0].strings);
        }
    }

    #[test]
    fn an_accumulator_comes_back_whole_from_the_wire() {
        let mut rng = XorShift64::new(3);
        let mut scratch = Scratch::new();
        for n in [0, 20, 130] {
            let mut acc = Accumulator::new(shape(), WindowBounds::default());
            for i in 0..n {
                add(&mut acc, rng.next_f64() * 12.0 - 1.0, ["a", "b"][i % 2], &mut scratch);
            }
            let json = serde_json::to_string(&acc.to_wire()).unwrap();
            let back = Accumulator::from_wire(shape(), acc.bounds, serde_json::from_str(&json).unwrap()).unwrap();
            assert_eq!(back.to_wire(), acc.to_wire(), "{n} events");
            assert_eq!(back.events, n as u64);
        }
        // a partial made under another feature list is refused, not merged
        let acc = Accumulator::new(Shape::exact(2, 0), WindowBounds::default());
        let err = Accumulator::from_wire(shape(), WindowBounds::default(), acc.to_wire()).unwrap_err();
        assert!(err.contains("2 numerical"), "{err}");
    }
}
