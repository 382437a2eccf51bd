//! A current sample's numerical column in the form it is held: sorted values (a file, a
//! small window), counts over fine bins (a large window), or counts by value (a discrete
//! feature).

use super::dataset::{Column, Dataset, Values};
use crate::error::InputError;
use crate::stats::binned::BinnedSample;
use crate::stats::binning::{native_bin, native_bin_count, native_counts_sorted, value_counts_sorted};

/// A window's numbers in the form it holds them.
pub(super) enum Numbers<'a> {
    Sorted(&'a [f64]),
    Binned(&'a BinnedSample),
    Counted(&'a [(f64, u64)]),
}

impl Numbers<'_> {
    pub(super) fn of<'c>(c: &'c Column, current: &Dataset) -> Result<Numbers<'c>, InputError> {
        let n = match &c.values {
            Values::Numeric { sorted, .. } => Numbers::Sorted(sorted),
            Values::Binned(b) => Numbers::Binned(b),
            Values::Counted { counts } => Numbers::Counted(counts),
            _ => return Err(InputError::column(&current.path, &c.name, "holds no numbers")),
        };
        if n.len() == 0 {
            return Err(InputError::column(&current.path, &c.name, "is empty after dropping missing values"));
        }
        Ok(n)
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Numbers::Sorted(v) => v.len(),
            Numbers::Binned(b) => b.n as usize,
            Numbers::Counted(c) => c.iter().map(|(_, n)| *n as usize).sum(),
        }
    }

    /// (value, count) sorted by value: discrete features (never binned).
    pub(super) fn value_counts(&self) -> Vec<(f64, u64)> {
        match self {
            Numbers::Sorted(v) => value_counts_sorted(v),
            Numbers::Counted(c) => c.to_vec(),
            Numbers::Binned(_) => unreachable!("a discrete feature is counted by value, not binned"),
        }
    }

    /// Counts over the reference's coarse bins (native mode: `edges`, with an underflow
    /// and an overflow bin).
    pub(super) fn coarse_counts(&self, edges: &[f64]) -> Vec<f64> {
        match self {
            Numbers::Sorted(v) => native_counts_sorted(v, edges),
            Numbers::Binned(b) => b.coarse_counts(),
            Numbers::Counted(counts) => {
                let mut out = vec![0.0; native_bin_count(edges)];
                for (x, k) in counts.iter() {
                    out[native_bin(edges, *x)] += *k as f64;
                }
                out
            }
        }
    }

    /// Values below `min` and above `max`.
    pub(super) fn outside(&self, min: f64, max: f64) -> usize {
        match self {
            Numbers::Sorted(v) => v.partition_point(|x| *x < min) + (v.len() - v.partition_point(|x| *x <= max)),
            Numbers::Binned(b) => b.out_of_range() as usize,
            Numbers::Counted(c) => c.iter().filter(|(x, _)| *x < min || *x > max).map(|(_, n)| *n as usize).sum(),
        }
    }
}
