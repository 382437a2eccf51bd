//! The buffers a batch of rows lends back once its rows are taken: what the next
//! messages' tensors are read into, so that a warm pipeline reads a model server's
//! batches without an allocation per tensor.

use super::{Batch, Column, Tensor, TensorDe, Texts};

/// Buffers of batches already taken, for the next messages to fill: once a pipeline runs
/// warm, a tensor's name and values, and a batch's list of tensors, cost no allocation.
/// Bounded: what a few batches of the usual size need, never a burst's worth.
#[derive(Debug, Default)]
pub struct Spare {
    pub(super) nums: Vec<Vec<f64>>,
    pub(super) texts: Vec<Texts>,
    pub(super) names: Vec<String>,
    pub(super) tensors: Vec<Vec<Tensor>>,
    /// A body's tensors as read, before checks.
    pub(super) bodies: Vec<Vec<TensorDe>>,
}

thread_local! {
    /// One per thread: the thread that decodes a message routes its rows (`replay`, a
    /// consumer), so what its batches give back its next messages take. Where other
    /// threads decode (`[kafka] decode_threads`), the buffers given back stay with the
    /// routing thread, bounded: no reuse there, and nothing held beyond the bound.
    static SPARE: std::cell::RefCell<Spare> = const { std::cell::RefCell::new(Spare::new()) };
}

impl Spare {
    /// Buffers kept of each kind.
    pub(super) const KEEP: usize = 256;
    /// Values a kept buffer may hold.
    const MAX_VALUES: usize = 1 << 16;

    pub const fn new() -> Spare {
        Spare { nums: Vec::new(), texts: Vec::new(), names: Vec::new(), tensors: Vec::new(), bodies: Vec::new() }
    }

    /// This thread's buffers, to `f`.
    pub fn with<R>(f: impl FnOnce(&mut Spare) -> R) -> R {
        SPARE.with_borrow_mut(f)
    }

    pub(super) fn texts(&mut self, room: usize) -> Texts {
        let mut t = self.texts.pop().unwrap_or_default();
        t.ends.reserve(room);
        t
    }

    pub(super) fn nums(&mut self, room: usize) -> Vec<f64> {
        match self.nums.pop() {
            Some(mut v) => {
                v.reserve(room);
                v
            }
            None => Vec::with_capacity(room),
        }
    }

    pub(super) fn name(&mut self, s: &str) -> String {
        let mut name = self.names.pop().unwrap_or_default();
        name.push_str(s);
        name
    }

    pub(super) fn tensors(&mut self, n: usize) -> Vec<Tensor> {
        let mut v = self.tensors.pop().unwrap_or_default();
        v.reserve(n);
        v
    }

    /// A name's buffer, its text used.
    fn give_name(&mut self, mut name: String) {
        if self.names.len() < Self::KEEP && name.capacity() <= 256 {
            name.clear();
            self.names.push(name);
        }
    }

    /// A batch's buffers, its rows taken.
    pub fn recycle(&mut self, batch: Batch) {
        self.give_name(batch.model);
        batch.version.into_iter().chain(batch.id).for_each(|s| self.give_name(s));
        let mut tensors = batch.tensors;
        for t in tensors.drain(..) {
            match t.data {
                Column::Num(mut v) if self.nums.len() < Self::KEEP && v.capacity() <= Self::MAX_VALUES => {
                    v.clear();
                    self.nums.push(v);
                }
                Column::Text(mut v) if self.texts.len() < Self::KEEP && v.ends.capacity() <= Self::MAX_VALUES => {
                    v.buf.clear();
                    v.ends.clear();
                    self.texts.push(v);
                }
                _ => {}
            }
            self.give_name(t.name);
        }
        if self.tensors.len() < Self::KEEP && tensors.capacity() <= 1024 {
            self.tensors.push(tensors);
        }
    }
}
