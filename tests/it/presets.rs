//! Each retrain preset against what its service documents: the request (method, path,
//! headers, auth, body) from a recording receiver, the parameters against the example
//! pipelines' own declarations, and each service's failure answers read in its terms
//! (the examples run by their own tooling on these requests: `preset_pipelines.rs`).
//! `driftd replay` of one drift episode drives each (`actions.rs`' scenario).

use serde_json::{json, Value};

use std::time::Duration;

use crate::actions::{expected_run_id, fault, scenario, MODEL};
use crate::helpers::{http_with, replay, JenkinsStandIn, Receiver, Reply, Request};

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
                assert!(driftd::outbound::webhook::verify(
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    id,
                    ts,
                    &q.body,
                    q.header("webhook-signature")
                ));
                let mut tampered = q.body.clone();
                tampered[10] ^= 1;
                assert!(!driftd::outbound::webhook::verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, ts, &tampered, q.header("webhook-signature")));
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
    // airflow3 logs in once for the run and the DAG read after it
    let r = Receiver::start(vec![("/auth/token", token())], Reply::json(200, json!({"ok": true})));
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
                assert_eq!(logins, 1);
            }
            assert_eq!(got.len(), 2 + logins, "{}: nothing else sent", p.name);
        } else {
            assert_eq!(got.len(), 1, "{}: nothing else sent", p.name);
        }
        assert_eq!(summary["actions"]["drift_episodes"][MODEL], json!(1), "{summary}");
        assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{}: {summary}", p.name);
        // the outbox is empty and the history holds the delivered request
        let state = s.dir.path().join(format!("state-{}/replay", p.name));
        assert_eq!(std::fs::read_dir(state.join("outbox")).unwrap().count(), 0);
        let history = std::fs::read_to_string(state.join("retrains.jsonl")).unwrap();
        let entry: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
        assert_eq!((entry["run_id"].as_str(), entry["status"].as_str()), (Some(id.as_str()), Some("delivered")));
    }
}

/// The one request driftd's replay of an episode sends to `preset` (its settings, at `path`
/// of a receiver answering `reply`).
pub(crate) fn captured(preset: &str, settings: &str, path: &str, reply: Reply) -> Request {
    let s = scenario();
    let r = Receiver::start(vec![], reply);
    let retrain = format!("[retrain]\npreset = \"{preset}\"\nurl = \"{}\"\n{settings}\n", r.url(path));
    let (_, summary) = replay(&s.config(preset, &retrain, ""), &s.input);
    assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
    let got = r.requests();
    assert_eq!(got.len(), 1, "{preset}");
    got[0].clone()
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
    let history = std::fs::read_to_string(s.dir.path().join("state-paused/replay/retrains.jsonl")).unwrap();
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

/// Jenkins without a user: the job's trigger token in the form, and the CSRF crumb driftd
/// fetches for each attempt, sent in the session it was issued in, against a stand-in that
/// enforces it as Jenkins' `CrumbFilter` does (no Jenkins can run here); and a Jenkins
/// without CSRF protection (no crumb issuer) gets the POST without one.
#[test]
fn jenkins_with_a_trigger_token_sends_the_crumb_of_its_session() {
    let j = JenkinsStandIn::start("trigger-t0ken", true);
    // the stand-in enforces it: a POST without a crumb is refused
    let path = "/job/retrain/buildWithParameters";
    let anonymous = http_with(j.addr.port(), "POST", path, "");
    assert_eq!(anonymous.map(|(s, b)| (s, b.contains("No valid crumb"))), Some((403, true)));

    let s = scenario();
    let run = |name: &str, j: &JenkinsStandIn| {
        let retrain =
            format!("[retrain]\npreset = \"jenkins\"\nurl = \"{}\"\nsecret = \"trigger-t0ken\"\n", j.url(path));
        let (reports, summary) = replay(&s.config(name, &retrain, ""), &s.input);
        assert_eq!(summary["actions"]["retrain_requests"], json!({"delivered": 1}), "{summary}");
        expected_run_id(&reports)
    };
    let id = run("crumb", &j);
    assert_eq!(j.answers(), [403, 201], "the test's own POST, then driftd's");
    assert_eq!(j.crumbs_issued(), 1);
    let builds = j.builds();
    assert_eq!(builds.len(), 1);
    let mut params: serde_json::Map<String, Value> =
        builds[0].iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    assert_eq!(params.remove("token"), Some(json!("trigger-t0ken")));
    check_params(&Value::Object(params), &id, true);

    // CSRF protection off: 404 from the issuer, the POST goes without a crumb
    let open = JenkinsStandIn::start("trigger-t0ken", false);
    run("no-crumb", &open);
    assert_eq!((open.answers(), open.builds().len()), (vec![201], 1));
}
