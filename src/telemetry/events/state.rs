//! What happens to the state directory and what is written there: the checkpoint (not
//! written, written again, set aside), the directory or the report file deleted under the
//! daemon, a last run that ended without shutting down, reports not published or published
//! again.

use std::fmt::Display;

use super::{InternalEvent, Telemetry};

/// The checkpoint could not be written.
pub struct CheckpointNotSaved<'a> {
    pub error: &'a std::io::Error,
}

impl InternalEvent for CheckpointNotSaved<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.state_write_errors_total.with_label_values(&["checkpoint"]).inc();
        tracing::error!(
            error = %self.error,
            "cannot write the checkpoint: reports and offsets wait until it can be written (retried every second)"
        );
    }
}

/// The state directory was deleted or replaced under the daemon: made again and locked
/// anew, with everything held in memory written to it.
pub struct StateDirLost<'a> {
    pub dir: &'a std::path::Path,
    /// Why it could not be taken again, if it could not.
    pub error: Option<&'a str>,
}

impl InternalEvent for StateDirLost<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.state_write_errors_total.with_label_values(&["state_dir"]).inc();
        match self.error {
            None => tracing::error!(
                dir = %self.dir.display(),
                "the state directory was deleted or replaced under the daemon: made again, the checkpoint, pending \
                 retrain requests and alerts written to it anew (the retrain history before now is gone)"
            ),
            Some(error) => tracing::error!(
                dir = %self.dir.display(),
                error,
                "the state directory was deleted or replaced under the daemon and cannot be taken again: reports and \
                 offsets wait (/readyz 503)"
            ),
        }
    }
}

/// The last run on this state directory ended without stopping in order.
pub struct PreviousRunUnclean<'a> {
    pub pid: u32,
    pub dir: &'a std::path::Path,
}

impl InternalEvent for PreviousRunUnclean<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::warn!(
            previous_pid = self.pid,
            dir = %self.dir.display(),
            "the last driftd on this state directory ended without shutting down: killed, or crashed (librdkafka \
             2.12.1 crashes in its own thread when a subscribed topic is deleted or re-created under it: \
             confluentinc/librdkafka#4964, #5093, #5280); what it had not reported is read again from the \
             committed offsets"
        );
    }
}

/// The report file was deleted or replaced under the daemon: opened again at its path.
pub struct ReportFileReopened<'a> {
    pub path: &'a std::path::Path,
}

impl InternalEvent for ReportFileReopened<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.state_write_errors_total.with_label_values(&["reports_file"]).inc();
        tracing::error!(
            path = %self.path.display(),
            "the report file was deleted or replaced under the daemon: opened again at its path, the next reports go there"
        );
    }
}

/// The checkpoint could be written again.
pub struct CheckpointSavedAgain;

impl InternalEvent for CheckpointSavedAgain {
    fn emit(self, _: &Telemetry) {
        tracing::info!("the checkpoint is written again: reports and offsets go on");
    }
}

/// A checkpoint that did not parse was kept aside at start.
pub struct CheckpointSetAside<'a> {
    pub to: &'a std::path::Path,
    pub error: &'a str,
}

impl InternalEvent for CheckpointSetAside<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.state_write_errors_total.with_label_values(&["checkpoint_corrupt"]).inc();
        tracing::error!(
            kept_at = %self.to.display(),
            error = self.error,
            "the checkpoint does not parse: kept aside, starting without it (windows reopen, episodes are forgotten)"
        );
    }
}

/// Reports left unconfirmed by the last run are published first.
pub struct RepublishingReports {
    pub reports: usize,
}

impl InternalEvent for RepublishingReports {
    fn emit(self, _: &Telemetry) {
        tracing::info!(reports = self.reports, "publishing the reports left by the last run");
    }
}

/// A report sink could not take a report.
pub struct ReportNotPublished<'a> {
    pub sink: &'a str,
    pub error: &'a dyn Display,
}

impl InternalEvent for ReportNotPublished<'_> {
    fn emit(self, t: &Telemetry) {
        t.metrics.report_sink_errors_total.with_label_values(&[self.sink]).inc();
        tracing::warn!(sink = self.sink, error = %self.error, "cannot publish a window report");
    }
}
