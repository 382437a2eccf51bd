//! An accumulator's wire form: how a window's part travels between replicas on the
//! partials topic.

use serde::{Deserialize, Serialize};

use super::{Accumulator, CategoryCounts, Numbers, Shape};
use crate::pipeline::bounds::WindowBounds;
use crate::stats::binned::BinnedSample;

/// An accumulator as it travels between replicas (the partials topic): its counts and
/// kept values, without source positions (a partial names its own) or bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccumulatorWire {
    pub events: u64,
    pub late: u64,
    pub invalid: u64,
    pub unmonitored: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    numeric: Vec<NumbersWire>,
    numeric_invalid: Vec<u64>,
    categorical: Vec<CategoriesWire>,
}

/// A numerical slot on the wire; binned counts are sparse (a partial fills few bins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
enum NumbersWire {
    Exact {
        values: Vec<f64>,
    },
    /// (fine bin, count, sum of distances past its lower edge)
    Binned {
        bins: Vec<(u32, u64, f64)>,
        below_excess: f64,
        above_excess: f64,
    },
    /// (value's bits, count)
    Counted {
        values: Vec<(u64, u64)>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CategoriesWire {
    strings: Vec<(String, u64)>,
    /// (number's bits, count)
    numbers: Vec<(u64, u64)>,
}

impl Accumulator {
    /// The wire form (see [`AccumulatorWire`]).
    pub fn to_wire(&self) -> AccumulatorWire {
        // parts on the wire are spread models' panes and windows, never a sliding
        // window's deferred panes (those are only reported)
        debug_assert!(self.deferred.is_empty(), "a window with deferred panes sent as a part");
        let numeric = self
            .numeric
            .iter()
            .map(|n| match n {
                Numbers::Exact(v) => NumbersWire::Exact { values: v.clone() },
                Numbers::Binned(b) => NumbersWire::Binned {
                    bins: (0..b.counts.len())
                        .filter(|&i| b.counts[i] > 0)
                        .map(|i| (i as u32, b.counts[i], b.sums[i]))
                        .collect(),
                    below_excess: b.below_excess,
                    above_excess: b.above_excess,
                },
                Numbers::Counted(m) => NumbersWire::Counted { values: sorted(m.iter().map(|(k, c)| (*k, *c))) },
            })
            .collect();
        let categorical = self
            .categorical
            .iter()
            .map(|c| CategoriesWire {
                strings: sorted(c.strings.iter().map(|(k, n)| (k.clone(), *n))),
                numbers: sorted(c.numbers.iter().map(|(k, n)| (*k, *n))),
            })
            .collect();
        AccumulatorWire {
            events: self.events,
            late: self.late,
            invalid: self.invalid,
            unmonitored: self.unmonitored,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            numeric,
            numeric_invalid: self.numeric_invalid.clone(),
            categorical,
        }
    }

    /// An accumulator of `shape` from its wire form, or what does not fit the shape (a
    /// partial made with another reference or feature list, or a damaged one).
    pub fn from_wire(shape: Shape, bounds: WindowBounds, w: AccumulatorWire) -> Result<Accumulator, String> {
        if w.numeric.len() != shape.numeric
            || w.numeric_invalid.len() != shape.numeric
            || w.categorical.len() != shape.categorical
        {
            return Err(format!(
                "{} numerical and {} categorical features, the model has {} and {}",
                w.numeric.len(),
                w.categorical.len(),
                shape.numeric,
                shape.categorical
            ));
        }
        let mut acc = Accumulator::new(shape, bounds);
        for (slot, n) in w.numeric.into_iter().enumerate() {
            let bins = acc.shape.bins.get(slot).cloned().flatten();
            acc.numeric[slot] = match (n, bins) {
                (NumbersWire::Exact { values }, _) => Numbers::Exact(values),
                (NumbersWire::Binned { bins: sparse, below_excess, above_excess }, Some(bins)) => {
                    let mut b = BinnedSample::new(bins);
                    for (i, c, sum) in sparse {
                        let i = i as usize;
                        if i >= b.counts.len() {
                            return Err(format!("feature slot {slot}: fine bin {i} of {}", b.counts.len()));
                        }
                        b.counts[i] += c;
                        b.sums[i] += sum;
                        b.n += c;
                    }
                    (b.below_excess, b.above_excess) = (below_excess, above_excess);
                    Numbers::Binned(b)
                }
                (NumbersWire::Counted { values }, None) => Numbers::Counted(values.into_iter().collect()),
                (NumbersWire::Binned { .. }, None) | (NumbersWire::Counted { .. }, Some(_)) => {
                    return Err(format!("feature slot {slot}: binned here, counted by value there"))
                }
            };
        }
        acc.numeric_invalid = w.numeric_invalid;
        for (slot, c) in w.categorical.into_iter().enumerate() {
            acc.categorical[slot] =
                CategoryCounts { strings: c.strings.into_iter().collect(), numbers: c.numbers.into_iter().collect() };
        }
        (acc.events, acc.late, acc.invalid, acc.unmonitored) = (w.events, w.late, w.invalid, w.unmonitored);
        (acc.min_ts, acc.max_ts) = (w.min_ts, w.max_ts);
        Ok(acc)
    }
}

/// Pairs in key order: one accumulator has one wire form.
fn sorted<K: Ord, V>(pairs: impl Iterator<Item = (K, V)>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = pairs.collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
