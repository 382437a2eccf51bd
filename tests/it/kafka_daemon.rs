//! The daemon against a real Kafka-protocol broker (Tansu): stream equals batch, poison
//! messages, restarts after SIGTERM (in-process, the same ordered shutdown) and SIGKILL
//! (the real binary, killed), two daemons in one consumer group, and `/metrics` as
//! Prometheus text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use serde_json::Value;

use crate::helpers::{
    analysis_logs as events, assert_same_windows, by_window, free_port, http, http_get, produce, producer, reports,
    root, Broker, InProcess, Process, TestConfig,
};

const TOPIC: &str = "inference-logs";

struct Setup {
    dir: tempfile::TempDir,
    broker: Broker,
}

fn setup(partitions: u32) -> Setup {
    setup_on(Broker::start(), partitions)
}

fn setup_on(broker: Broker, partitions: u32) -> Setup {
    broker.create_topic(TOPIC, partitions);
    for name in ["a", "p", "r", "one", "two"] {
        broker.create_topic(&format!("driftd-reports-{name}"), 1);
    }
    Setup { dir: tempfile::tempdir().unwrap(), broker }
}

/// A daemon's config: group `driftd-test`, reports to a file and a topic named after
/// `name`, a listen port for the process form, and the models on monthly windows.
fn config(s: &Setup, name: &str, models: &[&str], extra_kafka: &str) -> (PathBuf, u16) {
    config_windows(s, name, models, extra_kafka, "window = { size = \"30d\" }")
}

/// `config` with the models' windows of one's choosing.
fn config_windows(s: &Setup, name: &str, models: &[&str], extra_kafka: &str, window: &str) -> (PathBuf, u16) {
    config_models(s, name, models, extra_kafka, &format!("{window}\nidle_timeout = \"2s\""))
}

/// `config` with the models' keys of one's choosing.
fn config_models(s: &Setup, name: &str, models: &[&str], extra_kafka: &str, keys: &str) -> (PathBuf, u16) {
    let port = free_port();
    let mut c = TestConfig::new()
        .kafka(&s.broker.bootstrap(), "driftd-test")
        .kafka_option("auto.commit.interval.ms", "500")
        .listen(port)
        .state(&s.dir.path().join(format!("state-{name}")))
        .reports(&s.dir.path().join(format!("reports-{name}.jsonl")), Some(&format!("driftd-reports-{name}")));
    if !extra_kafka.is_empty() {
        c = c.kafka_line(extra_kafka);
    }
    for m in models {
        c = c.model(m, keys);
    }
    (c.write(&s.dir.path().join(format!("{name}.toml"))), port)
}

fn wait_for_events(files: &[PathBuf], total: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all: Vec<Value> = files.iter().flat_map(|f| reports(f)).collect();
        let n: u64 = all.iter().map(|r| r["events"].as_u64().unwrap()).sum();
        if n >= total {
            std::thread::sleep(Duration::from_millis(300));
            return files.iter().flat_map(|f| reports(f)).collect();
        }
        assert!(Instant::now() < deadline, "only {n} of {total} events reported");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The reports `driftd replay` writes for the same messages.
fn replayed(s: &Setup, config: &Path, messages: &[String]) -> Vec<Value> {
    let input = s.dir.path().join("replay.jsonl");
    std::fs::write(&input, messages.join("\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["replay", "--config", config.to_str().unwrap(), "--input", input.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn stream_through_the_broker_equals_replay_and_metrics_are_prometheus_text() {
    let s = setup(2);
    let (cfg, _) = config(&s, "a", &["housing"], "");
    let daemon = InProcess::start(&cfg);
    let msgs = events("housing");
    produce(&producer(&s.broker.bootstrap()), &msgs, "housing", None);
    let got = wait_for_events(&[s.dir.path().join("reports-a.jsonl")], msgs.len() as u64);
    assert_same_windows(&got, &replayed(&s, &cfg, &msgs));

    let (code, body) = http_get(daemon.port, "/metrics").unwrap();
    assert_eq!(code, 200);
    for name in [
        "driftd_feature_drift_score",
        "driftd_feature_drift_threshold",
        "driftd_feature_drift_detected",
        "driftd_dataset_drift_share",
        "driftd_dataset_drift_detected",
        "driftd_window_events",
        "driftd_windows_closed_total",
        "driftd_events_total",
        "driftd_decode_errors_total",
        "driftd_late_events_total",
        "driftd_last_window_end_timestamp_seconds",
        "driftd_build_info",
    ] {
        assert!(body.contains(&format!("# HELP {name} ")), "{name} has HELP");
    }
    assert!(body.contains(&format!("driftd_events_total{{model=\"housing\"}} {}", msgs.len())), "{body}");
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.starts_with("driftd_"), "{line}");
    }
    let metrics_file = s.dir.path().join("metrics.txt");
    std::fs::write(&metrics_file, &body).unwrap();
    if let Ok(o) =
        Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&metrics_file).unwrap()).output()
    {
        assert!(
            o.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // the Kafka report sink carries the same reports as the file sink
    {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::Message;
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", s.broker.bootstrap())
            .set("group.id", "report-reader")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .create()
            .unwrap();
        c.subscribe(&["driftd-reports-a"]).unwrap();
        let mut from_topic = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while from_topic.len() < got.len() && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
                from_topic.push(serde_json::from_slice::<Value>(m.payload().unwrap()).unwrap());
            }
        }
        assert_same_windows(&from_topic, &got);
    }
    let (code, latest) = http_get(daemon.port, "/api/v1/models/housing/reports/latest").unwrap();
    assert_eq!(code, 200);
    let latest: Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(latest["model"], "housing");
    assert_eq!(http_get(daemon.port, "/api/v1/models/nope/reports/latest").unwrap().0, 404);

    // Reload: a bad config is refused with its key and the running one stays; a good one
    // is taken.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good.replace("window = { size = \"30d\" }", "window = { size = \"30d\", slide = \"7d\" }"))
        .unwrap();
    let (code, body) = http(daemon.port, "POST", "/api/v1/reload").unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("window") && body.contains("slide must divide size"), "{body}");
    assert_eq!(http_get(daemon.port, "/readyz").unwrap().0, 200, "still running on the old config");
    std::fs::write(&cfg, good.replace("[[models]]", "[defaults]\ndrift_share = 0.9\n[[models]]")).unwrap();
    let (code, body) = http(daemon.port, "POST", "/api/v1/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["restart_needed"], serde_json::json!([]), "{body}");
    // a section a reload cannot apply is named, not silently ignored
    let changed = std::fs::read_to_string(&cfg).unwrap().replace("auto.commit.interval.ms", "fetch.wait.max.ms");
    std::fs::write(&cfg, changed).unwrap();
    let (code, body) = http(daemon.port, "POST", "/api/v1/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["restart_needed"], serde_json::json!(["kafka"]), "{body}");
    let (_, models) = http_get(daemon.port, "/api/v1/models").unwrap();
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models[0]["name"], "housing");
    assert_eq!(models[0]["events_total"], msgs.len() as u64);
}

#[test]
fn poison_messages_are_counted_and_nothing_else_is_lost() {
    poison_case(1);
}

/// Batches decoded on two threads (the messages are there before the daemon starts, so
/// it reads them in full batches): the same windows, errors and dead letters.
#[test]
fn decoding_on_two_threads_changes_nothing() {
    poison_case(2);
}

fn poison_case(decode_threads: usize) {
    let s = setup(1);
    let kafka = format!("dead_letter_topic = \"driftd-dead-letters\"\ndecode_threads = {decode_threads}");
    let (cfg, _) = config(&s, "p", &["housing"], &kafka);
    s.broker.create_topic("driftd-dead-letters", 1);
    let mut daemon = (decode_threads == 1).then(|| InProcess::start(&cfg));
    let clean = events("housing");
    let mut mixed = Vec::new();
    for (i, m) in clean.iter().enumerate() {
        mixed.push(m.clone());
        if i % 1000 == 0 {
            mixed.push("not json at all".to_string());
            mixed.push("{\"model\": \"unknown\", \"features\": {}}".to_string());
            mixed.push("{\"model\": \"housing\", \"timestamp\": \"soon\"}".to_string());
        }
    }
    produce(&producer(&s.broker.bootstrap()), &mixed, "housing", None);
    let daemon = daemon.get_or_insert_with(|| InProcess::start(&cfg));
    let got = wait_for_events(&[s.dir.path().join("reports-p.jsonl")], clean.len() as u64);
    assert_same_windows(&got, &replayed(&s, &cfg, &clean));
    let rounds = clean.len().div_ceil(1000);
    let body = http_get(daemon.port, "/metrics").unwrap().1;
    for reason in ["not_json", "unknown_model", "bad_timestamp"] {
        let line = format!("driftd_decode_errors_total{{reason=\"{reason}\"}} {rounds}");
        assert!(body.contains(&line), "{line} in\n{body}");
    }
    // every bad message is on the dead-letter topic, with its reason in a header
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let dlq: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", s.broker.bootstrap())
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    dlq.subscribe(&["driftd-dead-letters"]).unwrap();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reasons.values().sum::<usize>() < 3 * rounds && Instant::now() < deadline {
        if let Some(Ok(m)) = dlq.poll(Duration::from_millis(500)) {
            let h = m.headers().expect("headers");
            let reason = h.iter().find(|h| h.key == "driftd-reason").and_then(|h| h.value).expect("reason header");
            *reasons.entry(String::from_utf8_lossy(reason).into_owned()).or_default() += 1;
        }
    }
    for reason in ["not_json", "unknown_model", "bad_timestamp"] {
        assert_eq!(reasons.get(reason).copied(), Some(rounds), "{reasons:?}");
    }
}

/// How the first daemon ends mid-stream.
enum Stop {
    /// The ordered shutdown (what SIGTERM triggers), in-process.
    Term,
    /// SIGKILL of the real binary.
    Kill,
}

fn restart_case(stop: Stop, window: &str) {
    let sig = match stop {
        Stop::Term => "-TERM",
        Stop::Kill => "-KILL",
    };
    let s = setup(1);
    let (cfg, port) = config_windows(&s, "r", &["housing"], "", window);
    let msgs = events("housing");
    let half = msgs.len() / 2;
    let p = producer(&s.broker.bootstrap());
    // let it close a few windows, then stop it mid-stream
    let file = s.dir.path().join("reports-r.jsonl");
    let some_windows = || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while reports(&file).len() < 3 {
            assert!(Instant::now() < deadline, "no windows before the stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    match stop {
        Stop::Term => {
            let daemon = InProcess::start(&cfg);
            produce(&p, &msgs[..half], "housing", None);
            some_windows();
            daemon.stop();
        }
        Stop::Kill => {
            let mut daemon = Process::start(&cfg, port);
            produce(&p, &msgs[..half], "housing", None);
            some_windows();
            daemon.signal(sig);
        }
    }
    produce(&p, &msgs[half..], "housing", None);
    let _daemon = InProcess::start(&cfg);
    let got = wait_for_events(&[file], msgs.len() as u64);
    let n: u64 = got.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(n, msgs.len() as u64, "{sig}: every event counted exactly once");
    assert_same_windows(&got, &replayed(&s, &cfg, &msgs));
}

#[test]
fn restart_after_sigterm_counts_every_event_once() {
    restart_case(Stop::Term, "window = { size = \"30d\" }");
}

#[test]
fn restart_after_sigkill_counts_every_event_once() {
    restart_case(Stop::Kill, "window = { size = \"30d\" }");
}

/// Count windows keep their own mark (the highest offset reported per partition): events
/// read again after a crash are not counted in the next window.
#[test]
fn count_windows_after_sigkill_count_every_event_once() {
    restart_case(Stop::Kill, "window = { events = 100 }");
}

#[test]
fn two_daemons_in_one_group_report_every_window_once() {
    let s = setup(2);
    let (a, _) = config(&s, "one", &["north", "south"], "");
    let (b, _) = config(&s, "two", &["north", "south"], "");
    let _d1 = InProcess::start(&a);
    let _d2 = InProcess::start(&b);
    // let the group settle on one partition each
    std::thread::sleep(Duration::from_secs(8));
    let p = producer(&s.broker.bootstrap());
    let (north, south) = (events("north"), events("south"));
    produce(&p, &north, "north", Some(0));
    produce(&p, &south, "south", Some(1));
    let files = [s.dir.path().join("reports-one.jsonl"), s.dir.path().join("reports-two.jsonl")];
    let got = wait_for_events(&files, (north.len() + south.len()) as u64);
    let windows = by_window(&got); // panics on a window reported twice
    let n: u64 = got.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(n, (north.len() + south.len()) as u64);
    assert!(windows.len() >= 24);
    assert!(!reports(&files[0]).is_empty() && !reports(&files[1]).is_empty(), "both daemons did work");
}

/// The crash window between "report written" and "checkpoint says so", made on purpose:
/// the checkpoint lists two reports as unconfirmed, the file already has the first. On
/// start the daemon publishes each exactly once and clears the list.
#[test]
fn unconfirmed_reports_are_published_once_on_start() {
    let s = setup(1);
    let (cfg, _) = config(&s, "a", &["housing"], "");
    let state = s.dir.path().join("state-a");
    std::fs::create_dir_all(&state).unwrap();
    let first =
        r#"{"model":"housing","window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-31T00:00:00Z","events":10}"#;
    let second =
        r#"{"model":"housing","window_start":"2026-01-31T00:00:00Z","window_end":"2026-03-02T00:00:00Z","events":20}"#;
    let checkpoint = serde_json::json!({"models": {"housing": {"closed_upto": 1_772_409_600_000i64}}, "unpublished": [first, second]});
    std::fs::write(state.join("checkpoint.json"), checkpoint.to_string()).unwrap();
    let file = s.dir.path().join("reports-a.jsonl");
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let _daemon = InProcess::start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&file).unwrap();
        if text.lines().count() >= 2 {
            assert_eq!(text.lines().collect::<Vec<_>>(), [first, second], "each report once, in order");
            break;
        }
        assert!(Instant::now() < deadline, "the unconfirmed report was not published");
        std::thread::sleep(Duration::from_millis(100));
    }
    // the list is cleared once published (the topic's acknowledgement comes a moment after)
    let saved = crate::helpers::wait_until("the unconfirmed list cleared", Duration::from_secs(10), || {
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(state.join("checkpoint.json")).unwrap()).unwrap();
        saved.get("unpublished").is_none().then_some(saved)
    });
    assert_eq!(saved["models"]["housing"]["closed_upto"], 1_772_409_600_000i64);
}

/// A count window's end is its last event's time, in the report and in
/// `driftd_last_window_end_timestamp_seconds` alike.
#[test]
fn a_count_windows_end_is_its_last_events_time() {
    let s = setup(1);
    let cfg = TestConfig::new()
        .kafka(&s.broker.bootstrap(), "driftd-count")
        .state(&s.dir.path().join("state-count"))
        .model("housing", "window = { events = 100 }")
        .write(&s.dir.path().join("count.toml"));
    let daemon = InProcess::start(&cfg);
    let msgs: Vec<String> = events("housing").into_iter().take(250).collect();
    produce(&producer(&s.broker.bootstrap()), &msgs, "housing", None);
    let last_of_second: Value = serde_json::from_str(&msgs[199]).unwrap();
    let expected_ms = driftd::time::parse_rfc3339_ms(last_of_second["timestamp"].as_str().unwrap()).unwrap();
    let line = "driftd_windows_closed_total{model=\"housing\"}";
    crate::helpers::wait_until("two count windows", Duration::from_secs(60), || {
        (crate::helpers::metric(daemon.port, line) == Some(2.0)).then_some(())
    });
    let end = crate::helpers::metric(daemon.port, "driftd_last_window_end_timestamp_seconds{model=\"housing\"}");
    assert_eq!(end, Some(expected_ms as f64 / 1000.0), "the 200th event's time");
    let (_, latest) = http_get(daemon.port, "/api/v1/models/housing/reports/latest").unwrap();
    let latest: Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(latest["window_end"], last_of_second["timestamp"]);
}

/// A consumer that cannot reach its broker is not ready, says why, and counts its errors
/// (one log line a second, however many there are).
#[test]
fn a_consumer_that_keeps_failing_is_not_ready_and_counts_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    // a port nothing listens on
    let dead = format!("127.0.0.1:{}", free_port());
    let cfg = TestConfig::new()
        .kafka(&dead, "driftd-dead")
        .kafka_option("reconnect.backoff.max.ms", "1000")
        .state(&dir.path().join("state"))
        .model("housing", "window = { size = \"30d\" }")
        .write(&dir.path().join("dead.toml"));
    let daemon = InProcess::launch(&cfg);
    let port = daemon.port;
    let body = crate::helpers::wait_until("the consumer to be seen failing", Duration::from_secs(60), || {
        let (code, body) = http_get(port, "/readyz")?;
        (code == 503 && body.contains("keeps failing")).then_some(body)
    });
    assert!(body.contains(&dead) || body.to_lowercase().contains("broker"), "{body}");
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    let errors: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("driftd_kafka_consumer_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors >= 5.0, "{errors} errors counted");
}

/// Incremental rebalancing: a second member joining takes one of the first member's two
/// partitions; the window of the partition that stays is not cut (the eager protocol
/// revoked both and reported both windows early).
#[test]
fn a_member_joining_cuts_only_the_windows_of_the_partition_that_moves() {
    let s = setup(2);
    let keys = "window = { size = \"3650d\" }\nidle_timeout = \"1h\"";
    let (a, _) = config_models(&s, "one", &["north", "south"], "", keys);
    let (b, _) = config_models(&s, "two", &["north", "south"], "", keys);
    let d1 = InProcess::start(&a);
    let p = producer(&s.broker.bootstrap());
    let (north, south) = (events("north"), events("south"));
    produce(&p, &north[..500], "north", Some(0));
    produce(&p, &south[..500], "south", Some(1));
    let open = |port: u16| -> Vec<(String, u64)> {
        let (_, body) = http_get(port, "/api/v1/models").unwrap();
        let models: Value = serde_json::from_str(&body).unwrap();
        models
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m["open_window_events"].as_u64().unwrap()))
            .collect()
    };
    let events_in = |model: &str| crate::helpers::metric(d1.port, &format!("driftd_events_total{{model=\"{model}\"}}"));
    crate::helpers::wait_until("the first member to take 1,000 events", Duration::from_secs(60), || {
        (events_in("north") == Some(500.0) && events_in("south") == Some(500.0)).then_some(())
    });
    let file = s.dir.path().join("reports-one.jsonl");
    assert!(reports(&file).is_empty(), "one ten-year window per model, still open");
    let _d2 = InProcess::start(&b);
    // the second member has its partition: the first gave up one, and kept the other
    crate::helpers::wait_until("the revoked window's report", Duration::from_secs(60), || {
        (!reports(&file).is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let cut = reports(&file);
    let models: Vec<&Value> = cut.iter().map(|r| &r["model"]).collect();
    assert_eq!(cut.len(), 1, "only the moved partition's window is reported: {models:?}");
    assert_eq!(cut[0]["events"], 500);
    let moved = cut[0]["model"].as_str().unwrap().to_string();
    // the API's view, refreshed when the report went out
    let kept: Vec<(String, u64)> = open(d1.port).into_iter().filter(|(m, _)| *m != moved).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1, 500, "the staying partition's window is still open, whole: {kept:?}");
}

/// A member that stalls past its session timeout (SIGSTOP, as a long GC pause or a frozen
/// VM would) loses its partition: the new owner reads it from the committed offset and
/// reports its windows; the stalled member, when it resumes, drops its copy of the open
/// window (a lost assignment) instead of reporting it a second time.
#[test]
fn a_member_that_missed_its_session_timeout_drops_what_it_lost() {
    let s = setup(1);
    let keys = "window = { size = \"30d\" }";
    let (a, port_a) = config_models(&s, "one", &["housing"], "", keys);
    let (b, _) = config_models(&s, "two", &["housing"], "", keys);
    let mut first = Process::start(&a, port_a);
    std::thread::sleep(Duration::from_secs(6));
    let _second = InProcess::start(&b);
    std::thread::sleep(Duration::from_secs(4));
    let msgs = events("housing");
    let half = msgs.len() / 2;
    let p = producer(&s.broker.bootstrap());
    produce(&p, &msgs[..half], "housing", None);
    let taken = || crate::helpers::metric(port_a, "driftd_events_total{model=\"housing\"}");
    crate::helpers::wait_until("the first member to hold the partition", Duration::from_secs(60), || {
        (taken() == Some(half as f64)).then_some(())
    });
    // its reported windows' offsets committed (every 500 ms here): what a member's local
    // checkpoint knows, another member does not (yet: #13's changelog topic)
    std::thread::sleep(Duration::from_secs(2));
    let pid = first.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    // past the 6 s session timeout: the group gives the partition to the second member
    std::thread::sleep(Duration::from_secs(14));
    // the rest, and two events two months on that close every window before them
    let last: Value = serde_json::from_str(msgs.last().unwrap()).unwrap();
    let last_ms = driftd::time::parse_rfc3339_ms(last["timestamp"].as_str().unwrap()).unwrap();
    let flush = msgs[0].replace(
        &serde_json::from_str::<Value>(&msgs[0]).unwrap()["timestamp"].as_str().unwrap().to_string(),
        &crate::helpers::fmt_ms(last_ms + 60 * 86_400_000),
    );
    produce(&p, &msgs[half..], "housing", None);
    produce(&p, &[flush.clone(), flush], "housing", None);
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let files = [s.dir.path().join("reports-one.jsonl"), s.dir.path().join("reports-two.jsonl")];
    wait_for_events(&files, msgs.len() as u64);
    // the resumed member has had time to learn it lost the partition
    std::thread::sleep(Duration::from_secs(8));
    let got: Vec<Value> = files.iter().flat_map(|f| reports(f)).collect();
    for f in &files {
        let w: Vec<String> = reports(f).iter().map(|r| format!("{}:{}", r["window_start"], r["events"])).collect();
        println!("{}: {w:?}", f.display());
    }
    let windows = by_window(&got); // panics on a window reported twice
    let n: u64 = windows.values().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(n, msgs.len() as u64, "every event once: {} reports from the stalled member", reports(&files[0]).len());
    assert_same_windows(&got, &replayed(&s, &a, &msgs));
    drop(got);
    first.signal("-TERM");
}

/// A broker that stops answering (frozen: SIGSTOP, as a stalled disk or a network
/// partition would) for longer than `idle_timeout` is an outage, not quiet producers:
/// the open window is not cut, and the events after the freeze count in it.
#[test]
fn a_broker_frozen_past_the_idle_timeout_cuts_no_window() {
    let s = setup(1);
    // one ten-year window; idle after 4 s of quiet
    let keys = "window = { size = \"3650d\" }\nidle_timeout = \"4s\"";
    let (cfg, _) = config_models(&s, "one", &["housing"], "", keys);
    let daemon = InProcess::start(&cfg);
    let msgs = events("housing");
    let half = msgs.len() / 2;
    let p = producer(&s.broker.bootstrap());
    produce(&p, &msgs[..half], "housing", None);
    let taken = || crate::helpers::metric(daemon.port, "driftd_events_total{model=\"housing\"}");
    crate::helpers::wait_until("the first half taken", Duration::from_secs(60), || {
        (taken() == Some(half as f64)).then_some(())
    });
    // frozen 5 s: past the idle timeout, within the 6 s session timeout
    let pid = s.broker.pid().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    produce(&p, &msgs[half..], "housing", None);
    let file = s.dir.path().join("reports-one.jsonl");
    // the model goes quiet for real now: its window closes after 4 s, whole
    let got = wait_for_events(std::slice::from_ref(&file), msgs.len() as u64);
    let sizes: Vec<u64> = got.iter().map(|r| r["events"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [msgs.len() as u64], "one window, every event, no late ones: {sizes:?}");
    assert_eq!(got[0]["late_events"], 0);
}

/// A broker killed (SIGKILL) and started again 8 s later, past `idle_timeout` and past
/// the 6 s session timeout, on the log it keeps in S3: the open window is not cut, the
/// group is joined again, and every event counts once, in the windows replay gives.
#[test]
fn a_broker_killed_and_restarted_past_the_idle_timeout_loses_nothing() {
    let mut s = setup_on(Broker::start_durable(), 2);
    let keys = "window = { size = \"3650d\" }\nidle_timeout = \"4s\"";
    let (cfg, _) = config_models(&s, "one", &["housing", "credit"], "", keys);
    let daemon = InProcess::start(&cfg);
    let (housing, credit) = (events("housing"), events("credit"));
    let half = housing.len() / 2;
    let p = producer(&s.broker.bootstrap());
    produce(&p, &housing[..half], "housing", None);
    produce(&p, &credit[..half], "credit", None);
    let taken = |model: &str| crate::helpers::metric(daemon.port, &format!("driftd_events_total{{model=\"{model}\"}}"));
    crate::helpers::wait_until("the first halves taken", Duration::from_secs(60), || {
        (taken("housing") == Some(half as f64) && taken("credit") == Some(half as f64)).then_some(())
    });
    let down = Instant::now();
    s.broker.kill_and_restart(Duration::from_secs(8));
    let p = producer(&s.broker.bootstrap());
    produce(&p, &housing[half..], "housing", None);
    produce(&p, &credit[half..], "credit", None);
    println!("broker back {:.1} s after the kill", down.elapsed().as_secs_f64());
    let file = s.dir.path().join("reports-one.jsonl");
    let got = wait_for_events(std::slice::from_ref(&file), (housing.len() + credit.len()) as u64);
    let windows = by_window(&got); // panics on a window reported twice
    let per_model: Vec<(String, u64, u64)> = windows
        .values()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_string(),
                r["events"].as_u64().unwrap(),
                r["late_events"].as_u64().unwrap(),
            )
        })
        .collect();
    println!("windows after the broker's restart: {per_model:?}");
    assert_eq!(
        per_model,
        [("credit".to_string(), credit.len() as u64, 0), ("housing".to_string(), housing.len() as u64, 0)],
        "one window a model, every event once, none late"
    );
    let all: Vec<String> = housing.iter().chain(&credit).cloned().collect();
    assert_same_windows(&got, &replayed(&s, &cfg, &all));
}

/// Sinks that do not answer hold no model back (#13): with the report topic and the
/// dead-letter topic missing, every window still reaches the report file while the
/// messages flow, and what the topics did not take is counted.
#[test]
fn missing_sink_topics_do_not_hold_the_consumer() {
    let s = setup(1);
    // "driftd-reports-m" is never created; neither is the dead-letter topic
    let (cfg, _) = config(&s, "m", &["housing"], "dead_letter_topic = \"missing-dead-letters\"");
    let mut cfg_text = std::fs::read_to_string(&cfg).unwrap();
    cfg_text = cfg_text.replace("[kafka.options]\n", "[kafka.options]\n\"allow.auto.create.topics\" = \"false\"\n");
    std::fs::write(&cfg, cfg_text).unwrap();
    let daemon = InProcess::start(&cfg);
    let clean = events("housing");
    let mut mixed = Vec::new();
    for (i, m) in clean.iter().enumerate() {
        mixed.push(m.clone());
        if i % 20 == 0 {
            mixed.push("not json at all".to_string());
        }
    }
    let started = Instant::now();
    produce(&producer(&s.broker.bootstrap()), &mixed, "housing", None);
    let got = wait_for_events(&[s.dir.path().join("reports-m.jsonl")], clean.len() as u64);
    println!("every window in the file {:.1} s after the first message", started.elapsed().as_secs_f64());
    assert_same_windows(&got, &replayed(&s, &cfg, &clean));
    let bad = clean.len().div_ceil(20) as f64;
    let line = "driftd_decode_errors_total{reason=\"not_json\"}";
    assert_eq!(crate::helpers::metric(daemon.port, line), Some(bad));
    // the broker never takes them: each fails after message.timeout.ms (30 s), counted
    crate::helpers::wait_until("the dead letters counted as not produced", Duration::from_secs(90), || {
        crate::helpers::metric(daemon.port, "driftd_dead_letter_errors_total").filter(|n| *n == bad)
    });
    // and so is each report the topic never took (it stays in the file)
    let reports = got.len() as f64;
    crate::helpers::wait_until("the reports counted as not published", Duration::from_secs(60), || {
        crate::helpers::metric(daemon.port, "driftd_report_sink_errors_total{sink=\"topic\"}").filter(|n| *n == reports)
    });
}

/// Backpressure pauses partitions instead of stalling the loop (#13): the report topic
/// does not exist yet, so the topic's worker fills (1,000 reports) with two-event count
/// windows; the input partition is paused (`driftd_kafka_paused_partitions` 1) while the
/// loop still answers a reload; once the topic is created the backlog goes out, the
/// partition resumes, and every window is in the file, equal to replay.
#[test]
fn a_report_topic_behind_pauses_the_partitions_and_holds_nothing_back() {
    let s = setup(1);
    let (cfg, _) = config_models(&s, "late", &["housing"], "", "window = { events = 2 }");
    let mut cfg_text = std::fs::read_to_string(&cfg).unwrap();
    cfg_text = cfg_text.replace("[kafka.options]\n", "[kafka.options]\n\"allow.auto.create.topics\" = \"false\"\n");
    std::fs::write(&cfg, cfg_text).unwrap();
    let daemon = InProcess::start(&cfg);
    let msgs = events("housing");
    produce(&producer(&s.broker.bootstrap()), &msgs, "housing", None);
    let paused = || crate::helpers::metric(daemon.port, "driftd_kafka_paused_partitions");
    crate::helpers::wait_until("the partition paused", Duration::from_secs(60), || {
        (paused() == Some(1.0)).then_some(())
    });
    let asked = Instant::now();
    let (code, body) = http(daemon.port, "POST", "/api/v1/reload").unwrap();
    let answered = asked.elapsed();
    assert_eq!(code, 200, "{body}");
    assert_eq!(paused(), Some(1.0), "still paused when the reload was answered");
    println!("a reload answered in {answered:?} while the partition was paused");
    assert!(answered < Duration::from_secs(10), "the loop went on while the sink was behind: {answered:?}");
    s.broker.create_topic("driftd-reports-late", 1);
    crate::helpers::wait_until("the partition resumed", Duration::from_secs(120), || {
        (paused() == Some(0.0)).then_some(())
    });
    let got = wait_for_events(&[s.dir.path().join("reports-late.jsonl")], msgs.len() as u64);
    assert_eq!(got.len(), msgs.len() / 2, "every two-event window once");
    assert_same_windows(&got, &replayed(&s, &cfg, &msgs));
}

/// A reload is prepared off the consumer's loop (#13): while a new model's reference is
/// slow to come (a server that answers after 6 s), the running models' messages keep
/// flowing; the reload then applies whole.
#[test]
fn messages_keep_flowing_while_a_reload_fetches_a_slow_reference() {
    let s = setup(1);
    let (cfg, _) = config_models(&s, "one", &["housing"], "", "window = { size = \"3650d\" }");
    let daemon = InProcess::start(&cfg);
    let port = daemon.port;
    // a reference server that takes 6 s to answer anything
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/reference.csv", listener.local_addr().unwrap().port());
    let body = std::fs::read(crate::helpers::reference_csv()).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(Duration::from_secs(6));
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
            });
        }
    });
    let model = crate::helpers::model_toml("slow", "window = { size = \"3650d\" }")
        .replace(&crate::helpers::reference_csv().display().to_string(), &url);
    let text = std::fs::read_to_string(&cfg).unwrap() + &model;
    std::fs::write(&cfg, text).unwrap();
    let reload = std::thread::spawn(move || http(port, "POST", "/api/v1/reload"));
    std::thread::sleep(Duration::from_millis(500));
    let msgs = events("housing");
    let started = Instant::now();
    produce(&producer(&s.broker.bootstrap()), &msgs, "housing", None);
    let taken = || crate::helpers::metric(daemon.port, "driftd_events_total{model=\"housing\"}");
    crate::helpers::wait_until("the messages taken during the reload", Duration::from_secs(60), || {
        (taken() == Some(msgs.len() as f64)).then_some(())
    });
    let during = started.elapsed();
    assert!(!reload.is_finished(), "every message was taken while the reload waited for its reference ({during:?})");
    let (code, body) = reload.join().unwrap().unwrap();
    assert_eq!(code, 200, "{body}");
    let (_, models) = http_get(daemon.port, "/api/v1/models").unwrap();
    assert!(models.contains("\"slow\""), "the new model is in: {models}");
}
