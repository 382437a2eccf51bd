//! The retrain worker: delivers the outbox's requests, each attempt with a timeout,
//! retried with jittered backoff, until delivered or failed for good.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Actions, Shutdown};
use crate::config::RetrainTarget;
use crate::outbound::{self as http, Attempt};
use crate::sinks::retrain::{self as presets, RunParams};
use crate::state::{Entry, Outbox, Status};
use crate::telemetry::events::{
    OutboxNotWritten, OutboxPending, RetrainFinished, RetrainOutcome, RetrainRetrying, RetrainTargetPaused,
};
use crate::time::{format_rfc3339_ms, now_ms};

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What one pass over the outbox left.
struct Pass {
    /// Entries still pending.
    left: usize,
    /// When the earliest of them is due (Unix ms).
    next_due: Option<i64>,
}

pub(super) async fn worker(actions: Arc<Actions>, mut shutdown: watch::Receiver<Shutdown>) {
    loop {
        let outbox = actions.outbox();
        let pending = outbox.as_ref().map(|o| o.pending()).unwrap_or_default();
        actions.telemetry.emit(OutboxPending { requests: pending.len() });
        let how = *shutdown.borrow();
        if how == Shutdown::Stop || (how == Shutdown::Drain && pending.is_empty()) {
            return;
        }
        let config = actions.config();
        let pass = match (&outbox, &config.retrain) {
            (Some(outbox), Some(target)) => deliver_due(&actions, outbox, target, pending, &shutdown).await,
            // nothing can deliver what is pending: leave it for a run with a target
            _ if how == Shutdown::Drain => return,
            _ => Some(Pass { left: 0, next_due: None }),
        };
        let Some(pass) = pass else { return };
        // what the pass left, before a sleep of up to an hour: a request failed for good
        // is not pending (`DriftdRetrainPending` must not fire on it)
        actions.telemetry.emit(OutboxPending { requests: outbox.as_ref().map_or(0, |o| o.pending().len()) });
        if pass.left == 0 && *shutdown.borrow() != Shutdown::No {
            // read the outbox again before stopping: requests queued while this pass
            // was in flight are not in `pending` yet
            continue;
        }
        let sleep = match pass.next_due {
            Some(due) => Duration::from_millis((due - now_ms()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        // entries queued meanwhile wake the worker again (the `wake` permit)
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = actions.wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One pass: attempts every entry that is due. `None` when told to stop mid-pass.
async fn deliver_due(
    actions: &Actions,
    outbox: &Outbox,
    target: &RetrainTarget,
    pending: Vec<Entry>,
    shutdown: &watch::Receiver<Shutdown>,
) -> Option<Pass> {
    let mut pass = Pass { left: 0, next_due: None };
    for mut e in pending {
        if *shutdown.borrow() == Shutdown::Stop {
            return None;
        }
        if e.next_attempt_ms <= now_ms() {
            match RunParams::from_json(&e.params) {
                Some(params) => attempt(actions, outbox, target, &mut e, &params).await,
                None => {
                    e.last_error = Some("unreadable run parameters".into());
                    finish(actions, outbox, e, Status::Failed);
                    continue;
                }
            };
        }
        if e.status == Status::Pending {
            pass.left += 1;
            pass.next_due = Some(pass.next_due.map_or(e.next_attempt_ms, |d| d.min(e.next_attempt_ms)));
        } else {
            let status = e.status;
            finish(actions, outbox, e, status);
        }
    }
    Some(pass)
}

/// One attempt; the entry comes back finished (its status set) or rescheduled.
async fn attempt(actions: &Actions, outbox: &Outbox, target: &RetrainTarget, e: &mut Entry, params: &RunParams) {
    let mut call = presets::build(target, params, &e.created);
    e.attempts += 1;
    let outcome = match http::logged_in(&actions.http, &call.auth, target.timeout).await {
        Ok(auth) => {
            call.auth = auth;
            http::send(&actions.http, &call, target.timeout).await
        }
        Err(failed) => failed,
    };
    match outcome {
        Attempt::Delivered { status } => {
            (e.http_status, e.status) = (Some(status), Status::Delivered);
            if let Some(url) = presets::paused_check_url(target) {
                check_paused(actions, target, e, &call.auth, &url).await;
            }
        }
        Attempt::Duplicate { status } => (e.http_status, e.status) = (Some(status), Status::Duplicate),
        Attempt::Fail { reason, status } => {
            (e.http_status, e.last_error, e.status) = (Some(status), Some(reason), Status::Failed);
        }
        Attempt::Retry { reason, status, after } => {
            e.http_status = status;
            e.last_error = Some(reason.clone());
            if e.attempts >= target.max_attempts {
                e.status = Status::Failed;
                return;
            }
            let wait = http::backoff(target.backoff, MAX_BACKOFF, e.attempts, after);
            e.next_attempt_ms = now_ms() + wait.as_millis() as i64;
            let (model, run_id) = (e.model.as_str(), e.run_id.as_str());
            actions.telemetry.emit(RetrainRetrying {
                model,
                run_id,
                attempt: e.attempts,
                error: &reason,
                retry_in: wait,
            });
            if let Err(error) = outbox.update(e) {
                actions.telemetry.emit(OutboxNotWritten { run_id, error: &error });
            }
        }
    }
}

/// Airflow takes a run for a paused DAG (new DAGs start paused) with a 200 and never
/// starts it: asks the DAG, says so in the history, the log and a gauge.
async fn check_paused(actions: &Actions, target: &RetrainTarget, e: &mut Entry, auth: &http::Auth, url: &str) {
    let (model, run_id) = (e.model.clone(), e.run_id.clone());
    match http::get_json(&actions.http, url, auth, target.timeout).await {
        Ok(dag) => {
            let paused = dag.get("is_paused").and_then(serde_json::Value::as_bool) == Some(true);
            if paused {
                e.last_error = Some(format!(
                    "delivered, but the DAG is paused ({url}: is_paused true): Airflow will not start the run until it is unpaused"
                ));
            }
            actions.telemetry.emit(RetrainTargetPaused { model: &model, run_id: &run_id, paused });
        }
        // the run was delivered; whether its DAG runs is unknown: the history says so
        Err(why) => {
            tracing::info!(model, run_id, url, error = why, "cannot read whether the DAG is paused");
            e.last_error = Some(format!("delivered; whether the DAG is paused is unknown ({url}: {why})"));
        }
    }
}

/// Moves a finished request to the history and counts its outcome.
fn finish(actions: &Actions, outbox: &Outbox, mut e: Entry, status: Status) {
    e.status = status;
    e.finished = Some(format_rfc3339_ms(now_ms()));
    let outcome = match status {
        Status::Delivered => RetrainOutcome::Delivered,
        Status::Duplicate => RetrainOutcome::Duplicate,
        Status::DryRun => RetrainOutcome::DryRun,
        Status::Failed | Status::Pending => RetrainOutcome::Failed,
    };
    let (model, run_id) = (e.model.as_str(), e.run_id.as_str());
    let error = e.last_error.as_deref();
    actions.telemetry.emit(RetrainFinished { model, run_id, outcome, attempts: e.attempts, error });
    if let Err(error) = outbox.finish(&e) {
        actions.telemetry.emit(OutboxNotWritten { run_id: &e.run_id, error: &error });
    }
}
