//! Where window reports go besides the API: a JSON Lines file and a Kafka topic.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::kafka::TopicWorker;
use crate::telemetry::events::ReportFileReopened;
use crate::telemetry::Telemetry;

/// A sink that could not take a report, and why.
#[derive(Debug)]
pub struct SinkFailure {
    pub sink: &'static str,
    pub error: String,
}

/// The configured report sinks.
#[derive(Default)]
pub struct ReportSinks {
    file: Option<ReportFile>,
    /// Lines the file already ends with (reports republished after a crash skip them).
    written: HashSet<String>,
    topic: Option<TopicWorker>,
    /// Lines the topic's worker had no room for, in order: handed over as room frees up
    /// (the run loop pauses the input partitions meanwhile).
    backlog: std::collections::VecDeque<(String, String)>,
}

/// The JSON Lines file. A write that fails (a full disk, EIO) is cut back to the last
/// whole line, and its lines wait, in order, for the next write: a retry every second,
/// and in the checkpoint meanwhile, so neither a restart nor the next report loses one or
/// joins a partial line to it.
struct ReportFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    /// Told when the file is found deleted or replaced under the daemon.
    telemetry: Option<Arc<Telemetry>>,
    waiting: Arc<Mutex<Vec<String>>>,
    /// When the last write failed (none while they succeed).
    failed_at: Option<std::time::Instant>,
}

/// How often a failing report file is tried again.
const FILE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl ReportFile {
    fn open(path: &Path, telemetry: Option<Arc<Telemetry>>) -> std::io::Result<ReportFile> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ReportFile { path: path.to_path_buf(), file, telemetry, waiting: Default::default(), failed_at: None })
    }

    /// Opens the file again where its path no longer names the one held (deleted,
    /// rotated, its directory removed): lines written to an unlinked file are lost to
    /// everyone, so none is.
    fn follow_path(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let held = self.file.metadata()?;
        let same = std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == (held.dev(), held.ino()));
        if same {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        self.file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        if let Some(t) = &self.telemetry {
            t.emit(ReportFileReopened { path: &self.path });
        }
        Ok(())
    }

    /// Writes the waiting lines (unless the last failure is under a second old).
    fn write_waiting(&mut self) -> Result<(), SinkFailure> {
        let waiting = self.waiting.clone();
        let mut waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.is_empty() || self.failed_at.is_some_and(|at| at.elapsed() < FILE_RETRY) {
            return Ok(());
        }
        let mut text = String::with_capacity(waiting.iter().map(|l| l.len() + 1).sum());
        for line in waiting.iter() {
            text.push_str(line);
            text.push('\n');
        }
        let written = self.follow_path().and_then(|()| self.file.metadata()).and_then(|m| {
            let len = m.len();
            self.file.write_all(text.as_bytes()).inspect_err(|_| {
                // no partial line for the next write to join
                let _ = self.file.set_len(len);
            })
        });
        match written {
            Ok(()) => {
                waiting.clear();
                self.failed_at = None;
                Ok(())
            }
            Err(e) => {
                self.failed_at = Some(std::time::Instant::now());
                Err(SinkFailure { sink: "file", error: format!("{}: {e}", self.path.display()) })
            }
        }
    }
}

impl ReportSinks {
    /// Opens the report file for appending (creating it) and takes the topic's worker.
    /// `telemetry` hears of a report file deleted under the daemon (and opened again).
    pub fn open(
        file: Option<&Path>,
        topic: Option<TopicWorker>,
        telemetry: Option<Arc<Telemetry>>,
    ) -> std::io::Result<ReportSinks> {
        let file = file.map(|f| ReportFile::open(f, telemetry)).transpose()?;
        Ok(ReportSinks { file, written: HashSet::new(), topic, backlog: Default::default() })
    }

    /// Notes the lines the report file already holds among its last `bytes`: reports
    /// republished after a crash are not written to it twice.
    pub fn skip_written(&mut self, file: &Path, bytes: u64) {
        self.written = file_tail(file, bytes).lines().map(str::to_string).collect();
    }

    /// Publishes one report line (keyed by model on the topic).
    pub async fn publish(&mut self, model: &str, line: &str) -> Vec<SinkFailure> {
        self.publish_all(&[(model.to_string(), line.to_string())]).await
    }

    /// Lines the report file could not take yet: for the checkpoint.
    pub fn file_waiting(&self) -> Option<Arc<Mutex<Vec<String>>>> {
        self.file.as_ref().map(|f| f.waiting.clone())
    }

    /// Why the report file cannot be written, while it has lines waiting.
    pub fn file_failing(&self) -> Option<String> {
        let f = self.file.as_ref()?;
        let waiting = f.waiting.lock().unwrap_or_else(|e| e.into_inner()).len();
        (waiting > 0 && f.failed_at.is_some())
            .then(|| format!("cannot write the report file {}: {waiting} reports waiting", f.path.display()))
    }

    /// Whether the report file has lines waiting and is due for another try.
    pub fn file_retry_due(&self) -> bool {
        self.file.as_ref().is_some_and(|f| {
            f.failed_at.is_some_and(|at| at.elapsed() >= FILE_RETRY)
                && !f.waiting.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
        })
    }

    /// Lines handed to the topic's worker and not yet acknowledged: for the checkpoint.
    pub fn in_flight(&self) -> Option<Arc<Mutex<Vec<String>>>> {
        self.topic.as_ref().map(TopicWorker::in_flight)
    }

    /// Publishes report lines, (model, line), in order: written to the file (after the
    /// lines waiting for it), handed to the topic's worker (which the loop does not wait
    /// for; failures are counted there).
    pub async fn publish_all(&mut self, lines: &[(String, String)]) -> Vec<SinkFailure> {
        let mut failures = Vec::new();
        if let Some(f) = self.file.as_mut() {
            let fresh = lines.iter().filter(|(_, line)| !self.written.remove(line)).map(|(_, line)| line.clone());
            f.waiting.lock().unwrap_or_else(|e| e.into_inner()).extend(fresh);
            if let Err(failure) = f.write_waiting() {
                failures.push(failure);
            }
        }
        if let Some(t) = &self.topic {
            let in_flight = t.in_flight();
            let mut in_flight = in_flight.lock().unwrap_or_else(|e| e.into_inner());
            for (model, line) in lines {
                in_flight.push(line.clone());
                self.backlog.push_back((model.clone(), line.clone()));
            }
        }
        if let Err(failure) = self.drain() {
            failures.push(failure);
        }
        failures
    }

    /// Hands the backlog to the topic's worker as far as it has room. Returns the lines
    /// left; an error when the worker stopped (the lines are dropped: they stay in the
    /// checkpoint, as in flight, for the next start).
    pub fn drain(&mut self) -> Result<usize, SinkFailure> {
        let Some(t) = &self.topic else { return Ok(0) };
        while let Some((model, line)) = self.backlog.pop_front() {
            match t.hand_over(model, line) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => {
                    self.backlog.push_front(back);
                    break;
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return Err(SinkFailure { sink: "topic", error: "the report topic's worker stopped".into() });
                }
            }
        }
        Ok(self.backlog.len())
    }

    /// Done republishing: every later line is new.
    pub fn forget_written(&mut self) {
        self.written.clear();
    }
}

/// The file's last `bytes` (or all of it): reports are appended in order, so the ones
/// written just before a crash are there.
fn file_tail(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = String::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(bytes))).is_ok() {
        let _ = f.read_to_string(&mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_the_file_already_has_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.jsonl");
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        let mut sinks = ReportSinks::open(Some(&path), None, None).unwrap();
        sinks.skip_written(&path, 1 << 20);
        assert!(sinks.publish("m", "{\"a\":1}").await.is_empty());
        assert!(sinks.publish("m", "{\"b\":2}").await.is_empty());
        sinks.forget_written();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    }

    #[tokio::test]
    async fn a_failed_write_leaves_no_partial_line_and_its_lines_go_first_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.jsonl");
        let mut sinks = ReportSinks::open(Some(&path), None, None).unwrap();
        assert!(sinks.publish("m", "{\"a\":1}").await.is_empty());
        // a full disk: every write fails with ENOSPC (the path names /dev/full for a while)
        let aside = dir.path().join("aside.jsonl");
        std::fs::rename(&path, &aside).unwrap();
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let failures = sinks.publish("m", "{\"b\":2}").await;
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].error.contains("reports.jsonl"), "{}", failures[0].error);
        assert!(sinks.file_failing().unwrap().contains("1 reports waiting"));
        assert_eq!(*sinks.file_waiting().unwrap().lock().unwrap(), ["{\"b\":2}"]);
        // space is back; the retry is due
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&aside, &path).unwrap();
        sinks.file.as_mut().unwrap().failed_at = None;
        assert!(sinks.publish("m", "{\"c\":3}").await.is_empty());
        assert!(sinks.file_failing().is_none());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }

    /// A report file deleted under the daemon (`rm -rf` of its directory): the next lines
    /// go to a new file at the path, not into the unlinked one.
    #[tokio::test]
    async fn a_report_file_deleted_with_its_directory_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/reports.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut sinks = ReportSinks::open(Some(&path), None, None).unwrap();
        assert!(sinks.publish("m", "{\"a\":1}").await.is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert!(sinks.publish("m", "{\"b\":2}").await.is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"b\":2}\n");
    }
}
