//! Issue #31: what an attacker or an unlucky operator did that broke driftd, each through
//! the real binary: sliding windows of made-up categories, references without an end,
//! credentials in librdkafka's words, made-up versions, a deleted or shared state
//! directory, `replay` on the daemon's ledger, a duplicate `model`, a missing secret, a
//! lone event from the future in a replayed file. Each test failed before its fix.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    analysis_logs, by_window, driftd, episode_logs, fmt_ms, free_port, http_get, metric, model_toml, produce, producer,
    replay, root, wait_until, Broker, InProcess, Process, Receiver, Reply, TestConfig,
};

const START_MS: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

/// `driftd` with `args`, its exit code, stderr and its peak resident memory (bytes), read
/// from the kernel's accounting of this one child (`wait4`).
fn driftd_measured(args: &[&str]) -> (Option<i32>, String, u64) {
    // waited for by `wait4` below, which std's `wait` cannot give the rusage of
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let mut status = 0;
    // SAFETY: waits for our own child, with a zeroed rusage for the kernel to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, reader.join().unwrap(), usage.ru_maxrss as u64 * 1024)
}

/// A reference with a number `x` and a category `c` of three values.
fn small_reference(dir: &Path) -> PathBuf {
    let path = dir.join("reference.csv");
    let mut text = String::from("x,c\n");
    for i in 0..3_000 {
        text.push_str(&format!("{},{}\n", (i % 97) as f64 / 10.0, ["a", "b", "c"][i % 3]));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn small_model(reference: &Path, extra: &str) -> String {
    format!(
        "[[models]]\nname = \"m\"\nreference = \"{}\"\nfeatures = [\"x\", \"c\"]\ncategorical = [\"c\"]\n{extra}\n",
        reference.display()
    )
}

fn small_event(ms: i64, x: f64, c: &str) -> String {
    json!({"model": "m", "timestamp": fmt_ms(ms), "features": {"x": x, "c": c}}).to_string()
}

/// #31.1: a sliding window of an hour every 10 s closes up to 360 windows at once; each
/// held its own copy of up to 10,000 categories and 10,000 values per feature until all
/// were reported (1.13 GB for 5,000 messages of made-up 248-byte categories). Now the
/// windows a close ends share their panes and are added up one at a time as reported.
#[test]
fn sliding_windows_of_made_up_categories_stay_within_a_tumbling_windows_memory() {
    let dir = tempfile::tempdir().unwrap();
    let reference = small_reference(dir.path());
    let input = dir.path().join("events.jsonl");
    let mut text = String::new();
    for i in 0..5_000i64 {
        let made_up = format!("{i:0>248}");
        text.push_str(&small_event(START_MS + i * 1_000, (i % 97) as f64 / 10.0, &made_up));
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let mut peaks = Vec::new();
    for (name, window) in [("tumbling", "{ size = \"1h\" }"), ("sliding", "{ size = \"1h\", slide = \"10s\" }")] {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, small_model(&reference, &format!("window = {window}\nthresholds = \"fixed\""))).unwrap();
        let out = dir.path().join(format!("{name}.jsonl"));
        let args = ["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap()];
        let (code, stderr, peak) = driftd_measured(&[&args[..], &["--output", out.to_str().unwrap()]].concat());
        assert_eq!(code, Some(0), "{stderr}");
        let reports: Vec<Value> =
            std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // every window whole: the sliding ones hold each event 360 times over
        let memberships: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
        let expected = if name == "tumbling" { 5_000 } else { 5_000 * 360 };
        assert_eq!(memberships, expected, "{name}");
        peaks.push((name, peak));
    }
    eprintln!("peak resident memory: {peaks:?}");
    let (tumbling, sliding) = (peaks[0].1, peaks[1].1);
    // 222 MB here before (1.13 GB in the issue's run); a window's categories (at most
    // 3,600 of 248 bytes) are about 1 MB, and one window is added up at a time
    assert!(sliding < tumbling + (50 << 20), "sliding {sliding} bytes against tumbling {tumbling}");
}

/// #31.3: a reference is read up to 256 MiB, from a regular file only; a reading error
/// names the configured file (not a temporary copy) and is cut short.
#[test]
fn references_without_an_end_are_refused_and_errors_stay_short() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, small_event(START_MS, 1.0, "a")).unwrap();
    let run = |reference: &str| {
        let cfg = dir.path().join("driftd.toml");
        let model = format!(
            "[[models]]\nname = \"m\"\nreference = \"{reference}\"\nfeatures = [\"x\", \"c\"]\ncategorical = [\"c\"]\n"
        );
        std::fs::write(&cfg, model).unwrap();
        driftd_measured(&["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap()])
    };

    // a body that never ends
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\n\r\nx,c\n");
                let chunk = "1.0,a\n".repeat(10_000);
                while s.write_all(chunk.as_bytes()).is_ok() {}
            });
        }
    });
    let started = Instant::now();
    let (code, stderr, peak) = run(&format!("http://127.0.0.1:{port}/endless.csv"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("larger than 256 MiB"), "{stderr}");
    assert!(peak < 700 << 20, "{peak} bytes for a body that never ends");
    eprintln!("endless body: refused in {:?}, peak {} MB", started.elapsed(), peak >> 20);

    // a link to a device that never ends
    let zero = dir.path().join("zero.csv");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (code, stderr, peak) = run(zero.to_str().unwrap());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(peak < 200 << 20, "{peak} bytes for /dev/zero");

    // a 10 MB field that does not close
    let long = dir.path().join("long-field.csv");
    let mut text = String::from("x,c\n1.0,a\n2.0,\"");
    text.push_str(&"z".repeat(10 << 20));
    text.push('\n');
    std::fs::write(&long, text).unwrap();
    let (code, stderr, _) = run(long.to_str().unwrap());
    assert_eq!(code, Some(2), "{}", &stderr[..stderr.len().min(2_000)]);
    assert!(stderr.len() < 2_000, "an error of {} bytes", stderr.len());
    assert!(stderr.contains("long-field.csv") && !stderr.contains("/tmp/.tmp"), "{stderr}");
}

/// #31.5: three made-up versions, 1% of the traffic each, came first and held every slot
/// of `max_live_versions = 3`: the real version's 2,910 events were all refused. The
/// versions with the most traffic lately hold the slots now.
#[test]
fn made_up_versions_cannot_keep_the_real_one_out() {
    let dir = tempfile::tempdir().unwrap();
    let reference = small_reference(dir.path());
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        small_model(&reference, "window = { events = 500 }\nsplit_by_version = true\nmax_live_versions = 3"),
    )
    .unwrap();
    let mut lines = Vec::new();
    for i in 0..3_000i64 {
        // the made-up ones first, then one in a hundred
        let version = if i < 3 || i % 100 < 3 { format!("fake-{}", i % 3) } else { "7".to_string() };
        let mut e: Value = serde_json::from_str(&small_event(START_MS + i * 1_000, 1.5, "a")).unwrap();
        e["model_version"] = json!(version);
        lines.push(e.to_string());
    }
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (reports, summary) = replay(&cfg, &input);
    let real: u64 =
        reports.iter().filter(|r| r["model_version"] == json!("7")).map(|r| r["events"].as_u64().unwrap()).sum();
    let refused = summary["decode_errors"]["too_many_versions"].as_u64().unwrap_or(0);
    eprintln!("real version: {real} of 2,910 events windowed; {refused} refused as too_many_versions");
    assert!(real >= 2_900, "the real version's events windowed: {real} of 2,910 ({summary})");
    // what is refused is the made-up versions' (90 events) trading the slot they share
    assert!(refused < 90, "{summary}");
}

/// #31.7: `replay --config` with the daemon's config wrote its retrain requests into the
/// daemon's outbox history: the daemon then took its own next request for one already
/// made. A replay keeps its ledger in `replay/` under the state directory.
#[test]
fn replay_keeps_its_retrain_ledger_apart_from_the_daemons() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start(vec![], Reply::status(200));
    let state = dir.path().join("state");
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n\
             [retrain]\npreset = \"webhook\"\nsecret = \"k\"\nurl = \"{}\"\n{}",
            state.display(),
            r.url("/retrain"),
            model_toml("housing", "")
        ),
    )
    .unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, episode_logs("housing", 1000, 2, 3, 0).join("\n")).unwrap();
    let (_, summary) = replay(&cfg, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    assert!(state.join("replay/retrains.jsonl").is_file(), "the replay's own ledger");
    assert!(!state.join("retrains.jsonl").exists(), "nothing in the daemon's ledger");
    assert!(!state.join("outbox").exists() || std::fs::read_dir(state.join("outbox")).unwrap().count() == 0);
    // what reads the daemon's ledger (here a replay pointed at it) still sends its request
    let o = driftd(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(r.requests().len(), 2, "the daemon's ledger did not know the replay's request");
}

/// #31.8: two daemons on one state directory overwrote each other's checkpoint (a window
/// reported twice after a crash). The second is refused, naming the first.
#[test]
fn a_second_daemon_on_the_same_state_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let write = |name: &str| {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[kafka]\nbrokers = \"127.0.0.1:1\"\ntopics = [\"t\"]\ngroup_id = \"{name}\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
                 [state]\ndir = \"{}\"\n{}",
                state.display(),
                model_toml("housing", "")
            ),
        )
        .unwrap();
        cfg
    };
    let (first, second) = (write("first"), write("second"));
    let mut a = holding_the_lock(&first, &state);
    let o = driftd(&["run", "--config", second.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("state.dir") && stderr.contains(&format!("in use by another driftd (pid {})", a.id())),
        "{stderr}"
    );
    // once the first is gone (even killed), the directory is free
    a.kill().unwrap();
    a.wait().unwrap();
    let mut b = holding_the_lock(&second, &state);
    b.kill().unwrap();
    b.wait().unwrap();
}

/// `driftd run` on `cfg`, once it holds the lock of `state` (its pid written there).
fn holding_the_lock(cfg: &Path, state: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(root())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(state.join("lock")).unwrap_or_default().trim() != child.id().to_string() {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "{} never took the lock",
            cfg.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// #31.9: a second top-level `model` (or `timestamp`, `model_version`, `prediction`,
/// `features`) silently took the last value; now the message is refused by reason.
#[test]
fn a_message_giving_its_model_twice_is_refused_as_a_duplicate_key() {
    let dir = tempfile::tempdir().unwrap();
    let reference = small_reference(dir.path());
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(&cfg, small_model(&reference, "window = { events = 10 }")).unwrap();
    let mut lines: Vec<String> = (0..20).map(|i| small_event(START_MS + i * 1_000, 1.0, "a")).collect();
    let ts = fmt_ms(START_MS);
    let twice = [
        format!(r#"{{"model": "m", "model": "other", "timestamp": "{ts}", "features": {{"x": 1.0}}}}"#),
        format!(r#"{{"model": "m", "timestamp": "{ts}", "timestamp": 0, "features": {{"x": 1.0}}}}"#),
        format!(r#"{{"model": "m", "timestamp": "{ts}", "features": {{"x": 1.0}}, "features": {{"c": "a"}}}}"#),
        format!(r#"{{"model": "m", "timestamp": "{ts}", "prediction": 1, "prediction": 0, "features": {{}}}}"#),
    ];
    // the same message over and over (the scanner's remembered layout) and once apart
    for m in &twice {
        lines.push(m.clone());
        lines.push(m.clone());
    }
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (reports, summary) = replay(&cfg, &input);
    assert_eq!(summary["decode_errors"], json!({"duplicate_key": 8}), "{summary}");
    assert_eq!(reports.iter().map(|r| r["events"].as_u64().unwrap()).sum::<u64>(), 20);
}

/// #31.9: a secret in an unset variable was reported only after every reference had been
/// loaded (and calibrated); `config check` passed such a config without a word.
#[test]
fn a_missing_secret_variable_is_said_before_anything_loads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("driftd.toml");
    // a reference that cannot load: before, its error came first and hid the secret's
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:1\"\ntopics = [\"t\"]\n[server]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"{}\"\n\
             [retrain]\npreset = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\nsecret_env = \"DRIFTD_TEST_NO_SUCH_VAR\"\n\
             [[models]]\nname = \"m\"\nreference = \"{}\"\n",
            dir.path().join("state").display(),
            dir.path().join("missing.csv").display()
        ),
    )
    .unwrap();
    let o = driftd(&["run", "--config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("retrain.secret") && stderr.contains("DRIFTD_TEST_NO_SUCH_VAR is not set"), "{stderr}");
    let o = driftd(&["config", "check", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: retrain.secret: environment variable DRIFTD_TEST_NO_SUCH_VAR is not set"),
        "{stderr}"
    );
}

/// #31.9: in a replayed file, one event dated a day ahead of its neighbours moved the
/// watermark: the windows after it were cut and 2,800 of 3,600 events counted late. A
/// window now closes once two events are past its end.
#[test]
fn one_event_a_day_ahead_in_a_replayed_file_cuts_no_window() {
    let dir = tempfile::tempdir().unwrap();
    let reference = small_reference(dir.path());
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(&cfg, small_model(&reference, "window = { size = \"10m\" }")).unwrap();
    let mut lines: Vec<String> = (0..3_600).map(|i| small_event(START_MS + i * 1_000, 1.0, "a")).collect();
    lines.insert(800, small_event(START_MS + 86_400_000, 1.0, "b"));
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (reports, summary) = replay(&cfg, &input);
    assert_eq!(summary["late_events"], json!(0), "{summary}");
    let sizes: Vec<u64> = reports.iter().map(|r| r["events"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [600, 600, 600, 600, 600, 600, 1], "six whole windows, then the outlier's own");
}

/// A daemon process on `broker`'s `inference-logs` (one partition), the housing model with
/// `keys` (its window), its state in `state`, its reports in `reports`.
fn daemon_config(dir: &Path, broker: &Broker, state: &Path, reports: &Path, keys: &str) -> (PathBuf, u16) {
    let port = free_port();
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-hostile")
        .kafka_option("auto.commit.interval.ms", "500")
        .listen(port)
        .state(state)
        .reports(reports, None)
        .model("housing", keys)
        .write(&dir.join("driftd.toml"));
    (cfg, port)
}

const COUNT_250: &str = "window = { events = 250 }";

/// A broker with `inference-logs`, and a daemon process on it with one window a month:
/// every event stays in an open window, no offset moves past it. Returns the report file.
fn monthly_daemon(dir: &Path) -> (Broker, Process, PathBuf) {
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let (state, file) = (dir.join("state"), dir.join("reports.jsonl"));
    let (cfg, port) = daemon_config(dir, &broker, &state, &file, "window = { size = \"30d\" }");
    let daemon = Process::start(&cfg, port);
    (broker, daemon, file)
}

fn events_in(file: &Path) -> u64 {
    crate::helpers::reports(file).iter().map(|r| r["events"].as_u64().unwrap()).sum()
}

/// #31.6: after `rm -rf state`, 7 of 10 window reports went into the unlinked report file,
/// `/readyz` stayed 200, nothing was counted, and the recreated checkpoint marked those
/// windows reported. Now the directory is made again and locked anew, the report file
/// opened again at its path, and both counted.
#[test]
fn a_state_directory_deleted_under_the_daemon_loses_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let state = dir.path().join("state");
    let file = state.join("reports.jsonl");
    let (cfg, port) = daemon_config(dir.path(), &broker, &state, &file, COUNT_250);
    let logs = analysis_logs("housing");
    let p = producer(&broker.bootstrap());
    let mut daemon = Process::start(&cfg, port);
    produce(&p, &logs[..1_000], "housing", None);
    wait_until("the first 1,000 events reported", Duration::from_secs(60), || {
        (events_in(&file) == 1_000).then_some(())
    });
    std::fs::remove_dir_all(&state).unwrap();
    produce(&p, &logs[1_000..2_000], "housing", None);
    wait_until("the next 1,000 in the report file made again", Duration::from_secs(60), || {
        (events_in(&file) == 1_000).then_some(())
    });
    let lost = |what: &str| metric(port, &format!("driftd_state_write_errors_total{{file=\"{what}\"}}")).unwrap_or(0.0);
    assert!(lost("state_dir") >= 1.0 && lost("reports_file") >= 1.0, "counted");
    assert_eq!(std::fs::read_to_string(state.join("lock")).unwrap().trim(), daemon.child.id().to_string());
    assert!(state.join("checkpoint.json").is_file());
    assert_eq!(http_get(port, "/readyz").map(|(c, _)| c), Some(200));
    // a restart reports nothing again and loses nothing
    daemon.signal("-KILL");
    let _daemon = Process::start(&cfg, port);
    produce(&p, &logs[2_000..2_250], "housing", None);
    wait_until("the next window", Duration::from_secs(60), || (events_in(&file) >= 1_250).then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    let windows = by_window(&crate::helpers::reports(&file));
    assert_eq!(windows.len(), 5, "each window once");
    assert_eq!(events_in(&file), 1_250);
}

/// #31.9: the outbox gauge was set only before the worker slept (an hour with nothing
/// due): a request that failed for good left `driftd_retrain_outbox_pending` at 1, and the
/// shipped `DriftdRetrainPending` alert fired for nothing.
#[test]
fn a_retrain_request_failed_for_good_leaves_nothing_pending() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let receiver = Receiver::start(vec![], Reply::status(400));
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-hostile-outbox")
        .state(&dir.path().join("state"))
        .episode_defaults()
        .section(&format!(
            "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"k\"\nbackoff = \"100ms\"",
            receiver.url("/retrain")
        ))
        .model("housing", "")
        .write(&dir.path().join("driftd.toml"));
    let daemon = InProcess::start(&cfg);
    produce(&producer(&broker.bootstrap()), &episode_logs("housing", 1000, 2, 3, 0), "housing", None);
    receiver.wait_for("/retrain", 1, Duration::from_secs(90));
    wait_until("the failed request no longer pending", Duration::from_secs(10), || {
        let failed = metric(daemon.port, "driftd_retrain_triggers_total{model=\"housing\",outcome=\"failed\"}");
        (failed == Some(1.0) && metric(daemon.port, "driftd_retrain_outbox_pending") == Some(0.0)).then_some(())
    });
    daemon.stop();
}

/// #31.9: events read again after a lost partition were counted in `driftd_events_total`
/// a second time (4,142 for 3,000 produced), with nothing to tell them apart.
#[test]
fn events_read_again_after_a_lost_partition_are_counted_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, daemon, _) = monthly_daemon(dir.path());
    let port = daemon.port;
    let logs = analysis_logs("housing");
    produce(&producer(&broker.bootstrap()), &logs[..1_000], "housing", None);
    let events = || metric(port, "driftd_events_total{model=\"housing\"}").unwrap_or(0.0);
    wait_until("1,000 events read", Duration::from_secs(60), || (events() == 1_000.0).then_some(()));
    // stalled past its session timeout: its partition is lost, given back, and read again
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_secs(14));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    // read again from the committed offset (0, or 24 once the first day's window, one of
    // its own, is reported and committed)
    let reread = || metric(port, "driftd_events_reread_total{model=\"housing\"}").unwrap_or(0.0);
    wait_until("the events read again, counted as such", Duration::from_secs(60), || {
        (reread() >= 900.0 && events() - reread() == 1_000.0).then_some(())
    });
}

/// #31.4: librdkafka's words carried credentials into driftd's log: the start error ended
/// with `sasl.oauthbearer.client.secret`'s value, and a malformed
/// `sasl.oauthbearer.config` was quoted in a warning. Both are scrubbed now; OIDC, which
/// this build cannot do, is refused by `config check` with the reason.
#[test]
fn credentials_librdkafka_echoes_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, options: &str| {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[kafka]\nbrokers = \"127.0.0.1:1\"\ntopics = [\"t\"]\n[kafka.options]\n{options}\n[server]\nlisten = \"127.0.0.1:0\"\n\
                 [state]\ndir = \"{}\"\n{}thresholds = \"fixed\"\n",
                dir.path().join(format!("state-{name}")).display(),
                model_toml("housing", "")
            ),
        )
        .unwrap();
        cfg
    };
    // refused by librdkafka at start: the error names the property, not its value
    let cfg = write("secret", "\"sasl.oauthbearer.client.secret\" = \"SEKRET-client-1\"");
    let o = driftd(&["--log-level", "debug", "run", "--config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sasl.oauthbearer.client.secret") && !stderr.contains("SEKRET"), "{stderr}");

    // quoted by librdkafka when it reads the token config
    let cfg = write(
        "config",
        "\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanism\" = \"OAUTHBEARER\"\n\
         \"enable.sasl.oauthbearer.unsecure.jwt\" = \"true\"\n\"sasl.oauthbearer.config\" = \"principal=admin SEKRET-config-2\"",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["--log-level", "debug", "run", "--config", cfg.to_str().unwrap()])
        .current_dir(root())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    std::thread::sleep(Duration::from_secs(12));
    child.kill().unwrap();
    child.wait().unwrap();
    let log = reader.join().unwrap();
    assert!(log.contains("Failed to acquire SASL OAUTHBEARER token"), "librdkafka read the config: {log}");
    assert!(!log.contains("SEKRET"), "{log}");

    let cfg =
        write("oidc", "\"sasl.oauthbearer.method\" = \"oidc\"\n\"sasl.oauthbearer.client.secret\" = \"SEKRET-3\"");
    let o = driftd(&["config", "check", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kafka.options.sasl.oauthbearer.method") && stderr.contains("libcurl"), "{stderr}");
    assert!(!stderr.contains("SEKRET"), "{stderr}");
}

/// `driftd run` on `cfg`, its log in `log`; ready once `/readyz` says so.
fn daemon_logging_to(cfg: &Path, port: u16, log: &Path) -> std::process::Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["--log-level", "warn", "run", "--config", cfg.to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    wait_until("the daemon ready", Duration::from_secs(60), || {
        assert!(child.try_wait().unwrap().is_none(), "{}", std::fs::read_to_string(log).unwrap_or_default());
        http_get(port, "/readyz").filter(|(c, _)| *c == 200)
    });
    child
}

/// #31.2: a topic deleted under the consumer killed the daemon (SIGSEGV in librdkafka's
/// own thread, `rd_avl_find_node` ← `rd_kafka_metadata_cache_find` ←
/// `rd_kafka_metadata_update_op`: a Fetch reply's leader tags make a metadata update with
/// neither the topic's name nor its id; librdkafka 2.12.1, the newest rdkafka-sys builds;
/// upstream confluentinc/librdkafka#4964, #5093, #5280). Its threads block every signal,
/// so the fault cannot be caught in the process. What driftd makes sure of: nothing it
/// reported is lost or reported twice, the restart on the same state directory is clean
/// (the lock dies with the process) and says how the last run ended.
#[test]
fn a_topic_deleted_under_the_daemon_loses_no_report_and_the_restart_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let file = dir.path().join("reports.jsonl");
    // daily windows (the logs are hourly), closed by the next day's events or 2 s of quiet
    let keys = "window = { size = \"1d\" }\nidle_timeout = \"2s\"";
    let (cfg, port) = daemon_config(dir.path(), &broker, &dir.path().join("state"), &file, keys);
    let log = dir.path().join("driftd.log");
    let logs = analysis_logs("housing");
    let p = producer(&broker.bootstrap());
    let mut daemon = daemon_logging_to(&cfg, port, &log);
    produce(&p, &logs[..1_000], "housing", None);
    wait_until("1,000 events reported", Duration::from_secs(60), || (events_in(&file) == 1_000).then_some(()));
    broker.delete_topic("inference-logs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("after the topic's deletion: {ended:?}");
    if ended.is_none() {
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
    broker.create_topic("inference-logs", 1);
    let mut again = daemon_logging_to(&cfg, port, &log);
    produce(&p, &logs[1_000..1_500], "housing", None);
    // the new topic's first events belong to the day the last run closed: late, counted
    let late = || metric(port, "driftd_late_events_total{model=\"housing\"}").unwrap_or(0.0) as u64;
    wait_until("the new topic's events reported", Duration::from_secs(60), || {
        (events_in(&file) + late() == 1_500).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let windows = by_window(&crate::helpers::reports(&file)); // each window once
    assert_eq!(events_in(&file) + late(), 1_500, "{} windows", windows.len());
    assert!(late() < 24, "at most the rest of one day: {}", late());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ended without shutting down") && text.contains("librdkafka#4964"), "{text}");
    again.kill().unwrap();
    again.wait().unwrap();
}

/// #31.9: `/api/v1/models` was refreshed only when a window closed (or on a reload or an
/// idle close): a window holding 1,500 events showed 0. Now it is at most a tick old.
#[test]
fn the_api_counts_the_events_of_an_open_window_before_and_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, daemon, file) = monthly_daemon(dir.path());
    let port = daemon.port;
    produce(&producer(&broker.bootstrap()), &analysis_logs("housing")[..600], "housing", None);
    let counts = || {
        let (_, body) = http_get(port, "/api/v1/models")?;
        let models: Value = serde_json::from_str(&body).ok()?;
        Some((models[0]["events_total"].as_u64()?, models[0]["open_window_events"].as_u64()?))
    };
    // the first day is a window of its own (the windows of 30 days start at the epoch's)
    let whole = || counts().filter(|(all, open)| *all == 600 && *open > 0 && open + events_in(&file) == 600);
    let before = wait_until("the open window's events in the API", Duration::from_secs(30), &whole);
    Command::new("kill").args(["-HUP", &daemon.child.id().to_string()]).status().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(whole(), Some(before), "after the reload");
}
