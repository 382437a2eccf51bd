//! Many replicas, one truth, on a real broker (Tansu): the real binary as three replicas
//! of one consumer group on six input partitions, one model's traffic unkeyed (round
//! robin over every partition, `spread = true`) and two keyed models; one replica
//! SIGKILLed mid-stream and restarted, then a fourth joining. Every window is reported
//! once, by one replica, with every event produced, and equal to `driftd replay` of the
//! same events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    by_window, episode_logs, fmt_ms, free_port, log_line, produce_each as produce, replay, reports, sampled_logs,
    Broker, Process, TestConfig,
};

const TOPIC: &str = "inference-logs";
const PARTITIONS: i32 = 6;
const PARTIALS: &str = "driftd-partials";

fn config(dir: &Path, bootstrap: &str, name: &str) -> (PathBuf, u16) {
    let port = free_port();
    let path = TestConfig::new()
        .kafka(bootstrap, "driftd-replicas")
        .kafka_line(&format!("partials_topic = \"{PARTIALS}\"\nmerge_timeout = \"90s\""))
        .kafka_option("auto.commit.interval.ms", "500")
        .listen(port)
        .state(&dir.join(format!("state-{name}")))
        .reports(&dir.join(format!("reports-{name}.jsonl")), None)
        .model("housing", "window = { size = \"1h\" }\nspread = true")
        .model("north", "window = { size = \"1h\" }")
        .model("south", "window = { size = \"1h\" }")
        .write(&dir.join(format!("{name}.toml")));
    (path, port)
}

fn reports_of(files: &[PathBuf]) -> Vec<Value> {
    files.iter().flat_map(|f| reports(f)).collect()
}

#[test]
fn three_replicas_a_sigkill_and_a_fourth_joining_report_every_window_once_equal_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    broker.create_topic(PARTIALS, 3);
    let bootstrap = broker.bootstrap();

    // 12 hours, one event a minute per model; housing round robin over the partitions,
    // north and south keyed by model
    let start_ms = 1_793_491_200_000i64; // 2026-11-01T00:00:00Z
    let housing = episode_logs("housing", 120, 2, 2, 2);
    let north = sampled_logs("north", None, "california_housing_reference.csv", 720, start_ms, 7);
    let south = sampled_logs("south", None, "california_housing_analysis.csv", 720, start_ms, 8);
    let mut messages: Vec<(Option<i32>, &str, &str)> = Vec::new();
    for i in 0..720 {
        messages.push((Some(i as i32 % PARTITIONS), "", housing[i].as_str()));
        messages.push((None, "north", north[i].as_str()));
        messages.push((None, "south", south[i].as_str()));
    }
    // then two events per partition two hours on: every window before them closes (a
    // window closes once two events are past its end)
    let flush_ms = start_ms + 14 * 3_600_000;
    let flush: Vec<String> = (0..PARTITIONS)
        .map(|_| log_line("housing", &fmt_ms(flush_ms), &housing_values(&housing[0])))
        .chain(["north", "south"].map(|m| log_line(m, &fmt_ms(flush_ms), &housing_values(&housing[0]))))
        .collect();
    let mut tail: Vec<(Option<i32>, &str, &str)> =
        (0..PARTITIONS).map(|p| (Some(p), "", flush[p as usize].as_str())).collect();
    tail.push((None, "north", flush[PARTITIONS as usize].as_str()));
    tail.push((None, "south", flush[PARTITIONS as usize + 1].as_str()));
    tail.extend(tail.clone());

    let names = ["r1", "r2", "r3", "r4"];
    let configs: Vec<(PathBuf, u16)> = names.iter().map(|n| config(dir.path(), &bootstrap, n)).collect();
    let files: Vec<PathBuf> = names.iter().map(|n| dir.path().join(format!("reports-{n}.jsonl"))).collect();
    let mut replicas: Vec<Process> = configs[..3].iter().map(|(c, port)| Process::start(c, *port)).collect();
    // let the group settle: each replica holds two input partitions and one of the partials topic's
    std::thread::sleep(Duration::from_secs(8));
    let p = crate::helpers::producer(&bootstrap);
    let (first, rest) = messages.split_at(messages.len() * 2 / 5);
    let (second, third) = rest.split_at(rest.len() / 2);
    produce(&p, first);
    std::thread::sleep(Duration::from_secs(3));
    // a replica dies mid-window, without a word, and comes back
    replicas[1].signal("-KILL");
    produce(&p, second);
    replicas[1] = Process::start(&configs[1].0, configs[1].1);
    std::thread::sleep(Duration::from_secs(4));
    // a fourth joins: the group moves partitions to it
    replicas.push(Process::start(&configs[3].0, configs[3].1));
    produce(&p, third);
    produce(&p, &tail);

    // what replay says of the same events (the flush windows aside: replay closes them
    // at the end of its input, the replicas keep them open)
    let input = dir.path().join("replay.jsonl");
    let all: Vec<&str> = messages.iter().chain(&tail).map(|(_, _, l)| *l).collect();
    std::fs::write(&input, all.join("\n")).unwrap();
    let (replay, _) = replay(&configs[0].0, &input);
    let flush_start = fmt_ms(flush_ms);
    let expected = by_window(&replay);
    let expected: BTreeMap<_, _> = expected.into_iter().filter(|((_, start), _)| *start < flush_start).collect();
    let total: u64 = expected.values().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(total, 3 * 720, "replay holds every event before the flush");

    let deadline = Instant::now() + Duration::from_secs(180);
    let got = loop {
        let got = by_window(&reports_of(&files));
        let n: u64 =
            got.iter().filter(|((_, s), _)| *s < flush_start).map(|(_, r)| r["events"].as_u64().unwrap()).sum();
        if n >= total {
            std::thread::sleep(Duration::from_secs(2));
            break by_window(&reports_of(&files));
        }
        assert!(Instant::now() < deadline, "only {n} of {total} events reported");
        std::thread::sleep(Duration::from_millis(300));
    };
    let got: BTreeMap<_, _> = got.into_iter().filter(|((_, start), _)| *start < flush_start).collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "the same windows");
    for (k, x) in &got {
        let y = &expected[k];
        for key in ["events", "late_events", "dataset_drift", "drifted_features", "features"] {
            assert_eq!(x[key], y[key], "window {k:?}: {key}");
        }
        if k.0 == "housing" {
            assert!(x["merged"]["missing_partitions"].is_null(), "window {k:?} waited for every partition: {x}");
        }
    }
    let reporting: Vec<usize> = files.iter().map(|f| reports(f).len()).collect();
    println!("windows reported by each replica: {reporting:?} (of {})", got.len());
    for (name, (_, port)) in names.iter().zip(&configs) {
        let text = crate::helpers::http_get(*port, "/metrics").map(|(_, t)| t).unwrap_or_default();
        let partials: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("driftd_partials_total") || l.starts_with("driftd_merge_timeouts"))
            .collect();
        println!("{name}: {}", partials.join(", "));
    }
    drop(replicas);
}

/// A log line's feature values, to reuse them.
fn housing_values(line: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(line).unwrap();
    crate::helpers::FEATURES.iter().map(|f| v["features"][f].to_string()).collect()
}
