//! The alert outbox: every notification the hub decides is written to
//! `{state.dir}/alerts.json` (with the receivers told of each firing alert) before the
//! decision returns, and leaves it only once its receiver took it, refused it for good, or
//! it aged out. A firing alert's resolution waits behind its firing; a firing not yet sent
//! when its resolution comes is dropped with it (nobody needs to hear of an alert that
//! is over before they were told). A receiver's `max_per_minute` holds new firings back
//! until it has room, instead of dropping them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::Receiver;
use crate::fs::write_synced;
use crate::policy::Phase;
use crate::sinks::alerts::Notice;

/// How long a notification is retried before it is given up.
pub(super) const MAX_AGE_MS: i64 = 24 * 3600 * 1000;

/// One notification to one receiver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Delivery {
    /// Order of the decisions: a receiver gets one alert's notifications in this order.
    pub seq: u64,
    pub receiver: String,
    pub phase: Phase,
    pub notice: Notice,
    pub attempts: u32,
    /// Unix ms before which the next attempt waits (a retry's backoff, a rate limit).
    pub next_attempt_ms: i64,
    /// Unix ms it was decided.
    pub queued_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Being attempted now (the worker holds a copy).
    #[serde(skip)]
    pub in_flight: bool,
    /// Held back by the rate limit once already (counted once).
    #[serde(skip)]
    pub held: bool,
}

/// What `alerts.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    next_seq: u64,
    deliveries: Vec<Delivery>,
    /// (receiver, alert key) pairs told of a firing alert not yet resolved.
    notified: BTreeSet<(String, String)>,
}

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

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.capacity / 60.0).min(self.capacity);
        self.last = now;
    }

    pub(super) fn allow(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Milliseconds until a token is there.
    fn wait_ms(&mut self) -> i64 {
        self.refill();
        ((1.0 - self.tokens).max(0.0) * 60_000.0 / self.capacity).ceil() as i64
    }
}

/// The alert outbox, and what the worker keeps in memory beside it.
pub(super) struct AlertBook {
    path: PathBuf,
    saved: Saved,
    /// The file does not hold `saved` as it stands (a write failed).
    pub dirty: bool,
    /// Whether the file was there at start (its `notified` is then the truth).
    pub loaded: bool,
    /// Firing alerts by key, for Alertmanager's re-sends.
    pub firing: BTreeMap<String, Notice>,
    /// Last send per (receiver, alert key) to Alertmanager.
    pub last_refresh: BTreeMap<(String, String), Instant>,
    limits: BTreeMap<String, RateLimit>,
    /// Notifications sent, per receiver.
    pub sent: BTreeMap<String, u64>,
}

/// What `take_due` found.
pub(super) enum Due {
    Deliver(Delivery),
    /// A firing held back by its receiver's rate limit (the first time: to count).
    Held(Delivery),
}

impl AlertBook {
    /// Reads `alerts.json` under `state_dir` (none yet: an empty book). One that does not
    /// parse is kept aside as `alerts.json.corrupt-<unix ms>` and the book starts empty.
    pub(super) fn open(state_dir: &Path) -> AlertBook {
        let path = state_dir.join("alerts.json");
        let (saved, loaded) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Saved>(&bytes) {
                Ok(saved) => (saved, true),
                Err(error) => {
                    let aside = path.with_extension(format!("json.corrupt-{}", crate::time::now_ms()));
                    let _ = std::fs::rename(&path, &aside);
                    tracing::error!(file = %path.display(), aside = %aside.display(), %error, "unreadable alert outbox kept aside");
                    (Saved::default(), false)
                }
            },
            Err(_) => (Saved::default(), false),
        };
        AlertBook {
            path,
            saved,
            dirty: false,
            loaded,
            firing: BTreeMap::new(),
            last_refresh: BTreeMap::new(),
            limits: BTreeMap::new(),
            sent: BTreeMap::new(),
        }
    }

    /// Writes the book; the error says why it could not be (memory keeps it meanwhile).
    pub(super) fn save(&mut self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.saved).expect("the alert outbox serializes");
        let written = write_synced(&self.path, &bytes);
        self.dirty = written.is_err();
        written
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Pending deliveries.
    pub(super) fn pending(&self) -> usize {
        self.saved.deliveries.len()
    }

    /// Whether `receiver` was told of the firing alert `key` (and not yet of its end).
    pub(super) fn told(&self, receiver: &str, key: &str) -> bool {
        self.saved.notified.contains(&(receiver.to_string(), key.to_string()))
    }

    /// Notes a receiver as told of a firing alert (a restart whose book was lost).
    pub(super) fn assume_notified(&mut self, receiver: &str, key: String) {
        self.saved.notified.insert((receiver.to_string(), key));
    }

    /// Queues a decided notification for the receivers that take it. Returns how many
    /// deliveries it queued (0: nothing to send; its firing was never sent, say).
    pub(super) fn queue(&mut self, receivers: &[Receiver], n: &Notice, phase: Phase, now_ms: i64) -> usize {
        let key = n.key();
        match phase {
            Phase::Resolved => self.firing.remove(&key),
            _ => self.firing.insert(key.clone(), n.clone()),
        };
        let mut queued = 0;
        for r in receivers.iter().filter(|r| r.takes(n.episode.severity)) {
            if phase == Phase::Resolved {
                // a firing still queued: the resolution follows it (or goes with it, when
                // it cannot go out: `coalesce`); none, and never told: nothing to resolve
                let queued = self
                    .saved
                    .deliveries
                    .iter()
                    .any(|d| d.receiver == r.name && d.phase == Phase::Firing && d.notice.key() == key);
                if !queued && !self.saved.notified.contains(&(r.name.clone(), key.clone())) {
                    continue;
                }
            }
            self.saved.next_seq += 1;
            self.saved.deliveries.push(Delivery {
                seq: self.saved.next_seq,
                receiver: r.name.clone(),
                phase,
                notice: n.clone(),
                attempts: 0,
                next_attempt_ms: 0,
                queued_ms: now_ms,
                last_error: None,
                in_flight: false,
                held: false,
            });
            queued += 1;
        }
        queued
    }

    /// The next delivery due now, marked in flight: the oldest whose backoff is over,
    /// with no earlier notification of the same alert to the same receiver pending, and,
    /// for a firing, room in its receiver's rate limit. Deliveries to receivers no longer
    /// configured or past `MAX_AGE_MS` come back as `Err` (removed).
    pub(super) fn take_due(&mut self, receivers: &[Receiver], now_ms: i64) -> Option<Result<Due, Delivery>> {
        self.coalesce();
        let mut blocked: BTreeSet<(String, String)> = BTreeSet::new();
        for i in 0..self.saved.deliveries.len() {
            let d = &self.saved.deliveries[i];
            let alert = (d.receiver.clone(), d.notice.key());
            if d.in_flight || blocked.contains(&alert) {
                blocked.insert(alert);
                continue;
            }
            let Some(r) = receivers.iter().find(|r| r.name == d.receiver) else {
                return Some(Err(self.saved.deliveries.remove(i)));
            };
            if now_ms.saturating_sub(d.queued_ms) > MAX_AGE_MS {
                return Some(Err(self.saved.deliveries.remove(i)));
            }
            if d.next_attempt_ms > now_ms {
                blocked.insert(alert);
                continue;
            }
            let d = &mut self.saved.deliveries[i];
            if d.phase == Phase::Firing {
                let limit = self.limits.entry(r.name.clone()).or_insert_with(|| RateLimit::new(r.max_per_minute));
                if !limit.allow() {
                    d.next_attempt_ms = now_ms + limit.wait_ms().max(1);
                    if !d.held {
                        d.held = true;
                        return Some(Ok(Due::Held(d.clone())));
                    }
                    blocked.insert(alert);
                    continue;
                }
            }
            d.in_flight = true;
            return Some(Ok(Due::Deliver(d.clone())));
        }
        None
    }

    /// Drops each firing that could not go out (its receiver failing, or its rate limit
    /// full) together with the resolution queued behind it: the alert is over before its
    /// receiver could be told.
    fn coalesce(&mut self) {
        let ds = &self.saved.deliveries;
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        for f in ds.iter().filter(|d| d.phase == Phase::Firing && !d.in_flight && (d.attempts > 0 || d.held)) {
            let resolution = ds.iter().find(|d| {
                d.phase == Phase::Resolved
                    && d.seq > f.seq
                    && d.receiver == f.receiver
                    && d.notice.key() == f.notice.key()
            });
            if let Some(r) = resolution {
                gone.extend([f.seq, r.seq]);
            }
        }
        if !gone.is_empty() {
            self.saved.deliveries.retain(|d| !gone.contains(&d.seq));
            self.dirty = true;
        }
    }

    /// A delivery went out: gone from the outbox; a firing's receiver is now told of it,
    /// a resolution's no longer.
    pub(super) fn delivered(&mut self, d: &Delivery) {
        self.saved.deliveries.retain(|x| x.seq != d.seq);
        let alert = (d.receiver.clone(), d.notice.key());
        match d.phase {
            Phase::Firing => self.saved.notified.insert(alert),
            _ => self.saved.notified.remove(&alert),
        };
        *self.sent.entry(d.receiver.clone()).or_default() += 1;
    }

    /// A delivery refused for good: gone.
    pub(super) fn dropped(&mut self, d: &Delivery) {
        self.saved.deliveries.retain(|x| x.seq != d.seq);
    }

    /// An attempt that may succeed later: back in the outbox, due at `next_attempt_ms`.
    pub(super) fn retry(&mut self, d: Delivery) {
        if let Some(x) = self.saved.deliveries.iter_mut().find(|x| x.seq == d.seq) {
            *x = Delivery { in_flight: false, ..d };
        }
    }

    /// When the earliest pending delivery is due (Unix ms).
    pub(super) fn next_due_ms(&self) -> Option<i64> {
        self.saved.deliveries.iter().filter(|d| !d.in_flight).map(|d| d.next_attempt_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Episode, Severity};

    fn receiver(name: &str, per_minute: u32) -> Receiver {
        let a: crate::config::AlertSettings = serde_json::from_value(serde_json::json!({
            "kind": "webhook", "url": format!("http://127.0.0.1:9/{name}"), "max_per_minute": per_minute,
        }))
        .unwrap();
        Receiver { name: name.to_string(), ..a.resolve(0).unwrap() }
    }

    fn notice(model: &str) -> Notice {
        Notice {
            topic: crate::sinks::alerts::Topic::Drift,
            model: model.to_string(),
            version: None,
            resolution: None,
            episode: Episode {
                id: format!("e-{model}"),
                since: String::new(),
                severity: Severity::Warning,
                retrain: false,
            },
            drifted_features: Vec::new(),
            share_of_drifted_features: 0.0,
            window_end: String::new(),
            fired_at: String::new(),
            failures: Vec::new(),
        }
    }

    /// Delivers everything due; the notifications sent, and how many were held back.
    fn deliver(book: &mut AlertBook, rs: &[Receiver], now: i64) -> (Vec<(String, Phase)>, usize) {
        let (mut out, mut held) = (Vec::new(), 0);
        while let Some(due) = book.take_due(rs, now) {
            match due {
                Ok(Due::Deliver(d)) => {
                    book.delivered(&d);
                    out.push((d.notice.model.clone(), d.phase));
                }
                Ok(Due::Held(_)) => held += 1,
                Err(d) => panic!("dropped: {d:?}"),
            }
        }
        (out, held)
    }

    #[test]
    fn the_bucket_allows_its_capacity_then_refuses() {
        let mut rl = RateLimit::new(3);
        assert!(rl.allow() && rl.allow() && rl.allow());
        assert!(!rl.allow());
        assert!(rl.wait_ms() > 0 && rl.wait_ms() <= 20_000, "a token in at most 60 s / 3");
    }

    #[test]
    fn a_rate_limited_firing_waits_and_is_dropped_with_its_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let rs = [receiver("slack", 1)];
        let mut book = AlertBook::open(dir.path());
        book.queue(&rs, &notice("a"), Phase::Firing, 0);
        book.queue(&rs, &notice("b"), Phase::Firing, 0);
        assert_eq!(deliver(&mut book, &rs, 0), (vec![("a".to_string(), Phase::Firing)], 1), "b waits for room");
        assert_eq!(deliver(&mut book, &rs, 0), (vec![], 0), "held once, counted once");
        assert_eq!(book.pending(), 1);
        // b resolves before its turn: neither is sent; a's resolution goes out
        book.queue(&rs, &notice("b"), Phase::Resolved, 0);
        book.queue(&rs, &notice("a"), Phase::Resolved, 0);
        assert_eq!(deliver(&mut book, &rs, 0), (vec![("a".to_string(), Phase::Resolved)], 0));
        assert_eq!(book.pending(), 0);
    }

    #[test]
    fn a_resolution_waits_behind_its_firing_and_the_book_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let rs = [receiver("hook", 10)];
        let mut book = AlertBook::open(dir.path());
        book.queue(&rs, &notice("a"), Phase::Firing, 0);
        let Some(Ok(Due::Deliver(d))) = book.take_due(&rs, 0) else { panic!("due") };
        // resolved while its firing is on the wire: the resolution waits for it
        assert_eq!(book.queue(&rs, &notice("a"), Phase::Resolved, 0), 1);
        assert!(book.take_due(&rs, 0).is_none(), "the resolution does not overtake its firing");
        book.delivered(&d);
        assert_eq!(deliver(&mut book, &rs, 0), (vec![("a".to_string(), Phase::Resolved)], 0));

        // a firing that fails is retried after its backoff, across a restart
        book.queue(&rs, &notice("b"), Phase::Firing, 0);
        let Some(Ok(Due::Deliver(d))) = book.take_due(&rs, 0) else { panic!("due") };
        book.retry(Delivery { attempts: 1, next_attempt_ms: 1_000, ..d });
        assert!(book.take_due(&rs, 500).is_none());
        book.save().unwrap();
        let mut book = AlertBook::open(dir.path());
        assert!(book.loaded);
        assert_eq!(deliver(&mut book, &rs, 1_000), (vec![("b".to_string(), Phase::Firing)], 0));
        assert!(book.told("hook", &notice("b").key()));

        // one that keeps failing until the alert is over goes with its resolution
        book.queue(&rs, &notice("c"), Phase::Firing, 0);
        let Some(Ok(Due::Deliver(d))) = book.take_due(&rs, 0) else { panic!("due") };
        book.retry(Delivery { attempts: 1, next_attempt_ms: 1_000, ..d });
        book.queue(&rs, &notice("c"), Phase::Resolved, 0);
        assert!(book.take_due(&rs, 2_000).is_none());
        assert_eq!(book.pending(), 0);
    }
}
