//! Policy, retrain presets and alerts, through the real binary (`driftd replay`) against
//! real local HTTP receivers that record what arrives.
//!
//! The scenario (`episode_logs`): 4 clean windows of 1,000 events, 5 drifted ones (the
//! analysis period's last rows), 4 clean ones. With `fire_after = 2` and
//! `resolve_after = 2` that is one episode: it fires on the 6th window and resolves on the
//! 11th.

use std::time::{Duration, Instant};

use crate::helpers::{episode_logs, fmt_ms, model_toml, replay, Receiver, Reply, Request};
use serde_json::{json, Value};

const MODEL: &str = "housing";

struct Scenario {
    dir: tempfile::TempDir,
    input: std::path::PathBuf,
}

fn scenario() -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, episode_logs(MODEL, 1000, 4, 5, 4).join("\n")).unwrap();
    Scenario { dir, input }
}

impl Scenario {
    fn config(&self, name: &str, actions: &str, model_extra: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        let text = format!(
            "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n{actions}\n{}",
            self.dir.path().join(format!("state-{name}")).display(),
            model_toml(MODEL, model_extra)
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// The run id the contract promises: `driftd-{model}-drift-{window end, digits and letters}`.
fn expected_run_id(reports: &[Value]) -> String {
    let fired = &reports[5];
    assert_eq!(fired["dataset_drift"], json!(true));
    assert_eq!(reports[4]["dataset_drift"], json!(true), "the episode needs two drifted windows in a row");
    let stamp: String = fired["window_end"].as_str().unwrap().chars().filter(char::is_ascii_alphanumeric).collect();
    format!("driftd-{MODEL}-drift-{}", stamp.to_ascii_lowercase())
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The five run parameters, wherever a preset puts them, as JSON values.
fn check_params(p: &Value, run_id: &str, strings: bool) {
    assert_eq!(p["model"], json!(MODEL));
    assert_eq!(p["run_id"], json!(run_id));
    assert_eq!(p["reason"], json!("drift"));
    let (features, report) = if strings {
        let f: Vec<Value> =
            p["drifted_features"].as_str().unwrap().split(',').map(|s| Value::String(s.to_string())).collect();
        (f, serde_json::from_str::<Value>(p["drift_report"].as_str().unwrap()).unwrap())
    } else {
        (p["drifted_features"].as_array().unwrap().clone(), p["drift_report"].clone())
    };
    assert!(features.len() >= 4, "drifted features: {features:?}");
    assert_eq!(report["model"], json!(MODEL));
    assert_eq!(report["dataset_drift"], json!(true));
    assert_eq!(report["features"].as_array().unwrap().len(), 8);
    let drifted: Vec<&Value> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["drifted"] == json!(true))
        .map(|f| &f["name"])
        .collect();
    assert_eq!(drifted, features.iter().collect::<Vec<_>>(), "the list names the report's drifted features");
}

/// Checks one recorded request against the run id.
type Check = Box<dyn Fn(&Request, &str)>;

/// `examples/github/driftd.yml`'s `workflow_dispatch` inputs: name, and whether required.
fn workflow_dispatch_inputs() -> std::collections::BTreeMap<String, bool> {
    let script = "import json, sys, yaml\n\
        w = yaml.safe_load(open(sys.argv[1]))\n\
        on = w.get('on', w.get(True))\n\
        print(json.dumps({k: bool(v.get('required')) for k, v in on['workflow_dispatch']['inputs'].items()}))";
    let path = crate::helpers::root().join("examples/github/driftd.yml");
    let out = std::process::Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `examples/argo/retrain-workflowtemplate.yaml`'s `spec.arguments.parameters`: name, and
/// whether it has a default.
fn argo_template_parameters() -> std::collections::BTreeMap<String, bool> {
    let script = "import json, sys, yaml\n\
        t = yaml.safe_load(open(sys.argv[1]))\n\
        print(json.dumps({p['name']: 'value' in p for p in t['spec']['arguments']['parameters']}))";
    let path = crate::helpers::root().join("examples/argo/retrain-workflowtemplate.yaml");
    let out = std::process::Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Preset {
    name: &'static str,
    retrain: String,
    path: &'static str,
    check: Check,
}

fn presets(r: &Receiver) -> Vec<Preset> {
    let json_post = |q: &Request| {
        assert_eq!(q.method, "POST");
        assert!(q.header("content-type").starts_with("application/json"), "{:?}", q.headers);
        q.json()
    };
    let form_post = |q: &Request| {
        assert_eq!(q.method, "POST");
        assert_eq!(q.header("content-type"), "application/x-www-form-urlencoded");
        q.form()
    };
    vec![
        Preset {
            name: "webhook",
            retrain: format!("preset = \"webhook\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"", r.url("/hooks/retrain")),
            path: "/hooks/retrain",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("webhook-id"), id);
                let ts: i64 = q.header("webhook-timestamp").parse().unwrap();
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
                assert!((now - ts).abs() < 120, "webhook-timestamp {ts} is now");
                assert!(driftd::sinks::webhook::verify(
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    id,
                    ts,
                    &q.body,
                    q.header("webhook-signature")
                ));
                let mut tampered = q.body.clone();
                tampered[10] ^= 1;
                assert!(!driftd::sinks::webhook::verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, ts, &tampered, q.header("webhook-signature")));
                assert_eq!(body["type"], json!("driftd.retrain"));
                check_params(&body["data"], id, false);
            }),
        },
        Preset {
            name: "airflow",
            retrain: format!("preset = \"airflow\"\nurl = \"{}\"\nusername = \"admin\"\nsecret = \"s3cret\"", r.url("/api/v1/dags/driftd_retrain/dagRuns")),
            path: "/api/v1/dags/driftd_retrain/dagRuns",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), basic("admin", "s3cret"));
                assert_eq!(body["dag_run_id"], json!(id));
                assert!(body.get("logical_date").is_none(), "Airflow 2 takes no logical_date here");
                check_params(&body["conf"], id, false);
            }),
        },
        Preset {
            name: "airflow3",
            retrain: format!("preset = \"airflow3\"\nurl = \"{}\"\nusername = \"admin\"\nsecret = \"s3cret\"", r.url("/api/v2/dags/driftd_retrain/dagRuns")),
            path: "/api/v2/dags/driftd_retrain/dagRuns",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), "Bearer jwt-from-auth-token");
                assert_eq!(body["dag_run_id"], json!(id));
                assert!(body.get("logical_date").is_some_and(Value::is_null), "logical_date: null must be present");
                check_params(&body["conf"], id, false);
            }),
        },
        Preset {
            name: "prefect",
            retrain: format!("preset = \"prefect\"\nurl = \"{}\"\nsecret = \"pnu_key\"", r.url("/api/deployments/0d7a1c2e-1111-4222-8333-944455556666/create_flow_run")),
            path: "/api/deployments/0d7a1c2e-1111-4222-8333-944455556666/create_flow_run",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), "Bearer pnu_key");
                assert_eq!(body["idempotency_key"], json!(id));
                assert_eq!(body["name"], json!(id));
                check_params(&body["parameters"], id, false);
            }),
        },
        Preset {
            name: "kubeflow",
            retrain: format!(
                "preset = \"kubeflow\"\nurl = \"{}\"\nsecret = \"kf-token\"\npipeline_id = \"p-1\"\npipeline_version_id = \"v-2\"\nexperiment_id = \"e-3\"",
                r.url("/pipeline/apis/v2beta1/runs")
            ),
            path: "/pipeline/apis/v2beta1/runs",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), "Bearer kf-token");
                assert_eq!(body["display_name"], json!(id));
                assert_eq!(body["pipeline_version_reference"], json!({"pipeline_id": "p-1", "pipeline_version_id": "v-2"}));
                assert_eq!(body["experiment_id"], json!("e-3"));
                let params = &body["runtime_config"]["parameters"];
                assert!(params.as_object().unwrap().values().all(Value::is_string));
                check_params(params, id, true);
            }),
        },
        Preset {
            name: "argo",
            retrain: format!("preset = \"argo\"\nurl = \"{}\"\nsecret = \"argo-token\"\nworkflow_template = \"driftd-retrain\"", r.url("/api/v1/workflows/ml/submit")),
            path: "/api/v1/workflows/ml/submit",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), "Bearer argo-token");
                assert_eq!(body["resourceKind"], json!("WorkflowTemplate"));
                assert_eq!(body["resourceName"], json!("driftd-retrain"));
                let opts = &body["submitOptions"];
                assert_eq!(opts["name"], json!(id));
                let params: serde_json::Map<String, Value> = opts["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let (k, v) = p.as_str().unwrap().split_once('=').unwrap();
                        (k.to_string(), Value::String(v.to_string()))
                    })
                    .collect();
                // exactly the template's parameters, each without a default given a value
                let declared = argo_template_parameters();
                let sent: std::collections::BTreeSet<&String> = params.keys().collect();
                assert_eq!(sent, declared.keys().collect(), "driftd's parameters and the WorkflowTemplate's");
                for (name, has_default) in &declared {
                    assert!(*has_default || !params[name].as_str().unwrap().is_empty(), "{name} needs a value");
                }
                check_params(&Value::Object(params), id, true);
            }),
        },
        Preset {
            name: "github",
            retrain: format!("preset = \"github\"\nurl = \"{}\"\nsecret = \"ghp_token\"\nref = \"main\"", r.url("/repos/acme/ml/actions/workflows/driftd.yml/dispatches")),
            path: "/repos/acme/ml/actions/workflows/driftd.yml/dispatches",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), "Bearer ghp_token");
                assert_eq!(q.header("accept"), "application/vnd.github+json");
                assert_eq!(q.header("x-github-api-version"), "2022-11-28");
                assert!(q.header("user-agent").starts_with("driftd/"), "GitHub refuses requests without a User-Agent");
                assert!(q.body.len() <= 65_535, "within GitHub's payload limit");
                assert_eq!(body["ref"], json!("main"));
                let inputs = body["inputs"].as_object().unwrap();
                assert!(inputs.len() <= 25 && inputs.values().all(Value::is_string), "workflow_dispatch inputs are strings, 25 at most");
                check_params(&body["inputs"], id, true);
                // the example workflow declares exactly these inputs, and each it requires is sent
                let declared = workflow_dispatch_inputs();
                let sent: std::collections::BTreeSet<&str> = inputs.keys().map(String::as_str).collect();
                let names: std::collections::BTreeSet<&str> = declared.keys().map(String::as_str).collect();
                assert_eq!(sent, names, "driftd's inputs and examples/github/driftd.yml's");
                for (name, required) in &declared {
                    assert!(!required || !inputs[name].as_str().unwrap().is_empty(), "required input {name} is empty");
                }
            }),
        },
        Preset {
            name: "github-repository-dispatch",
            retrain: format!("preset = \"github\"\nurl = \"{}\"\nsecret = \"ghp_token\"\nevent_type = \"retrain\"", r.url("/repos/acme/ml/dispatches")),
            path: "/repos/acme/ml/dispatches",
            check: Box::new(move |q, id| {
                let body = json_post(q);
                assert_eq!(q.header("authorization"), "Bearer ghp_token");
                assert_eq!(body["event_type"], json!("retrain"));
                assert!(body["client_payload"].as_object().unwrap().len() <= 10, "client_payload: 10 top-level keys at most");
                check_params(&body["client_payload"], id, false);
            }),
        },
        Preset {
            name: "gitlab",
            retrain: format!("preset = \"gitlab\"\nurl = \"{}\"\nsecret = \"glptt-trigger\"\nref = \"main\"", r.url("/api/v4/projects/42/trigger/pipeline")),
            path: "/api/v4/projects/42/trigger/pipeline",
            check: Box::new(move |q, id| {
                let form = form_post(q);
                assert_eq!(form["token"], "glptt-trigger");
                assert_eq!(form["ref"], "main");
                let vars = json!({
                    "model": form["variables[DRIFTD_MODEL]"],
                    "run_id": form["variables[DRIFTD_RUN_ID]"],
                    "reason": form["variables[DRIFTD_REASON]"],
                    "drifted_features": form["variables[DRIFTD_DRIFTED_FEATURES]"],
                    "drift_report": form["variables[DRIFTD_REPORT]"],
                });
                check_params(&vars, id, true);
            }),
        },
        Preset {
            name: "jenkins",
            retrain: format!("preset = \"jenkins\"\nurl = \"{}\"\nusername = \"ci\"\nsecret = \"api-token\"", r.url("/job/retrain/buildWithParameters")),
            path: "/job/retrain/buildWithParameters",
            check: Box::new(move |q, id| {
                let form = form_post(q);
                assert_eq!(q.header("authorization"), basic("ci", "api-token"));
                let params: serde_json::Map<String, Value> =
                    form.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                check_params(&Value::Object(params), id, true);
            }),
        },
    ]
}

#[test]
fn each_preset_sends_the_request_its_api_documents_once_per_episode() {
    let s = scenario();
    let token = || Reply::json(201, json!({"access_token": "jwt-from-auth-token"}));
    // airflow3 logs in for the run, then again to read the DAG
    let r = Receiver::start(
        vec![("/auth/token", token()), ("/auth/token", token())],
        Reply::json(200, json!({"ok": true})),
    );
    for p in presets(&r) {
        let before = r.requests().len();
        let cfg = s.config(p.name, &format!("[retrain]\n{}\ncooldown = \"1d\"\nbackoff = \"10ms\"\n", p.retrain), "");
        let (reports, summary) = replay(&cfg, &s.input);
        assert_eq!(reports.len(), 13);
        let id = expected_run_id(&reports);
        let got: Vec<Request> = r.requests()[before..].to_vec();
        let calls: Vec<&Request> = got.iter().filter(|q| q.uri.starts_with(p.path)).collect();
        assert_eq!(
            calls.len(),
            1,
            "{}: one request per episode, got {:?}",
            p.name,
            got.iter().map(|q| &q.uri).collect::<Vec<_>>()
        );
        (p.check)(calls[0], &id);
        if p.name.starts_with("airflow") {
            // then it asks whether the DAG will run it (is_paused), with the same credentials
            let dag = p.path.strip_suffix("/dagRuns").unwrap();
            let get = got.iter().find(|q| q.method == "GET").expect("the DAG is read after the run is created");
            assert_eq!(get.uri, dag);
            assert_eq!(get.header("authorization"), calls[0].header("authorization"));
            let logins = got.iter().filter(|q| q.uri == "/auth/token").count();
            if p.name == "airflow3" {
                let token = got.iter().find(|q| q.uri == "/auth/token").expect("airflow3 logs in first");
                assert_eq!(token.json(), json!({"username": "admin", "password": "s3cret"}));
                assert_eq!(logins, 2);
            }
            assert_eq!(got.len(), 2 + logins, "{}: nothing else sent", p.name);
        } else {
            assert_eq!(got.len(), 1, "{}: nothing else sent", p.name);
        }
        assert_eq!(summary["actions"]["drift_episodes"][MODEL], json!(1), "{summary}");
        assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{}: {summary}", p.name);
        // the outbox is empty and the history holds the delivered request
        let state = s.dir.path().join(format!("state-{}", p.name));
        assert_eq!(std::fs::read_dir(state.join("outbox")).unwrap().count(), 0);
        let history = std::fs::read_to_string(state.join("retrains.jsonl")).unwrap();
        let entry: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
        assert_eq!((entry["run_id"].as_str(), entry["status"].as_str()), (Some(id.as_str()), Some("delivered")));
    }
}

#[test]
fn secrets_never_reach_the_logs_and_dry_run_sends_nothing() {
    let s = scenario();
    let r = Receiver::start(vec![], Reply::status(200));
    let cfg = s.config(
        "dry",
        &format!("[retrain]\npreset = \"airflow\"\nurl = \"{}\"\nusername = \"admin\"\nsecret = \"hunter2-secret\"\ndry_run = true\n", r.url("/api/v1/dags/d/dagRuns")),
        "",
    );
    let o = crate::helpers::driftd(&[
        "--log-level",
        "info",
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        s.input.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dry run"), "{err}");
    assert!(!err.contains("hunter2"), "a secret was logged");
    assert!(r.requests().is_empty());
    let summary: Value = serde_json::from_str(err.lines().find_map(|l| l.strip_prefix("replay: ")).unwrap()).unwrap();
    assert_eq!(summary["actions"]["retrain_requests"], json!({"dry_run": 1}));
    let shown = crate::helpers::driftd(&["config", "check", cfg.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&shown.stdout).contains("hunter2"));
}

/// Runs one fault scenario: the receiver's script for the retrain path, and what must come of it.
fn fault(name: &str, preset: &str, path: &str, script: Vec<Reply>, extra: &str) -> (Vec<Request>, Value) {
    let s = scenario();
    let r = Receiver::start(script.into_iter().map(|rep| (path, rep)).collect(), Reply::status(200));
    let target = match preset {
        "webhook" => format!(
            "preset = \"webhook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nurl = \"{}\"",
            r.url(path)
        ),
        other => format!("preset = \"{other}\"\nurl = \"{}\"", r.url(path)),
    };
    let cfg = s.config(name, &format!("[retrain]\n{target}\nbackoff = \"20ms\"\n{extra}\n"), "");
    let (_, summary) = replay(&cfg, &s.input);
    let history = std::fs::read_to_string(s.dir.path().join(format!("state-{name}/retrains.jsonl"))).unwrap();
    let entries: Vec<Value> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 1, "{name}: one request in the history");
    assert_eq!(summary["actions"]["drift_episodes"][MODEL], json!(1));
    (r.requests(), entries[0].clone())
}

#[test]
fn faults_are_retried_as_the_status_says_and_never_start_two_runs() {
    // 500, then 200: retried with the same id and body
    let (reqs, e) = fault("e500", "webhook", "/retrain", vec![Reply::status(500)], "");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!((e["status"].as_str(), e["attempts"].as_u64()), (Some("delivered"), Some(2)));

    // 429 with Retry-After: 1 is honoured
    let mut busy = Reply::status(429);
    busy.headers.push(("retry-after", "1".into()));
    let (reqs, e) = fault("e429", "webhook", "/retrain", vec![busy], "");
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(waited >= Duration::from_millis(950), "retried after {waited:?}, Retry-After said 1 s");
    assert_eq!(e["status"], json!("delivered"));

    // a hang past the timeout is abandoned and retried
    let mut hang = Reply::status(200);
    hang.delay = Duration::from_secs(5);
    let started = Instant::now();
    let (reqs, e) = fault("hang", "webhook", "/retrain", vec![hang], "timeout = \"300ms\"");
    assert_eq!(reqs.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5), "the hung attempt was cut at the timeout");
    assert_eq!(e["status"], json!("delivered"));
    assert_eq!(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"), "the receiver can drop the repeat");

    // Airflow: the first attempt times out after Airflow created the run; the retry's 409
    // ("already exists") counts as delivered
    let mut slow = Reply::status(200);
    slow.delay = Duration::from_secs(3);
    let (reqs, e) = fault(
        "a409",
        "airflow",
        "/api/v1/dags/d/dagRuns",
        vec![slow, Reply::json(409, json!({"title": "DAGRun already exists"}))],
        "timeout = \"300ms\"",
    );
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].json()["dag_run_id"], reqs[1].json()["dag_run_id"]);
    assert_eq!((e["status"].as_str(), e["http_status"].as_u64()), (Some("duplicate"), Some(409)));

    // a 4xx other than 408/409/429 is not retried
    let (reqs, e) = fault("e400", "webhook", "/retrain", vec![Reply::json(400, json!({"error": "bad"}))], "");
    assert_eq!(reqs.len(), 1);
    assert_eq!((e["status"].as_str(), e["http_status"].as_u64()), (Some("failed"), Some(400)));
    assert!(e["last_error"].as_str().unwrap().contains("400"));

    // out of attempts: failed, after exactly max_attempts
    let (reqs, e) = fault("e503", "webhook", "/retrain", vec![Reply::status(503); 5], "max_attempts = 3");
    assert_eq!(reqs.len(), 3);
    assert_eq!((e["status"].as_str(), e["attempts"].as_u64()), (Some("failed"), Some(3)));

    // a 307 would re-post the body (GitLab's: its trigger token) where it points: not
    // followed; the call fails naming the target, without its query
    let mut moved = Reply::status(307);
    moved.headers.push(("location", "/elsewhere?token=glptt-SECRET".into()));
    let gitlab = "secret = \"glptt-trigger\"\nref = \"main\"";
    let (reqs, e) = fault("r307", "gitlab", "/api/v4/projects/1/trigger/pipeline", vec![moved], gitlab);
    assert_eq!(reqs.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(), ["/api/v4/projects/1/trigger/pipeline"]);
    assert_eq!((e["status"].as_str(), e["http_status"].as_u64()), (Some("failed"), Some(307)));
    let why = e["last_error"].as_str().unwrap();
    assert!(why.contains("redirected to /elsewhere") && !why.contains("SECRET"), "{why}");
}

/// Kubeflow's own SDK (kfp 2.17.3, which `scripts/test` installs) on a request driftd
/// really sent: the compiled example pipeline declares exactly the parameters of the
/// captured `runtime_config.parameters`, with their types, and runs locally with them
/// (kfp.local's SubprocessRunner: every component, no cluster) to success.
#[test]
fn the_kubeflow_request_runs_the_compiled_example_pipeline_locally() {
    let s = scenario();
    let r = Receiver::start(vec![], Reply::json(200, json!({"run_id": "r-1"})));
    let retrain = format!(
        "[retrain]\npreset = \"kubeflow\"\nurl = \"{}\"\nsecret = \"t\"\npipeline_id = \"p\"\n",
        r.url("/pipeline/apis/v2beta1/runs")
    );
    let (_, summary) = replay(&s.config("kfp", &retrain, ""), &s.input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let sent = r.requests()[0].json();
    let params = &sent["runtime_config"]["parameters"];
    let python = std::env::var_os("DRIFTD_KFP_PYTHON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".cache/driftd/kfp-venv/bin/python")
    });
    assert!(python.exists(), "kfp's Python not found at {}: run scripts/test (DRIFTD_KFP_PYTHON)", python.display());
    let check = |params: &Value| -> Value {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parameters.json");
        std::fs::write(&file, params.to_string()).unwrap();
        let out = std::process::Command::new(&python)
            .arg(crate::helpers::root().join("tests/tools/kfp_check.py"))
            .arg(crate::helpers::root().join("examples/kubeflow/retrain_pipeline.py"))
            .arg(&file)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(String::from_utf8_lossy(&out.stdout).lines().last().unwrap().as_bytes()).unwrap()
    };
    let got = check(params);
    let declared: std::collections::BTreeSet<&String> = got["declared"].as_object().unwrap().keys().collect();
    let sent_names: std::collections::BTreeSet<&String> = params.as_object().unwrap().keys().collect();
    assert_eq!(declared, sent_names, "the pipeline's inputs and driftd's parameters");
    assert!(got["typed"].as_object().unwrap().values().all(|t| t == &json!(true)), "{got}");
    for name in got["required"].as_array().unwrap() {
        assert!(!params[name.as_str().unwrap()].as_str().unwrap().is_empty(), "required {name} is empty");
    }
    assert_eq!(got["run"], json!({"succeeded": true}), "{got}");
    // the pipeline does check what it gets: a drift run without its report fails
    let mut without = params.clone();
    without["drift_report"] = json!("");
    assert_eq!(check(&without)["run"]["succeeded"], json!(false));
}

/// `gitlab-ci-local` 4.50.0 (npm; `scripts/test` installs it) on the example
/// `.gitlab-ci.yml`: it parses and passes GitLab's JSON schema, and its `preprocess` job
/// runs with the `DRIFTD_*` variables of a request driftd really sent (the trigger's form),
/// in the shell executor. The jobs name a `python:3.12-slim` image, which needs Docker (none
/// here): the copy run has its `image:` lines removed. `train` (`dvc repro` on the team's
/// data) and what follows it are not run.
#[test]
fn the_gitlab_pipeline_passes_its_schema_and_runs_preprocess_with_a_real_trigger() {
    let s = scenario();
    let r = Receiver::start(vec![], Reply::json(201, json!({"id": 1})));
    let retrain = format!(
        "[retrain]\npreset = \"gitlab\"\nurl = \"{}\"\nsecret = \"glptt-t\"\nref = \"main\"\n",
        r.url("/api/v4/projects/1/trigger/pipeline")
    );
    let (_, summary) = replay(&s.config("gitlab", &retrain, ""), &s.input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let form = r.requests()[0].form();
    let vars: Vec<(String, String)> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("variables[")?.strip_suffix(']')?.to_string(), v.clone())))
        .collect();
    assert_eq!(vars.len(), 5, "{form:?}");

    let gcl = std::env::var_os("DRIFTD_GITLAB_CI_LOCAL").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".cache/driftd/gitlab-ci-local/node_modules/.bin/gitlab-ci-local")
    });
    assert!(gcl.exists(), "gitlab-ci-local not found at {}: run scripts/test", gcl.display());
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let run = |args: &[String]| std::process::Command::new(&gcl).args(args).current_dir(repo.path()).output().unwrap();
    git(&["init", "-q"]);
    let original = std::fs::read_to_string(crate::helpers::root().join("examples/gitlab/.gitlab-ci.yml")).unwrap();
    std::fs::write(repo.path().join(".gitlab-ci.yml"), &original).unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "as shipped"]);
    let o = run(&["--list".to_string()]);
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && out.contains("json schema validated"), "{out}");

    let shell: String =
        original.lines().filter(|l| !l.trim_start().starts_with("image:")).collect::<Vec<_>>().join("\n");
    std::fs::write(repo.path().join(".gitlab-ci.yml"), shell + "\n").unwrap();
    git(&["commit", "-qam", "no images: the shell executor"]);
    let mut args = vec!["preprocess".to_string(), "--shell-executor-no-image".to_string()];
    args.extend(["--variable".to_string(), "CI_PIPELINE_SOURCE=trigger".to_string()]);
    for (k, v) in &vars {
        args.extend(["--variable".to_string(), format!("{k}={v}")]);
    }
    let o = run(&args);
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && out.contains("PASS  preprocess"), "{out}");
    let report: Value = serde_json::from_str(&form["variables[DRIFTD_REPORT]"]).unwrap();
    let share = report["share_of_drifted_features"].as_f64().unwrap();
    assert!(out.contains(&format!("drift share {share}")), "the job read the report driftd sent: {out}");
    let run_id = &form["variables[DRIFTD_RUN_ID]"];
    assert!(out.contains(&format!("({run_id}, drift)")), "{out}");
}

/// Airflow takes a run for a paused DAG with a 200 and never starts it: the history says
/// so (the request is delivered: a retry would not help), and so does the log.
#[test]
fn a_run_delivered_to_a_paused_airflow_dag_is_flagged() {
    let s = scenario();
    let r = Receiver::start(
        vec![
            ("/api/v1/dags/d/dagRuns", Reply::json(200, json!({"dag_run_id": "x", "state": "queued"}))),
            ("/api/v1/dags/d", Reply::json(200, json!({"dag_id": "d", "is_paused": true}))),
        ],
        Reply::status(404),
    );
    let retrain = format!("[retrain]\npreset = \"airflow\"\nurl = \"{}\"\n", r.url("/api/v1/dags/d/dagRuns"));
    let (_, summary) = replay(&s.config("paused", &retrain, ""), &s.input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let history = std::fs::read_to_string(s.dir.path().join("state-paused/retrains.jsonl")).unwrap();
    let e: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(e["status"], json!("delivered"));
    assert!(e["last_error"].as_str().unwrap().contains("DAG is paused"), "{e}");
    let methods: Vec<(String, String)> = r.requests().iter().map(|q| (q.method.clone(), q.uri.clone())).collect();
    assert_eq!(
        methods,
        [("POST".to_string(), "/api/v1/dags/d/dagRuns".to_string()), ("GET".to_string(), "/api/v1/dags/d".to_string())]
    );
}

/// The answers each service gives in its common failure setups (their specifications and
/// server code, issue #16), from a real receiver, through the real binary's outbox.
#[test]
fn each_services_failure_answers_are_read_in_its_own_terms() {
    // Jenkins: 409 is a disabled job, nothing started: failed, not "duplicate"
    let jenkins = "username = \"driftd\"\nsecret = \"api-token\"";
    let (reqs, e) = fault("j409", "jenkins", "/job/retrain/buildWithParameters", vec![Reply::status(409)], jenkins);
    assert_eq!(reqs.len(), 1);
    assert_eq!((e["status"].as_str(), e["http_status"].as_u64()), (Some("failed"), Some(409)));
    assert!(e["last_error"].as_str().unwrap().contains("disabled job"), "{e}");
    // Jenkins' CSRF answer to a call without a crumb names the fix
    let crumb = Reply { body: "Error 403 No valid crumb was included in the request".into(), ..Reply::status(403) };
    let (reqs, e) = fault("j403", "jenkins", "/job/retrain/buildWithParameters", vec![crumb], jenkins);
    assert_eq!(reqs.len(), 1);
    assert_eq!(e["status"], json!("failed"));
    assert!(e["last_error"].as_str().unwrap().contains("username"), "{e}");

    // GitLab.com's default since 17.7: no pipeline variables
    let refused =
        Reply::json(400, json!({"message": {"base": ["Insufficient permissions to set pipeline variables"]}}));
    let gitlab = "secret = \"glptt-trigger\"\nref = \"main\"";
    let (reqs, e) = fault("g400", "gitlab", "/api/v4/projects/1/trigger/pipeline", vec![refused], gitlab);
    assert_eq!(reqs.len(), 1);
    assert_eq!((e["status"].as_str(), e["http_status"].as_u64()), (Some("failed"), Some(400)));
    assert!(e["last_error"].as_str().unwrap().contains("Minimum role to use pipeline variables"), "{e}");

    // Argo before v3.4.5: an existing workflow name is a 500 "already exists": the run is
    // there, after one attempt (a timed-out first attempt that Argo took, then the retry)
    let mut slow = Reply::status(200);
    slow.delay = Duration::from_secs(3);
    let exists = Reply::json(
        500,
        json!({"code": 2, "message": "workflows.argoproj.io \"driftd-housing-drift-x\" already exists"}),
    );
    let argo = "secret = \"t\"\nworkflow_template = \"driftd-retrain\"\ntimeout = \"300ms\"";
    let (reqs, e) = fault("a500", "argo", "/api/v1/workflows/ml/submit", vec![slow, exists], argo);
    assert_eq!(reqs.len(), 2, "no third attempt");
    assert_eq!(reqs[0].json()["submitOptions"]["name"], reqs[1].json()["submitOptions"]["name"]);
    assert_eq!((e["status"].as_str(), e["http_status"].as_u64()), (Some("duplicate"), Some(500)));

    // Kubeflow has no run key: its 409 is no proof of a run
    let kubeflow = "secret = \"t\"\npipeline_id = \"p\"";
    let (reqs, e) = fault("k409", "kubeflow", "/pipeline/apis/v2beta1/runs", vec![Reply::status(409)], kubeflow);
    assert_eq!(reqs.len(), 1);
    assert_eq!(e["status"], json!("failed"));
}

#[test]
fn a_request_pending_at_a_crash_is_delivered_once_after_restart() {
    let s = scenario();
    // a port nothing listens on yet
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cfg = s.config(
        "crash",
        &format!("[retrain]\npreset = \"webhook\"\nsecret = \"k\"\nurl = \"http://{addr}/retrain\"\nbackoff = \"1s\"\nmax_attempts = 20\n"),
        "",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["replay", "--config", cfg.to_str().unwrap(), "--input", s.input.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let outbox = s.dir.path().join("state-crash/outbox");
    let deadline = Instant::now() + Duration::from_secs(60);
    let pending = loop {
        let tried: Vec<Value> = std::fs::read_dir(&outbox)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| d.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|d| serde_json::from_slice::<Value>(&std::fs::read(d.path()).ok()?).ok())
            .filter(|e| e["attempts"].as_u64() >= Some(1))
            .collect();
        if let Some(e) = tried.into_iter().next() {
            break e;
        }
        assert!(Instant::now() < deadline, "no attempt recorded in the outbox");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(pending["status"], json!("pending"));

    // the receiver comes up; driftd restarts on the same state (no new input) and delivers
    let r = Receiver::start_on(std::net::TcpListener::bind(addr).unwrap(), vec![], Reply::status(200));
    let empty = s.dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (_, summary) = replay(&cfg, &empty);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}));
    let got = r.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), pending["run_id"].as_str().unwrap());

    // the same logs again (a re-read after a crash): the run is known, nothing new is sent
    let (_, _) = replay(&cfg, &s.input);
    assert_eq!(r.requests().len(), 1, "a finished run is never requested again");
}

#[test]
fn one_episode_one_retrain_and_alerts_that_fire_then_resolve_on_every_receiver() {
    let s = scenario();
    let r = Receiver::start(vec![], Reply::status(200));
    let alerts = format!(
        r#"[retrain]
preset = "webhook"
url = "{retrain}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[alerts]]
kind = "alertmanager"
url = "{am}"

[[alerts]]
kind = "slack"
name = "slack-critical"
url = "{slack_critical}"
severity = "critical"

[[alerts]]
kind = "slack"
name = "slack-warning"
url = "{slack_warning}"
severity = "warning"

[[alerts]]
kind = "pagerduty"
url = "{pd}"
secret = "R0UTINGKEY"

[[alerts]]
kind = "webhook"
url = "{wh}"
secret = "alert-secret"
"#,
        retrain = r.url("/retrain"),
        am = r.url("/am"),
        slack_critical = r.url("/slack/critical"),
        slack_warning = r.url("/slack/warning"),
        pd = r.url("/pd/v2/enqueue"),
        wh = r.url("/wh"),
    );
    // Latitude drifts in every drifted window: the episode is critical
    let cfg = s.config("alerts", &alerts, "critical = [\"Latitude\"]");
    let (reports, summary) = replay(&cfg, &s.input);
    let id = expected_run_id(&reports);
    let by = |p: &str| r.requests().into_iter().filter(|q| q.uri.starts_with(p)).collect::<Vec<_>>();
    assert_eq!(by("/retrain").len(), 1);

    let am = by("/am");
    assert_eq!(am.len(), 2, "firing, then resolved");
    assert!(am.iter().all(|q| q.uri == "/am/api/v2/alerts"));
    let (fire, resolve) = (am[0].json(), am[1].json());
    for a in [&fire[0], &resolve[0]] {
        assert_eq!(
            a["labels"],
            json!({"alertname": "DriftdModelDrifting", "model": MODEL, "severity": "critical", "service": "driftd"})
        );
    }
    let now = fmt_ms(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64);
    assert!(fire[0]["endsAt"].as_str().unwrap() > now.as_str(), "a firing alert ends in the future");
    assert!(resolve[0]["endsAt"].as_str().unwrap() <= now.as_str(), "a resolved alert has ended");
    assert_eq!(fire[0]["annotations"]["episode"], json!(id));

    let slack = by("/slack/critical");
    assert_eq!(slack.len(), 2);
    assert!(slack[0].json()["text"].as_str().unwrap().contains("CRITICAL"));
    assert!(slack[1].json()["text"].as_str().unwrap().contains("Resolved"));
    assert!(by("/slack/warning").is_empty(), "the warning receiver takes no critical alert");

    let pd = by("/pd");
    assert_eq!(pd.len(), 2);
    let (t, res) = (pd[0].json(), pd[1].json());
    assert_eq!((t["event_action"].as_str(), res["event_action"].as_str()), (Some("trigger"), Some("resolve")));
    assert_eq!(t["dedup_key"], res["dedup_key"]);
    assert_eq!(t["routing_key"], json!("R0UTINGKEY"));
    assert_eq!(t["payload"]["severity"], json!("critical"));
    assert_eq!(t["payload"]["source"], json!("driftd"));

    let wh = by("/wh");
    assert_eq!(wh.len(), 2);
    let types: Vec<Value> = wh.iter().map(|q| q.json()["type"].clone()).collect();
    assert_eq!(types, [json!("driftd.alert.firing"), json!("driftd.alert.resolved")]);
    for q in &wh {
        let ts: i64 = q.header("webhook-timestamp").parse().unwrap();
        assert!(driftd::sinks::webhook::verify(
            "alert-secret",
            q.header("webhook-id"),
            ts,
            &q.body,
            q.header("webhook-signature")
        ));
    }
    assert_eq!(
        summary["actions"]["alerts_sent"],
        json!({"alertmanager": 2, "slack-critical": 2, "slack-warning": 0, "pagerduty": 2, "webhook": 2})
    );
}

/// Two drift episodes of `MODEL`, 4 clean windows of 1,000 events apart, the second's
/// clock continuing the first's: written to `dir/two.jsonl`.
fn two_episodes(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs = episode_logs(MODEL, 1000, 2, 3, 2);
    let offset = logs.len() as i64 * 60_000;
    for line in episode_logs(MODEL, 1000, 0, 3, 3) {
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let ms = driftd::time::parse_rfc3339_ms(v["timestamp"].as_str().unwrap()).unwrap() + offset;
        v["timestamp"] = json!(fmt_ms(ms));
        logs.push(v.to_string());
    }
    let input = dir.join("two.jsonl");
    std::fs::write(&input, logs.join("\n")).unwrap();
    input
}

#[test]
fn hysteresis_and_cooldown_over_two_episodes() {
    // two episodes, 4 clean windows apart; a cooldown longer than the gap holds the second
    // retrain back, the second alert still goes out
    let dir = tempfile::tempdir().unwrap();
    let input = two_episodes(dir.path());
    let r = Receiver::start(vec![], Reply::status(200));
    for (name, cooldown, expected) in [("long", "30d", 1), ("short", "1h", 2)] {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\ncooldown = \"{cooldown}\"\n\
                 [retrain]\npreset = \"webhook\"\nsecret = \"k\"\nurl = \"{}\"\n[[alerts]]\nkind = \"slack\"\nurl = \"{}\"\n{}",
                dir.path().join(name).display(),
                r.url(&format!("/{name}/retrain")),
                r.url(&format!("/{name}/slack")),
                model_toml(MODEL, "")
            ),
        )
        .unwrap();
        let (_, summary) = replay(&cfg, &input);
        assert_eq!(summary["actions"]["drift_episodes"][MODEL], json!(2), "{summary}");
        let got = |p: &str| r.requests().iter().filter(|q| q.uri == format!("/{name}/{p}")).count();
        assert_eq!(got("retrain"), expected, "cooldown {cooldown}");
        assert_eq!(got("slack"), 4, "two episodes: two firing and two resolved alerts");
    }
}

#[test]
fn a_retrain_queued_while_another_is_in_flight_is_delivered_before_replay_ends() {
    // the first request is held 3 s by its receiver: the second episode's request is
    // queued, and the replay told to drain, while the first is still in flight
    let dir = tempfile::tempdir().unwrap();
    let input = two_episodes(dir.path());
    let slow = Reply { delay: Duration::from_secs(3), ..Reply::status(200) };
    let r = Receiver::start(vec![("/retrain", slow)], Reply::status(200));
    let cfg = dir.path().join("slow.toml");
    std::fs::write(
        &cfg,
        format!(
            "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n\
             [retrain]\npreset = \"webhook\"\nsecret = \"k\"\nurl = \"{}\"\ntimeout = \"10s\"\n{}",
            dir.path().join("state").display(),
            r.url("/retrain"),
            model_toml(MODEL, "")
        ),
    )
    .unwrap();
    let (_, summary) = replay(&cfg, &input);
    assert_eq!(summary["actions"]["drift_episodes"][MODEL], json!(2), "{summary}");
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 2}), "{summary}");
    assert_eq!(r.requests().len(), 2);
}

#[test]
fn a_receivers_rate_limit_holds_new_alerts_back_and_one_resolved_before_its_turn_is_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = episode_logs("a", 1000, 4, 5, 4);
    logs.extend(episode_logs("b", 1000, 4, 5, 4));
    let input = dir.path().join("two-models.jsonl");
    std::fs::write(&input, logs.join("\n")).unwrap();
    let r = Receiver::start(vec![], Reply::status(200));
    let cfg = dir.path().join("rl.toml");
    std::fs::write(
        &cfg,
        format!(
            "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n\
             [[alerts]]\nkind = \"slack\"\nurl = \"{}\"\nmax_per_minute = 1\n{}{}",
            dir.path().join("state").display(),
            r.url("/slack"),
            model_toml("a", ""),
            model_toml("b", "")
        ),
    )
    .unwrap();
    let (_, summary) = replay(&cfg, &input);
    assert_eq!(summary["actions"]["drift_episodes"], json!({"a": 1, "b": 1}));
    let texts: Vec<String> = r.requests().iter().map(|q| q.json()["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts.len(), 2, "a fires and resolves; b's firing waits for room and resolves first: {texts:?}");
    assert!(texts.iter().all(|t| t.contains("`a`") || t.contains("Model a ")), "{texts:?}");
    assert_eq!(summary["actions"]["alerts_sent"], json!({"slack": 2}));
}

/// A model removed from the config by a reload while it drifts: its episode ends
/// (`model_removed`), its alert resolves, and nothing more is sent for it.
#[test]
fn removing_a_drifting_model_resolves_its_alert() {
    use driftd::actions::{ActionConfig, Actions, Shutdown};
    use driftd::config::Settings;
    let s = scenario();
    let r = Receiver::start(vec![], Reply::status(200));
    let cfg = s.config("removed", &format!("[[alerts]]\nkind = \"webhook\"\nurl = \"{}\"\n", r.url("/wh")), "");
    let settings = Settings::load(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = rt.enter();
    let (actions, workers) =
        Actions::start(&settings, std::sync::Arc::new(driftd::telemetry::Telemetry::new())).unwrap();
    // the first six windows: the episode fires on the sixth
    let refs = driftd::reference::resolve_blocking(&settings).unwrap();
    let mut pipeline = driftd::pipeline::Pipeline::new(&settings, refs).unwrap();
    let lines = std::fs::read_to_string(&s.input).unwrap();
    let mut windows = 0;
    for line in lines.lines() {
        let _ = pipeline.ingest(line.as_bytes(), None, None);
        for closed in pipeline.take_closed() {
            windows += 1;
            if windows <= 6 {
                actions.observe(&driftd::pipeline::report_window(closed));
            }
        }
    }
    assert!(actions.states_of(MODEL).iter().any(|(_, st)| st.state == driftd::policy::DriftState::Drifting));
    // the reload: the model is gone
    let other = std::fs::read_to_string(&cfg).unwrap().replace("name = \"housing\"", "name = \"other\"");
    std::fs::write(&cfg, other).unwrap();
    actions.apply(ActionConfig::from_settings(&Settings::load(&cfg).unwrap()).unwrap()).unwrap();
    assert!(actions.states_of(MODEL).is_empty(), "its state is gone");
    rt.block_on(workers.shutdown(&actions, Shutdown::Drain));
    let sent: Vec<Value> = r.requests().iter().map(|q| q.json()).collect();
    let types: Vec<&Value> = sent.iter().map(|b| &b["type"]).collect();
    assert_eq!(types, [&json!("driftd.alert.firing"), &json!("driftd.alert.resolved")], "{sent:?}");
    assert!(sent[1].to_string().contains("removed"), "{}", sent[1]);
}

/// A model removed by a reload while its data is broken: its data-quality incident
/// resolves (saying why) instead of staying open in every receiver.
#[test]
fn removing_a_model_with_broken_data_resolves_its_data_quality_alert() {
    use driftd::actions::{ActionConfig, Actions, Shutdown};
    use driftd::config::Settings;
    use driftd::policy::{DriftTracker, QualityState};
    let s = scenario();
    let r = Receiver::start(vec![], Reply::status(200));
    let cfg = s.config("removed-dq", &format!("[[alerts]]\nkind = \"webhook\"\nurl = \"{}\"\n", r.url("/wh")), "");
    let settings = Settings::load(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = rt.enter();
    let (actions, workers) =
        Actions::start(&settings, std::sync::Arc::new(driftd::telemetry::Telemetry::new())).unwrap();
    let incident = "driftd-housing-quality-20261101t010000z";
    let broken = DriftTracker {
        quality: QualityState {
            failing: true,
            incident: Some(incident.into()),
            since: Some("2026-11-01T01:00:00Z".into()),
            incidents: 1,
        },
        ..DriftTracker::default()
    };
    actions.restore(std::collections::BTreeMap::from([((MODEL.to_string(), None), broken)]));
    let other = std::fs::read_to_string(&cfg).unwrap().replace("name = \"housing\"", "name = \"other\"");
    std::fs::write(&cfg, other).unwrap();
    actions.apply(ActionConfig::from_settings(&Settings::load(&cfg).unwrap()).unwrap()).unwrap();
    rt.block_on(workers.shutdown(&actions, Shutdown::Drain));
    let sent: Vec<Value> = r.requests().iter().map(|q| q.json()).collect();
    let last = sent.last().expect("a notification");
    assert_eq!(last["type"], json!("driftd.data_quality.resolved"), "{sent:?}");
    assert_eq!(last["data"]["episode"], json!(incident));
    assert!(last["data"]["resolution"].as_str().unwrap().contains("removed"), "{last}");
}
