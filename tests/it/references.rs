//! References that change, and models split by version, through the daemon (in-process)
//! on a Tansu broker: a file reference replaced on disk ends the drift episode with
//! `reference_updated` while the shifted traffic stays shifted; a URL reference refreshed
//! with `If-None-Match`; canary traffic of two versions in one topic; a version beyond
//! `max_live_versions`; references that cannot be used; the state directory standing in
//! for a source that is down.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    http_get, metric, produce, producer, reference_csv, reports, root, sampled_logs, wait_until, Broker, InProcess,
    Receiver, Reply, ServedFile, TestConfig,
};

const MODEL: &str = "housing";
const REFERENCE: &str = "california_housing_reference.csv";
const ANALYSIS: &str = "california_housing_analysis.csv";
/// 2026-11-01T00:00:00Z
const START_MS: i64 = 1_793_491_200_000;

fn model_info(port: u16) -> Value {
    let (code, body) = http_get(port, &format!("/api/v1/models/{MODEL}")).unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Replaces a file as a pipeline publishing a new reference would: whole, by rename.
fn replace(path: &Path, from: &Path) {
    let tmp = path.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn broker() -> Broker {
    let b = Broker::start();
    b.create_topic("inference-logs", 1);
    b
}

#[test]
fn a_new_reference_file_ends_the_episode_and_the_shifted_traffic_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker();
    let receiver = Receiver::start(vec![], Reply::status(200));
    let reference = dir.path().join("reference.csv");
    std::fs::copy(reference_csv(), &reference).unwrap();
    let file = dir.path().join("reports.jsonl");
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-references")
        .state(&dir.path().join("state"))
        .reports(&file, None)
        .episode_defaults()
        .section(&format!(
            "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"k\"\nbackoff = \"100ms\"\n\
             [[alerts]]\nkind = \"webhook\"\nurl = \"{}\"",
            receiver.url("/retrain"),
            receiver.url("/alerts")
        ))
        // the model's reference is the test's copy, which the "pipeline" replaces
        .model_at(MODEL, &reference.display().to_string(), "reference_poll = \"500ms\"")
        .write(&dir.path().join("driftd.toml"));
    let daemon = InProcess::start(&cfg);
    let old_digest = model_info(daemon.port)["model"]["references"][0]["digest"].as_str().unwrap().to_string();

    // three stable windows, then three of the analysis period: drifting after two
    let p = producer(&broker.bootstrap());
    produce(&p, &sampled_logs(MODEL, None, REFERENCE, 3000, START_MS, 7), MODEL, None);
    produce(&p, &sampled_logs(MODEL, None, ANALYSIS, 3000, START_MS + 3000 * 60_000, 11), MODEL, None);
    wait_until("the episode", Duration::from_secs(60), || {
        (model_info(daemon.port)["drift"]["state"] == json!("drifting")).then_some(())
    });
    let requested = receiver.wait_for("/retrain", 1, Duration::from_secs(30));
    assert_eq!(requested.len(), 1);
    let run_id = requested[0].header("webhook-id").to_string();

    // the retrain pipeline publishes the model trained on the new data: its reference
    replace(&reference, &root().join("datasets").join(ANALYSIS));
    let swapped = format!("driftd_reference_swaps_total{{model=\"{MODEL}\"}}");
    wait_until("the swap", Duration::from_secs(30), || (metric(daemon.port, &swapped) == Some(1.0)).then_some(()));
    let info = model_info(daemon.port);
    assert_eq!(info["drift"]["state"], json!("ok"), "{info}");
    assert_eq!(info["drift"]["episodes"], json!(1));
    let new_digest = info["model"]["references"][0]["digest"].as_str().unwrap().to_string();
    assert_ne!(new_digest, old_digest);
    let resolved = wait_until("the resolved alert", Duration::from_secs(30), || {
        let alerts = receiver.requests();
        alerts.iter().find(|q| q.uri == "/alerts" && q.json()["type"] == json!("driftd.alert.resolved")).cloned()
    });
    let resolution = resolved.json()["data"]["resolution"].as_str().unwrap().to_string();
    assert!(resolution.contains("reference was updated"), "{resolution}");
    let (_, history) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains")).unwrap();
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["retrains"][0]["run_id"], json!(run_id));
    assert_eq!(history["retrains"][0]["resolved_by"]["reason"], json!("reference_updated"), "{history}");
    assert_eq!(history["retrains"][0]["resolved_by"]["digest"], json!(new_digest));

    // the traffic stays shifted, and is clean against the new reference
    let before = reports(&file).len();
    produce(&p, &sampled_logs(MODEL, None, ANALYSIS, 5000, START_MS + 6000 * 60_000, 13), MODEL, None);
    let all = wait_until("five more windows", Duration::from_secs(60), || {
        let r = reports(&file);
        (r.len() >= before + 5).then_some(r)
    });
    let after: Vec<&Value> = all.iter().filter(|r| r["reference"]["digest"] == json!(new_digest)).collect();
    assert!(
        after.len() >= 5,
        "{} windows against the new reference: {:?} vs {new_digest}",
        after.len(),
        all.iter().map(|r| r["reference"].clone()).collect::<Vec<_>>()
    );
    for r in &after {
        assert_eq!(r["dataset_drift"], json!(false), "{r}");
    }
    assert!(all[..before].iter().all(|r| r["reference"]["digest"] == json!(old_digest)), "earlier windows keep theirs");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(receiver.requests().iter().filter(|q| q.uri == "/retrain").count(), 1, "no second retrain");
    let drifting = format!("driftd_model_drifting{{model=\"{MODEL}\"}}");
    assert_eq!(metric(daemon.port, &drifting), Some(0.0));
    let (_, text) = http_get(daemon.port, "/metrics").unwrap();
    let info_line = format!("driftd_reference_info{{digest=\"{}\",model=\"{MODEL}\"", &new_digest[..12]);
    assert!(text.contains(&info_line), "{text}");
    assert!(!text.contains(&old_digest[..12]), "the old reference's series is gone");
}

#[test]
fn a_url_reference_is_refreshed_with_if_none_match_and_an_unusable_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker();
    let served_path = dir.path().join("served.csv");
    std::fs::copy(reference_csv(), &served_path).unwrap();
    let server = ServedFile::start(served_path.clone(), "reference.csv");
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-url")
        .state(&dir.path().join("state"))
        .episode_defaults()
        .model_at(MODEL, &server.url("reference.csv"), "reference_poll = \"300ms\"")
        .write(&dir.path().join("driftd.toml"));
    let daemon = InProcess::start(&cfg);
    wait_until("refreshes answered 304", Duration::from_secs(20), || {
        let r = server.requests.lock().unwrap().clone();
        (r.iter().filter(|(asked, status)| asked.is_some() && *status == 304).count() >= 3).then_some(())
    });
    let swaps = format!("driftd_reference_swaps_total{{model=\"{MODEL}\"}}");
    assert_eq!(metric(daemon.port, &swaps).unwrap_or(0.0), 0.0, "an unchanged reference is not swapped");

    // a reference without a monitored feature is refused: the old one stays, stale
    let text = std::fs::read_to_string(reference_csv()).unwrap();
    let without_medinc: String = text
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
            let i = header.iter().position(|h| *h == "MedInc").unwrap();
            cells.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| *c).collect::<Vec<_>>().join(",") + "\n"
        })
        .collect();
    std::fs::write(&served_path, without_medinc).unwrap();
    let mismatch = format!("driftd_reference_errors_total{{model=\"{MODEL}\",reason=\"schema_mismatch\"}}");
    wait_until("the refusal", Duration::from_secs(20), || (metric(daemon.port, &mismatch) >= Some(1.0)).then_some(()));
    assert_eq!(metric(daemon.port, &format!("driftd_reference_stale{{model=\"{MODEL}\"}}")), Some(1.0));
    assert_eq!(metric(daemon.port, &swaps).unwrap_or(0.0), 0.0);
    assert_eq!(http_get(daemon.port, "/readyz").unwrap().0, 200, "the old reference still serves");

    // new content the model can use: swapped, no longer stale
    std::fs::write(&served_path, std::fs::read(root().join("datasets").join(ANALYSIS)).unwrap()).unwrap();
    wait_until("the swap", Duration::from_secs(20), || (metric(daemon.port, &swaps) == Some(1.0)).then_some(()));
    assert_eq!(metric(daemon.port, &format!("driftd_reference_stale{{model=\"{MODEL}\"}}")), Some(0.0));
}

#[test]
fn a_source_down_at_start_uses_the_stored_reference_and_with_none_stored_the_model_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServedFile::start_on(listener, reference_csv(), "reference.csv");
    let url = server.url("reference.csv");
    let config = |state: &str, name: &str| {
        TestConfig::new()
            .kafka(&broker.bootstrap(), name)
            .state(&dir.path().join(state))
            .episode_defaults()
            .model_at(MODEL, &url, "")
            .write(&dir.path().join(format!("{name}.toml")))
    };
    let cfg = config("state", "first");
    let first = InProcess::start(&cfg);
    let digest = model_info(first.port)["model"]["references"][0]["digest"].as_str().unwrap().to_string();
    first.stop();
    drop(server);
    wait_until("the server to go", Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_err().then_some(())
    });

    // the same state directory: the stored reference stands in, marked stale
    let again = InProcess::start(&cfg);
    assert_eq!(model_info(again.port)["model"]["references"][0]["digest"], json!(digest));
    assert_eq!(metric(again.port, &format!("driftd_reference_stale{{model=\"{MODEL}\"}}")), Some(1.0));
    let unreachable = format!("driftd_reference_errors_total{{model=\"{MODEL}\",reason=\"unreachable\"}}");
    assert!(metric(again.port, &unreachable) >= Some(1.0));
    again.stop();

    // a fresh state directory: nothing stored, so the model has no reference
    let cfg = config("empty-state", "second");
    let app = driftd::app::App::load(cfg).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(driftd::app::run(app, listener, async {
        let _ = stopped.await;
    }));
    let (code, why) = wait_until("an answer on /readyz", Duration::from_secs(60), || {
        http_get(port, "/readyz").filter(|(_, body)| body.contains("no reference"))
    });
    assert_eq!(code, 503);
    assert!(why.contains(MODEL) && why.contains("unreachable"), "{why}");
    let _ = stop.send(());
    runtime.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await }).unwrap().unwrap().unwrap();
}

#[test]
fn canary_versions_are_windowed_and_judged_apart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker();
    let file = dir.path().join("reports.jsonl");
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-canary")
        .state(&dir.path().join("state"))
        .reports(&file, None)
        .episode_defaults()
        .model(MODEL, "split_by_version = true\nmax_live_versions = 2\nidle_timeout = \"2s\"")
        .write(&dir.path().join("driftd.toml"));
    let daemon = InProcess::start(&cfg);
    // v1 stays on the reference's distribution, v2 (the challenger) drifts; v3 is one
    // version too many
    let v1 = sampled_logs(MODEL, Some("1"), REFERENCE, 4000, START_MS, 3);
    let v2 = sampled_logs(MODEL, Some("2"), ANALYSIS, 4000, START_MS, 5);
    let v3 = sampled_logs(MODEL, Some("3"), REFERENCE, 50, START_MS, 9);
    let mut mixed = Vec::new();
    for (a, b) in v1.iter().zip(&v2) {
        mixed.push(a.clone());
        mixed.push(b.clone());
    }
    mixed.extend(v3);
    produce(&producer(&broker.bootstrap()), &mixed, MODEL, None);
    let all = wait_until("eight windows", Duration::from_secs(60), || {
        let r = reports(&file);
        (r.len() >= 8).then_some(r)
    });
    for (version, drift) in [("1", false), ("2", true)] {
        let mine: Vec<&Value> = all.iter().filter(|r| r["model_version"] == json!(version)).collect();
        assert_eq!(mine.len(), 4, "version {version}");
        assert!(mine.iter().all(|r| r["events"] == json!(1000)));
        assert!(mine.iter().all(|r| r["dataset_drift"] == json!(drift)), "version {version}");
    }
    let drifting =
        |v: &str| metric(daemon.port, &format!("driftd_model_drifting{{model=\"{MODEL}\",model_version=\"{v}\"}}"));
    assert_eq!((drifting("1"), drifting("2")), (Some(0.0), Some(1.0)));
    let info = model_info(daemon.port);
    assert_eq!(info["drift_by_version"]["2"]["state"], json!("drifting"), "{info}");
    assert_eq!(info["drift_by_version"]["1"]["state"], json!("ok"));
    let too_many = metric(daemon.port, "driftd_decode_errors_total{reason=\"too_many_versions\"}");
    assert_eq!(too_many, Some(50.0), "every event of a third version counted, none windowed");
    let (code, latest) =
        http_get(daemon.port, &format!("/api/v1/models/{MODEL}/reports/latest?model_version=2")).unwrap();
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&latest).unwrap()["model_version"], json!("2"));

    // both go quiet: retired after idle_timeout, their series gone, their state kept
    wait_until("the versions to retire", Duration::from_secs(30), || drifting("2").is_none().then_some(()));
    assert_eq!(drifting("1"), None);
    assert_eq!(metric(daemon.port, &format!("driftd_live_versions{{model=\"{MODEL}\"}}")), Some(0.0));
    let share = format!("driftd_dataset_drift_share{{model=\"{MODEL}\",model_version=\"2\"}}");
    assert_eq!(metric(daemon.port, &share), None, "a retired version's series are removed");
    assert_eq!(model_info(daemon.port)["drift_by_version"]["2"]["state"], json!("drifting"), "its state is kept");
}
