//! The durable retrain outbox under the state directory.
//!
//! A trigger is written to `outbox/{run_id}.json` (fsynced, renamed into place) before the
//! window that caused it is checkpointed, so a crash never loses one; the delivery worker
//! retries it until it is delivered or fails for good, then appends it to `retrains.jsonl`
//! (the history) and removes the file. A run id already pending or in the history is
//! never queued twice, so a window reported again after a crash asks for nothing new.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fs::write_synced;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    /// The target took it (2xx).
    Delivered,
    /// The target already had this run (409, or its idempotency key matched): delivered.
    Duplicate,
    /// Refused (4xx other than 408/409/429), or out of attempts.
    Failed,
    /// `dry_run`: logged, not sent.
    DryRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Duplicate => "duplicate",
            Status::Failed => "failed",
            Status::DryRun => "dry_run",
        }
    }
}

/// One retrain request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub run_id: String,
    pub model: String,
    /// `drift` or `manual`.
    pub reason: String,
    /// Wall-clock time the trigger was made (RFC 3339).
    pub created: String,
    pub preset: String,
    /// The run parameters (see `sinks::retrain::RunParams`).
    pub params: Value,
    pub status: Status,
    pub attempts: u32,
    /// Unix ms before which the next attempt waits.
    #[serde(default)]
    pub next_attempt_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// How the drift episode that asked for this run ended, once it did by a new
    /// reference (the retrained model's, typically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<crate::policy::Resolution>,
}

impl Entry {
    /// A new request, not yet attempted.
    pub fn pending(run_id: &str, model: &str, reason: &str, created: String, preset: &str, params: Value) -> Entry {
        Entry {
            run_id: run_id.to_string(),
            model: model.to_string(),
            reason: reason.to_string(),
            created,
            preset: preset.to_string(),
            params,
            status: Status::Pending,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            http_status: None,
            finished: None,
            resolved_by: None,
        }
    }
}

pub struct Outbox {
    dir: PathBuf,
    history: PathBuf,
    book: Mutex<Book>,
    /// Bumped on every change to the pending entries (for the state changelog).
    changes: std::sync::atomic::AtomicU64,
}

/// What the outbox holds, in memory: every run id ever queued, and the pending entries
/// (mirroring their files, so the checkpoint can carry them without reading the disk).
#[derive(Default)]
struct Book {
    known: HashSet<String>,
    pending: BTreeMap<String, Entry>,
}

impl Outbox {
    /// Opens (creating) the outbox under `state_dir`; drops pending files whose run is
    /// already in the history (a crash between the two steps of `finish`).
    pub fn open(state_dir: &Path) -> std::io::Result<Outbox> {
        let dir = state_dir.join("outbox");
        std::fs::create_dir_all(&dir)?;
        let outbox = Outbox {
            dir,
            history: state_dir.join("retrains.jsonl"),
            book: Mutex::new(Book::default()),
            changes: Default::default(),
        };
        let finished: HashSet<String> = outbox.read_history().into_iter().map(|e| e.run_id).collect();
        let mut book = Book { known: finished.clone(), pending: BTreeMap::new() };
        for e in outbox.read_pending() {
            if finished.contains(&e.run_id) {
                let _ = std::fs::remove_file(outbox.path_of(&e.run_id));
            } else {
                book.known.insert(e.run_id.clone());
                book.pending.insert(e.run_id.clone(), e);
            }
        }
        *outbox.book.lock().expect("outbox lock") = book;
        Ok(outbox)
    }

    fn path_of(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    /// Queues a trigger durably. False when the run id was queued before.
    pub fn enqueue(&self, entry: &Entry) -> std::io::Result<bool> {
        let mut book = self.book.lock().expect("outbox lock");
        if book.known.contains(&entry.run_id) {
            return Ok(false);
        }
        write_synced(&self.path_of(&entry.run_id), &serde_json::to_vec_pretty(entry).expect("entry serializes"))?;
        book.known.insert(entry.run_id.clone());
        book.pending.insert(entry.run_id.clone(), entry.clone());
        self.changed();
        Ok(true)
    }

    /// Records an attempt's outcome on a pending entry.
    pub fn update(&self, entry: &Entry) -> std::io::Result<()> {
        let mut book = self.book.lock().expect("outbox lock");
        write_synced(&self.path_of(&entry.run_id), &serde_json::to_vec_pretty(entry).expect("entry serializes"))?;
        book.pending.insert(entry.run_id.clone(), entry.clone());
        self.changed();
        Ok(())
    }

    fn changed(&self) {
        self.changes.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// How many times the pending entries changed so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The pending entries, by model (from memory), for the state changelog: a replica
    /// that takes a model over delivers what its last owner had not.
    pub fn pending_by_model(&self) -> BTreeMap<String, Vec<Entry>> {
        let book = self.book.lock().expect("outbox lock");
        let mut out: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for e in book.pending.values() {
            out.entry(e.model.clone()).or_default().push(e.clone());
        }
        out
    }

    /// Moves a finished entry to the history.
    pub fn finish(&self, entry: &Entry) -> std::io::Result<()> {
        // the history is also rewritten (record_resolution): one writer at a time
        let mut book = self.book.lock().expect("outbox lock");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.history)?;
        let mut line = serde_json::to_vec(entry).expect("entry serializes");
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_all()?;
        book.pending.remove(&entry.run_id);
        self.changed();
        match std::fs::remove_file(self.path_of(&entry.run_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Records how the episode behind `run_id` ended, on its history entry (or its
    /// pending one). False when no request has that run id.
    pub fn record_resolution(&self, run_id: &str, resolution: &crate::policy::Resolution) -> std::io::Result<bool> {
        let mut book = self.book.lock().expect("outbox lock");
        let mut history = self.read_history();
        if let Some(e) = history.iter_mut().find(|e| e.run_id == run_id) {
            e.resolved_by = Some(resolution.clone());
            let mut text = Vec::new();
            for e in &history {
                text.extend(serde_json::to_vec(e).expect("entry serializes"));
                text.push(b'\n');
            }
            write_synced(&self.history, &text)?;
            return Ok(true);
        }
        if let Some(e) = book.pending.get_mut(run_id) {
            e.resolved_by = Some(resolution.clone());
            write_synced(&self.path_of(run_id), &serde_json::to_vec_pretty(e).expect("entry serializes"))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Pending entries, oldest first.
    pub fn read_pending(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| d.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|d| {
                let bytes = std::fs::read(d.path()).ok()?;
                match serde_json::from_slice::<Entry>(&bytes) {
                    Ok(e) => Some(e),
                    Err(err) => {
                        tracing::warn!(file = %d.path().display(), error = %err, "unreadable outbox entry left in place");
                        None
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.run_id.cmp(&b.run_id)));
        out
    }

    /// Finished entries, oldest first.
    pub fn read_history(&self) -> Vec<Entry> {
        std::fs::read_to_string(&self.history)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .collect()
    }

    /// A model's requests, finished and pending, oldest first.
    pub fn for_model(&self, model: &str) -> Vec<Entry> {
        let mut all = self.read_history();
        all.extend(self.read_pending());
        all.retain(|e| e.model == model);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry::pending(id, "m", "drift", "2026-11-29T00:00:00Z".into(), "webhook", Value::Null)
    }

    #[test]
    fn a_run_id_is_queued_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        assert!(ob.enqueue(&entry("a")).unwrap());
        assert!(!ob.enqueue(&entry("a")).unwrap());
        assert!(ob.enqueue(&entry("b")).unwrap());
        let mut done = entry("a");
        done.status = Status::Delivered;
        ob.finish(&done).unwrap();
        drop(ob);
        let ob = Outbox::open(dir.path()).unwrap();
        assert_eq!(ob.read_pending().iter().map(|e| e.run_id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(!ob.enqueue(&entry("a")).unwrap(), "a finished run is not queued again");
        assert_eq!(ob.for_model("m").len(), 2);
    }

    #[test]
    fn a_resolution_is_recorded_on_its_request() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.enqueue(&entry("a")).unwrap();
        ob.finish(&Entry { status: Status::Delivered, ..entry("a") }).unwrap();
        ob.enqueue(&entry("b")).unwrap();
        let r = crate::policy::Resolution::ReferenceUpdated { version: Some("2".into()), digest: "d".into() };
        assert!(ob.record_resolution("a", &r).unwrap());
        assert!(ob.record_resolution("b", &r).unwrap());
        assert!(!ob.record_resolution("c", &r).unwrap());
        let all = ob.for_model("m");
        assert!(all.iter().all(|e| e.resolved_by.as_ref() == Some(&r)), "{all:?}");
        assert_eq!(all[0].status, Status::Delivered);
    }

    #[test]
    fn a_crash_between_history_and_removal_is_healed() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.enqueue(&entry("a")).unwrap();
        // the history line is written but the pending file is still there
        let mut line = serde_json::to_vec(&Entry { status: Status::Delivered, ..entry("a") }).unwrap();
        line.push(b'\n');
        std::fs::write(dir.path().join("retrains.jsonl"), line).unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        assert!(ob.read_pending().is_empty());
        assert_eq!(ob.for_model("m").len(), 1);
    }
}
