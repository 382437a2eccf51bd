//! A message layout remembered: the bytes between the values of the last message the
//! scanner read (keys, punctuation, whitespace) and what each value is. Producers write
//! every message of a stream alike, so the next message is read by comparing those bytes
//! in place and parsing only the values: no key is scanned or matched, no feature name
//! copied one by one, and the router finds each field's slot by its place
//! (`Scratch::layout`) without comparing names. Any difference in those bytes and the
//! message is read as before, the layout remembered afresh.
//!
//! The values are parsed by the same code on both paths, and the bytes between them
//! are the same, so both give the same result for any message (tested on random ones).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What a value of the layout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Model,
    Version,
    Timestamp,
    Prediction,
    /// A feature, its name at this range of `Skeleton::names`.
    Feature(u32, u32),
    /// A top-level value driftd does not read (`request_id`, a label).
    Other,
}

/// One value: where the bytes before it end in `Skeleton::bytes` (they start where the
/// previous piece's end), and its role.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece {
    pub(super) end: u32,
    pub(super) role: Role,
}

#[derive(Debug, Default)]
pub struct Skeleton {
    /// Nonzero, one per layout in the process (`id_of`): the router's slot caches are keyed
    /// by it. 0: none.
    pub(super) id: u64,
    pub(super) bytes: Vec<u8>,
    /// The values in order; the bytes past the last piece's end are those after the last
    /// value, to the end of the message.
    pub(super) pieces: Vec<Piece>,
    /// The feature names, in message order, as `Scratch` holds them.
    pub(super) names: String,
}

impl Skeleton {
    /// The bytes before each value, with its role, then the bytes after the last value.
    pub(super) fn walk(&self) -> (impl Iterator<Item = (&[u8], Role)> + '_, &[u8]) {
        let mut start = 0;
        let pieces = self.pieces.iter().map(move |p| {
            let before = &self.bytes[start..p.end as usize];
            start = p.end as usize;
            (before, p.role)
        });
        let tail = self.pieces.last().map_or(0, |p| p.end as usize);
        (pieces, &self.bytes[tail..])
    }
}

/// The two layouts read last, the newer first: a stream of one layout, or of two
/// interleaved (two producers, two models), is read through them.
#[derive(Debug, Default)]
pub struct Layouts {
    pub(super) recent: [Skeleton; 2],
    /// Messages in a row that fitted neither (and were read member by member): past
    /// `MISSES`, the scanner stops trying them (and recording) for `REST` messages, so a
    /// stream mixing many layouts pays next to nothing for them.
    misses: u32,
    rest: u32,
}

const MISSES: u32 = 4;
const REST: u32 = 256;

static IDS: AtomicU64 = AtomicU64::new(1);

/// Layouts by their content, so that scratches recording the same layout give it the same
/// id (the daemon decodes a batch into one scratch per place in it) and the router's slot
/// caches hold across them. Bounded: past `INTERNED_MAX` layouts, a new one gets an id of
/// its own, so a producer inventing layouts cannot grow it.
static INTERNED: Mutex<Option<HashMap<Vec<u8>, u64>>> = Mutex::new(None);
const INTERNED_MAX: usize = 4096;

/// The id of `sk`'s layout: the same for the same bytes, values and names.
fn id_of(sk: &Skeleton) -> u64 {
    // neither the bytes between values nor the names hold 0xFF (they are UTF-8), and the
    // pieces are fixed-width: one key per layout
    let mut key = Vec::with_capacity(sk.bytes.len() + sk.names.len() + 13 * sk.pieces.len() + 2);
    key.extend_from_slice(&sk.bytes);
    key.push(0xFF);
    key.extend_from_slice(sk.names.as_bytes());
    key.push(0xFF);
    for p in &sk.pieces {
        let (tag, a, b) = match p.role {
            Role::Model => (0, 0, 0),
            Role::Version => (1, 0, 0),
            Role::Timestamp => (2, 0, 0),
            Role::Prediction => (3, 0, 0),
            Role::Feature(a, b) => (4, a, b),
            Role::Other => (5, 0, 0),
        };
        for n in [p.end, a, b] {
            key.extend(n.to_le_bytes());
        }
        key.push(tag);
    }
    intern(&key)
}

/// The layout id of rows whose values come in this order under these names (an Open
/// Inference Protocol batch's rows, `pair.rs`): the same for the same names.
pub(in crate::pipeline) fn names_layout<'n>(names: impl Iterator<Item = &'n str>) -> u64 {
    thread_local! {
        /// The key's buffer, reused: a batch's names cost no allocation.
        static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    KEY.with_borrow_mut(|key| {
        key.clear();
        // 0xFE never starts a skeleton's key (UTF-8), nor is it in a name
        key.push(0xFE);
        for n in names {
            key.extend_from_slice(n.as_bytes());
            key.push(0xFF);
        }
        intern(key)
    })
}

fn intern(key: &[u8]) -> u64 {
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let interned = interned.get_or_insert_with(HashMap::new);
    if let Some(id) = interned.get(key) {
        return *id;
    }
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    if interned.len() < INTERNED_MAX {
        interned.insert(key.to_vec(), id);
    }
    id
}

impl Layouts {
    /// Whether to try (and record) layouts for the next message.
    pub(super) fn resting(&mut self) -> bool {
        if self.rest > 0 {
            self.rest -= 1;
            return true;
        }
        false
    }

    /// `recent[k]` fitted: it becomes the newer.
    pub(super) fn fitted(&mut self, k: usize) -> u64 {
        self.recent.swap(0, k);
        self.misses = 0;
        self.recent[0].id
    }

    /// A recorder over the older layout's buffers.
    pub(super) fn record(&mut self) -> Recorder {
        Recorder::reuse(std::mem::take(&mut self.recent[1]))
    }

    /// The message read member by member: its layout (`Some`) becomes the newer; `tried`:
    /// whether known layouts had been tried first (and missed).
    pub(super) fn recorded(&mut self, sk: Skeleton, read: bool, tried: bool) -> u64 {
        self.recent[1] = sk;
        if !read {
            // a message the scanner cannot read says nothing of the layouts
            return 0;
        }
        self.recent.swap(0, 1);
        if tried {
            self.misses += 1;
            if self.misses >= MISSES {
                self.misses = 0;
                self.rest = REST;
            }
        }
        self.recent[0].id
    }
}

/// A skeleton in the making, while the scanner reads a message the long way.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    sk: Skeleton,
    /// Where the last value ended.
    end: usize,
}

impl Recorder {
    /// Starts recording into `sk`'s buffers (reused).
    pub(super) fn reuse(mut sk: Skeleton) -> Recorder {
        // not a layout until finished
        sk.id = 0;
        sk.bytes.clear();
        sk.pieces.clear();
        sk.names.clear();
        Recorder { sk, end: 0 }
    }

    /// The bytes since the last value, up to `start`; `role` the value's.
    #[inline]
    pub(super) fn value(&mut self, msg: &[u8], start: usize, role: Role) {
        self.sk.bytes.extend_from_slice(&msg[self.end..start]);
        self.sk.pieces.push(Piece { end: self.sk.bytes.len() as u32, role });
    }

    /// The value that began at the last `value` call ended at `end`.
    #[inline]
    pub(super) fn ended(&mut self, end: usize) {
        self.end = end;
    }

    /// A feature's name, into the skeleton's names; the role it goes with.
    pub(super) fn feature(&mut self, name: &str) -> Role {
        let a = self.sk.names.len() as u32;
        self.sk.names.push_str(name);
        Role::Feature(a, self.sk.names.len() as u32)
    }

    /// The skeleton of the whole message, `msg`.
    pub(super) fn finish(mut self, msg: &[u8]) -> Skeleton {
        self.sk.bytes.extend_from_slice(&msg[self.end..]);
        self.sk.id = id_of(&self.sk);
        self.sk
    }

    /// Gives the buffers back, no layout (the message was not one the scanner reads).
    pub(super) fn abandon(self) -> Skeleton {
        self.sk
    }
}

/// `a == b` for the short runs a skeleton holds, without a call to `memcmp`: eight
/// bytes at a time, the last word overlapping.
#[inline]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("eight bytes"));
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        return word(a, n - 8) == word(b, n - 8);
    }
    if n >= 4 {
        let half = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("four bytes"));
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    a == b
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn same_compares_every_length() {
        let a: Vec<u8> = (0..40).collect();
        for n in 0..40 {
            assert!(same(&a[..n], &a[..n]));
            for i in 0..n {
                let mut b = a[..n].to_vec();
                b[i] ^= 0x20;
                assert!(!same(&a[..n], &b), "length {n}, byte {i}");
            }
        }
        assert!(!same(b"ab", b"abc"));
    }
}
