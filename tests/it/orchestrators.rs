//! The orchestrators that run here for real, end to end: `driftd replay` with one drift
//! episode against a real Prefect server (and Airflow when installed), running the flow /
//! DAG from `examples/`. Exactly one run starts, it receives the drift report and
//! succeeds, and a retried trigger (same run id) starts no second run.
//!
//! Slow (servers take 25–90 s to start) and needs the orchestrators installed, so these
//! are `#[ignore]`d; `.ci/run` installs them in virtualenvs and runs
//! `cargo test --release --test orchestrators -- --ignored` with
//! `DRIFTD_PREFECT_VENV` / `DRIFTD_AIRFLOW_VENV` pointing at them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{dechunk, episode_logs, free_port, model_toml, replay, root, wait_until};
use serde_json::{json, Value};

const MODEL: &str = "housing";

struct Proc(Child);

extern "C" {
    // libc's kill(2): the standard library has no process-group signal
    fn kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Proc {
    fn drop(&mut self) {
        // the servers start workers of their own: signal the whole process group, which
        // `spawn` made the child's own (a negative pid names a group)
        let group = -(self.0.id() as i32);
        if group < -1 {
            unsafe {
                kill(group, 15);
            }
            std::thread::sleep(Duration::from_millis(500));
            unsafe {
                kill(group, 9);
            }
        }
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    use std::os::unix::process::CommandExt;
    let f = std::fs::File::create(log).unwrap();
    // stdin closed: a server reading it would eat whatever runs the tests
    cmd.stdin(Stdio::null()).stdout(Stdio::from(f.try_clone().unwrap())).stderr(Stdio::from(f)).process_group(0);
    Proc(cmd.spawn().unwrap())
}

fn venv(var: &str) -> PathBuf {
    PathBuf::from(std::env::var(var).unwrap_or_else(|_| panic!("{var} must name a virtualenv (see .ci/run)")))
}

/// A small HTTP client over std (the tests' JSON calls to the orchestrators).
fn call(method: &str, url: &str, body: Option<&Value>, auth: Option<&str>) -> (u16, Value) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(raw) } else { raw.to_string() };
    (code, serde_json::from_str(&payload).unwrap_or(Value::Null))
}

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
    let venv = venv("DRIFTD_PREFECT_VENV");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}/api");
    let env = |c: &mut Command| {
        c.env("PREFECT_HOME", dir.path().join("prefect-home"))
            .env("PREFECT_API_URL", &api)
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            .env("PREFECT_SERVER_UI_ENABLED", "false")
            .env("PREFECT_LOGGING_LEVEL", "WARNING")
            .env("PATH", format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default()));
    };
    let mut server = Command::new(venv.join("bin/prefect"));
    server.args(["server", "start", "--host", "127.0.0.1", "--port", &port.to_string()]);
    env(&mut server);
    let _server = spawn(&mut server, &dir.path().join("server.log"));
    wait_until("the Prefect server", Duration::from_secs(180), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        (call("GET", &format!("{api}/health"), None, None).0 == 200).then_some(())
    });

    // serve the example flow: it registers the deployment and runs its flow runs
    let out = dir.path().join("retrain-out");
    let mut serve = Command::new(venv.join("bin/python"));
    serve.arg(root().join("examples/prefect/retrain_flow.py")).env("DRIFTD_RETRAIN_DIR", &out);
    env(&mut serve);
    let _flow = spawn(&mut serve, &dir.path().join("flow.log"));
    let deployment = wait_until("the deployment", Duration::from_secs(120), || {
        let (code, d) = call("GET", &format!("{api}/deployments/name/driftd-retrain/driftd-retrain"), None, None);
        (code == 200).then(|| d["id"].as_str().unwrap().to_string())
    });

    let target =
        format!("preset = \"prefect\"\nurl = \"{api}/deployments/{deployment}/create_flow_run\"\nbackoff = \"200ms\"");
    let (cfg, input) = scenario(dir.path(), &target, "first");
    let (reports, summary) = replay(&cfg, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let fired = reports.iter().filter(|r| r["dataset_drift"] == json!(true)).nth(1).unwrap();

    let runs = || {
        let filter = json!({"flow_runs": {"deployment_id": {"any_": [deployment]}}});
        call("POST", &format!("{api}/flow_runs/filter"), Some(&filter), None).1.as_array().cloned().unwrap_or_default()
    };
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

    // the retried trigger: Airflow answers 409 for the same dag_run_id; no second run
    let (cfg2, _) = scenario(dir.path(), &target, "retry");
    let (_, summary) = replay(&cfg2, &input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"duplicate": 1}), "{summary}");
    assert_eq!(runs().len(), 1);
}
