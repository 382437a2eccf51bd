//! Windows in event time: the bounds a window carries to its report, the assigner that
//! says which windows hold an event, and the watermark that says when they close.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::time::format_rfc3339_ms;

/// A window's bounds in event time (Unix ms). Tumbling and sliding windows are
/// `[start, end)`; a count window's are its first and last event's times, fixed when it
/// closes. Serialized as the report's `window_start` / `window_end` (RFC 3339).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowBounds {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl WindowBounds {
    pub fn start_rfc3339(&self) -> String {
        format_rfc3339_ms(self.start_ms)
    }

    pub fn end_rfc3339(&self) -> String {
        format_rfc3339_ms(self.end_ms)
    }
}

impl Serialize for WindowBounds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("WindowBounds", 2)?;
        st.serialize_field("window_start", &self.start_rfc3339())?;
        st.serialize_field("window_end", &self.end_rfc3339())?;
        st.end()
    }
}

/// The windows `[start, start + size)` that hold an event at `ts`, newest first: one for
/// a tumbling window (`slide == size`), `size / slide` for a sliding one.
pub fn windows_holding(ts: i64, size_ms: i64, slide_ms: i64) -> impl Iterator<Item = WindowBounds> {
    let newest = ts - ts.rem_euclid(slide_ms);
    std::iter::successors(Some(newest), move |s| Some(s - slide_ms))
        .take_while(move |start| *start > ts - size_ms)
        .map(move |start| WindowBounds { start_ms: start, end_ms: start + size_ms })
}

/// How far event time has come: the second newest event time seen, minus the allowed
/// lateness. Windows ending at or before it close. The rule: a window closes once *two*
/// events are past its end (plus the lateness), so one event dated far ahead of its
/// neighbours (a wrong clock, a corrupt record in a replayed file) cannot close the
/// windows the rest of the stream is still filling; a genuine move forward is confirmed
/// by the next event. (The wall-clock bound, `max_future`, guards the live stream too,
/// but cannot judge history.)
#[derive(Debug, Clone, Default)]
pub struct Watermark {
    newest_ms: Option<i64>,
    /// The second newest event time (equal to the newest when two events share it).
    second_ms: Option<i64>,
    lateness_ms: i64,
}

impl Watermark {
    pub fn new(lateness_ms: i64) -> Watermark {
        Watermark { newest_ms: None, second_ms: None, lateness_ms }
    }

    /// Takes an event time; returns the watermark after it (`i64::MIN` until two events
    /// came).
    pub fn advance(&mut self, ts: i64) -> i64 {
        match self.newest_ms {
            Some(newest) if ts > newest => {
                self.second_ms = Some(newest);
                self.newest_ms = Some(ts);
            }
            Some(_) => self.second_ms = Some(self.second_ms.map_or(ts, |s| s.max(ts))),
            None => self.newest_ms = Some(ts),
        }
        self.current().unwrap_or(i64::MIN)
    }

    pub fn current(&self) -> Option<i64> {
        self.second_ms.map(|n| n.saturating_sub(self.lateness_ms))
    }

    /// The newest event time seen.
    pub fn newest(&self) -> Option<i64> {
        self.newest_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_tumbling_window_holds_each_event_once() {
        let w: Vec<_> = windows_holding(61 * MIN, 60 * MIN, 60 * MIN).collect();
        assert_eq!(w, [WindowBounds { start_ms: 60 * MIN, end_ms: 120 * MIN }]);
        // the boundary belongs to the window it starts
        let w: Vec<_> = windows_holding(60 * MIN, 60 * MIN, 60 * MIN).collect();
        assert_eq!(w[0].start_ms, 60 * MIN);
        // before the epoch too
        let w: Vec<_> = windows_holding(-1, 60 * MIN, 60 * MIN).collect();
        assert_eq!(w, [WindowBounds { start_ms: -60 * MIN, end_ms: 0 }]);
    }

    #[test]
    fn a_sliding_window_holds_each_event_size_over_slide_times() {
        let w: Vec<_> = windows_holding(61 * MIN, 60 * MIN, 15 * MIN).collect();
        let starts: Vec<i64> = w.iter().map(|b| b.start_ms / MIN).collect();
        assert_eq!(starts, [60, 45, 30, 15], "newest first, each holding 61");
        assert!(w.iter().all(|b| b.start_ms <= 61 * MIN && 61 * MIN < b.end_ms));
    }

    #[test]
    fn the_watermark_trails_the_second_newest_event_by_the_lateness() {
        let mut wm = Watermark::new(5 * MIN);
        assert_eq!(wm.current(), None);
        assert_eq!(wm.advance(100 * MIN), i64::MIN, "one event is no evidence yet");
        assert_eq!(wm.advance(90 * MIN), 85 * MIN);
        assert_eq!(wm.advance(80 * MIN), 85 * MIN, "an older event does not move it back");
        assert_eq!(wm.advance(110 * MIN), 95 * MIN);
        assert_eq!(wm.current(), Some(95 * MIN));
        assert_eq!(wm.newest(), Some(110 * MIN));
    }

    #[test]
    fn one_event_far_ahead_does_not_move_the_watermark_and_two_do() {
        let mut wm = Watermark::new(0);
        for t in 1..=10 {
            wm.advance(t * MIN);
        }
        let day = 24 * 60 * MIN;
        assert_eq!(wm.advance(day), 10 * MIN, "a lone outlier");
        assert_eq!(wm.advance(11 * MIN), 11 * MIN, "the stream goes on below it");
        assert_eq!(wm.advance(day), day, "a second event there: time has moved");
    }
}
