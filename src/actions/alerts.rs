//! The alert worker: delivers the alert outbox (`alert_book.rs`) one attempt at a time,
//! each receiver's notifications of one alert in order, retried with backoff; and re-sends
//! firing alerts to Alertmanager every `repeat_interval` (so that it does not time them
//! out).

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::alert_book::{AlertBook, Delivery, Due, MAX_AGE_MS};
use super::{Actions, Shutdown};
use crate::config::{AlertKind, Receiver};
use crate::outbound::{self as http, Attempt};
use crate::policy::Phase;
use crate::sinks::alerts::{self as receivers, Notice};
use crate::telemetry::events::{AlertFinished, AlertOutcome, AlertRetrying, AlertsNotWritten, AlertsPending};
use crate::time::now_ms;

/// First and longest wait between two attempts of one notification.
const BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A stopping worker still delivers what is due within this much (retries included)...
const STOP_HORIZON_MS: i64 = 5_000;
/// ...for at most this long; the rest stays in the outbox for the next start.
const STOP_BUDGET: Duration = Duration::from_secs(15);

/// Runs until told to stop; returns the notifications sent per receiver.
pub(super) async fn worker(actions: Arc<Actions>, mut shutdown: watch::Receiver<Shutdown>) -> BTreeMap<String, u64> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping: Option<Instant> = None;
    loop {
        let config = actions.config();
        deliver_due(&actions, &config.receivers).await;
        refresh(&actions, &config.receivers).await;
        let next_due = {
            let mut book = actions.alert_book();
            if book.dirty {
                save(&actions, &mut book);
            }
            actions.telemetry.emit(AlertsPending { notifications: book.pending() });
            book.next_due_ms()
        };
        if stopping.is_none() && *shutdown.borrow() != Shutdown::No {
            stopping = Some(Instant::now());
        }
        if let Some(since) = stopping {
            let now = now_ms();
            if next_due.is_none_or(|due| due > now + STOP_HORIZON_MS) || since.elapsed() >= STOP_BUDGET {
                return actions.alert_book().sent.clone();
            }
            let wait = next_due.map_or(0, |due| (due - now).clamp(10, STOP_HORIZON_MS));
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            continue;
        }
        // decisions wake the worker at once (the `alert_wake` permit)
        tokio::select! {
            _ = tick.tick() => {}
            _ = actions.alert_wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Writes the outbox, counting a failure (memory keeps it; the next tick writes again).
fn save(actions: &Actions, book: &mut MutexGuard<'_, AlertBook>) {
    if let Err(error) = book.save() {
        actions.telemetry.emit(AlertsNotWritten { path: book.path(), error: &error });
    }
}

/// Attempts every delivery due now, one at a time.
async fn deliver_due(actions: &Actions, receivers: &[Receiver]) {
    loop {
        let due = actions.alert_book().take_due(receivers, now_ms());
        let d = match due {
            None => return,
            Some(Err(gone)) => {
                let error = if receivers.iter().any(|r| r.name == gone.receiver) {
                    format!("still undelivered {} h after it was decided", MAX_AGE_MS / 3_600_000)
                } else {
                    "the receiver is no longer configured".to_string()
                };
                finished(actions, &gone, AlertOutcome::Failed, Some(&error));
                save(actions, &mut actions.alert_book());
                continue;
            }
            Some(Ok(Due::Held(d))) => {
                finished(actions, &d, AlertOutcome::RateLimited, None);
                continue;
            }
            Some(Ok(Due::Deliver(d))) => d,
        };
        let r = receivers.iter().find(|r| r.name == d.receiver).expect("take_due checked the receiver");
        let call = receivers::build(r, &d.notice, d.phase);
        let attempt = http::send(&actions.http, &call, r.timeout).await;
        let mut book = actions.alert_book();
        match attempt {
            Attempt::Delivered { .. } | Attempt::Duplicate { .. } => {
                book.delivered(&d);
                if r.kind() == AlertKind::Alertmanager {
                    book.last_refresh.insert((r.name.clone(), d.notice.key()), Instant::now());
                }
                finished(actions, &d, AlertOutcome::Sent, None);
            }
            Attempt::Fail { reason, .. } => {
                book.dropped(&d);
                finished(actions, &d, AlertOutcome::Failed, Some(&reason));
            }
            Attempt::Retry { reason, after, .. } => {
                let attempts = d.attempts + 1;
                let wait = http::backoff(BACKOFF, MAX_BACKOFF, attempts, after);
                actions.telemetry.emit(AlertRetrying {
                    receiver: &d.receiver,
                    model: &d.notice.model,
                    attempt: attempts,
                    error: &reason,
                    retry_in: wait,
                });
                let next_attempt_ms = now_ms() + wait.as_millis() as i64;
                book.retry(Delivery { attempts, next_attempt_ms, last_error: Some(reason), ..d });
            }
        }
        save(actions, &mut book);
    }
}

fn finished(actions: &Actions, d: &Delivery, outcome: AlertOutcome, error: Option<&str>) {
    let (receiver, model, phase) = (d.receiver.as_str(), d.notice.model.as_str(), d.phase);
    actions.telemetry.emit(AlertFinished { receiver, model, phase, outcome, error });
}

/// Re-sends firing alerts to Alertmanager every receiver's `repeat_interval` (one attempt:
/// the next refresh is the retry).
async fn refresh(actions: &Actions, receivers: &[Receiver]) {
    for r in receivers.iter().filter(|r| r.kind() == AlertKind::Alertmanager) {
        let due: Vec<Notice> = {
            let book = actions.alert_book();
            book.firing
                .values()
                .filter(|n| r.takes(n.episode.severity) && book.told(&r.name, &n.key()))
                .filter(|n| {
                    let last = book.last_refresh.get(&(r.name.clone(), n.key()));
                    last.is_none_or(|t| t.elapsed() >= r.repeat)
                })
                .cloned()
                .collect()
        };
        for n in due {
            let call = receivers::build(r, &n, Phase::Refresh);
            let (receiver, model, phase) = (r.name.as_str(), n.model.as_str(), Phase::Refresh);
            match http::send(&actions.http, &call, r.timeout).await {
                Attempt::Delivered { .. } | Attempt::Duplicate { .. } => {
                    *actions.alert_book().sent.entry(r.name.clone()).or_default() += 1;
                    actions.telemetry.emit(AlertFinished {
                        receiver,
                        model,
                        phase,
                        outcome: AlertOutcome::Sent,
                        error: None,
                    });
                }
                Attempt::Fail { reason, .. } | Attempt::Retry { reason, .. } => {
                    let outcome = AlertOutcome::Failed;
                    actions.telemetry.emit(AlertFinished { receiver, model, phase, outcome, error: Some(&reason) });
                }
            }
            actions.alert_book().last_refresh.insert((r.name.clone(), n.key()), Instant::now());
        }
    }
}
