//! Inference logs from a JSON Lines file: `driftd replay` runs the whole pipeline over it
//! and writes one window report per line. Windows still open at the end are closed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::error::InputError;
use crate::pipeline::{report_window, Pipeline, WindowReport};

/// What a replay went through.
#[derive(Debug, Default, Serialize)]
pub struct ReplaySummary {
    pub messages: u64,
    pub events: u64,
    pub windows: u64,
    pub late_events: u64,
    pub decode_errors: BTreeMap<String, u64>,
    /// Open Inference Protocol halves joined, and taken alone by side (none: no such
    /// message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairing: Option<Pairing>,
    /// Drift episodes per model, retrain requests by outcome and alerts sent (with a
    /// policy's actions configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<serde_json::Value>,
    /// Where the time went: for benchmarks.
    pub timing: Timing,
}

/// Halves joined with their other (two per pair), and taken alone: a request's rows
/// without a prediction, a response's with only the prediction.
#[derive(Debug, Default, Serialize)]
pub struct Pairing {
    pub joined: u64,
    pub unpaired_requests: u64,
    pub unpaired_responses: u64,
}

/// Seconds spent loading the references, streaming (decode to report, closes included)
/// and closing windows (their statistics); the slowest close.
#[derive(Debug, Default, Serialize)]
pub struct Timing {
    pub load_s: f64,
    pub stream_s: f64,
    pub events_per_s: f64,
    pub window_close_s: f64,
    pub slowest_close_s: f64,
}

/// Runs `pipeline` over `input`, one report line per closed window to `out`;
/// `on_report` sees each report as it is written (the policy and its actions).
pub fn replay(
    mut pipeline: Pipeline,
    input: &Path,
    topic: Option<&str>,
    out: &mut dyn std::io::Write,
    on_report: &mut dyn FnMut(&WindowReport),
) -> Result<ReplaySummary, InputError> {
    let file = std::fs::File::open(input).map_err(|e| InputError::file(input, format!("cannot open: {e}")))?;
    let mut summary = ReplaySummary::default();
    let mut emit = |pipeline: &mut Pipeline, summary: &mut ReplaySummary| -> Result<(), InputError> {
        for closed in pipeline.take_closed() {
            let started = Instant::now();
            let report = report_window(closed);
            let took = started.elapsed().as_secs_f64();
            summary.timing.window_close_s += took;
            summary.timing.slowest_close_s = summary.timing.slowest_close_s.max(took);
            summary.windows += 1;
            writeln!(out, "{}", report.to_json_line())
                .map_err(|e| InputError::file(input, format!("cannot write a report: {e}")))?;
            on_report(&report);
        }
        Ok(())
    };
    let started = Instant::now();
    // a line is read up to the size a message may have, no further
    let mut lines = Lines::new(file, pipeline.max_message_bytes());
    while let Some(line) = lines.next().map_err(|e| InputError::file(input, format!("cannot read: {e}")))? {
        let Line::Whole(line) = line else {
            summary.messages += 1;
            pipeline.refuse(crate::pipeline::DecodeError::Oversized);
            continue;
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.messages += 1;
        if summary.messages % 1024 == 1 {
            // one clock read for the lines read in the next moment
            pipeline.hold_clock(true);
        }
        if let Ok(routed) = pipeline.ingest(line, None, topic) {
            summary.events += u64::from(routed.events);
        }
        for later in pipeline.take_later() {
            summary.events += u64::from(later.result.unwrap_or(0));
        }
        if pipeline.has_closed() {
            emit(&mut pipeline, &mut summary)?;
        }
    }
    pipeline.close_all();
    for later in pipeline.take_later() {
        summary.events += u64::from(later.result.unwrap_or(0));
    }
    emit(&mut pipeline, &mut summary)?;
    summary.timing.stream_s = started.elapsed().as_secs_f64();
    summary.timing.events_per_s = (summary.events as f64 / summary.timing.stream_s).round();
    summary.decode_errors =
        pipeline.decode_errors().filter(|(_, n)| *n > 0).map(|(e, n)| (e.reason().to_string(), n)).collect();
    let (joined, [unpaired_requests, unpaired_responses], _) = pipeline.pairing();
    if joined + unpaired_requests + unpaired_responses > 0 {
        summary.pairing = Some(Pairing { joined, unpaired_requests, unpaired_responses });
    }
    summary.late_events = pipeline.models().iter().flat_map(|m| &m.tracks).map(|t| t.late_total()).sum();
    Ok(summary)
}

/// A line of a file: whole, or longer than the limit (skipped, never held whole).
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Whole(&'a [u8]),
    TooLong,
}

/// The lines of a reader, each borrowed from one large buffer (no copy per line); a line
/// cut by the end of a read moves to the buffer's front, which grows for a line longer
/// than it, up to `limit` bytes: the rest of a longer line is read past, not kept. The
/// last line needs no newline.
struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes from `start` known to hold no newline (a long line is searched once).
    searched: usize,
    limit: usize,
    /// Reading past the rest of a line longer than `limit`.
    skipping: bool,
    eof: bool,
}

impl<R: Read> Lines<R> {
    const CHUNK: usize = 1 << 16;

    fn new(reader: R, limit: usize) -> Self {
        Lines { reader, buf: vec![0; Self::CHUNK], start: 0, end: 0, searched: 0, limit, skipping: false, eof: false }
    }

    /// The line at `range` of the buffer, or `TooLong` when it (or the part of it read
    /// past) exceeds the limit.
    fn line(&mut self, range: std::ops::Range<usize>) -> Line<'_> {
        if std::mem::take(&mut self.skipping) || range.len() > self.limit {
            Line::TooLong
        } else {
            Line::Whole(&self.buf[range])
        }
    }

    /// The next line without its newline, `None` at the end.
    fn next(&mut self) -> std::io::Result<Option<Line<'_>>> {
        loop {
            let unread = &self.buf[self.start + self.searched..self.end];
            if let Some(n) = memchr::memchr(b'\n', unread) {
                let line = self.start..self.start + self.searched + n;
                (self.start, self.searched) = (line.end + 1, 0);
                return Ok(Some(self.line(line)));
            }
            if self.eof {
                if self.start == self.end && !self.skipping {
                    return Ok(None);
                }
                let line = self.start..self.end;
                (self.start, self.searched) = (self.end, 0);
                return Ok(Some(self.line(line)));
            }
            if self.end - self.start > self.limit {
                // too long already: drop what is held, read on to its newline
                (self.start, self.end, self.searched, self.skipping) = (0, 0, 0, true);
            }
            // keep the cut line, read more behind it
            self.buf.copy_within(self.start..self.end, 0);
            (self.end, self.start) = (self.end - self.start, 0);
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Line, Lines};

    /// Every line comes back whole, however the reads cut it: reads of 1 to 7 bytes, a
    /// line longer than the buffer, no newline at the end, empty lines; a line past the
    /// limit comes back as too long, without the buffer growing to hold it.
    #[test]
    fn lines_come_back_whole_across_reads() {
        struct Trickle<'a>(&'a [u8], usize);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                self.1 = self.1 % 7 + 1;
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let chunk = Lines::<&[u8]>::CHUNK;
        let long = "x".repeat(3 * chunk);
        let too_long = "y".repeat(40 * chunk);
        let lines = ["{\"a\": 1}", "", long.as_str(), too_long.as_str(), "after", too_long.as_str()];
        let text = lines.join("\n");
        for reader in [Box::new(Trickle(text.as_bytes(), 0)) as Box<dyn std::io::Read>, Box::new(text.as_bytes())] {
            let mut got = Vec::new();
            let mut lines = Lines::new(reader, 4 * chunk);
            while let Some(line) = lines.next().unwrap() {
                got.push(match line {
                    Line::Whole(l) => String::from_utf8(l.to_vec()).unwrap(),
                    Line::TooLong => "<too long>".to_string(),
                });
            }
            assert_eq!(got, ["{\"a\": 1}", "", long.as_str(), "<too long>", "after", "<too long>"]);
            assert!(lines.buf.len() <= 8 * chunk, "the buffer grew to {}", lines.buf.len());
        }
    }
}
