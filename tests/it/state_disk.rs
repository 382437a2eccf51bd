//! Writes that fail (#14): the daemon's state directory on a small tmpfs the test fills
//! up (a real ENOSPC from the kernel; mounting needs root, which CI has). While the
//! checkpoint cannot be written, `/readyz` says so, the closed windows' reports and their
//! offsets wait; once space returns they go out, and a SIGKILL meanwhile loses nothing and
//! reports nothing twice. The same for the report file on a full disk (its lines wait,
//! whole, and go out in order) and for the retrain outbox (a request made while the disk is
//! full is delivered all the same, and recorded once space returns).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::helpers::{
    by_window, episode_logs, free_port, http_get, metric, produce, producer, replay, reports, sampled_logs, wait_until,
    Broker, Process, Receiver, Reply, TestConfig,
};

/// A tmpfs of `kib` KiB at `path`; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, kib: u32) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(out.status.success(), "mounting a tmpfs needs root: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(path.to_path_buf())
    }

    /// Fills it: a file that takes every byte left.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }

    /// Remounts it read-only (EROFS for every write, root's too) or writable again.
    fn read_only(&self, ro: bool) {
        let opts = if ro { "remount,ro" } else { "remount,rw" };
        let status = Command::new("mount").args(["-o", opts]).arg(&self.0).status().unwrap();
        assert!(status.success(), "mount -o {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The daemon's config in these tests: on `broker`, its API on `port`, its state in `state`,
/// its reports in `file` (offsets auto-committed every 200 ms).
fn daemon_config(broker: &Broker, group: &str, port: u16, state: &Path, file: &Path) -> TestConfig {
    TestConfig::new()
        .kafka(&broker.bootstrap(), group)
        .kafka_option("auto.commit.interval.ms", "200")
        .listen(port)
        .state(state)
        .reports(file, None)
}

/// Waits for `n` reports in `file`.
fn windows(file: &Path, n: usize) -> Vec<serde_json::Value> {
    wait_until(&format!("{n} windows"), Duration::from_secs(60), || {
        let r = reports(file);
        (r.len() >= n).then_some(r)
    })
}

/// Each window once (`by_window` panics on a second report), every event, as `driftd
/// replay` reports `logs` with the same config.
fn assert_as_replay(cfg: &Path, dir: &Path, logs: &[String], got: &[serde_json::Value]) {
    let input = dir.join("logs.jsonl");
    std::fs::write(&input, logs.join("\n")).unwrap();
    let (replayed, _) = replay(cfg, &input);
    assert_eq!(by_window(got), by_window(&replayed));
}

#[test]
fn a_full_state_disk_holds_reports_and_offsets_back_and_loses_nothing() {
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("state"), 32 * 1024);
    let port = free_port();
    let file = dir.path().join("reports.jsonl");
    let cfg = daemon_config(&broker, "driftd-disk", port, &disk.0, &file)
        .model("housing", "window = { events = 250 }")
        .write(&dir.path().join("disk.toml"));
    let logs = sampled_logs("housing", None, "california_housing_analysis.csv", 1500, 1_793_491_200_000, 3);
    let p = producer(&broker.bootstrap());
    let not_ready = |d: &Process| {
        wait_until("/readyz to name the checkpoint", Duration::from_secs(30), || {
            let (code, body) = http_get(d.port, "/readyz")?;
            (code == 503 && body.contains("cannot write the checkpoint")).then_some(body)
        })
    };
    let mut d = Process::start(&cfg, port);
    produce(&p, &logs[..500], "housing", None);
    windows(&file, 2);

    // the disk fills; two more windows close: held back, and said so
    disk.fill();
    produce(&p, &logs[500..1000], "housing", None);
    let body = not_ready(&d);
    assert!(body.contains("No space left on device"), "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(reports(&file).len(), 2, "reports wait for their checkpoint");
    assert!(metric(port, "driftd_state_write_errors_total{file=\"checkpoint\"}").unwrap_or(0.0) >= 1.0);

    // space returns: the held windows go out, and the daemon is ready again
    disk.free();
    windows(&file, 4);
    wait_until("ready again", Duration::from_secs(30), || {
        http_get(d.port, "/readyz").filter(|(code, _)| *code == 200).map(|_| ())
    });

    // full again, the last windows close, and the daemon is killed before space returns
    disk.fill();
    produce(&p, &logs[1000..], "housing", None);
    not_ready(&d);
    d.signal("-KILL");
    disk.free();
    let _d = Process::start(&cfg, port);
    let got = windows(&file, 6);
    std::thread::sleep(Duration::from_secs(2));
    let got = if reports(&file).len() > got.len() { reports(&file) } else { got };
    // each window once (by_window panics on a second report), every event, as replay has them
    assert_as_replay(&cfg, dir.path(), &logs, &got);
}

/// `/readyz` until it answers 503 naming `what`.
fn not_ready_with(port: u16, what: &str) -> String {
    wait_until(&format!("/readyz to name {what}"), Duration::from_secs(30), || {
        let (code, body) = http_get(port, "/readyz")?;
        (code == 503 && body.contains(what)).then_some(body)
    })
}

fn ready(port: u16) {
    wait_until("ready again", Duration::from_secs(30), || {
        http_get(port, "/readyz").filter(|(code, _)| *code == 200).map(|_| ())
    });
}

#[test]
fn a_full_report_disk_holds_whole_lines_and_writes_each_once_when_space_returns() {
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("reports"), 1024);
    let port = free_port();
    let file = disk.0.join("reports.jsonl");
    let cfg = daemon_config(&broker, "driftd-report-disk", port, &dir.path().join("state"), &file)
        .model("housing", "window = { events = 250 }")
        .write(&dir.path().join("disk.toml"));
    let logs = sampled_logs("housing", None, "california_housing_analysis.csv", 1500, 1_793_491_200_000, 5);
    let p = producer(&broker.bootstrap());
    let mut d = Process::start(&cfg, port);
    produce(&p, &logs[..500], "housing", None);
    windows(&file, 2);

    // the report disk fills: the next windows wait, whole, and the daemon says so
    disk.fill();
    produce(&p, &logs[500..1000], "housing", None);
    let body = not_ready_with(port, "cannot write the report file");
    assert!(body.contains("reports waiting"), "{body}");
    assert!(metric(port, "driftd_report_sink_errors_total{sink=\"file\"}").unwrap_or(0.0) >= 1.0);
    assert_eq!(reports(&file).len(), 2);
    disk.free();
    windows(&file, 4);
    ready(port);

    // full again; killed while two windows wait for the file: the checkpoint has them
    disk.fill();
    produce(&p, &logs[1000..], "housing", None);
    not_ready_with(port, "cannot write the report file");
    d.signal("-KILL");
    disk.free();
    let _d = Process::start(&cfg, port);
    windows(&file, 6);
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "no partial line left");
    let got = reports(&file);
    // each line parses (reports() would panic on two joined), each window once, as replay has it
    assert_as_replay(&cfg, dir.path(), &logs, &got);
}

#[test]
fn a_retrain_request_made_on_a_full_disk_is_delivered_and_recorded_once_space_returns() {
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("state"), 32 * 1024);
    let receiver = Receiver::start(vec![], Reply::status(200));
    let port = free_port();
    let file = dir.path().join("reports.jsonl");
    let cfg = daemon_config(&broker, "driftd-outbox-disk", port, &disk.0, &file)
        .episode_defaults()
        .section(&format!(
            "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nbackoff = \"100ms\"\n\
             [[alerts]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"s\"",
            receiver.url("/retrain"),
            receiver.url("/wh"),
        ))
        .model("housing", "")
        .write(&dir.path().join("disk.toml"));
    // 2 clean windows, then 3 drifted (the episode fires on the second)
    let logs = episode_logs("housing", 1000, 2, 3, 0);
    let p = producer(&broker.bootstrap());
    let mut d = Process::start(&cfg, port);
    produce(&p, &logs[..2000], "housing", None);
    wait_until("2 windows", Duration::from_secs(60), || (reports(&file).len() >= 2).then_some(()));

    // the disk fills as the drift starts: the request goes out from memory all the same
    disk.fill();
    produce(&p, &logs[2000..], "housing", None);
    let got = receiver.wait_for("/retrain", 1, Duration::from_secs(60));
    let run_id = got[0].header("webhook-id").to_string();
    let body = not_ready_with(port, "cannot write the retrain outbox");
    assert!(body.contains("No space left on device"), "{body}");
    assert!(body.contains("cannot write the alert outbox"), "{body}");
    assert!(metric(port, "driftd_state_write_errors_total{file=\"outbox\"}").unwrap_or(0.0) >= 1.0);
    assert!(metric(port, "driftd_state_write_errors_total{file=\"alerts\"}").unwrap_or(0.0) >= 1.0);
    // the alert goes out from memory too
    let fired = receiver.wait_for("/wh", 1, Duration::from_secs(30));
    assert_eq!(fired[0].json()["type"], serde_json::json!("driftd.alert.firing"));
    std::thread::sleep(Duration::from_secs(3));
    let retrains = receiver.requests().iter().filter(|q| q.uri == "/retrain").count();
    assert_eq!(retrains, 1, "a delivered request is not sent again while its record waits");

    // space returns: recorded once as delivered, nothing left pending
    disk.free();
    ready(port);
    let history = std::fs::read_to_string(disk.0.join("retrains.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{history}");
    assert_eq!(lines[0]["run_id"], serde_json::json!(run_id));
    assert_eq!(lines[0]["status"], serde_json::json!("delivered"));
    assert_eq!(std::fs::read_dir(disk.0.join("outbox")).unwrap().count(), 0);
    wait_until("5 windows", Duration::from_secs(60), || (reports(&file).len() >= 5).then_some(()));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(disk.0.join("alerts.json")).unwrap()).unwrap();
    assert_eq!(saved["deliveries"], serde_json::json!([]), "the alert outbox is written, empty");
    d.signal("-TERM");
    let uris: Vec<String> = receiver.requests().iter().map(|q| q.uri.clone()).collect();
    assert_eq!(uris.iter().filter(|u| *u == "/retrain").count(), 1, "{uris:?}");
    assert_eq!(uris.iter().filter(|u| *u == "/wh").count(), 1, "{uris:?}");
}

#[test]
fn a_state_directory_made_read_only_mid_run_holds_reports_back_until_it_is_writable() {
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("state"), 32 * 1024);
    let port = free_port();
    let file = dir.path().join("reports.jsonl");
    let cfg = daemon_config(&broker, "driftd-read-only", port, &disk.0, &file)
        .model("housing", "window = { events = 250 }")
        .write(&dir.path().join("ro.toml"));
    let logs = sampled_logs("housing", None, "california_housing_analysis.csv", 1000, 1_793_491_200_000, 7);
    let p = producer(&broker.bootstrap());
    let _d = Process::start(&cfg, port);
    produce(&p, &logs[..500], "housing", None);
    windows(&file, 2);
    disk.read_only(true);
    produce(&p, &logs[500..], "housing", None);
    let body = not_ready_with(port, "cannot write the checkpoint");
    assert!(body.contains("Read-only file system"), "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(reports(&file).len(), 2, "reports wait for their checkpoint");
    disk.read_only(false);
    let got = windows(&file, 4);
    ready(port);
    assert_as_replay(&cfg, dir.path(), &logs, &got);
}

/// A revoke while the checkpoint cannot be written (here: a directory where the file
/// goes) commits nothing: the windows it reported are on no disk, so the next owner must
/// read their events again. With the checkpoint written, the same revoke commits past them.
#[test]
fn a_revoke_while_the_checkpoint_cannot_be_written_commits_nothing() {
    use driftd::source::kafka::PartitionListener;
    use std::sync::{Arc, Mutex};
    let logs = sampled_logs("housing", None, "california_housing_analysis.csv", 600, 1_793_491_200_000, 9);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = rt.enter();
    let revoke = |broken: bool| {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let settings = TestConfig::new()
            .kafka("127.0.0.1:9", "driftd-revoke")
            .state(&state)
            .model("housing", "window = { events = 250 }")
            .settings();
        let telemetry = Arc::new(driftd::telemetry::Telemetry::new());
        let (actions, _workers) = driftd::actions::Actions::start(&settings, telemetry.clone()).unwrap();
        let refs = driftd::reference::resolve_blocking(&settings).unwrap();
        let mut pipeline = driftd::pipeline::Pipeline::new(&settings, refs).unwrap();
        let pid = pipeline.partition_id("inference-logs", 0);
        for (offset, line) in logs.iter().enumerate() {
            pipeline.ingest_at(line.as_bytes(), None, Some("inference-logs"), pid, offset as i64).unwrap();
        }
        let pipeline = Arc::new(Mutex::new(pipeline));
        let api = Arc::new(driftd::http::ApiState::new(telemetry.clone(), tokio::sync::mpsc::channel(1).0));
        let checkpoint = driftd::state::CheckpointFile::in_dir(&state);
        if broken {
            std::fs::create_dir_all(state.join("checkpoint.json")).unwrap();
        }
        let publisher = driftd::app::Publisher::new(pipeline, telemetry, actions, api, checkpoint);
        (publisher.revoking(&[("inference-logs".to_string(), 0)]), publisher.save_failing())
    };
    let (offsets, failing) = revoke(false);
    assert!(!failing);
    // the two full windows and the open one (cut by the revoke) reported: past all 600
    assert_eq!(offsets, [("inference-logs".to_string(), 0, 600)]);
    let (offsets, failing) = revoke(true);
    assert!(failing);
    assert_eq!(offsets, [], "nothing committed while the checkpoint cannot be written");
}
