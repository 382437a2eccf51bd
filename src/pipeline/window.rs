//! A model's open windows, with the one place where a window closes (their bounds, the
//! assigner and the watermark: `bounds.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::accumulate::{Accumulator, Event, Shape};
pub use super::bounds::{windows_holding, Watermark, WindowBounds};
use super::decode::DecodeError;
use crate::config::WindowSpec;

/// One model's open windows, keyed by start (count windows: by sequence number), and the
/// marks that keep a reported window from opening again.
#[derive(Debug)]
pub struct ModelWindows {
    spec: WindowSpec,
    shape: Shape,
    open: BTreeMap<i64, Accumulator>,
    watermark: Watermark,
    /// Event-time windows ending at or before this are closed.
    closed_upto: i64,
    /// Events before this time are late whatever their windows (set where a reference
    /// swap cut the windows short); windows start no earlier.
    floor_ms: i64,
    /// The sequence number of the count window to fill next.
    next_count_window: i64,
    /// Count windows: per partition, the highest offset in a reported window.
    reported: Vec<(u32, i64)>,
    /// Late events not yet carried by a closed window's report.
    late_pending: u64,
    /// Sliding windows: each event is kept once, in the pane of `slide` that holds it; a
    /// window is the sum of its `size / slide` panes, shared with it when it closes and
    /// added up when it is reported (a pane changed meanwhile, by a late event, is copied).
    panes: BTreeMap<i64, Arc<Accumulator>>,
    /// Sliding windows: the start of the next window to close (earlier ones are done).
    next_start: i64,
    /// The event time of a half waiting for its other (`pair.rs`): windows ending after it
    /// stay open until it comes, so that its rows are not late.
    hold_ms: Option<i64>,
    pub events_total: u64,
    pub late_total: u64,
}

impl ModelWindows {
    pub fn new(spec: WindowSpec, shape: Shape, lateness_ms: i64) -> ModelWindows {
        ModelWindows {
            spec,
            shape,
            open: BTreeMap::new(),
            watermark: Watermark::new(lateness_ms),
            closed_upto: i64::MIN,
            floor_ms: i64::MIN,
            next_count_window: 0,
            reported: Vec::new(),
            late_pending: 0,
            panes: BTreeMap::new(),
            next_start: i64::MIN,
            hold_ms: None,
            events_total: 0,
            late_total: 0,
        }
    }

    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Events in windows not yet closed (each once, in a sliding window's panes).
    pub fn open_events(&self) -> u64 {
        self.open.values().chain(self.panes.values().map(|p| &**p)).map(|w| w.events).sum()
    }

    /// The mark below which event-time windows count as reported.
    pub fn closed_upto(&self) -> i64 {
        self.closed_upto
    }

    /// Events before this are late whatever their windows (a swap's cut).
    pub fn floor(&self) -> i64 {
        self.floor_ms
    }

    /// Count windows: per partition, the highest offset reported.
    pub fn reported(&self) -> &[(u32, i64)] {
        &self.reported
    }

    /// Raises a partition's reported offset (from a checkpoint).
    pub fn restore_reported(&mut self, pid: u32, offset: i64) {
        match self.reported.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, o)) => *o = (*o).max(offset),
            None => self.reported.push((pid, offset)),
        }
    }

    /// Raises the marks (from a checkpoint): events for windows below `closed_upto`, and
    /// events before `floor`, count as late.
    pub fn restore_marks(&mut self, closed_upto: i64, floor: i64) {
        self.closed_upto = self.closed_upto.max(closed_upto);
        self.floor_ms = self.floor_ms.max(floor);
    }

    /// Cuts every open window short now (a reference swap): each is closed with its end at
    /// the newest event time seen, so it holds what it held; later events go to windows
    /// that start there, and earlier ones are late. `shape` is the accumulators' from now on.
    pub fn cut(&mut self, shape: Shape, closed: &mut Vec<Accumulator>) {
        if let (Some(newest), false) = (self.watermark.newest(), self.spec.is_count()) {
            let cut = newest + 1;
            for w in self.open.values_mut() {
                w.bounds.end_ms = w.bounds.end_ms.min(cut);
            }
            self.close_sliding(i64::MAX, Some(cut), closed);
            self.floor_ms = self.floor_ms.max(cut);
        }
        self.close_all(closed);
        self.shape = shape;
    }

    /// Puts an event in its windows; windows the watermark passes go to `closed`.
    pub fn ingest(
        &mut self,
        event: &Event<'_>,
        ts: Option<i64>,
        position: Option<(u32, i64)>,
        closed: &mut Vec<Accumulator>,
    ) -> Result<(), DecodeError> {
        let (size_ms, slide_ms) = match self.spec {
            WindowSpec::Count { events } => {
                // read again after a crash: its window was reported already
                if let Some((pid, offset)) = position {
                    if self.reported.iter().any(|(p, o)| *p == pid && offset <= *o) {
                        self.events_total += 1;
                        self.count_late();
                        return Ok(());
                    }
                }
                let key = self.next_count_window;
                let shape = &self.shape;
                let acc =
                    self.open.entry(key).or_insert_with(|| Accumulator::new(shape.clone(), WindowBounds::default()));
                acc.add(event, ts.unwrap_or(0), position);
                self.events_total += 1;
                if acc.events >= events {
                    self.close(key, closed);
                }
                return Ok(());
            }
            WindowSpec::Tumbling { size } => (size.as_millis() as i64, size.as_millis() as i64),
            WindowSpec::Sliding { .. } => return self.ingest_sliding(event, ts, position, closed),
        };
        let ts = ts.ok_or(DecodeError::MissingTimestamp)?;
        let (mut placed, mut missed) = (false, false);
        for bounds in windows_holding(ts, size_ms, slide_ms) {
            if bounds.end_ms <= self.closed_upto || ts < self.floor_ms {
                missed = true;
                continue;
            }
            let (shape, floor) = (&self.shape, self.floor_ms);
            let acc = self.open.entry(bounds.start_ms).or_insert_with(|| {
                Accumulator::new(shape.clone(), WindowBounds { start_ms: bounds.start_ms.max(floor), ..bounds })
            });
            acc.add(event, ts, position);
            placed = true;
        }
        self.events_total += 1;
        if missed {
            self.count_late();
        }
        if placed {
            let watermark = self.watermark.advance(ts);
            let watermark = self.held(watermark);
            self.close_until(watermark, closed);
        }
        Ok(())
    }

    /// A sliding window's event: into its pane, once.
    fn ingest_sliding(
        &mut self,
        event: &Event<'_>,
        ts: Option<i64>,
        position: Option<(u32, i64)>,
        closed: &mut Vec<Accumulator>,
    ) -> Result<(), DecodeError> {
        let ts = ts.ok_or(DecodeError::MissingTimestamp)?;
        let (size, slide) = self.sliding().expect("a sliding window");
        let pane = ts - ts.rem_euclid(slide);
        self.events_total += 1;
        // the newest window holding it starts at its pane, the oldest size - slide before
        let open_for_it = ts >= self.floor_ms && pane.saturating_add(size) > self.closed_upto;
        let missed = ts < self.floor_ms || pane.saturating_add(slide) <= self.closed_upto;
        if missed {
            self.count_late();
        }
        if !open_for_it {
            return Ok(());
        }
        let shape = &self.shape;
        let acc = self.panes.entry(pane).or_insert_with(|| {
            Arc::new(Accumulator::new(shape.clone(), WindowBounds { start_ms: pane, end_ms: pane + slide }))
        });
        Arc::make_mut(acc).add(event, ts, position);
        let watermark = self.watermark.advance(ts);
        let watermark = self.held(watermark);
        self.close_sliding(watermark, None, closed);
        Ok(())
    }

    /// Windows ending after `ts` stay open (none: no hold).
    pub fn hold(&mut self, ts: Option<i64>) {
        self.hold_ms = ts;
    }

    fn held(&self, watermark: i64) -> i64 {
        self.hold_ms.map_or(watermark, |h| watermark.min(h))
    }

    /// An event that came after one of its windows closed: counted, and carried by the
    /// next window's report.
    fn count_late(&mut self) {
        self.late_total += 1;
        self.late_pending += 1;
    }

    /// Size and slide of a sliding window.
    fn sliding(&self) -> Option<(i64, i64)> {
        match self.spec {
            WindowSpec::Sliding { size, slide } => Some((size.as_millis() as i64, slide.as_millis() as i64)),
            _ => None,
        }
    }

    /// Closes, in order, the sliding windows ending at or before `watermark` that hold an
    /// event, each the sum of its panes; `cut`: every window holding a pane, ending there
    /// at the latest. Panes no window still needs go.
    fn close_sliding(&mut self, watermark: i64, cut: Option<i64>, closed: &mut Vec<Accumulator>) {
        let Some((size, slide)) = self.sliding() else { return };
        while let Some(&first_pane) = self.panes.keys().next() {
            // the first window not closed that holds a pane
            let start =
                self.next_start.max(first_pane - size + slide).max(self.closed_upto.saturating_sub(size) + slide);
            let start = start - start.rem_euclid(slide);
            let end = start + size;
            if end > watermark && cut.is_none() {
                break;
            }
            let bounds = WindowBounds { start_ms: start.max(self.floor_ms), end_ms: cut.map_or(end, |c| end.min(c)) };
            // a window too big to keep whole: its panes are binned once, and each later
            // window that holds them adds their counts (a pane an unreported window
            // still shares is left as it is: the sum is the same, only slower to make)
            let events: u64 = self.panes.range(start..end).map(|(_, p)| p.events).sum();
            if events > self.shape.exact_up_to as u64 {
                self.panes.range_mut(start..end).filter_map(|(_, p)| Arc::get_mut(p)).for_each(|p| p.spill_all());
            }
            let panes = self.panes.range(start..end).map(|(_, p)| p.clone()).collect();
            let acc = Accumulator::of_panes(self.shape.clone(), bounds, panes);
            self.next_start = start + slide;
            let next = self.next_start;
            self.panes.retain(|p, _| *p >= next);
            if acc.events > 0 {
                self.finish(acc, closed);
            }
        }
    }

    /// A window done: it carries the late events counted since the last close, and raises
    /// the mark that keeps it closed.
    fn finish(&mut self, mut acc: Accumulator, closed: &mut Vec<Accumulator>) {
        acc.late = std::mem::take(&mut self.late_pending);
        self.closed_upto = self.closed_upto.max(acc.bounds.end_ms);
        closed.push(acc);
    }

    /// Closes the window at `key`: the one place a window closes. It carries the late
    /// events counted since the last close, and raises the mark that keeps it closed.
    fn close(&mut self, key: i64, closed: &mut Vec<Accumulator>) {
        let Some(mut acc) = self.open.remove(&key) else { return };
        acc.late = std::mem::take(&mut self.late_pending);
        match self.spec {
            WindowSpec::Count { .. } => {
                self.next_count_window = self.next_count_window.max(key + 1);
                acc.bounds = acc.event_time_span().unwrap_or_default();
                for (pid, hi) in acc.max_offsets() {
                    match self.reported.iter_mut().find(|(p, _)| *p == pid) {
                        Some((_, o)) => *o = (*o).max(hi),
                        None => self.reported.push((pid, hi)),
                    }
                }
            }
            _ => self.closed_upto = self.closed_upto.max(acc.bounds.end_ms),
        }
        closed.push(acc);
    }

    /// Closes the windows ending at or before `watermark` (another source of event time
    /// than this model's events: its partition's, for a spread model).
    pub fn close_before(&mut self, watermark: i64, closed: &mut Vec<Accumulator>) {
        self.close_until(watermark, closed);
        self.close_sliding(watermark, None, closed);
    }

    /// Closes every window that ends at or before `watermark`.
    fn close_until(&mut self, watermark: i64, closed: &mut Vec<Accumulator>) {
        while let Some((&key, w)) = self.open.first_key_value() {
            if w.bounds.end_ms > watermark {
                break;
            }
            self.close(key, closed);
        }
    }

    /// Closes the open windows holding events from partition `pid` (taken away by a
    /// rebalance: reported now, so the new owner starts after them).
    pub fn close_partition(&mut self, pid: u32, closed: &mut Vec<Accumulator>) {
        // sliding: every window up to the last one holding the partition's newest pane,
        // so no pane with its events stays
        if let Some(last) = self.panes.iter().rev().find(|(_, p)| p.holds_partition(pid)).map(|(k, _)| *k) {
            self.close_sliding(last.saturating_add(self.sliding().map_or(0, |(size, _)| size)), None, closed);
        }
        let keys: Vec<i64> = self.open.iter().filter(|(_, w)| w.holds_partition(pid)).map(|(k, _)| *k).collect();
        for key in keys {
            self.close(key, closed);
        }
    }

    /// The partition `pid` was lost: the open windows (and sliding panes) holding only its
    /// events are dropped, unreported; those mixing it with others close. Returns how many
    /// were dropped.
    pub fn drop_partition(&mut self, pid: u32, closed: &mut Vec<Accumulator>) -> usize {
        let only = |w: &Accumulator| w.holds_partition(pid) && w.max_offsets().all(|(p, _)| p == pid);
        let before = self.open.len() + self.panes.len();
        self.open.retain(|_, w| !only(w));
        self.panes.retain(|_, w| !only(w));
        let dropped = before - self.open.len() - self.panes.len();
        self.close_partition(pid, closed);
        dropped
    }

    /// Closes every open window (end of input, idle model).
    pub fn close_all(&mut self, closed: &mut Vec<Accumulator>) {
        self.close_sliding(i64::MAX, None, closed);
        let keys: Vec<i64> = self.open.keys().copied().collect();
        for key in keys {
            self.close(key, closed);
        }
    }

    /// The lowest offset of partition `pid` still in an open window.
    pub fn min_open_offset(&self, pid: u32) -> Option<i64> {
        self.open.values().chain(self.panes.values().map(|p| &**p)).filter_map(|w| w.min_offset(pid)).min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MIN: i64 = 60_000;

    fn no_features() -> Event<'static> {
        Event::empty()
    }

    fn tumbling(minutes: u64, lateness_ms: i64) -> ModelWindows {
        let spec = WindowSpec::Tumbling { size: Duration::from_secs(minutes * 60) };
        ModelWindows::new(spec, Shape::exact(0, 0), lateness_ms)
    }

    #[test]
    fn windows_close_when_the_watermark_passes_and_late_events_are_counted() {
        let mut w = tumbling(60, 0);
        let mut closed = Vec::new();
        w.ingest(&no_features(), Some(10 * MIN), Some((0, 1)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(50 * MIN), Some((0, 2)), &mut closed).unwrap();
        assert!(closed.is_empty());
        assert_eq!(w.min_open_offset(0), Some(1));
        w.ingest(&no_features(), Some(60 * MIN), Some((0, 3)), &mut closed).unwrap();
        assert!(closed.is_empty(), "one event past the hour is no evidence yet");
        w.ingest(&no_features(), Some(61 * MIN), Some((0, 4)), &mut closed).unwrap();
        assert_eq!(closed.len(), 1, "the first hour closed at the second's second event");
        assert_eq!(closed[0].events, 2);
        assert_eq!(closed[0].bounds, WindowBounds { start_ms: 0, end_ms: 60 * MIN });
        assert_eq!(w.closed_upto(), 60 * MIN);
        assert_eq!(w.min_open_offset(0), Some(3));
        // an event for the closed hour is late, carried by the next window closed
        w.ingest(&no_features(), Some(30 * MIN), Some((0, 5)), &mut closed).unwrap();
        assert_eq!((w.late_total, w.open_events()), (1, 2));
        w.close_all(&mut closed);
        assert_eq!(closed[1].late, 1);
        assert_eq!(w.events_total, 5);
    }

    #[test]
    fn lateness_keeps_a_window_open_for_stragglers() {
        let mut w = tumbling(60, 10 * MIN);
        let mut closed = Vec::new();
        w.ingest(&no_features(), Some(59 * MIN), None, &mut closed).unwrap();
        w.ingest(&no_features(), Some(65 * MIN), None, &mut closed).unwrap();
        w.ingest(&no_features(), Some(58 * MIN), None, &mut closed).unwrap();
        assert!(closed.is_empty(), "watermark 55 min: the first hour is still open");
        w.ingest(&no_features(), Some(70 * MIN), None, &mut closed).unwrap();
        assert!(closed.is_empty(), "the second newest at 65 min: watermark 55 min");
        w.ingest(&no_features(), Some(71 * MIN), None, &mut closed).unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].events, 2, "the straggler counted in its window");
        assert_eq!(w.late_total, 0);
    }

    #[test]
    fn a_count_window_ends_at_its_last_event_and_needs_no_timestamp() {
        let mut w = ModelWindows::new(WindowSpec::Count { events: 3 }, Shape::exact(0, 0), 0);
        let mut closed = Vec::new();
        for ts in [Some(5_000), None, Some(9_000), Some(1_000)] {
            w.ingest(&no_features(), ts, None, &mut closed).unwrap();
        }
        assert_eq!(closed.len(), 1);
        // the missing timestamp counts as 0 for the window's span, as before
        assert_eq!(closed[0].bounds, WindowBounds { start_ms: 0, end_ms: 9_000 });
        w.close_all(&mut closed);
        assert_eq!(closed[1].bounds, WindowBounds { start_ms: 1_000, end_ms: 1_000 });
        assert_eq!(w.open_events(), 0);
    }

    #[test]
    fn a_cut_closes_the_open_windows_at_the_newest_event_and_later_ones_start_there() {
        let mut w = tumbling(60, 10 * MIN);
        let mut closed = Vec::new();
        w.ingest(&no_features(), Some(10 * MIN), None, &mut closed).unwrap();
        w.ingest(&no_features(), Some(20 * MIN), None, &mut closed).unwrap();
        w.cut(Shape::exact(0, 0), &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].bounds, WindowBounds { start_ms: 0, end_ms: 20 * MIN + 1 }, "cut at the newest event");
        assert_eq!(closed[0].events, 2);
        // the rest of the hour is a window of its own; an event before the cut is late
        w.ingest(&no_features(), Some(30 * MIN), None, &mut closed).unwrap();
        w.ingest(&no_features(), Some(15 * MIN), None, &mut closed).unwrap();
        assert_eq!(w.late_total, 1);
        w.close_all(&mut closed);
        assert_eq!(closed[1].bounds, WindowBounds { start_ms: 20 * MIN + 1, end_ms: 60 * MIN });
        assert_eq!(closed[1].events, 1);
        // the floor survives a restart with the marks
        let mut again = tumbling(60, 0);
        again.restore_marks(w.closed_upto(), w.floor());
        again.ingest(&no_features(), Some(20 * MIN), None, &mut closed).unwrap();
        assert_eq!(again.late_total, 1);
    }

    #[test]
    fn a_cut_of_count_windows_closes_the_partial_one() {
        let mut w = ModelWindows::new(WindowSpec::Count { events: 10 }, Shape::exact(0, 0), 0);
        let mut closed = Vec::new();
        for ts in [1, 2, 3] {
            w.ingest(&no_features(), Some(ts), None, &mut closed).unwrap();
        }
        w.cut(Shape::exact(1, 0), &mut closed);
        assert_eq!((closed.len(), closed[0].events), (1, 3));
        assert_eq!(w.shape(), &Shape::exact(1, 0));
        w.ingest(&no_features(), Some(4), None, &mut closed).unwrap();
        assert_eq!(w.open_events(), 1);
    }

    #[test]
    fn closing_a_partition_closes_only_the_windows_holding_it() {
        let mut w = tumbling(60, 0);
        let mut closed = Vec::new();
        // a one-hour lateness keeps both hours open
        w.watermark = Watermark::new(120 * MIN);
        w.ingest(&no_features(), Some(10 * MIN), Some((0, 7)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(70 * MIN), Some((1, 3)), &mut closed).unwrap();
        w.close_partition(1, &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].bounds.start_ms, 60 * MIN);
        assert_eq!((w.min_open_offset(0), w.min_open_offset(1)), (Some(7), None));
    }

    #[test]
    fn a_lost_partitions_windows_are_dropped_and_mixed_ones_reported() {
        let mut w = tumbling(60, 0);
        let mut closed = Vec::new();
        w.watermark = Watermark::new(240 * MIN);
        w.ingest(&no_features(), Some(10 * MIN), Some((0, 7)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(70 * MIN), Some((1, 3)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(130 * MIN), Some((1, 4)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(131 * MIN), Some((0, 8)), &mut closed).unwrap();
        assert_eq!(w.drop_partition(1, &mut closed), 1, "the second hour held only partition 1");
        assert_eq!(closed.iter().map(|a| a.bounds.start_ms / MIN).collect::<Vec<_>>(), [120], "the mixed one");
        assert_eq!((w.min_open_offset(0), w.min_open_offset(1)), (Some(7), None));
        assert_eq!(w.closed_upto(), 180 * MIN);
    }

    fn sliding(size_min: u64, slide_min: u64, lateness_ms: i64) -> ModelWindows {
        let spec = WindowSpec::Sliding {
            size: Duration::from_secs(size_min * 60),
            slide: Duration::from_secs(slide_min * 60),
        };
        ModelWindows::new(spec, Shape::exact(0, 0), lateness_ms)
    }

    #[test]
    fn a_sliding_window_is_the_sum_of_its_panes_and_each_event_is_kept_once() {
        let mut rng = crate::rand::XorShift64::new(5);
        let mut w = sliding(60, 15, 0);
        let mut closed = Vec::new();
        let mut ts = 3 * MIN;
        let mut times = Vec::new();
        for i in 0..2_000 {
            // gaps now and then, longer than a window
            ts += if i % 500 == 499 { 130 * MIN } else { (rng.next_u64() % 20_000) as i64 };
            times.push(ts);
            w.ingest(&no_features(), Some(ts), Some((0, i)), &mut closed).unwrap();
            assert!(w.open_events() <= 2_000, "each event once");
        }
        w.close_all(&mut closed);
        // what every window should hold, from the assigner
        let mut expected = BTreeMap::<i64, u64>::new();
        for t in &times {
            for b in windows_holding(*t, 60 * MIN, 15 * MIN) {
                *expected.entry(b.start_ms).or_default() += 1;
            }
        }
        let got: BTreeMap<i64, u64> = closed.iter().map(|a| (a.bounds.start_ms, a.events)).collect();
        assert_eq!(got, expected);
        assert_eq!(closed.len(), expected.len(), "each window once");
        assert!(closed.windows(2).all(|p| p[0].bounds.start_ms < p[1].bounds.start_ms), "in order");
        assert!(closed.iter().all(|a| a.bounds.end_ms - a.bounds.start_ms == 60 * MIN));
        assert_eq!((w.late_total, w.open_events()), (0, 0));
    }

    #[test]
    fn a_sliding_windows_late_events_count_in_the_windows_still_open() {
        let mut w = sliding(60, 15, 0);
        let mut closed = Vec::new();
        w.ingest(&no_features(), Some(10 * MIN), Some((0, 1)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(50 * MIN), Some((0, 2)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(50 * MIN), Some((0, 3)), &mut closed).unwrap();
        // the watermark at 50 (two events there): the windows ending at 15, 30 and 45 closed
        assert_eq!(closed.iter().map(|a| a.bounds.start_ms / MIN).collect::<Vec<_>>(), [-45, -30, -15]);
        assert_eq!(w.min_open_offset(0), Some(1), "the first event is still in open windows");
        // 20 min: its windows start at -30 and -15 (closed), 0 and 15: late, and in the two open
        w.ingest(&no_features(), Some(20 * MIN), Some((0, 4)), &mut closed).unwrap();
        assert_eq!(w.late_total, 1);
        w.close_all(&mut closed);
        let by_start: BTreeMap<i64, u64> = closed.iter().map(|a| (a.bounds.start_ms / MIN, a.events)).collect();
        assert_eq!(by_start, BTreeMap::from([(-45, 1), (-30, 1), (-15, 1), (0, 4), (15, 3), (30, 2), (45, 2)]));
        assert_eq!(closed[3].late, 1, "the next window closed carries the late event");
    }

    #[test]
    fn closing_a_partition_leaves_no_sliding_pane_holding_it() {
        let mut w = sliding(60, 15, 120 * MIN);
        let mut closed = Vec::new();
        w.ingest(&no_features(), Some(10 * MIN), Some((0, 7)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(40 * MIN), Some((1, 3)), &mut closed).unwrap();
        w.ingest(&no_features(), Some(80 * MIN), Some((0, 8)), &mut closed).unwrap();
        assert!(closed.is_empty());
        w.close_partition(1, &mut closed);
        assert_eq!(w.min_open_offset(1), None);
        assert_eq!(w.min_open_offset(0), Some(8), "the pane at 75 stays for the windows after");
        assert!(closed.iter().any(|a| a.holds_partition(1)));
    }

    #[test]
    fn count_windows_do_not_count_an_event_read_again() {
        let spec = WindowSpec::Count { events: 100 };
        let mut w = ModelWindows::new(spec, Shape::exact(0, 0), 0);
        let mut closed = Vec::new();
        for offset in 0..250 {
            w.ingest(&no_features(), Some(offset), Some((0, offset)), &mut closed).unwrap();
        }
        assert_eq!(closed.len(), 2);
        assert_eq!(w.reported(), [(0, 199)]);
        // a restart: the marks come back, and the offsets stored before the crash were older
        let mut again = ModelWindows::new(spec, Shape::exact(0, 0), 0);
        again.restore_reported(0, w.reported()[0].1);
        let mut after = Vec::new();
        for offset in 150..400 {
            again.ingest(&no_features(), Some(offset), Some((0, offset)), &mut after).unwrap();
        }
        again.close_all(&mut after);
        assert_eq!(again.late_total, 50, "150..199 were in a reported window");
        assert_eq!(after.iter().map(|a| a.events).collect::<Vec<_>>(), [100, 100], "200..399, each once");
        assert_eq!(after[0].late, 50);
    }
}
