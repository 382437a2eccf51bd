//! What driftd tells about itself: the Prometheus registry (`metrics.rs`) and the typed
//! events that log and count in one call (`events.rs`). Metric names and label values
//! live here and nowhere else.

pub mod events;
mod metrics;

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use events::InternalEvent;
pub use metrics::Metrics;

/// The registry and the little state events need (the bad-message log's rate limit).
/// One per daemon, so several daemons in one process (tests) keep their numbers apart.
#[derive(Default)]
pub struct Telemetry {
    metrics: Metrics,
    bad_messages: RateLimitedLog,
    consumer_errors: RateLimitedLog,
    dead_letter_errors: RateLimitedLog,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        Telemetry::default()
    }

    /// Logs and counts what happened.
    pub fn emit(&self, event: impl InternalEvent) {
        event.emit(self);
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self) -> String {
        self.metrics.render()
    }

    /// Every metric's name and help, in registration order.
    pub fn described(&self) -> &[(String, String)] {
        &self.metrics.described
    }

    /// The counter of events accepted for a model, looked up once: the hot path counts
    /// through it without a label lookup per event.
    pub fn events_accepted(&self, model: &str) -> EventsAccepted {
        EventsAccepted {
            all: self.metrics.events_total.with_label_values(&[model]),
            reread: self.metrics.events_reread_total.with_label_values(&[model]),
        }
    }
}

/// `driftd_events_total{model}` (and `driftd_events_reread_total{model}`) for one model.
#[derive(Clone)]
pub struct EventsAccepted {
    all: prometheus::IntCounter,
    reread: prometheus::IntCounter,
}

impl EventsAccepted {
    /// One event accepted; `reread`: at an offset read before.
    pub fn inc(&self, reread: bool) {
        self.all.inc();
        if reread {
            self.reread.inc();
        }
    }

    /// `n` events of one message (a batch's rows); `reread`: at an offset read before.
    pub fn inc_by(&self, n: u32, reread: bool) {
        if n == 1 {
            return self.inc(reread);
        }
        self.all.inc_by(u64::from(n));
        if reread {
            self.reread.inc_by(u64::from(n));
        }
    }
}

/// The first of each second goes through, with the count of those held back since.
#[derive(Default)]
struct RateLimitedLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    /// `Some(suppressed)` when this one may be logged.
    fn allow(&self) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if st.0.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            let suppressed = st.1;
            *st = (Some(now), 0);
            Some(suppressed)
        } else {
            st.1 += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bad_message_log_lets_one_a_second_through() {
        let log = RateLimitedLog::default();
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        log.state.lock().unwrap().0 = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(log.allow(), Some(2), "says how many it held back");
    }
}
