//! Writes that fail (#14): the daemon's state directory on a small tmpfs the test fills
//! up (a real ENOSPC from the kernel; mounting needs root, which CI has). While the
//! checkpoint cannot be written, `/readyz` says so, the closed windows' reports and their
//! offsets wait; once space returns they go out, and a SIGKILL meanwhile loses nothing and
//! reports nothing twice.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::helpers::{
    by_window, free_port, http_get, metric, produce, producer, replay, reports, sampled_logs, wait_until, Broker,
    Process, TestConfig,
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
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_state_disk_holds_reports_and_offsets_back_and_loses_nothing() {
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("state"), 32 * 1024);
    let port = free_port();
    let file = dir.path().join("reports.jsonl");
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-disk")
        .kafka_option("auto.commit.interval.ms", "200")
        .listen(port)
        .state(&disk.0)
        .reports(&file, None)
        .model("housing", "window = { events = 250 }")
        .write(&dir.path().join("disk.toml"));
    let logs = sampled_logs("housing", None, "california_housing_analysis.csv", 1500, 1_793_491_200_000, 3);
    let p = producer(&broker.bootstrap());
    let windows = |n: usize| {
        wait_until(&format!("{n} windows"), Duration::from_secs(60), || {
            let r = reports(&file);
            (r.len() >= n).then_some(r)
        })
    };
    let not_ready = |d: &Process| {
        wait_until("/readyz to name the checkpoint", Duration::from_secs(30), || {
            let (code, body) = http_get(d.port, "/readyz")?;
            (code == 503 && body.contains("cannot write the checkpoint")).then_some(body)
        })
    };
    let mut d = Process::start(&cfg, port);
    produce(&p, &logs[..500], "housing", None);
    windows(2);

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
    windows(4);
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
    let got = windows(6);
    std::thread::sleep(Duration::from_secs(2));
    let got = if reports(&file).len() > got.len() { reports(&file) } else { got };
    // each window once (by_window panics on a second report), every event, as replay has them
    let input = dir.path().join("logs.jsonl");
    std::fs::write(&input, logs.join("\n")).unwrap();
    let (replayed, _) = replay(&cfg, &input);
    assert_eq!(by_window(&got), by_window(&replayed));
}
