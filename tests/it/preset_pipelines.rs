//! The example pipelines run by their own tooling on requests driftd really sent: the
//! Kubeflow pipeline by kfp's local runner, the GitLab pipeline by gitlab-ci-local (its
//! schema, its preprocess job with a captured trigger or reading driftd's API, its run-id
//! guard). `presets.rs` holds the requests themselves.

use std::time::Duration;

use serde_json::{json, Value};

use crate::actions::MODEL;
use crate::helpers::{episode_logs, http_get, produce, producer, tool, Broker, InProcess, Receiver, Reply, TestConfig};
use crate::presets::captured;

/// Kubeflow's own SDK (kfp 2.17.3, which `scripts/test` installs) on a request driftd
/// really sent: the compiled example pipeline declares exactly the parameters of the
/// captured `runtime_config.parameters`, with their types, and runs locally with them
/// (kfp.local's SubprocessRunner: every component, no cluster) to success.
#[test]
fn the_kubeflow_request_runs_the_compiled_example_pipeline_locally() {
    let path = "/pipeline/apis/v2beta1/runs";
    let sent =
        captured("kubeflow", "secret = \"t\"\npipeline_id = \"p\"", path, Reply::json(200, json!({"run_id": "r-1"})));
    let sent = sent.json();
    let params = &sent["runtime_config"]["parameters"];
    let python = tool("DRIFTD_KFP_PYTHON", "kfp-venv/bin/python");
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
    // a run id already handled is served from KFP's cache: every task is cached
    let cached = got["cached"].as_object().unwrap();
    assert_eq!(cached.len(), 4, "{got}");
    assert!(cached.values().all(|c| c == &json!(true)), "{got}");
    // the pipeline does check what it gets: a drift run without its report fails
    let mut without = params.clone();
    without["drift_report"] = json!("");
    assert_eq!(check(&without)["run"]["succeeded"], json!(false));
    // a report cut to fit ([retrain] driftd_url set): preprocess reads the whole request
    // from the link, and fails if the link does not answer
    let whole: Value = serde_json::from_str(params["drift_report"].as_str().unwrap()).unwrap();
    let api = Receiver::start(
        vec![("/api/", Reply::json(200, json!({"run_id": params["run_id"], "params": {"drift_report": whole}})))],
        Reply::status(404),
    );
    let mut cut = params.clone();
    let path = format!("/api/v1/models/{MODEL}/retrains/{}", params["run_id"].as_str().unwrap());
    let link = api.url(&path);
    cut["drift_report"] =
        json!(json!({"model": MODEL, "dataset_drift": true, "truncated": true, "full_report": link}).to_string());
    assert_eq!(check(&cut)["run"], json!({"succeeded": true}));
    assert_eq!(api.requests().iter().map(|q| q.uri.clone()).collect::<Vec<_>>(), [path]);
    assert_eq!(check(&cut)["run"]["succeeded"], json!(false), "the link no longer answers");
}

/// `gitlab-ci-local` 4.50.0 (npm; `scripts/test` installs it) on the example
/// `.gitlab-ci.yml`: it parses and passes GitLab's JSON schema, and its `preprocess` job
/// runs with the `DRIFTD_*` variables of a request driftd really sent (the trigger's form),
/// in the shell executor. The jobs name a `python:3.12-slim` image, which needs Docker (none
/// here): the copy run has its `image:` lines removed. `train` (`dvc repro` on the team's
/// data) and what follows it are not run.
#[test]
fn the_gitlab_pipeline_passes_its_schema_and_runs_preprocess_with_a_real_trigger() {
    let path = "/api/v4/projects/1/trigger/pipeline";
    let form =
        captured("gitlab", "secret = \"glptt-t\"\nref = \"main\"", path, Reply::json(201, json!({"id": 1}))).form();
    let vars: Vec<(String, String)> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("variables[")?.strip_suffix(']')?.to_string(), v.clone())))
        .collect();
    assert_eq!(vars.len(), 5, "{form:?}");

    let repo = GitlabRepo::new();
    let (ok, out) = repo.list();
    assert!(ok && out.contains("json schema validated"), "{out}");
    repo.without_images();
    // the run-id marks (GitLab's generic package registry): none, then the one just put
    let marks = Receiver::start(
        vec![("/runs/", Reply::status(404)), ("/runs/", Reply::status(201)), ("/runs/", Reply::status(200))],
        Reply::status(500),
    );
    let mut args = vec![
        ("CI_PIPELINE_SOURCE".to_string(), "trigger".to_string()),
        ("DRIFTD_RUNS_URL".to_string(), marks.url("/runs")),
        ("CI_JOB_TOKEN".to_string(), "job-token".to_string()),
    ];
    args.extend(vars);
    let (ok, out) = repo.run("preprocess", &args);
    assert!(ok && out.contains("PASS  preprocess"), "{out}");
    let report: Value = serde_json::from_str(&form["variables[DRIFTD_REPORT]"]).unwrap();
    let share = report["share_of_drifted_features"].as_f64().unwrap();
    assert!(out.contains(&format!("drift share {share}")), "the job read the report driftd sent: {out}");
    let run_id = &form["variables[DRIFTD_RUN_ID]"];
    assert!(out.contains(&format!("({run_id}, drift)")), "{out}");
    let mark: Vec<(String, String, String)> =
        marks.requests().iter().map(|q| (q.method.clone(), q.uri.clone(), q.header("job-token").to_string())).collect();
    let file = format!("/runs/{run_id}.txt");
    let job = "job-token".to_string();
    assert_eq!(mark, [("GET".into(), file.clone(), job.clone()), ("PUT".into(), file, job)]);

    // the same trigger again (driftd retried a request whose answer it lost): the run id
    // is marked, preprocess says so and the later jobs do nothing
    let (ok, out) = repo.run("preprocess", &args);
    assert!(ok && out.contains(&format!("run {run_id} was handled already; skipping")), "{out}");
    assert!(!out.contains(&format!("({run_id}, drift)")), "{out}");
    let env = std::fs::read_to_string(repo.dir.path().join("driftd.env")).unwrap();
    assert!(env.contains("DRIFTD_SKIP=1"), "{env}");
    args.push(("DRIFTD_SKIP".to_string(), "1".to_string()));
    let (ok, out) = repo.run("train", &args);
    assert!(ok && out.contains("was handled already; skipping"), "{out}");
    assert_eq!(marks.requests().len(), 3, "one look, no second mark");
}

/// A project that refuses pipeline variables (GitLab.com's default since 17.7): with
/// `variables = false` the trigger carries the token and the ref only, and the example
/// pipeline's `preprocess` reads the request from the running daemon
/// (`/api/v1/models/{name}/retrains/latest`, at `$DRIFTD_URL` for `$DRIFTD_MODEL`, project
/// variables): its run id and the report driftd holds for it.
#[test]
fn gitlab_without_pipeline_variables_reads_the_request_from_driftd() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let path = "/api/v4/projects/1/trigger/pipeline";
    let receiver = Receiver::start(vec![], Reply::json(201, json!({"id": 1})));
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-gitlab")
        .state(&dir.path().join("state"))
        .episode_defaults()
        .section(&format!(
            "[retrain]\npreset = \"gitlab\"\nurl = \"{}\"\nsecret = \"glptt-t\"\nref = \"main\"\nvariables = false\nbackoff = \"100ms\"",
            receiver.url(path)
        ))
        .model(MODEL, "")
        .write(&dir.path().join("driftd.toml"));
    let daemon = InProcess::start(&cfg);
    let logs = episode_logs(MODEL, 1000, 4, 5, 4);
    produce(&producer(&broker.bootstrap()), &logs[..9000], MODEL, None);
    let trigger = receiver.wait_for(path, 1, Duration::from_secs(90));
    let form = trigger[0].form();
    assert_eq!(form.keys().map(String::as_str).collect::<Vec<_>>(), ["ref", "token"], "no variables");

    let (code, body) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains/latest")).unwrap();
    assert_eq!(code, 200, "{body}");
    let entry: Value = serde_json::from_str(&body).unwrap();
    let run_id = entry["run_id"].as_str().unwrap().to_string();
    let share = entry["params"]["drift_report"]["share_of_drifted_features"].as_f64().unwrap();
    // the same request by its run id (where a report cut to fit links), and no other
    let (code, body) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains/{run_id}")).unwrap();
    assert_eq!(code, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&one["run_id"], &one["params"]), (&entry["run_id"], &entry["params"]));
    let (code, body) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains/{run_id}x")).unwrap();
    assert_eq!(code, 404, "{body}");

    let repo = GitlabRepo::new();
    repo.without_images();
    let marks = Receiver::start(vec![("/runs/", Reply::status(404))], Reply::status(201));
    let vars = [
        ("CI_PIPELINE_SOURCE", "trigger".to_string()),
        ("DRIFTD_URL", format!("http://127.0.0.1:{}", daemon.port)),
        ("DRIFTD_MODEL", MODEL.to_string()),
        ("DRIFTD_RUNS_URL", marks.url("/runs")),
    ];
    let (ok, out) = repo.run("preprocess", &vars.map(|(k, v)| (k.to_string(), v)));
    assert!(ok && out.contains("PASS  preprocess"), "{out}");
    assert!(out.contains(&format!("({run_id}, drift)")), "the job took driftd's run id: {out}");
    assert!(out.contains(&format!("drift share {share}")), "and its report: {out}");
    // the run id goes on to the later jobs (the job's dotenv report)
    let env = std::fs::read_to_string(repo.dir.path().join("driftd.env")).unwrap();
    assert!(env.contains(&format!("DRIFTD_RUN_ID={run_id}")), "{env}");
}

/// The example `.gitlab-ci.yml` in a fresh Git repository, for `gitlab-ci-local` 4.50.0
/// (npm; `scripts/test` installs it).
struct GitlabRepo {
    dir: tempfile::TempDir,
    gcl: std::path::PathBuf,
}

impl GitlabRepo {
    fn new() -> GitlabRepo {
        let repo = GitlabRepo {
            dir: tempfile::tempdir().unwrap(),
            gcl: tool("DRIFTD_GITLAB_CI_LOCAL", "gitlab-ci-local/node_modules/.bin/gitlab-ci-local"),
        };
        repo.git(&["init", "-q"]);
        let original = std::fs::read_to_string(crate::helpers::root().join("examples/gitlab/.gitlab-ci.yml")).unwrap();
        std::fs::write(repo.dir.path().join(".gitlab-ci.yml"), original).unwrap();
        repo.git(&["add", "."]);
        repo.git(&["commit", "-qm", "as shipped"]);
        repo
    }

    fn git(&self, args: &[&str]) {
        let o = std::process::Command::new("git")
            .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// The jobs name a `python:3.12-slim` image, which needs Docker (none here): without
    /// their `image:` lines gitlab-ci-local runs them in its shell executor.
    fn without_images(&self) {
        let file = self.dir.path().join(".gitlab-ci.yml");
        let text = std::fs::read_to_string(&file).unwrap();
        let shell: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("image:")).collect();
        std::fs::write(&file, shell.join("\n") + "\n").unwrap();
        self.git(&["commit", "-qam", "no images: the shell executor"]);
    }

    fn gcl(&self, args: &[String]) -> (bool, String) {
        let o = std::process::Command::new(&self.gcl).args(args).current_dir(self.dir.path()).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    }

    /// `--list`: parsed and validated against GitLab's schema.
    fn list(&self) -> (bool, String) {
        self.gcl(&["--list".to_string()])
    }

    /// One job, in the shell executor, with these variables.
    fn run(&self, job: &str, vars: &[(String, String)]) -> (bool, String) {
        let mut args = vec![job.to_string(), "--shell-executor-no-image".to_string()];
        for (k, v) in vars {
            args.extend(["--variable".to_string(), format!("{k}={v}")]);
        }
        self.gcl(&args)
    }
}
