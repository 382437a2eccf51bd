//! One inference, one event: a request's rows wait here for its response's (or the other
//! way round), joined by model and request id, row by row, within `pair_timeout`. A half
//! whose other does not come in time leaves alone (a request: an event without a
//! prediction; a response: an event with only its prediction), and so does the oldest half
//! when the rows waiting pass their bound. A waiting half holds its message's offset: it
//! is committed only once its rows are in windows.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use std::borrow::Cow;

use super::decode::open_inference::{Column, Tensor};
use super::decode::{names_layout, Batch, DecodeError, Scalar, Scratch, Side};
use crate::config::TensorNames;

/// Rows taken outside a message's own call (halves whose other did not come): counted
/// by the caller as the message's events are.
#[derive(Debug)]
pub struct LaterRows {
    pub model: usize,
    pub result: Result<u32, DecodeError>,
    /// Where the half was read (none from a file).
    pub at: Option<(u32, i64)>,
}

/// A batch and where it was read.
#[derive(Debug)]
pub struct Held {
    pub batch: Box<Batch>,
    /// Partition id and offset (none from a file).
    pub at: Option<(u32, i64)>,
    /// The source's time for the message (its Kafka timestamp), when the body gives none.
    pub source_ts_ms: Option<i64>,
}

impl Held {
    /// The event time of its rows.
    pub fn ts_ms(&self) -> Option<i64> {
        self.batch.ts_ms.or(self.source_ts_ms)
    }
}

/// What became of a half offered.
#[derive(Debug)]
pub enum Offer {
    /// Its other half was waiting: one inference per row.
    Joined { request: Held, response: Held },
    /// It waits for its other half.
    Waiting,
    /// It cannot be paired (no request id, or pairing off): its rows as they are.
    Alone(Held),
}

struct Waiting {
    held: Held,
    arrived: Instant,
    seq: u64,
    /// Its rows' event time.
    ts: Option<i64>,
}

/// Halves waiting for their other, by model and request id.
pub struct Pairer {
    timeout: Duration,
    max_rows: usize,
    waiting: HashMap<(usize, String), Waiting>,
    /// Arrival order: (sequence, key); a key taken since is skipped.
    order: VecDeque<(u64, (usize, String))>,
    seq: u64,
    rows: usize,
    /// The event times of the halves waiting, by model (a count each): a model's windows
    /// holding the oldest stay open until it leaves.
    times: BTreeMap<(usize, i64), u32>,
    /// Time runs by the events (a file replayed), not the wall clock: a half leaves alone
    /// once an event `pair_timeout` newer than it was offered.
    by_event_time: bool,
    newest_ts: Option<i64>,
    /// Halves joined, and halves taken alone, by side (request, response).
    pub joined: u64,
    pub unpaired: [u64; 2],
}

impl Pairer {
    pub fn new(timeout: Duration, max_rows: usize) -> Pairer {
        Pairer {
            timeout,
            max_rows,
            waiting: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            rows: 0,
            times: BTreeMap::new(),
            by_event_time: false,
            newest_ts: None,
            joined: 0,
            unpaired: [0; 2],
        }
    }

    /// Rows waiting.
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    /// `pair_timeout` counted in event time (`replay`: a file has no wall clock to go by).
    pub fn by_event_time(&mut self) {
        self.by_event_time = true;
    }

    /// The event time of model `model`'s oldest half waiting: its windows from that time
    /// on stay open until the half leaves.
    pub fn oldest_ts(&self, model: usize) -> Option<i64> {
        self.times.range((model, i64::MIN)..=(model, i64::MAX)).next().map(|((_, ts), _)| *ts)
    }

    fn insert(&mut self, key: (usize, String), held: Held, now: Instant) {
        self.seq += 1;
        self.rows += held.batch.rows;
        let ts = held.ts_ms();
        if let Some(ts) = ts {
            *self.times.entry((key.0, ts)).or_insert(0) += 1;
        }
        self.order.push_back((self.seq, key.clone()));
        self.waiting.insert(key, Waiting { held, arrived: now, seq: self.seq, ts });
    }

    fn remove(&mut self, key: &(usize, String)) -> Option<Held> {
        let w = self.waiting.remove(key)?;
        self.forget(key.0, &w);
        Some(w.held)
    }

    /// A half gone: its rows and its time no longer wait.
    fn forget(&mut self, model: usize, w: &Waiting) {
        self.rows -= w.held.batch.rows;
        if let Some(ts) = w.ts {
            if let std::collections::btree_map::Entry::Occupied(mut e) = self.times.entry((model, ts)) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }

    fn alone(&mut self, held: Held) -> Held {
        self.unpaired[usize::from(held.batch.side == Side::Response)] += 1;
        held
    }

    /// Offers a half (model `model`): joined with its other, or left waiting, or alone.
    /// Halves pushed out to keep the bound go to `out`, alone.
    pub fn offer(&mut self, model: usize, mut held: Held, now: Instant, out: &mut Vec<Held>) -> Offer {
        if held.batch.id.is_none() || self.timeout.is_zero() {
            return Offer::Alone(self.alone(held));
        }
        // the id moves into the key: nothing reads it once the half is offered
        let id = held.batch.id.take().unwrap_or_default();
        if let Some(ts) = held.ts_ms() {
            self.newest_ts = Some(self.newest_ts.map_or(ts, |n| n.max(ts)));
        }
        let key = (model, id);
        if let Some(w) = self.waiting.get(&key) {
            if w.held.batch.side != held.batch.side {
                let other = self.remove(&key).expect("present");
                self.joined += 2;
                let (request, response) = match held.batch.side {
                    Side::Request => (held, other),
                    Side::Response => (other, held),
                };
                return Offer::Joined { request, response };
            }
            if w.held.at.is_some() && w.held.at == held.at {
                // the same message read again (a partition read anew): it waits once
                return Offer::Waiting;
            }
            // a second half of one side for one id: the first leaves alone
            let first = self.remove(&key).expect("present");
            let alone = self.alone(first);
            out.push(alone);
        }
        self.insert(key, held, now);
        while self.rows > self.max_rows {
            match self.pop_oldest() {
                Some(h) => out.push(h),
                None => break,
            }
        }
        Offer::Waiting
    }

    fn pop_oldest(&mut self) -> Option<Held> {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.waiting.get(&key).is_some_and(|w| w.seq == seq) {
                let held = self.remove(&key).expect("present");
                return Some(self.alone(held));
            }
        }
        None
    }

    /// The halves that waited `pair_timeout` by `now`, oldest first, into `out`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Held>) {
        while let Some((seq, key)) = self.order.front() {
            match self.waiting.get(key) {
                Some(w) if w.seq == *seq => {
                    let waited = match (self.by_event_time, w.ts, self.newest_ts) {
                        (true, Some(ts), Some(newest)) => {
                            Duration::from_millis(u64::try_from(newest.saturating_sub(ts)).unwrap_or(0))
                        }
                        (true, _, _) => Duration::ZERO,
                        (false, _, _) => now.duration_since(w.arrived),
                    };
                    if waited < self.timeout {
                        break;
                    }
                    if let Some(h) = self.pop_oldest() {
                        out.push(h);
                    }
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// Every half waiting, alone (end of input, or its partitions revoked: `keep` says
    /// which stay).
    pub fn take(&mut self, mut take: impl FnMut(&Held) -> bool, out: &mut Vec<Held>) {
        let keys: Vec<_> =
            self.waiting.iter().filter(|(_, w)| take(&w.held)).map(|(k, w)| (w.seq, k.clone())).collect();
        let mut keys = keys;
        keys.sort_unstable();
        for (_, key) in keys {
            let held = self.remove(&key).expect("present");
            let h = self.alone(held);
            out.push(h);
        }
    }

    /// Drops the halves read from partition `pid` (lost: its new owner reads them again).
    pub fn drop_partition(&mut self, pid: u32) -> usize {
        let keys: Vec<_> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.held.at.is_some_and(|(p, _)| p == pid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.remove(key);
        }
        keys.len()
    }

    /// The lowest offset of partition `pid` a waiting half holds.
    pub fn pinned(&self, pid: u32) -> Option<i64> {
        self.waiting.values().filter_map(|w| w.held.at.filter(|(p, _)| *p == pid).map(|(_, o)| o)).min()
    }
}

/// The value at `(row, col)` of a tensor.
fn cell(t: &Tensor, row: usize, col: usize) -> Scalar<'_> {
    let i = row * t.width + col;
    match &t.data {
        Column::Num(v) => v.get(i).map_or(Scalar::Null, |x| Scalar::Num(*x)),
        Column::Bool(v) => v.get(i).map_or(Scalar::Null, |b| Scalar::Bool(*b)),
        Column::Text(v) => v.get(i).map_or(Scalar::Null, |s| Scalar::Str(Cow::Borrowed(s))),
        Column::Mixed(v) => match v.get(i) {
            Some(Scalar::Str(s)) => Scalar::Str(Cow::Borrowed(s.as_ref())),
            Some(Scalar::Num(x)) => Scalar::Num(*x),
            Some(Scalar::Bool(b)) => Scalar::Bool(*b),
            Some(Scalar::Null) | None => Scalar::Null,
        },
    }
}

/// How the rows of a request and its response fill the scratch: the names once per batch
/// (with a layout id, so the router resolves them once), then per row only the values.
pub(super) struct RowPlan<'b> {
    /// A request tensor, its column, and the feature name's place in the scratch.
    cells: Vec<(&'b Tensor, usize, (u32, u32))>,
    request_rows: usize,
    /// The response's output, which of its columns (none: the largest's index), and the
    /// place of `prediction`.
    prediction: Option<(&'b Tensor, Option<usize>, (u32, u32))>,
    response_rows: usize,
    /// The layout of rows that carry every name.
    layout: u64,
}

impl<'b> RowPlan<'b> {
    /// Each request tensor a feature (a 2-D one's columns named by `columns`), the
    /// response's output the prediction: names into `scratch`, cleared first.
    pub(super) fn new(
        scratch: &mut Scratch,
        columns: &[String],
        names: &TensorNames,
        request: Option<&'b Batch>,
        response: Option<&'b Batch>,
        version: Option<&str>,
    ) -> Result<RowPlan<'b>, DecodeError> {
        scratch.clear();
        let mut cells = Vec::with_capacity(request.map_or(0, |b| b.tensors.len()));
        for t in request.map_or(&[][..], |b| &b.tensors[..]) {
            if t.width == 1 {
                cells.push((t, 0, scratch.add_name(&t.name)));
            } else if t.width == columns.len() {
                for (c, name) in columns.iter().enumerate() {
                    cells.push((t, c, scratch.add_name(name)));
                }
            } else {
                // as wide as no feature list: which value is which feature?
                return Err(DecodeError::BadTensor);
            }
        }
        let mut prediction = None;
        if let Some(resp) = response {
            let output = match &names.prediction_output {
                Some(name) => resp.tensors.iter().find(|t| &t.name == name),
                None => resp.tensors.first(),
            };
            if let Some(t) = output {
                let column = match (t.width, names.prediction_column) {
                    (1, None) => Some(0),
                    (w, Some(c)) if c < w => Some(c),
                    (_, Some(_)) => return Err(DecodeError::BadTensor),
                    (_, None) => None,
                };
                prediction = Some((t, column, scratch.add_name("prediction")));
            }
        }
        if let Some(v) = version {
            scratch.set_version(Scalar::Str(Cow::Borrowed(v)))?;
        }
        let (request_rows, response_rows) = (request.map_or(0, |b| b.rows), response.map_or(0, |b| b.rows));
        // rows both halves have (or the one half's) all carry every name, in this order
        let layout = names_layout(
            cells.iter().map(|(_, _, n)| *n).chain(prediction.iter().map(|(_, _, n)| *n)).map(|n| scratch.name(n)),
        );
        Ok(RowPlan { cells, request_rows, prediction, response_rows, layout })
    }

    /// Rows of the batch (the longer half's).
    pub(super) fn rows(&self) -> usize {
        self.request_rows.max(self.response_rows)
    }

    /// Row `row`'s values into `scratch` (whose names `new` set).
    pub(super) fn fill(&self, scratch: &mut Scratch, row: usize) {
        scratch.clear_values();
        let has_request = row < self.request_rows;
        let has_response = row < self.response_rows && self.prediction.is_some();
        // a row only one half has (halves of unequal length) carries fewer names
        let whole = has_request == (self.request_rows > 0)
            && has_response == (self.response_rows > 0 && self.prediction.is_some());
        scratch.set_layout(if whole { self.layout } else { 0 });
        if has_request {
            for (t, c, name) in &self.cells {
                match &t.data {
                    Column::Num(v) => match v.get(row * t.width + c) {
                        Some(x) => scratch.push_num_at(*name, *x),
                        None => scratch.push_at(*name, Scalar::Null),
                    },
                    _ => scratch.push_at(*name, cell(t, row, *c)),
                }
            }
        }
        if let Some((t, column, name)) = self.prediction.as_ref().filter(|_| has_response) {
            let value = match (column, &t.data) {
                (Some(c), _) => cell(t, row, *c),
                // the index of the largest value: the class a classifier predicts
                (None, Column::Num(v)) => {
                    let w = t.width;
                    let r = &v[row * w..(row + 1) * w];
                    Scalar::Num((0..w).fold(0, |b, i| if r[i] > r[b] { i } else { b }) as f64)
                }
                (None, _) => cell(t, row, 0),
            };
            scratch.push_at(*name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn half(side: Side, id: Option<&str>, rows: usize, offset: i64) -> Held {
        let tensors = vec![Tensor { name: "x".into(), width: 1, data: Column::Num(vec![1.0; rows]) }];
        let batch =
            Batch { side, model: "m".into(), version: None, id: id.map(Into::into), ts_ms: None, rows, tensors };
        Held { batch: Box::new(batch), at: Some((0, offset)), source_ts_ms: None }
    }

    #[test]
    fn a_request_and_its_response_join_whichever_comes_first() {
        let mut p = Pairer::new(Duration::from_secs(30), 100);
        let (now, mut out) = (Instant::now(), Vec::new());
        assert!(matches!(p.offer(0, half(Side::Response, Some("a"), 2, 1), now, &mut out), Offer::Waiting));
        assert_eq!((p.pending_rows(), p.pinned(0)), (2, Some(1)));
        match p.offer(0, half(Side::Request, Some("a"), 2, 2), now, &mut out) {
            Offer::Joined { request, response } => {
                assert_eq!((request.at, response.at), (Some((0, 2)), Some((0, 1))));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((p.pending_rows(), p.pinned(0), p.joined), (0, None, 2));
        // another model's request with the same id is another inference
        p.offer(0, half(Side::Request, Some("b"), 1, 3), now, &mut out);
        assert!(matches!(p.offer(1, half(Side::Response, Some("b"), 1, 4), now, &mut out), Offer::Waiting));
        assert!(matches!(p.offer(0, half(Side::Request, None, 1, 5), now, &mut out), Offer::Alone(_)));
        assert!(out.is_empty());
    }

    #[test]
    fn halves_leave_alone_after_the_timeout_or_past_the_bound() {
        let mut p = Pairer::new(Duration::from_secs(30), 5);
        let (t0, mut out) = (Instant::now(), Vec::new());
        p.offer(0, half(Side::Request, Some("a"), 2, 1), t0, &mut out);
        p.offer(0, half(Side::Request, Some("b"), 2, 2), t0 + Duration::from_secs(10), &mut out);
        p.expire(t0 + Duration::from_secs(29), &mut out);
        assert!(out.is_empty());
        p.expire(t0 + Duration::from_secs(30), &mut out);
        assert_eq!(out.iter().map(|h| h.at).collect::<Vec<_>>(), [Some((0, 1))]);
        assert_eq!(p.unpaired, [1, 0]);
        // 2 + 4 rows > 5: the oldest leaves
        p.offer(0, half(Side::Response, Some("c"), 4, 3), t0 + Duration::from_secs(31), &mut out);
        assert_eq!(out.iter().map(|h| h.at).collect::<Vec<_>>(), [Some((0, 1)), Some((0, 2))]);
        assert_eq!((p.unpaired, p.pending_rows()), ([2, 0], 4));
        // the same message read again waits once; a second request for one id pushes the first out
        assert!(matches!(p.offer(0, half(Side::Response, Some("c"), 4, 3), t0, &mut out), Offer::Waiting));
        assert_eq!(p.pending_rows(), 4);
        p.take(|_| true, &mut out);
        assert_eq!((p.unpaired, p.pending_rows(), out.len()), ([2, 1], 0, 3));
    }
}
