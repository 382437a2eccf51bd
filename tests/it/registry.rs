//! The loop closed for real: the daemon (in-process, on Tansu) follows a model in a real
//! MLflow registry (pip `mlflow==3.17.2`); a real Prefect server (3.9.1) runs the example
//! retrain flow, which trains, profiles, registers the next version and moves the alias;
//! driftd swaps, the episode resolves with `reference_updated` while the traffic stays
//! shifted. Then canary traffic of two versions, each against its own reference from the
//! registry, and references the registry cannot give.
//!
//! Slow (the servers take 15–60 s to start) and needs them installed: `#[ignore]`d;
//! `scripts/test` runs them with `DRIFTD_PREFECT_VENV` and `DRIFTD_MLFLOW_VENV` set.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::services::{call, Mlflow, Prefect};
use crate::helpers::{
    http_get, metric, produce, producer, root, sampled_logs, wait_until, Broker, InProcess, Receiver, Reply,
    TestConfig, FEATURES,
};

const MODEL: &str = "housing";
const REFERENCE: &str = "california_housing_reference.csv";
const ANALYSIS: &str = "california_housing_analysis.csv";
/// 2026-11-01T00:00:00Z
const START_MS: i64 = 1_793_491_200_000;
const MINUTE: i64 = 60_000;

fn dataset(name: &str) -> std::path::PathBuf {
    root().join("datasets").join(name)
}

fn model_info(port: u16) -> Value {
    serde_json::from_str(&http_get(port, &format!("/api/v1/models/{MODEL}")).unwrap().1).unwrap()
}

fn reports(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn broker() -> Broker {
    let b = Broker::start();
    b.create_topic("inference-logs", 1);
    b
}

/// A daemon config following `reference` in `mlflow`, polling it every second; `extra`
/// goes after the model (its own keys, then other sections).
fn registry_config(broker: &Broker, mlflow: &Mlflow, dir: &Path, reference: &str, extra: &str) -> std::path::PathBuf {
    TestConfig::new()
        .kafka(&broker.bootstrap(), &format!("driftd-{}", dir.file_name().unwrap().to_string_lossy()))
        .state(&dir.join("state"))
        .reports(&dir.join("reports.jsonl"), None)
        .episode_defaults()
        .section(&format!("[mlflow]\ntracking_uri = \"{}\"\npoll = \"1s\"", mlflow.url))
        .model_at(MODEL, reference, extra)
        .write(&dir.join("driftd.toml"))
}

#[test]
#[ignore = "needs Prefect and MLflow (DRIFTD_PREFECT_VENV, DRIFTD_MLFLOW_VENV); run by scripts/test"]
fn the_loop_closes_through_prefect_and_mlflow() {
    let dir = tempfile::tempdir().unwrap();
    let mlflow = Mlflow::start(&dir.path().join("mlflow"));
    // the model in production: version 1, trained on the reference period, `champion`
    assert_eq!(mlflow.publish(&dataset(REFERENCE), MODEL, Some("clf_target"), "champion"), "1");
    let prefect = Prefect::start(dir.path());
    let out = dir.path().join("retrain-out");
    let env = [
        ("DRIFTD_RETRAIN_DIR", out.display().to_string()),
        ("MLFLOW_TRACKING_URI", mlflow.url.clone()),
        ("DRIFTD_BIN", env!("CARGO_BIN_EXE_driftd").to_string()),
        ("DRIFTD_RECENT_DATA", dataset(ANALYSIS).display().to_string()),
        ("DRIFTD_REGISTERED_MODEL", MODEL.to_string()),
        ("DRIFTD_FEATURES", FEATURES.join(",")),
    ];
    let (_flow, deployment) = prefect.serve_example(dir.path(), &env);
    let broker = broker();
    let retrain = format!(
        "[retrain]\npreset = \"prefect\"\nurl = \"{}/deployments/{deployment}/create_flow_run\"\nbackoff = \"200ms\"",
        prefect.api
    );
    let cfg = registry_config(&broker, &mlflow, dir.path(), &format!("mlflow:models:/{MODEL}@champion"), &retrain);
    let daemon = InProcess::start(&cfg);
    assert_eq!(model_info(daemon.port)["model"]["references"][0]["version"], json!("1"));

    // three stable windows, then the world shifts for good
    let p = producer(&broker.bootstrap());
    let t0 = Instant::now();
    produce(&p, &sampled_logs(MODEL, Some("1"), REFERENCE, 3000, START_MS, 21), MODEL, None);
    produce(&p, &sampled_logs(MODEL, Some("1"), ANALYSIS, 3000, START_MS + 3000 * MINUTE, 22), MODEL, None);
    let t_sent = t0.elapsed();
    wait_until("the episode", Duration::from_secs(60), || {
        (model_info(daemon.port)["drift"]["episodes"] == json!(1)).then_some(())
    });
    let t_detected = t0.elapsed();
    let run = wait_until("the flow run to finish", Duration::from_secs(240), || {
        let r = prefect.runs(&deployment);
        let done =
            r.first().is_some_and(|x| matches!(x["state_type"].as_str(), Some("COMPLETED" | "FAILED" | "CRASHED")));
        done.then(|| r[0].clone())
    });
    let t_flow = t0.elapsed();
    assert_eq!(run["state_type"], json!("COMPLETED"), "{run}");
    let champion = mlflow.alias(MODEL, "champion").unwrap();
    assert_eq!(champion["version"], json!("2"), "the flow registered version 2 and moved the alias");
    wait_until("the swap to version 2", Duration::from_secs(30), || {
        (model_info(daemon.port)["model"]["references"][0]["version"] == json!("2")).then_some(())
    });
    let t_swapped = t0.elapsed();
    let info = model_info(daemon.port);
    assert_eq!(info["drift"]["state"], json!("ok"), "the episode ended with the swap: {info}");
    let (_, history) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains")).unwrap();
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["retrains"].as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history["retrains"][0]["status"], json!("delivered"));
    assert_eq!(history["retrains"][0]["resolved_by"]["reason"], json!("reference_updated"));
    assert_eq!(history["retrains"][0]["resolved_by"]["version"], json!("2"));

    // the retrained model serves the shifted world: its traffic is clean against its reference
    let file = dir.path().join("reports.jsonl");
    let before = reports(&file).len();
    produce(&p, &sampled_logs(MODEL, Some("2"), ANALYSIS, 5000, START_MS + 7000 * MINUTE, 23), MODEL, None);
    let all = wait_until("five windows after the swap", Duration::from_secs(60), || {
        let r = reports(&file);
        (r.len() >= before + 5).then_some(r)
    });
    let after: Vec<&Value> = all.iter().filter(|r| r["reference"]["version"] == json!("2")).collect();
    assert!(after.len() >= 5, "{} windows against version 2", after.len());
    assert!(after.iter().all(|r| r["dataset_drift"] == json!(false)), "{after:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(prefect.runs(&deployment).len(), 1, "exactly one flow run");
    let (_, history) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&history).unwrap()["retrains"].as_array().unwrap().len(), 1);
    println!(
        "timeline (s from the first event): traffic sent {:.1}, drift detected {:.1}, flow run done (v2 registered, alias moved) {:.1}, swapped {:.1}",
        t_sent.as_secs_f64(),
        t_detected.as_secs_f64(),
        t_flow.as_secs_f64(),
        t_swapped.as_secs_f64()
    );
}

#[test]
#[ignore = "needs MLflow (DRIFTD_MLFLOW_VENV, DRIFTD_PREFECT_VENV for its client); run by scripts/test"]
fn canary_versions_each_against_their_own_registry_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mlflow = Mlflow::start(&dir.path().join("mlflow"));
    // champion and challenger, each registered with the reference it was trained on
    assert_eq!(mlflow.publish(&dataset(REFERENCE), MODEL, Some("clf_target"), "champion"), "1");
    assert_eq!(mlflow.publish(&dataset(REFERENCE), MODEL, Some("clf_target"), "challenger"), "2");
    let broker = broker();
    let receiver = Receiver::start(vec![], Reply::status(200));
    let alerts = format!("[[alerts]]\nkind = \"webhook\"\nurl = \"{}\"", receiver.url("/alerts"));
    let cfg = registry_config(&broker, &mlflow, dir.path(), &format!("mlflow:models:/{MODEL}"), &alerts);
    let daemon = InProcess::start(&cfg);
    let refs = model_info(daemon.port)["model"]["references"].clone();
    assert_eq!(refs.as_array().unwrap().len(), 2, "both versions' references loaded at start: {refs}");

    // v1 and v2 interleaved in one topic; only v2's traffic drifts
    let v1 = sampled_logs(MODEL, Some("1"), REFERENCE, 4000, START_MS, 31);
    let v2 = sampled_logs(MODEL, Some("2"), ANALYSIS, 4000, START_MS, 32);
    let mixed: Vec<String> = v1.into_iter().zip(v2).flat_map(|(a, b)| [a, b]).collect();
    let p = producer(&broker.bootstrap());
    produce(&p, &mixed, MODEL, None);
    let file = dir.path().join("reports.jsonl");
    let all = wait_until("eight windows", Duration::from_secs(60), || {
        let r = reports(&file);
        (r.len() >= 8).then_some(r)
    });
    for (version, drift) in [("1", false), ("2", true)] {
        let mine: Vec<&Value> = all.iter().filter(|r| r["model_version"] == json!(version)).collect();
        assert_eq!(mine.len(), 4, "version {version}");
        assert!(mine.iter().all(|r| r["reference"]["version"] == json!(version)), "each against its own reference");
        assert!(mine.iter().all(|r| r["dataset_drift"] == json!(drift)), "version {version}: {mine:?}");
    }
    let info = model_info(daemon.port);
    assert_eq!(info["drift_by_version"]["2"]["state"], json!("drifting"), "{info}");
    assert_eq!(info["drift_by_version"]["1"]["state"], json!("ok"));
    // v2's traffic comes back: its episode resolves; v1 never fired
    produce(&p, &sampled_logs(MODEL, Some("2"), REFERENCE, 2000, START_MS + 5000 * MINUTE, 33), MODEL, None);
    wait_until("v2 to resolve", Duration::from_secs(60), || {
        (model_info(daemon.port)["drift_by_version"]["2"]["state"] == json!("ok")).then_some(())
    });
    let alerts: Vec<Value> = receiver.requests().iter().filter(|q| q.uri == "/alerts").map(|q| q.json()).collect();
    let kinds: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a["type"].as_str().unwrap(), a["data"]["model_version"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("driftd.alert.firing", "2"), ("driftd.alert.resolved", "2")], "only v2 fired and resolved");
    let drifting =
        |v: &str| metric(daemon.port, &format!("driftd_model_drifting{{model=\"{MODEL}\",model_version=\"{v}\"}}"));
    assert_eq!((drifting("1"), drifting("2")), (Some(0.0), Some(0.0)));
    let episodes = |v: &str| {
        metric(daemon.port, &format!("driftd_drift_episodes_total{{model=\"{MODEL}\",model_version=\"{v}\"}}"))
    };
    assert_eq!(episodes("2"), Some(1.0));
    assert_eq!(episodes("1").unwrap_or(0.0), 0.0);
}

#[test]
#[ignore = "needs MLflow (DRIFTD_MLFLOW_VENV, DRIFTD_PREFECT_VENV for its client); run by scripts/test"]
fn references_the_registry_cannot_give_keep_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let mlflow = Mlflow::start(&dir.path().join("mlflow"));
    assert_eq!(mlflow.publish(&dataset(REFERENCE), MODEL, Some("clf_target"), "champion"), "1");
    let broker = broker();
    let cfg = registry_config(&broker, &mlflow, dir.path(), &format!("mlflow:models:/{MODEL}@champion"), "");
    let daemon = InProcess::start(&cfg);
    let digest = model_info(daemon.port)["model"]["references"][0]["digest"].clone();
    let errors = |reason: &str| {
        metric(daemon.port, &format!("driftd_reference_errors_total{{model=\"{MODEL}\",reason=\"{reason}\"}}"))
            .unwrap_or(0.0)
    };
    let stale = || metric(daemon.port, &format!("driftd_reference_stale{{model=\"{MODEL}\"}}"));

    // version 2's tag points at an artifact that is not there
    let v2 = mlflow.publish(&dataset(REFERENCE), MODEL, Some("clf_target"), "staging");
    let run = mlflow.alias(MODEL, "staging").unwrap()["run_id"].as_str().unwrap().to_string();
    set_tag(&mlflow, &v2, &format!("runs:/{run}/driftd/missing.json"));
    set_alias(&mlflow, "champion", &v2);
    wait_until("the missing artifact to be refused", Duration::from_secs(30), || {
        (errors("not_found") >= 1.0).then_some(())
    });
    assert_eq!(stale(), Some(1.0));
    assert_eq!(model_info(daemon.port)["model"]["references"][0]["digest"], digest, "the old reference stays");

    // version 3's reference lacks a monitored feature
    let without = dir.path().join("without-medinc.csv");
    let text = std::fs::read_to_string(dataset(REFERENCE)).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == "MedInc").unwrap();
    let cut: String = text
        .lines()
        .map(|l| l.split(',').enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    std::fs::write(&without, cut).unwrap();
    let v3 = mlflow.publish(&dataset(REFERENCE), MODEL, Some("clf_target"), "staging");
    let run = mlflow.alias(MODEL, "staging").unwrap()["run_id"].as_str().unwrap().to_string();
    upload(&mlflow, &run, "driftd/without.csv", &without);
    set_tag(&mlflow, &v3, &format!("runs:/{run}/driftd/without.csv"));
    set_alias(&mlflow, "champion", &v3);
    wait_until("the mismatch to be refused", Duration::from_secs(30), || {
        (errors("schema_mismatch") >= 1.0).then_some(())
    });
    assert_eq!(model_info(daemon.port)["model"]["references"][0]["digest"], digest, "the old reference stays");
    assert_eq!(http_get(daemon.port, "/readyz").unwrap().0, 200, "still serving on the old reference");
    daemon.stop();

    // the registry down at start: the stored reference stands in
    drop(mlflow);
    let again = InProcess::start(&cfg);
    assert_eq!(model_info(again.port)["model"]["references"][0]["digest"], digest);
    assert_eq!(metric(again.port, &format!("driftd_reference_stale{{model=\"{MODEL}\"}}")), Some(1.0));
}

fn set_tag(mlflow: &Mlflow, version: &str, value: &str) {
    let body = json!({"name": MODEL, "version": version, "key": "driftd.reference", "value": value});
    let (code, v) = call("POST", &format!("{}/api/2.0/mlflow/model-versions/set-tag", mlflow.url), Some(&body), None);
    assert_eq!(code, 200, "{v}");
}

fn set_alias(mlflow: &Mlflow, alias: &str, version: &str) {
    let body = json!({"name": MODEL, "alias": alias, "version": version});
    let url = format!("{}/api/2.0/mlflow/registered-models/alias", mlflow.url);
    let (code, v) = call("POST", &url, Some(&body), None);
    assert_eq!(code, 200, "{v}");
}

/// Puts a file among a run's artifacts (MLflow's artifact proxy: PUT mlflow-artifacts).
fn upload(mlflow: &Mlflow, run: &str, path: &str, file: &Path) {
    let (code, v) = call("GET", &format!("{}/api/2.0/mlflow/runs/get?run_id={run}", mlflow.url), None, None);
    assert_eq!(code, 200);
    let root =
        v["run"]["info"]["artifact_uri"].as_str().unwrap().strip_prefix("mlflow-artifacts:/").unwrap().to_string();
    let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}", mlflow.url);
    let status = crate::helpers::services::put(&url, &std::fs::read(file).unwrap());
    assert_eq!(status, 200, "PUT {url}");
}
