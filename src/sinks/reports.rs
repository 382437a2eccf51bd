//! Where window reports go besides the API: a JSON Lines file and a Kafka topic.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

/// A sink that could not take a report, and why.
#[derive(Debug)]
pub struct SinkFailure {
    pub sink: &'static str,
    pub error: String,
}

/// The configured report sinks.
#[derive(Default)]
pub struct ReportSinks {
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// Lines the file already ends with (reports republished after a crash skip them).
    written: HashSet<String>,
    topic: Option<(FutureProducer, String)>,
}

impl ReportSinks {
    /// Opens the report file for appending (creating it) and takes the topic's producer.
    pub fn open(file: Option<&Path>, topic: Option<(FutureProducer, String)>) -> std::io::Result<ReportSinks> {
        let file = match file {
            Some(p) => Some(std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?)),
            None => None,
        };
        Ok(ReportSinks { file, written: HashSet::new(), topic })
    }

    /// Notes the lines the report file already holds among its last `bytes`: reports
    /// republished after a crash are not written to it twice.
    pub fn skip_written(&mut self, file: &Path, bytes: u64) {
        self.written = file_tail(file, bytes).lines().map(str::to_string).collect();
    }

    /// Publishes one report line (keyed by model on the topic).
    pub async fn publish(&mut self, model: &str, line: &str) -> Vec<SinkFailure> {
        let mut failures = Vec::new();
        if let Some(f) = self.file.as_mut().filter(|_| !self.written.remove(line)) {
            if let Err(e) = writeln!(f, "{line}").and_then(|_| f.flush()) {
                failures.push(SinkFailure { sink: "file", error: e.to_string() });
            }
        }
        if let Some((producer, topic)) = &self.topic {
            let record = FutureRecord::to(topic).key(model).payload(line);
            if let Err((e, _)) = producer.send(record, Duration::from_secs(5)).await {
                failures.push(SinkFailure { sink: "topic", error: format!("{topic}: {e}") });
            }
        }
        failures
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
        let mut sinks = ReportSinks::open(Some(&path), None).unwrap();
        sinks.skip_written(&path, 1 << 20);
        assert!(sinks.publish("m", "{\"a\":1}").await.is_empty());
        assert!(sinks.publish("m", "{\"b\":2}").await.is_empty());
        sinks.forget_written();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    }
}
