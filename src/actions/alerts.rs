//! The alert worker: sends each firing and resolution to the receivers that take its
//! severity, each receiver with its own rate limit on new notifications (resolutions and
//! Alertmanager's refreshes always go out: the one closes what was opened, the other
//! keeps Alertmanager from timing the alert out).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Actions, AlertEvent};
use crate::config::{AlertKind, Receiver};
use crate::sinks::alerts::{self as receivers, Notice, Phase};
use crate::telemetry::events::{AlertFinished, AlertOutcome};

/// A token bucket: `per_minute` notifications, refilled continuously.
#[derive(Debug)]
pub(super) struct RateLimit {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(super) fn new(per_minute: u32) -> RateLimit {
        RateLimit { capacity: f64::from(per_minute), tokens: f64::from(per_minute), last: Instant::now() }
    }

    pub(super) fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.capacity / 60.0).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the worker remembers between events.
#[derive(Default)]
struct Book {
    limits: BTreeMap<String, RateLimit>,
    /// Firing alerts by key (topic, and model or model and version), for Alertmanager's re-sends.
    firing: BTreeMap<String, Notice>,
    /// Last send per (receiver, model) to Alertmanager.
    last_refresh: BTreeMap<(String, String), Instant>,
    /// (receiver, alert key) pairs told of a firing alert not yet resolved.
    notified: BTreeSet<(String, String)>,
    /// Notifications sent, per receiver.
    sent: BTreeMap<String, u64>,
}

/// Runs until the hub drops its sender; returns the notifications sent per receiver.
pub(super) async fn worker(
    actions: Arc<Actions>,
    mut rx: mpsc::UnboundedReceiver<AlertEvent>,
) -> BTreeMap<String, u64> {
    let mut book = Book::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            e = rx.recv() => match e { Some(e) => Some(e), None => return book.sent },
            _ = tick.tick() => None,
        };
        let config = actions.config();
        match event {
            Some(AlertEvent::Restore(n)) => {
                // which receivers were told before the restart is not known: all may be
                for r in config.receivers.iter().filter(|r| r.takes(n.episode.severity)) {
                    book.notified.insert((r.name.clone(), n.key()));
                }
                book.firing.insert(n.key(), n);
            }
            Some(AlertEvent::Notify(n, phase)) => notify(&actions, &config.receivers, &mut book, &n, phase).await,
            None => refresh(&actions, &config.receivers, &mut book).await,
        }
    }
}

async fn notify(actions: &Actions, receivers: &[Receiver], book: &mut Book, n: &Notice, phase: Phase) {
    match phase {
        Phase::Resolved => book.firing.remove(&n.key()),
        _ => book.firing.insert(n.key(), n.clone()),
    };
    for r in receivers.iter().filter(|r| r.takes(n.episode.severity)) {
        let key = (r.name.clone(), n.key());
        // a resolution goes to the receivers that were told of the firing
        if phase == Phase::Resolved && !book.notified.remove(&key) {
            continue;
        }
        if phase == Phase::Firing {
            let limit = book.limits.entry(r.name.clone()).or_insert_with(|| RateLimit::new(r.max_per_minute));
            if !limit.allow() {
                let outcome = AlertOutcome::RateLimited;
                actions.telemetry.emit(AlertFinished {
                    receiver: &r.name,
                    model: &n.model,
                    phase,
                    outcome,
                    error: None,
                });
                continue;
            }
            book.notified.insert(key.clone());
        }
        deliver(actions, r, n, phase, book).await;
        if r.kind() == AlertKind::Alertmanager {
            book.last_refresh.insert(key, Instant::now());
        }
    }
}

/// Re-sends firing alerts to Alertmanager every receiver's `repeat_interval`.
async fn refresh(actions: &Actions, receivers: &[Receiver], book: &mut Book) {
    for r in receivers.iter().filter(|r| r.kind() == AlertKind::Alertmanager) {
        let due: Vec<Notice> = book
            .firing
            .values()
            .filter(|n| r.takes(n.episode.severity))
            .filter(|n| {
                let last = book.last_refresh.get(&(r.name.clone(), n.key()));
                last.is_none_or(|t| t.elapsed() >= r.repeat)
            })
            .cloned()
            .collect();
        for n in due {
            deliver(actions, r, &n, Phase::Refresh, book).await;
            book.last_refresh.insert((r.name.clone(), n.key()), Instant::now());
        }
    }
}

async fn deliver(actions: &Actions, r: &Receiver, n: &Notice, phase: Phase, book: &mut Book) {
    let call = receivers::build(r, n, phase);
    let (receiver, model) = (r.name.as_str(), n.model.as_str());
    match receivers::send(&actions.http, r, &call).await {
        Ok(()) => {
            *book.sent.entry(r.name.clone()).or_default() += 1;
            actions.telemetry.emit(AlertFinished { receiver, model, phase, outcome: AlertOutcome::Sent, error: None });
        }
        Err(e) => {
            let outcome = AlertOutcome::Failed;
            actions.telemetry.emit(AlertFinished { receiver, model, phase, outcome, error: Some(&e) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_its_capacity_then_refuses() {
        let mut rl = RateLimit::new(3);
        assert!(rl.allow() && rl.allow() && rl.allow());
        assert!(!rl.allow());
    }
}
