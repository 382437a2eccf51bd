//! The orchestrators that run here for real, end to end: `driftd replay` with one drift
//! episode against a real Prefect server and a real Airflow, running the flow / DAG from
//! `examples/`. Exactly one run starts, it receives the drift report and succeeds, and a
//! retried trigger (same run id) starts no second run. The Airflow DAG also closes the
//! loop through a real MLflow: it registers a new version with its driftd reference.
//!
//! Slow (servers take 20–90 s to start) and needs the servers installed, so these are
//! `#[ignore]`d; `scripts/test` installs them in virtualenvs and runs them with
//! `DRIFTD_PREFECT_VENV`, `DRIFTD_AIRFLOW_VENV` and `DRIFTD_MLFLOW_VENV` set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::helpers::services::{call, spawn, venv, Mlflow, Prefect};
use crate::helpers::FEATURES;
use crate::helpers::{episode_logs, free_port, model_toml, replay, root, wait_until};
use serde_json::{json, Value};

const MODEL: &str = "housing";

fn scenario(dir: &Path, retrain: &str, state: &str) -> (PathBuf, PathBuf) {
    let input = dir.join("events.jsonl");
    if !input.exists() {
        std::fs::write(&input, episode_logs(MODEL, 1000, 4, 5, 4).join("\n")).unwrap();
    }
    let cfg = dir.join(format!("{state}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n[retrain]\n{retrain}\n{}",
            dir.join(state).display(),
            model_toml(MODEL, "")
        ),
    )
    .unwrap();
    (cfg, input)
}

#[test]
#[ignore = "needs Prefect (DRIFTD_PREFECT_VENV); run by .ci/run"]
fn prefect_runs_the_example_flow_once_per_episode() {
    let dir = tempfile::tempdir().unwrap();
    let prefect = Prefect::start(dir.path());
    let api = prefect.api.clone();
    // serve the example flow: it registers the deployment and runs its flow runs
    let out = dir.path().join("retrain-out");
    let (_flow, deployment) = prefect.serve_example(dir.path(), &[("DRIFTD_RETRAIN_DIR", out.display().to_string())]);

    let target =
        format!("preset = \"prefect\"\nurl = \"{api}/deployments/{deployment}/create_flow_run\"\nbackoff = \"200ms\"");
    let (cfg, input) = scenario(dir.path(), &target, "first");
    let (reports, summary) = replay(&cfg, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let fired = reports.iter().filter(|r| r["dataset_drift"] == json!(true)).nth(1).unwrap();
    // driftd read the DAG after creating the run (is_paused, with its own token): not paused
    let history = std::fs::read_to_string(dir.path().join("first/replay/retrains.jsonl")).unwrap();
    let entry: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!((entry["status"].as_str(), entry.get("last_error")), (Some("delivered"), None), "{entry}");

    let runs = || prefect.runs(&deployment);
    let run = wait_until("the flow run to finish", Duration::from_secs(180), || {
        let r = runs();
        let done =
            r.first().is_some_and(|x| matches!(x["state_type"].as_str(), Some("COMPLETED" | "FAILED" | "CRASHED")));
        done.then(|| r[0].clone())
    });
    assert_eq!(run["state_type"], json!("COMPLETED"), "{run}");
    let run_id = run["idempotency_key"].as_str().unwrap().to_string();
    assert!(run_id.starts_with("driftd-housing-drift-"));
    assert_eq!(run["parameters"]["drift_report"]["window_end"], fired["window_end"]);
    // the flow itself got the report: it wrote it where the next steps read it
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(&run_id).join("drift_report.json")).unwrap()).unwrap();
    assert_eq!(written["dataset_drift"], json!(true));
    assert_eq!(written["features"], fired["features"]);
    assert!(out.join(&run_id).join("deployed").exists(), "every step ran");

    // a retried trigger (a fresh state, as after losing the outbox's record): same key, no new run
    let (cfg2, _) = scenario(dir.path(), &target, "retry");
    let (_, summary) = replay(&cfg2, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs().len(), 1, "the idempotency key kept Prefect from starting a second run");
}

#[test]
#[ignore = "needs Airflow (DRIFTD_AIRFLOW_VENV); run by .ci/run"]
fn airflow3_runs_the_example_dag_once_per_episode() {
    let venv = venv("DRIFTD_AIRFLOW_VENV");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let home = dir.path().join("airflow-home");
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::copy(root().join("examples/airflow/driftd_retrain.py"), dags.join("driftd_retrain.py")).unwrap();
    // the DAG's MLflow step, as a deployment would ship it beside the DAG
    std::fs::copy(root().join("examples/mlflow/driftd_mlflow.py"), dags.join("driftd_mlflow.py")).unwrap();
    let mlflow = Mlflow::start(&dir.path().join("mlflow"));
    let v1 = mlflow.publish(
        &root().join("datasets/california_housing_reference.csv"),
        MODEL,
        Some("clf_target"),
        "champion",
    );
    assert_eq!(v1, "1");
    let out = dir.path().join("retrain-out");
    let mut standalone = Command::new(venv.join("bin/airflow"));
    standalone
        .arg("standalone")
        .env("AIRFLOW_HOME", &home)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("AIRFLOW__CORE__DAGS_FOLDER", &dags)
        .env("AIRFLOW__API__PORT", port.to_string())
        .env("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", format!("{base}/execution/"))
        .env("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5")
        .env("DRIFTD_RETRAIN_DIR", &out)
        .env("MLFLOW_TRACKING_URI", &mlflow.url)
        .env("DRIFTD_BIN", env!("CARGO_BIN_EXE_driftd"))
        .env("DRIFTD_RECENT_DATA", root().join("datasets/california_housing_analysis.csv"))
        .env("DRIFTD_REGISTERED_MODEL", MODEL)
        .env("DRIFTD_FEATURES", FEATURES.join(","))
        .env("PATH", format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default()));
    let _airflow = spawn(&mut standalone, &dir.path().join("airflow.log"));
    let password = wait_until("Airflow's admin password", Duration::from_secs(240), || {
        let text = std::fs::read_to_string(home.join("simple_auth_manager_passwords.json.generated")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["admin"].as_str().map(str::to_string)
    });
    let token = wait_until("a token from /auth/token", Duration::from_secs(240), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let (code, v) = call(
            "POST",
            &format!("{base}/auth/token"),
            Some(&json!({"username": "admin", "password": password})),
            None,
        );
        (code == 201 || code == 200).then(|| v["access_token"].as_str().map(str::to_string)).flatten()
    });
    let bearer = format!("Bearer {token}");
    wait_until("the DAG to be parsed", Duration::from_secs(240), || {
        (call("GET", &format!("{base}/api/v2/dags/driftd_retrain"), None, Some(&bearer)).0 == 200).then_some(())
    });
    let (code, _) =
        call("PATCH", &format!("{base}/api/v2/dags/driftd_retrain"), Some(&json!({"is_paused": false})), Some(&bearer));
    assert_eq!(code, 200);

    let target = format!(
        "preset = \"airflow3\"\nurl = \"{base}/api/v2/dags/driftd_retrain/dagRuns\"\nusername = \"admin\"\nsecret = \"{password}\"\nbackoff = \"200ms\"\ntimeout = \"30s\""
    );
    let (cfg, input) = scenario(dir.path(), &target, "first");
    let (reports, summary) = replay(&cfg, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let fired = reports.iter().filter(|r| r["dataset_drift"] == json!(true)).nth(1).unwrap();
    // driftd read the DAG after creating the run (is_paused, with its own token): not paused
    let history = std::fs::read_to_string(dir.path().join("first/replay/retrains.jsonl")).unwrap();
    let entry: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!((entry["status"].as_str(), entry.get("last_error")), (Some("delivered"), None), "{entry}");

    let runs = || {
        call("GET", &format!("{base}/api/v2/dags/driftd_retrain/dagRuns"), None, Some(&bearer)).1["dag_runs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let run = wait_until("the DAG run to finish", Duration::from_secs(300), || {
        let r = runs();
        let done = r.first().is_some_and(|x| matches!(x["state"].as_str(), Some("success" | "failed")));
        done.then(|| r[0].clone())
    });
    assert_eq!(run["state"], json!("success"), "{run}");
    let run_id = run["dag_run_id"].as_str().unwrap().to_string();
    assert_eq!(run["conf"]["drift_report"]["window_end"], fired["window_end"]);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(&run_id).join("drift_report.json")).unwrap()).unwrap();
    assert_eq!(written["features"], fired["features"]);
    assert!(out.join(&run_id).join("deployed").exists(), "every task ran");
    // the DAG registered the retrained model in MLflow, with its driftd reference, and
    // moved the alias driftd follows
    assert_eq!(std::fs::read_to_string(out.join(&run_id).join("registered_version")).unwrap(), "2");
    let champion = mlflow.alias(MODEL, "champion").expect("the alias");
    assert_eq!(champion["version"], json!("2"));
    let tag = champion["tags"].as_array().unwrap().iter().find(|t| t["key"] == json!("driftd.reference")).cloned();
    assert_eq!(
        tag.unwrap()["value"],
        json!(format!("runs:/{}/driftd/profile.json", champion["run_id"].as_str().unwrap()))
    );

    // the retried trigger: Airflow answers 409 for the same dag_run_id; no second run
    let (cfg2, _) = scenario(dir.path(), &target, "retry");
    let (_, summary) = replay(&cfg2, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"duplicate": 1}), "{summary}");
    assert_eq!(runs().len(), 1);
}
