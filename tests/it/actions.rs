//! Policy, retrain delivery and alerts, through the real binary (`driftd replay`) against
//! real local HTTP receivers that record what arrives (each preset's request and its
//! service's answers: `presets.rs`).
//!
//! The scenario (`episode_logs`): 4 clean windows of 1,000 events, 5 drifted ones (the
//! analysis period's last rows), 4 clean ones. With `fire_after = 2` and
//! `resolve_after = 2` that is one episode: it fires on the 6th window and resolves on the
//! 11th.

use std::time::{Duration, Instant};

use crate::helpers::{episode_logs, fmt_ms, model_toml, replay, Receiver, Reply, Request};
use serde_json::{json, Value};

pub(crate) const MODEL: &str = "housing";

pub(crate) struct Scenario {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) input: std::path::PathBuf,
}

pub(crate) fn scenario() -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, episode_logs(MODEL, 1000, 4, 5, 4).join("\n")).unwrap();
    Scenario { dir, input }
}

impl Scenario {
    pub(crate) fn config(&self, name: &str, actions: &str, model_extra: &str) -> std::path::PathBuf {
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
pub(crate) fn expected_run_id(reports: &[Value]) -> String {
    let fired = &reports[5];
    assert_eq!(fired["dataset_drift"], json!(true));
    assert_eq!(reports[4]["dataset_drift"], json!(true), "the episode needs two drifted windows in a row");
    let stamp: String = fired["window_end"].as_str().unwrap().chars().filter(char::is_ascii_alphanumeric).collect();
    format!("driftd-{MODEL}-drift-{}", stamp.to_ascii_lowercase())
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
pub(crate) fn fault(name: &str, preset: &str, path: &str, script: Vec<Reply>, extra: &str) -> (Vec<Request>, Value) {
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
    let history = std::fs::read_to_string(s.dir.path().join(format!("state-{name}/replay/retrains.jsonl"))).unwrap();
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
    let outbox = s.dir.path().join("state-crash/replay/outbox");
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
        assert!(driftd::outbound::webhook::verify(
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
