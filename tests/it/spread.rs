//! A model's traffic spread over partitions held by several replicas (`spread = true`):
//! each replica's pipeline sends its parts of the windows to the partials topic, one merges
//! them, and every window is reported once, equal to `replay` of the same events. Here
//! the replicas are pipelines in one process and the partials topic a log in memory, so a
//! crash and a rebalance can be put at any point; `kafka_daemon.rs` runs the real binary
//! on Tansu.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use driftd::config::Settings;
use driftd::pipeline::merge::{internal_partition, MergeSetup};
use driftd::pipeline::{report_window, Pipeline};
use serde_json::Value;

use crate::helpers::{episode_logs, reference_csv};

const INPUTS: i32 = 6;
const INTERNAL: i32 = 2;

fn settings(window: &str, extra: &str) -> Settings {
    Settings::from_toml(&format!(
        "[[models]]\nname = \"housing\"\nreference = \"{}\"\nwindow = {window}\nspread = true\n{extra}\n",
        reference_csv().display()
    ))
    .unwrap()
}

/// The references of a config, resolved (and calibrated) once per test run.
fn references(settings: &Settings) -> BTreeMap<String, driftd::reference::ModelReferences> {
    static CACHE: std::sync::Mutex<Vec<(String, BTreeMap<String, driftd::reference::ModelReferences>)>> =
        std::sync::Mutex::new(Vec::new());
    let key = format!("{:?}", settings.models);
    let mut cache = CACHE.lock().unwrap();
    if let Some((_, refs)) = cache.iter().find(|(k, _)| *k == key) {
        return refs.clone();
    }
    let refs = driftd::reference::resolve_blocking(settings).unwrap();
    cache.push((key, refs.clone()));
    refs
}

fn pipeline(settings: &Settings, merge: bool) -> Pipeline {
    let mut p = Pipeline::new(settings, references(settings)).unwrap();
    if merge {
        p.enable_merge(MergeSetup {
            topic: "partials".into(),
            partitions: INTERNAL,
            inputs: (0..INPUTS).map(|p| ("logs".to_string(), p)).collect(),
            timeout: Duration::from_secs(3600),
        });
    }
    p
}

/// The reports' JSON by window start: the numbers a user compares.
fn summary(reports: &[Value]) -> BTreeMap<String, Value> {
    reports
        .iter()
        .map(|r| {
            let features: Vec<Value> = r["features"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .map(|f| {
                            serde_json::json!([f["name"], f["statistic"], f["score"], f["threshold"], f["drifted"]])
                        })
                        .collect()
                })
                .unwrap_or_default();
            let key = r["window_start"].as_str().unwrap().to_string();
            (key, serde_json::json!({"events": r["events"], "late": r["late_events"], "features": features}))
        })
        .collect()
}

fn close_enough(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close_enough(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close_enough(v, w)))
        }
        _ => a == b,
    }
}

/// Replicas reading their partitions, a partials topic in memory, and the merged reports.
struct Cluster {
    settings: Settings,
    replicas: Vec<Pipeline>,
    /// Which replica holds each input partition, and each partials-topic partition.
    owner: Vec<usize>,
    merger_of: Vec<usize>,
    /// The partials topic, and how far each replica has read each of its partitions.
    topic: Vec<Vec<Vec<u8>>>,
    read: Vec<usize>,
    reports: Vec<Value>,
}

impl Cluster {
    fn new(settings: Settings, replicas: usize) -> Cluster {
        Cluster {
            replicas: (0..replicas).map(|_| pipeline(&settings, true)).collect(),
            owner: (0..INPUTS as usize).map(|p| p % replicas).collect(),
            merger_of: (0..INTERNAL as usize).map(|q| q % replicas).collect(),
            topic: vec![Vec::new(); INTERNAL as usize],
            read: vec![0; INTERNAL as usize],
            reports: Vec::new(),
            settings,
        }
    }

    fn ingest(&mut self, partition: i32, offset: i64, line: &str) {
        let r = &mut self.replicas[self.owner[partition as usize]];
        let pid = r.partition_id("logs", partition);
        let _ = r.ingest_at(line.as_bytes(), None, Some("logs"), pid, offset);
    }

    /// One tick of every replica: parts sent, then progress, then the merges.
    fn tick(&mut self) {
        self.send();
        self.merge();
    }

    fn send(&mut self) {
        let now = Instant::now();
        for r in &mut self.replicas {
            r.advance_parts(now, driftd::pipeline::IdleClock::RECEIVING);
            let mut out = r.take_outgoing();
            out.extend(r.progress_records());
            for o in out {
                self.topic[o.partition as usize].push(o.payload);
            }
        }
    }

    fn merge(&mut self) {
        let now = Instant::now();
        for q in 0..INTERNAL as usize {
            let r = &mut self.replicas[self.merger_of[q]];
            while self.read[q] < self.topic[q].len() {
                let record = &self.topic[q][self.read[q]];
                r.ingest_internal(record, "partials", q as i32, self.read[q] as i64);
                self.read[q] += 1;
            }
        }
        for r in &mut self.replicas {
            for done in r.merge_ready(now) {
                self.topic[done.partition as usize].push(done.payload);
            }
            self.reports.extend(r.take_closed().into_iter().map(|c| {
                let report = report_window(c);
                serde_json::from_str::<Value>(&report.to_json_line()).unwrap()
            }));
        }
    }
}

/// The events on six partitions, round robin (unkeyed), each partition's offsets from 0.
fn spread_over_partitions(lines: &[String]) -> Vec<(i32, i64, &str)> {
    let mut next = [0i64; INPUTS as usize];
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = (i % INPUTS as usize) as i32;
            next[p as usize] += 1;
            (p, next[p as usize] - 1, l.as_str())
        })
        .collect()
}

/// `replay`'s reports of the same events (one pipeline reading them all in order), but
/// the last window, which the replicas keep open.
fn replayed(settings: &Settings, lines: &[String]) -> BTreeMap<String, Value> {
    let mut p = pipeline(settings, false);
    for l in lines {
        let _ = p.ingest(l.as_bytes(), None, None);
    }
    let reports: Vec<Value> =
        p.take_closed().into_iter().map(|c| serde_json::from_str(&report_window(c).to_json_line()).unwrap()).collect();
    summary(&reports)
}

fn check_equal(merged: &[Value], replay: &BTreeMap<String, Value>, what: &str) {
    let got = summary(merged);
    assert_eq!(got.len(), merged.len(), "{what}: a window reported twice");
    for (start, expected) in replay {
        let Some(g) = got.get(start) else { panic!("{what}: window {start} not reported") };
        assert!(close_enough(g, expected), "{what}: window {start}\nmerged {g}\nreplay {expected}");
    }
    assert_eq!(got.len(), replay.len(), "{what}: windows {:?} vs {:?}", got.keys(), replay.keys());
}

#[test]
fn windows_merged_from_three_replicas_equal_replay() {
    // stable, drifting, stable again: 6 hourly windows of 120 events; exact_values = 20
    // puts the parts on the binned path
    let lines = episode_logs("housing", 120, 2, 2, 2);
    for (window, extra) in [
        ("{ size = \"1h\" }", ""),
        ("{ size = \"1h\" }", "exact_values = 20"),
        ("{ size = \"1h\", slide = \"15m\" }", ""),
    ] {
        let what = format!("{window} {extra}");
        let settings = settings(window, extra);
        let mut cluster = Cluster::new(settings.clone(), 3);
        for (i, (p, o, l)) in spread_over_partitions(&lines).into_iter().enumerate() {
            cluster.ingest(p, o, l);
            if i % 37 == 0 {
                cluster.tick();
            }
        }
        cluster.tick();
        cluster.tick();
        let replay = replayed(&cluster.settings, &lines);
        assert!(replay.len() >= 5, "{what}: {} windows", replay.len());
        check_equal(&cluster.reports, &replay, &what);
        let merged = &cluster.reports[0]["merged"];
        assert_eq!(merged["partials"].as_u64(), Some(INPUTS as u64), "{what}: one part per partition: {merged}");
        // the merges were shared out by model: one replica did them all for this model
        let q = internal_partition("housing", INTERNAL) as usize;
        assert!(cluster.merger_of[q] < 3);
    }
}

#[test]
fn a_replica_killed_and_a_partition_moved_count_every_event_once() {
    // killed after sending parts and before the merger read them, or after the merge
    for merged_before_kill in [false, true] {
        killed_and_moved(merged_before_kill);
    }
}

fn killed_and_moved(merged_before_kill: bool) {
    let lines = episode_logs("housing", 120, 2, 2, 2);
    let settings = settings("{ size = \"1h\" }", "");
    let events = spread_over_partitions(&lines);
    let mut cluster = Cluster::new(settings.clone(), 3);
    // the group's committed offsets, input partitions then the partials topic's: what
    // each owner's safe_offsets said at its last tick
    let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let commit = |cluster: &Cluster, committed: &mut BTreeMap<(String, i32), i64>| {
        for (r, replica) in cluster.replicas.iter().enumerate() {
            for (topic, p, o) in replica.safe_offsets() {
                let owner = if topic == "logs" { cluster.owner[p as usize] } else { cluster.merger_of[p as usize] };
                if owner == r {
                    committed.insert((topic, p), o);
                }
            }
        }
    };
    let read_again = |cluster: &mut Cluster, committed: &BTreeMap<(String, i32), i64>, upto: usize, who: usize| {
        let again: Vec<(i32, i64, &str)> = events[..upto]
            .iter()
            .copied()
            .filter(|(p, o, _)| {
                cluster.owner[*p as usize] == who && *o >= committed.get(&("logs".into(), *p)).copied().unwrap_or(0)
            })
            .collect();
        for (p, o, l) in again {
            cluster.ingest(p, o, l);
        }
    };
    // one event a minute: the kill comes just after every partition passed 05:00, so
    // the parts of the hour before are sent and their offsets not yet committed
    let (kill_at, move_at) = (5 * 60 + INPUTS as usize, events.len() * 3 / 5);
    // the replica killed is the one merging the model; the partition moved is another's
    let victim = cluster.merger_of[internal_partition("housing", INTERNAL) as usize];
    let moved = (0..INPUTS).find(|p| cluster.owner[*p as usize] != victim).unwrap();
    let (from, to) = (cluster.owner[moved as usize], victim);
    for i in 1..=events.len() {
        let (p, o, l) = events[i - 1];
        cluster.ingest(p, o, l);
        if i % 29 == 0 {
            cluster.tick();
            commit(&cluster, &mut committed);
        }
        if i == kill_at {
            // parts sent, offsets not yet committed (auto-commit runs every 5 s)
            cluster.send();
            if merged_before_kill {
                cluster.merge();
            }
            // the replica dies without a word (SIGKILL): what it had not sent is lost. It
            // comes back empty, reads its input partitions again from the committed
            // offsets, and reads its partials-topic partition back to the end first.
            cluster.replicas[victim] = pipeline(&settings, true);
            for q in (0..INTERNAL as usize).filter(|q| cluster.merger_of[*q] == victim) {
                let at = committed.get(&("partials".into(), q as i32)).copied().unwrap_or(0);
                cluster.read[q] = at as usize;
                cluster.replicas[victim].internal_assigned(q as i32, Some(cluster.topic[q].len() as i64));
            }
            read_again(&mut cluster, &committed, i, victim);
        }
        if i == move_at {
            // a partition moves (a rebalance): its owner drops its panes after storing its
            // offsets, the new owner reads from there
            cluster.tick();
            commit(&cluster, &mut committed);
            cluster.replicas[from].forget_partitions(&[("logs".to_string(), moved)]);
            cluster.owner[moved as usize] = to;
            let at = committed[&("logs".into(), moved)];
            let again: Vec<(i32, i64, &str)> =
                events[..i].iter().copied().filter(|e| e.0 == moved && e.1 >= at).collect();
            for (p, o, l) in again {
                cluster.ingest(p, o, l);
            }
        }
    }
    cluster.tick();
    cluster.tick();
    let replay = replayed(&settings, &lines);
    let what = format!("killed and moved, merged before the kill: {merged_before_kill}");
    check_equal(&cluster.reports, &replay, &what);
    let duplicates: u64 = cluster.replicas.iter().filter_map(|r| r.merger()).map(|m| m.counts.duplicate).sum();
    assert!(duplicates > 0, "the parts read again were sent again, and kept once");
}
