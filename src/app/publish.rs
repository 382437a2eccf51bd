//! From closed windows to everything that shows them, in an order that survives a crash:
//! reports are made visible (metrics, policy, API, hook) and checkpointed together with
//! their windows' marks before any sink sees them; once the sinks have them, the
//! checkpoint's list is cleared and the offsets below them may be committed.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::actions::Actions;
use crate::http::{ApiState, ModelView};
use crate::pipeline::{report_window, Pipeline, WindowReport};
use crate::sinks::reports::ReportSinks;
use crate::source::kafka::{Offsets, PartitionListener};
use crate::state::changelog::{Changelog, Claim};
use crate::state::{Checkpoint, CheckpointFile, StateLock};
use crate::telemetry::events::{
    CheckpointNotSaved, CheckpointSavedAgain, PartitionsHandedOver, PartitionsLost, PartitionsRevoked,
    ReportNotPublished, StateDirLost, StateTakenOver, WindowClosed, WindowFenced,
};
use crate::telemetry::Telemetry;

pub struct Publisher {
    pipeline: Arc<Mutex<Pipeline>>,
    telemetry: Arc<Telemetry>,
    actions: Arc<Actions>,
    api: Arc<ApiState>,
    hook: Option<mpsc::UnboundedSender<WindowReport>>,
    checkpoint: CheckpointFile,
    /// Report lines made but not yet confirmed in the sinks (by model).
    unpublished: Mutex<Vec<(String, String)>>,
    /// Report lines handed to the topic's worker and not yet acknowledged, and how many
    /// the last checkpoint held.
    in_flight: std::sync::OnceLock<Arc<Mutex<Vec<String>>>>,
    /// Report lines the report file has not taken yet (its writes fail).
    file_waiting: std::sync::OnceLock<Arc<Mutex<Vec<String>>>>,
    in_flight_saved: std::sync::atomic::AtomicUsize,
    /// The outbox's change count at the last checkpoint.
    outbox_saved: std::sync::atomic::AtomicU64,
    /// The state changelog, when several replicas share the models.
    changelog: Option<Arc<Changelog>>,
    /// With the state changelog: reports waiting for their claim to be decided
    /// (`Changelog::decide`), in the order closed.
    held: Mutex<Vec<Held>>,
    /// When the last checkpoint (or outbox) write failed (none while they succeed):
    /// reports wait for the next one that succeeds, and no offset is stored meanwhile.
    save_failed: Mutex<Option<std::time::Instant>>,
    /// The lock on the state directory (none in tests that embed a publisher alone).
    state_lock: Mutex<Option<StateLock>>,
}

/// A closed window whose report waits for its claim to be decided.
struct Held {
    claim: Claim,
    /// Whether the claim went out with a changelog record.
    written: bool,
    report: WindowReport,
    line: String,
    /// Not decided before (another replica closing the same window a little later has
    /// written its claim by then), and reported undecided after `deadline`.
    due: std::time::Instant,
    deadline: std::time::Instant,
}

/// How long a report waits for the claims of other replicas closing the same window.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long it waits for its own claim to be read back before it is reported anyway.
const CLAIM_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// How often a failing checkpoint write is tried again.
const SAVE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Publisher {
    pub fn new(
        pipeline: Arc<Mutex<Pipeline>>,
        telemetry: Arc<Telemetry>,
        actions: Arc<Actions>,
        api: Arc<ApiState>,
        checkpoint: CheckpointFile,
    ) -> Publisher {
        Publisher {
            pipeline,
            telemetry,
            actions,
            api,
            hook: None,
            checkpoint,
            unpublished: Mutex::new(Vec::new()),
            in_flight: std::sync::OnceLock::new(),
            file_waiting: std::sync::OnceLock::new(),
            in_flight_saved: std::sync::atomic::AtomicUsize::new(0),
            outbox_saved: std::sync::atomic::AtomicU64::new(0),
            save_failed: Mutex::new(None),
            changelog: None,
            held: Mutex::new(Vec::new()),
            state_lock: Mutex::new(None),
        }
    }

    /// The state directory's lock: each checkpoint first checks that the directory is
    /// still the one locked, and takes it again when it was deleted under the daemon.
    pub fn with_state_lock(self, lock: StateLock) -> Publisher {
        *self.state_lock.lock().expect("state lock") = Some(lock);
        self
    }

    /// Every tick: a state directory deleted under the daemon is made again and written
    /// at once, not at the next window's close.
    pub fn check_state_dir(&self) {
        let lost = self.state_lock.lock().expect("state lock").as_ref().is_some_and(|l| !l.intact());
        if lost {
            self.checkpoint(&self.pipeline.lock().expect("pipeline lock"));
        }
    }

    /// The state directory still the one locked, or made again and locked anew (what
    /// memory holds of the outboxes marked to be written again); false when it cannot be
    /// taken again (another driftd took it): then nothing is written to it.
    fn guard_state_dir(&self) -> bool {
        let mut guard = self.state_lock.lock().expect("state lock");
        let Some(lock) = guard.as_mut() else { return true };
        if lock.intact() {
            return true;
        }
        match lock.retake() {
            Ok(()) => {
                self.actions.rewrite_state();
                self.telemetry.emit(StateDirLost { dir: lock.dir(), error: None });
                self.api.write_failing("state_dir", None);
                true
            }
            Err(e) => {
                let why = e.to_string();
                self.telemetry.emit(StateDirLost { dir: lock.dir(), error: Some(&why) });
                self.api.write_failing("state_dir", Some(why));
                false
            }
        }
    }

    /// Each checkpoint's models also go to the state changelog.
    pub fn with_changelog(mut self, changelog: Option<Arc<Changelog>>) -> Publisher {
        self.changelog = changelog;
        self
    }

    /// The sinks' lines not yet taken (the topic's, unacknowledged; the file's, not
    /// written) go into every checkpoint.
    pub fn track_sinks(&self, sinks: &ReportSinks) {
        if let Some(lines) = sinks.in_flight() {
            let _ = self.in_flight.set(lines);
        }
        if let Some(lines) = sinks.file_waiting() {
            let _ = self.file_waiting.set(lines);
        }
    }

    /// Every report also goes to `hook` (the demo, embedding tests).
    pub fn with_hook(mut self, hook: Option<mpsc::UnboundedSender<WindowReport>>) -> Publisher {
        self.hook = hook;
        self
    }

    pub fn pipeline(&self) -> &Arc<Mutex<Pipeline>> {
        &self.pipeline
    }

    /// Reports the windows that closed: metrics, the policy (a retrain request is on disk
    /// before this returns), the API's latest report, the hook; then the checkpoint with
    /// their marks and their reports. Returns how many.
    ///
    /// With the state changelog, a window read from the input partitions is claimed
    /// instead (its claim goes out with the checkpoint) and its report waits in the
    /// checkpoint until [`Publisher::release_held`] decides it.
    pub fn report_closed(&self, pipeline: &mut Pipeline) -> usize {
        let closed = pipeline.take_closed();
        if closed.is_empty() {
            return 0;
        }
        let n = closed.len();
        let mut lines = Vec::with_capacity(n);
        for window in closed {
            let claim = (self.changelog.is_some() && window.merged.is_none()).then(|| claim_of(pipeline, &window));
            let report = report_window(window);
            match claim {
                Some(claim) => {
                    let now = std::time::Instant::now();
                    let line = report.to_json_line();
                    let (due, deadline) = (now + CLAIM_WAIT, now + CLAIM_LIMIT);
                    let held = Held { claim, written: false, report, line, due, deadline };
                    self.held.lock().expect("held lock").push(held);
                }
                None => lines.push(self.show(&report)),
            }
        }
        let mut unpublished = self.unpublished.lock().expect("unpublished lock");
        unpublished.extend(lines);
        self.save(pipeline, &unpublished);
        n
    }

    /// A report made visible: metrics, the policy, the hook, the API. Returns its line.
    fn show(&self, report: &WindowReport) -> (String, String) {
        self.telemetry.emit(WindowClosed { report });
        self.actions.observe(report);
        if let Some(tx) = &self.hook {
            let _ = tx.send(report.clone());
        }
        self.api.note_report(report);
        (report.model.clone(), report.to_json_line())
    }

    /// Decides the held reports that are due (all of them with `now_all`, at shutdown):
    /// a window another replica claimed with every event it holds is dropped and
    /// counted; the others are reported.
    pub fn release_held(&self, now_all: bool) {
        let Some(changelog) = &self.changelog else { return };
        let now = std::time::Instant::now();
        let due: Vec<Held> = {
            let mut held = self.held.lock().expect("held lock");
            if !held.iter().any(|h| now_all || h.due <= now) {
                return;
            }
            let (due, wait) = std::mem::take(&mut *held).into_iter().partition(|h| now_all || h.due <= now);
            *held = wait;
            due
        };
        let claims: Vec<Claim> = due.iter().map(|h| h.claim.clone()).collect();
        let decisions = changelog.decide(&claims);
        let mut lines = Vec::new();
        let mut waiting = Vec::new();
        let mut fenced = 0;
        for (h, decision) in due.into_iter().zip(decisions) {
            match decision {
                Some(true) => {
                    let c = &h.claim;
                    let version = c.version.as_deref();
                    self.telemetry.emit(WindowFenced {
                        model: &c.model,
                        version,
                        start_ms: c.start_ms,
                        events: c.events,
                    });
                    fenced += 1;
                }
                Some(false) => lines.push(self.show(&h.report)),
                None if now_all || now >= h.deadline => {
                    tracing::warn!(
                        model = %h.claim.model,
                        window_start_ms = h.claim.start_ms,
                        "the window's claim was not read back from the state changelog: reported without knowing other replicas' claims"
                    );
                    lines.push(self.show(&h.report));
                }
                None => waiting.push(h),
            }
        }
        self.held.lock().expect("held lock").splice(0..0, waiting);
        if lines.is_empty() && fenced == 0 {
            return;
        }
        let pipeline = self.pipeline.lock().expect("pipeline lock");
        let mut unpublished = self.unpublished.lock().expect("unpublished lock");
        unpublished.extend(lines);
        // a dropped line leaves the checkpoint (a restart must not publish it)
        self.save(&pipeline, &unpublished);
    }

    /// Whether reports wait for their claims to be decided.
    pub fn holds(&self) -> bool {
        !self.held.lock().expect("held lock").is_empty()
    }

    /// Queues report lines left unconfirmed by the last run, to go out first.
    pub fn requeue(&self, lines: Vec<String>) {
        let lines = lines.into_iter().map(|line| {
            let model = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["model"].as_str().map(str::to_string))
                .unwrap_or_default();
            (model, line)
        });
        self.unpublished.lock().expect("unpublished lock").extend(lines);
    }

    pub fn has_unpublished(&self) -> bool {
        !self.unpublished.lock().expect("unpublished lock").is_empty()
    }

    /// Whether the last checkpoint write failed, or part of the outbox is unwritten.
    pub fn save_failing(&self) -> bool {
        self.save_failed.lock().expect("save lock").is_some() || self.actions.outbox_failing()
    }

    /// While checkpoint writes fail: tries again (at most every `SAVE_RETRY`). True once
    /// one succeeded.
    pub fn retry_save(&self) -> bool {
        let due = self.save_failed.lock().expect("save lock").is_none_or(|at| at.elapsed() >= SAVE_RETRY);
        if due {
            self.checkpoint(&self.pipeline.lock().expect("pipeline lock"));
        }
        !self.save_failing()
    }

    /// Hands the queued reports to the sinks, then clears them from the checkpoint.
    /// Returns the offsets now safe to commit. While the checkpoint cannot be written,
    /// nothing: the reports wait (a restart then reads their events again and reports
    /// them once), and no offset moves past them.
    pub async fn publish(&self, sinks: &mut ReportSinks) -> Offsets {
        if self.save_failing() && !self.retry_save() {
            return Vec::new();
        }
        let lines = std::mem::take(&mut *self.unpublished.lock().expect("unpublished lock"));
        for failure in sinks.publish_all(&lines).await {
            self.telemetry.emit(ReportNotPublished { sink: failure.sink, error: &failure.error });
        }
        // lines the file could not take wait in the checkpoint (and for the next write)
        self.api.write_failing("reports", sinks.file_failing());
        let pipeline = self.pipeline.lock().expect("pipeline lock");
        let saved = self.save(&pipeline, &self.unpublished.lock().expect("unpublished lock"));
        self.show_models(&pipeline);
        // unsaved, the marks of the windows just published would be lost by a crash:
        // their offsets wait (a restart reports them again rather than never)
        if saved {
            pipeline.safe_offsets()
        } else {
            Vec::new()
        }
    }

    /// The API's view of the models.
    pub fn show_models(&self, pipeline: &Pipeline) {
        *self.api.models.write().expect("lock") = pipeline.models().iter().map(ModelView::of).collect();
    }

    /// Checkpoints again once the topic's worker has confirmed lines the last checkpoint
    /// listed (so a restart does not publish them again).
    /// Also when a retrain request was delivered (or queued, or failed) since the last
    /// checkpoint: the state changelog then says so, and a replica taking the model over
    /// does not send it again.
    pub fn in_flight_confirmed(&self) {
        let outbox = self.actions.outbox_changes();
        let requests_changed =
            self.changelog.is_some() && self.outbox_saved.load(std::sync::atomic::Ordering::Relaxed) != outbox;
        let confirmed = self.in_flight.get().is_some_and(|f| {
            f.lock().expect("in-flight lock").len() < self.in_flight_saved.load(std::sync::atomic::Ordering::Relaxed)
        });
        if confirmed || requests_changed {
            self.checkpoint(&self.pipeline.lock().expect("pipeline lock"));
        }
    }

    /// Notes the changelog's records taken at start: this replica's state of their models
    /// is what it wrote, as far as the changelog goes (so that it writes only what it
    /// changes later).
    pub fn taken(&self, records: &[crate::state::changelog::Record]) {
        if let Some(c) = &self.changelog {
            c.taken(records, &self.state(&self.pipeline.lock().expect("pipeline lock"), Vec::new()));
        }
    }

    /// The state changelog, when on.
    pub fn changelog(&self) -> Option<&Arc<Changelog>> {
        self.changelog.as_ref()
    }

    /// Checkpoints now (with the reports not yet confirmed).
    pub fn checkpoint(&self, pipeline: &Pipeline) {
        self.save(pipeline, &self.unpublished.lock().expect("unpublished lock"));
    }

    /// This replica's state of every model (marks, drift state, pending requests).
    fn state(&self, pipeline: &Pipeline, unpublished: Vec<String>) -> Checkpoint {
        Checkpoint { unpublished, ..Checkpoint::default() }
            .with_marks(pipeline.marks())
            .with_trackers(self.actions.snapshot())
            .with_retrains(self.actions.pending_retrains())
    }

    /// Writes what the retrain and alert outboxes could not write before, then the
    /// checkpoint; false when any could not be written (then `/readyz` says why until
    /// all are).
    fn save(&self, pipeline: &Pipeline, unpublished: &[(String, String)]) -> bool {
        if !self.guard_state_dir() {
            *self.save_failed.lock().expect("save lock") = Some(std::time::Instant::now());
            return false;
        }
        let outbox = self.actions.flush_outbox();
        let alerts = self.actions.flush_alerts();
        let outbox_saved = outbox.is_ok() && alerts.is_ok();
        self.api.write_failing("outbox", outbox.err());
        self.api.write_failing("alerts", alerts.err());
        let in_flight = self.in_flight.get().map(|f| f.lock().expect("in-flight lock").clone()).unwrap_or_default();
        self.in_flight_saved.store(in_flight.len(), std::sync::atomic::Ordering::Relaxed);
        let mut lines: Vec<String> = in_flight;
        if let Some(waiting) = self.file_waiting.get() {
            // a line both sinks still wait for goes in once
            let waiting = waiting.lock().expect("file lock");
            let known: std::collections::HashSet<&String> = lines.iter().collect();
            let fresh: Vec<String> = waiting.iter().filter(|l| !known.contains(l)).cloned().collect();
            lines.extend(fresh);
        }
        // held reports wait in the checkpoint; their claims not yet written go with it
        let mut claims = Vec::new();
        for h in self.held.lock().expect("held lock").iter_mut() {
            lines.push(h.line.clone());
            if self.changelog.is_some() && !std::mem::replace(&mut h.written, true) {
                claims.push(h.claim.clone());
            }
        }
        lines.extend(unpublished.iter().map(|(_, line)| line.clone()));
        self.outbox_saved.store(self.actions.outbox_changes(), std::sync::atomic::Ordering::Relaxed);
        let checkpoint = self.state(pipeline, lines);
        let saved = match self.checkpoint.save(&checkpoint) {
            Ok(()) => {
                if self.api.write_failing("checkpoint", None) {
                    self.telemetry.emit(CheckpointSavedAgain);
                }
                outbox_saved
            }
            Err(error) => {
                let why = format!("cannot write the checkpoint {}: {error}", self.checkpoint.path().display());
                self.api.write_failing("checkpoint", Some(why));
                self.telemetry.emit(CheckpointNotSaved { error: &error });
                false
            }
        };
        *self.save_failed.lock().expect("save lock") = (!saved).then(std::time::Instant::now);
        if let Some(c) = &self.changelog {
            c.write(&checkpoint, &claims);
        }
        saved
    }
}

/// How long a revoke waits for the state changelog to take this replica's latest state.
const HANDOVER_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

impl PartitionListener for Publisher {
    /// Without the state changelog, the windows holding the revoked partitions' events are
    /// closed and reported now (their sinks get them from the run loop), so the offsets
    /// after them can be committed before the partitions go. With it, the windows holding
    /// only their events are handed over: dropped here, with the partitions' offsets
    /// committed at their first events, so the next owner reads them again and, having
    /// these marks from the changelog, reports them whole (a rolling restart cuts no
    /// window). Windows mixing them with partitions that stay are closed as before.
    fn revoking(&self, partitions: &[(String, i32)]) -> Offsets {
        let mut pipeline = self.pipeline.lock().expect("pipeline lock");
        let offsets = if let Some(changelog) = &self.changelog {
            let pinned = pipeline.safe_offsets();
            let handed = pipeline.drop_partitions(partitions);
            let windows = self.report_closed(&mut pipeline);
            if windows == 0 {
                self.save(&pipeline, &self.unpublished.lock().expect("unpublished lock"));
            }
            // the next owner reads this replica's latest state (its marks keep the windows
            // reported here from being reported again)
            if !changelog.settle(HANDOVER_SETTLE) {
                tracing::warn!("the state changelog did not take this replica's state within 5 s of a revoke");
            }
            self.telemetry.emit(PartitionsHandedOver { partitions: partitions.len(), handed, windows });
            // the revoked partitions from their handed-over windows' first events
            let mut offsets = pipeline.safe_offsets();
            for (topic, partition, offset) in &mut offsets {
                let before = pinned.iter().find(|(t, p, _)| t == topic && p == partition).map(|(_, _, o)| *o);
                if partitions.iter().any(|(t, p)| t == topic && p == partition) {
                    *offset = before.map_or(*offset, |b| b.min(*offset));
                    tracing::debug!(topic, partition, offset, "handed over: committed at");
                }
            }
            offsets
        } else {
            pipeline.close_partitions(partitions);
            let windows = self.report_closed(&mut pipeline);
            self.telemetry.emit(PartitionsRevoked { partitions: partitions.len(), windows });
            pipeline.safe_offsets()
        };
        // spread models' panes of these partitions are read again by the next owner
        pipeline.forget_partitions(partitions);
        if self.save_failing() {
            // the windows just reported are on no disk: the next owner reads their events
            // again from the last offsets that were safe (at least once)
            tracing::warn!("partitions revoked while the state cannot be written: no offset committed");
            return Vec::new();
        }
        offsets
    }

    fn lost(&self, partitions: &[(String, i32)]) {
        let mut pipeline = self.pipeline.lock().expect("pipeline lock");
        let dropped = pipeline.drop_partitions(partitions);
        let reported = self.report_closed(&mut pipeline);
        pipeline.forget_partitions(partitions);
        self.telemetry.emit(PartitionsLost { partitions: partitions.len(), dropped, reported });
    }

    fn assigned(&self) {
        let Some(changelog) = &self.changelog else { return };
        let records = changelog.catch_up();
        if records.is_empty() {
            return;
        }
        let mut pipeline = self.pipeline.lock().expect("pipeline lock");
        let mut taken = Vec::new();
        for rec in records {
            // a model this replica is windowing now keeps its own state
            let busy = rec.state.model_names().iter().any(|name| {
                pipeline
                    .model_index(name)
                    .is_some_and(|i| pipeline.models()[i].tracks.iter().any(|t| t.open_events() > 0))
            });
            if busy {
                continue;
            }
            for (model, version, mk) in rec.state.marks() {
                tracing::debug!(model, version, closed_upto = mk.closed_upto, writer = %rec.writer, "marks taken");
            }
            pipeline.restore_marks(rec.state.marks());
            self.actions.restore(rec.state.trackers());
            self.actions.take_requests(rec.state.pending_retrains());
            for model in rec.state.model_names() {
                self.telemetry.emit(StateTakenOver { model: &model, writer: &rec.writer });
            }
            taken.push(rec);
        }
        changelog.taken(&taken, &self.state(&pipeline, Vec::new()));
        self.save(&pipeline, &self.unpublished.lock().expect("unpublished lock"));
    }

    fn internal_assigned(&self, partition: i32, end: Option<i64>) {
        self.pipeline.lock().expect("pipeline lock").internal_assigned(partition, end);
    }
}

/// The claim of a window read from the input partitions: its bounds, events, and the
/// offsets they came from.
fn claim_of(pipeline: &Pipeline, window: &crate::pipeline::ClosedWindow) -> Claim {
    let acc = &window.acc;
    let offsets = acc
        .offset_spans()
        .filter_map(|(pid, lo, hi)| pipeline.partition_name(pid).map(|(t, p)| (t.to_string(), p, lo, hi)))
        .collect();
    Claim {
        model: window.spec.name.clone(),
        version: window.version.clone(),
        start_ms: acc.bounds.start_ms,
        end_ms: acc.bounds.end_ms,
        events: acc.events,
        offsets,
    }
}
