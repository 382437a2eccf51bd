//! Fault runs in the way of Jepsen's: a known sequence of events for several models and
//! window modes (tumbling, sliding, count) goes through the real binary on Tansu while it
//! is SIGKILLed at seeded random points and restarted on the same state directory; then
//! the union of every window report is held against `driftd replay` of the same events:
//! events lost, events counted twice, windows reported twice. Each run prints its
//! figures (docs/faults.md tables them).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use driftd::rand::XorShift64;
use serde_json::Value;

use crate::helpers::{free_port, produce_each, producer, replay, reports, sampled_logs, Broker, Process, TestConfig};

/// Per (model, window start): how many reports, and the events of the first.
fn tally(reports: &[Value]) -> BTreeMap<(String, String), (usize, u64)> {
    let mut out: BTreeMap<(String, String), (usize, u64)> = BTreeMap::new();
    for r in reports {
        let key = (r["model"].as_str().unwrap().to_string(), r["window_start"].as_str().unwrap().to_string());
        let e = out.entry(key).or_insert((0, r["events"].as_u64().unwrap()));
        e.0 += 1;
    }
    out
}

#[test]
fn sigkill_at_twenty_seeded_points_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 2);
    let port = free_port();
    let file = dir.path().join("reports.jsonl");
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-faults")
        .kafka_option("auto.commit.interval.ms", "1000")
        .listen(port)
        .state(&dir.path().join("state"))
        .reports(&file, None)
        .model("tumbling", "window = { size = \"1h\" }")
        .model("sliding", "window = { size = \"2h\", slide = \"30m\" }")
        .model("count", "window = { events = 250 }")
        .write(&dir.path().join("faults.toml"));

    // 2,000 events a model, one a minute from 2026-11-01, interleaved; each model keyed
    // (its own partition or a shared one)
    let start_ms = 1_793_491_200_000i64;
    let n = 2_000;
    let logs: Vec<(String, Vec<String>)> = ["tumbling", "sliding", "count"]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (m.to_string(), sampled_logs(m, None, "california_housing_reference.csv", n, start_ms, 11 + i as u64))
        })
        .collect();
    let mut messages: Vec<(Option<i32>, &str, &str)> = Vec::new();
    for i in 0..n {
        for (model, lines) in &logs {
            messages.push((None, model.as_str(), lines[i].as_str()));
        }
    }
    // then one event per model a day on: every event-time window before it closes
    let flush: Vec<(String, String)> = logs
        .iter()
        .map(|(m, lines)| {
            let v: Value = serde_json::from_str(&lines[0]).unwrap();
            let ts = v["timestamp"].as_str().unwrap().to_string();
            (m.clone(), lines[0].replace(&ts, &crate::helpers::fmt_ms(start_ms + (n as i64 + 1440) * 60_000)))
        })
        .collect();

    let p = producer(&broker.bootstrap());
    let mut rng = XorShift64::new(0x5eed_f00d);
    let mut daemon = Process::start(&cfg, port);
    let kills = 20;
    let chunk = messages.len().div_ceil(kills);
    let started = Instant::now();
    for (k, part) in messages.chunks(chunk).enumerate() {
        produce_each(&p, part);
        // somewhere between "still reading the chunk" and "done with it"
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 1500));
        daemon.signal("-KILL");
        daemon = Process::start(&cfg, port);
        println!("kill {}: {} reports so far", k + 1, reports(&file).len());
    }
    let tail: Vec<(Option<i32>, &str, &str)> = flush.iter().map(|(m, l)| (None, m.as_str(), l.as_str())).collect();
    produce_each(&p, &tail);

    // replay of the same events: the windows every event belongs to
    let input = dir.path().join("replay.jsonl");
    let all: Vec<&str> = messages.iter().chain(&tail).map(|(_, _, l)| *l).collect();
    std::fs::write(&input, all.join("\n")).unwrap();
    let (replay, _) = replay(&cfg, &input);
    // the flush events' windows stay open in the daemon (the count model's last window
    // too: it holds fewer than 250)
    let flush_day = crate::helpers::fmt_ms(start_ms + (n as i64 + 1440) * 60_000)[..10].to_string();
    let expected: BTreeMap<_, _> = tally(&replay)
        .into_iter()
        .filter(|((m, s), (_, events))| {
            let flush_window = s.starts_with(&flush_day);
            let short_count_window = m == "count" && *events < 250;
            !flush_window && !short_count_window
        })
        .collect();
    let expected_events: u64 = expected.values().map(|(_, e)| *e).sum();

    let deadline = Instant::now() + Duration::from_secs(120);
    let got = loop {
        let got = tally(&reports(&file));
        let have: u64 = got.iter().filter(|(k, _)| expected.contains_key(*k)).map(|(_, (_, e))| *e).sum();
        if have >= expected_events || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let twice_windows = got.values().filter(|(n, _)| *n > 1).count();
    let (mut lost, mut twice) = (0i64, 0i64);
    for (k, (_, want)) in &expected {
        let have = got.get(k).map_or(0, |(_, e)| *e) as i64;
        let want = *want as i64;
        lost += (want - have).max(0);
        twice += (have - want).max(0);
    }
    let unexpected = got.keys().filter(|k| !expected.contains_key(*k) && !k.1.starts_with(&flush_day)).count();
    println!(
        "{kills} SIGKILLs in {:.0} s: {} events in {} windows expected; lost {lost}, counted twice {twice}, \
         windows reported twice {twice_windows}, windows replay does not have {unexpected}",
        started.elapsed().as_secs_f64(),
        expected_events,
        expected.len()
    );
    assert_eq!((lost, twice, twice_windows, unexpected), (0, 0, 0, 0));
    drop(daemon);
}
