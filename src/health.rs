//! Whether the Kafka consumer is well, as the consumer's hooks see it (errors, librdkafka's
//! statistics, messages coming): what the run loop (an outage is no quiet model) and the
//! HTTP API's readiness read, kept apart from both.

use std::sync::atomic::{AtomicBool, Ordering};

/// The consumer keeps failing when it reported `FAILING_ERRORS` errors within
/// `FAILING_WITHIN` and no message came since (a broker down, a wrong password, a
/// partition it cannot fetch); one message clears it.
#[derive(Debug, Default)]
pub struct ConsumerHealth {
    /// Errors came since the last message: the per-message check is one atomic load.
    dirty: AtomicBool,
    state: std::sync::Mutex<Failures>,
    receiving: std::sync::Mutex<Receiving>,
}

/// The consumer's recent errors.
#[derive(Debug, Default)]
struct Failures {
    /// When the last few came (at most `FAILING_ERRORS`).
    at: std::collections::VecDeque<std::time::Instant>,
    last: String,
    /// The last one librdkafka explained (a SASL login refused, a certificate not
    /// verified), and when: its consequences ("all brokers down") come after it and
    /// would hide it.
    explained: Option<(std::time::Instant, String)>,
}

/// Whether the consumer hears from its brokers (from librdkafka's statistics): a model's
/// silence while it does not is an outage, not quiet producers, and closes no window.
#[derive(Debug, Default, Clone, Copy)]
struct Receiving {
    /// When the last statistics came, and whether they showed a broker answering.
    last: Option<(std::time::Instant, bool)>,
    /// The last time the consumer was seen not receiving.
    gap_seen: Option<std::time::Instant>,
}

/// Longer than this since any broker answered is not receiving: librdkafka's fetches
/// (long-polled for 500 ms) and heartbeats keep a healthy connection well under it.
const RECEIVE_GAP: std::time::Duration = std::time::Duration::from_secs(2);
/// Statistics older than this say nothing about now.
const STATS_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

const FAILING_ERRORS: usize = 5;
const FAILING_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

impl ConsumerHealth {
    /// An error; `explains` when it names a cause (not a summary such as "all brokers
    /// down").
    pub fn error(&self, error: &dyn std::fmt::Display, explains: bool) {
        let now = std::time::Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.at.retain(|t| now.duration_since(*t) <= FAILING_WITHIN);
        st.at.push_back(now);
        if st.at.len() > FAILING_ERRORS {
            st.at.pop_front();
        }
        st.last = error.to_string();
        if explains {
            st.explained = Some((now, st.last.clone()));
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    pub fn message(&self) {
        if self.dirty.swap(false, Ordering::Relaxed) {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.at.clear();
            st.explained = None;
        }
    }

    /// librdkafka's statistics: per broker (those with a node id), the microseconds since
    /// it last sent anything (`rxidle`, -1 for never).
    pub fn broker_silence(&self, rxidle_us: impl Iterator<Item = i64>) {
        let now = std::time::Instant::now();
        let gap = RECEIVE_GAP.as_micros() as i64;
        let receiving = rxidle_us.into_iter().any(|us| (0..gap).contains(&us));
        let mut r = self.receiving.lock().unwrap_or_else(|e| e.into_inner());
        r.last = Some((now, receiving));
        if !receiving {
            r.gap_seen = Some(now);
        }
    }

    pub fn idle_clock(&self) -> crate::pipeline::IdleClock {
        let r = *self.receiving.lock().unwrap_or_else(|e| e.into_inner());
        let receiving = match r.last {
            Some((at, receiving)) if at.elapsed() <= STATS_FRESH => receiving,
            // no statistics (turned off), or stale: the old rule, silence is quiet
            _ => true,
        };
        crate::pipeline::IdleClock { receiving, gap_seen: r.gap_seen }
    }

    /// While the consumer keeps failing: the last error librdkafka explained, if recent,
    /// and the last error.
    pub fn failing(&self) -> Option<String> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let recent = st.at.iter().filter(|t| t.elapsed() <= FAILING_WITHIN).count();
        (recent >= FAILING_ERRORS).then(|| match &st.explained {
            Some((at, why)) if at.elapsed() <= FAILING_WITHIN && *why != st.last => {
                format!("{why} (last: {})", st.last)
            }
            _ => st.last.clone(),
        })
    }
}
