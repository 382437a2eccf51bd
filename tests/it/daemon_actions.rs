//! The daemon's policy end to end: the daemon (in-process) on a real Kafka-protocol broker
//! (Tansu), a real Alertmanager (Debian's `prometheus-alertmanager`) and a real
//! HTTP receiver standing in for the orchestrator and for Alertmanager's own webhook.
//!
//! One drift episode: the alert becomes active in Alertmanager's API, one retrain request
//! arrives, the state survives a restart (no second request, the alert stays), a manual
//! trigger goes out, and when the drift ends the alert resolves in Alertmanager, which
//! notifies its receiver "resolved". An alert its receiver cannot take survives a
//! SIGKILL in the alert outbox and reaches the receiver, then its resolution, once it is up.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    episode_logs, free_port, http, http_get, metric, produce, producer, wait_until, Alertmanager, Broker, InProcess,
    Process, Receiver, Reply, TestConfig,
};

const MODEL: &str = "housing";

#[test]
fn a_drift_episode_alerts_retrains_once_survives_a_restart_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let receiver = Receiver::start(vec![], Reply::status(200));
    let am = Alertmanager::start(dir.path(), &receiver.url("/am-notify"));

    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-actions")
        .kafka_option("auto.commit.interval.ms", "500")
        .state(&dir.path().join("state"))
        .episode_defaults()
        .section(&format!(
            "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nbackoff = \"100ms\"\n\
             [[alerts]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{}\"\nrepeat_interval = \"2s\"",
            receiver.url("/retrain"),
            am.port,
        ))
        .model(MODEL, "")
        .write(&dir.path().join("driftd.toml"));

    // 4 clean windows, then 5 drifted (the episode fires on the second), then 4 clean
    let logs = episode_logs(MODEL, 1000, 4, 5, 4);
    let (drifting, recovering) = logs.split_at(9000);
    let p = producer(&broker.bootstrap());
    let daemon = InProcess::start(&cfg);
    produce(&p, drifting, MODEL, None);

    let active = wait_until("the alert in Alertmanager", Duration::from_secs(90), || {
        let a = am.active();
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["labels"]["model"], json!(MODEL));
    assert_eq!(active[0]["labels"]["severity"], json!("warning"));
    assert_eq!(active[0]["status"]["state"], json!("active"));
    let episode = active[0]["annotations"]["episode"].as_str().unwrap().to_string();

    let retrains = receiver.wait_for("/retrain", 1, Duration::from_secs(30));
    assert_eq!(retrains.len(), 1);
    assert_eq!(retrains[0].header("webhook-id"), episode, "the run id is the episode's");
    let (code, body) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}")).unwrap();
    assert_eq!(code, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["drift"]["state"], json!("drifting"));
    assert_eq!(info["drift"]["episode"]["id"], json!(episode));
    assert_eq!(metric(daemon.port, &format!("driftd_model_drifting{{model=\"{MODEL}\"}}")), Some(1.0));
    wait_until("the delivered request in the history", Duration::from_secs(10), || {
        let (_, body) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}/retrains")).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        (v["retrains"][0]["status"] == json!("delivered")).then_some(())
    });

    // restart mid-episode: the state comes back from the checkpoint; no second request
    daemon.stop();
    let daemon = InProcess::start(&cfg);
    let (_, body) = http_get(daemon.port, &format!("/api/v1/models/{MODEL}")).unwrap();
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["drift"]["state"], json!("drifting"), "{info}");
    assert_eq!(info["drift"]["episodes"], json!(1));

    // a manual trigger: 202, delivered, listed
    let (code, body) = http(daemon.port, "POST", &format!("/api/v1/models/{MODEL}/retrain")).unwrap();
    assert_eq!(code, 202, "{body}");
    let manual: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(manual["reason"], json!("manual"));
    assert_eq!(http(daemon.port, "POST", "/api/v1/models/nope/retrain").unwrap().0, 404);
    let got = receiver.wait_for("/retrain", 2, Duration::from_secs(30));
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), manual["run_id"].as_str().unwrap());
    assert_eq!(got[1].json()["data"]["reason"], json!("manual"));

    // the drift ends: Alertmanager resolves the alert and tells its receiver so
    produce(&p, recovering, MODEL, None);
    wait_until("the alert to resolve in Alertmanager", Duration::from_secs(90), || {
        am.active().is_empty().then_some(())
    });
    let notes = wait_until("Alertmanager's resolved notification", Duration::from_secs(60), || {
        let n: Vec<Value> = receiver.requests().iter().filter(|q| q.uri == "/am-notify").map(|q| q.json()).collect();
        n.iter().any(|x| x["status"] == json!("resolved")).then_some(n)
    });
    assert_eq!(notes[0]["status"], json!("firing"));
    assert_eq!(notes[0]["alerts"][0]["labels"]["model"], json!(MODEL));
    assert_eq!(metric(daemon.port, &format!("driftd_model_drifting{{model=\"{MODEL}\"}}")), Some(0.0));
    assert_eq!(receiver.requests().iter().filter(|q| q.uri == "/retrain").count(), 2, "no request besides the two");
    let delivered = format!("driftd_retrain_triggers_total{{model=\"{MODEL}\",outcome=\"delivered\"}}");
    assert_eq!(metric(daemon.port, &delivered), Some(1.0), "this process delivered the manual one");
    assert!(
        metric(daemon.port, "driftd_alerts_sent_total{outcome=\"sent\",receiver=\"alertmanager\"}").unwrap() >= 1.0
    );
}

/// State that follows the partitions (#13): two replicas share a state changelog topic.
/// The first fires a drift episode (one retrain request, one firing alert) and is
/// SIGKILLed; the second takes the partition, takes the model's state from the
/// changelog, and continues the episode: the drifted windows after the takeover ask for
/// no second retrain, and the episode resolves under the first replica's episode id.
#[test]
fn a_new_owner_continues_the_episode_from_the_changelog() {
    let run = Takeover::run(Reply::status(200));
    let first = run.first_target.requests();
    assert_eq!(first.len(), 1, "the first replica delivered its request");
    assert_eq!(first[0].header("webhook-id"), run.episode);
    // the drifted windows after the takeover ask for no second run: the second replica
    // may send the request again if the first died before the changelog said it was
    // delivered, under the same run id (the target's idempotency key); never another
    let again: Vec<String> = run
        .receiver
        .requests()
        .iter()
        .filter(|q| q.uri == "/retrain")
        .map(|q| q.header("webhook-id").to_string())
        .collect();
    println!("requests by the second replica: {again:?}");
    assert!(again.iter().all(|id| *id == run.episode), "no second run: {again:?}");
}

/// The retrain outbox follows the model too: the first replica cannot reach its retrain
/// target (503, next attempt in an hour) when it dies; the second takes the undelivered
/// request with the model's state and delivers it, under the same run id, once.
#[test]
fn a_new_owner_delivers_the_retrain_request_the_old_one_could_not() {
    let run = Takeover::run(Reply::status(503));
    assert_eq!(run.first_target.requests().len(), 1, "one attempt by the first replica, refused");
    let delivered: Vec<_> = run.receiver.requests().into_iter().filter(|q| q.uri == "/retrain").collect();
    assert_eq!(delivered.len(), 1, "the second replica delivered the pending request once");
    assert_eq!(delivered[0].header("webhook-id"), run.episode, "under the first replica's run id");
    let (_, body) = crate::helpers::http_get(run.second.port, &format!("/api/v1/models/{MODEL}/retrains")).unwrap();
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(history["retrains"][0]["run_id"], json!(run.episode), "{history}");
    assert_eq!(history["retrains"][0]["status"], json!("delivered"), "{history}");
}

/// A takeover run: the first replica (the real binary) windows the start of a drift
/// episode, is SIGKILLed, and the second (in-process) windows the rest; every window is
/// reported once across both, and the episode resolves under the first one's id.
struct Takeover {
    /// Where the first replica's retrain requests went.
    first_target: Receiver,
    /// Where the second replica's retrain requests, and both replicas' alerts, went.
    receiver: Receiver,
    second: InProcess,
    /// The episode's id (the first replica's request's run id).
    episode: String,
    _dir: tempfile::TempDir,
    _broker: Broker,
}

impl Takeover {
    fn run(first_reply: Reply) -> Takeover {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::start();
        broker.create_topic("inference-logs", 1);
        broker.create_topic("driftd-state", 1);
        let receiver = Receiver::start(vec![], Reply::status(200));
        let first_target = Receiver::start(vec![], first_reply);
        let config = |name: &str, port: u16, retrain: &Receiver| {
            TestConfig::new()
                .kafka(&broker.bootstrap(), "driftd-takeover")
                .kafka_option("auto.commit.interval.ms", "500")
                .listen(port)
                .state(&dir.path().join(format!("state-{name}")))
                .section("changelog_topic = \"driftd-state\"") // in [state], after its dir
                .reports(&dir.path().join(format!("reports-{name}.jsonl")), None)
                .episode_defaults()
                .section(&format!(
                    "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nbackoff = \"1h\"\n\
                     [[alerts]]\nkind = \"webhook\"\nurl = \"{}\"",
                    retrain.url("/retrain"),
                    receiver.url("/alerts"),
                ))
                .model(MODEL, "")
                .write(&dir.path().join(format!("{name}.toml")))
        };
        let (port_a, port_b) = (crate::helpers::free_port(), crate::helpers::free_port());
        let (cfg_a, cfg_b) = (config("a", port_a, &first_target), config("b", port_b, &receiver));
        let mut first = crate::helpers::Process::start(&cfg_a, port_a);
        std::thread::sleep(Duration::from_secs(6));
        let second = InProcess::start(&cfg_b);
        std::thread::sleep(Duration::from_secs(3));

        // 4 clean windows of 1,000, then 5 drifted (the episode fires on the second), then 4 clean
        let logs = episode_logs(MODEL, 1000, 4, 5, 4);
        let (before, after) = logs.split_at(7000);
        let p = producer(&broker.bootstrap());
        produce(&p, before, MODEL, None);
        let asked = first_target.wait_for("/retrain", 1, Duration::from_secs(60));
        let episode = asked[0].header("webhook-id").to_string();
        // the first replica's state reaches the changelog; then it dies without a word
        std::thread::sleep(Duration::from_secs(2));
        first.signal("-KILL");
        produce(&p, after, MODEL, None);
        let resolved = wait_until("the episode resolved", Duration::from_secs(120), || {
            let alerts: Vec<Value> =
                receiver.requests().iter().filter(|q| q.uri == "/alerts").map(|q| q.json()).collect();
            alerts.iter().find(|a| a["type"] == json!("driftd.alert.resolved")).cloned()
        });
        assert_eq!(resolved["data"]["episode"], json!(episode), "the first replica's episode, resolved by the second");
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(metric(second.port, &format!("driftd_model_drifting{{model=\"{MODEL}\"}}")), Some(0.0));
        // every window once, across both replicas
        let files = [dir.path().join("reports-a.jsonl"), dir.path().join("reports-b.jsonl")];
        let all: Vec<Value> = files.iter().flat_map(|f| crate::helpers::reports(f)).collect();
        let windows = crate::helpers::by_window(&all);
        let events: u64 = windows.values().map(|r| r["events"].as_u64().unwrap()).sum();
        assert_eq!((windows.len(), events), (13, 13_000), "13 windows of 1,000, each once");
        Takeover { first_target, receiver, second, episode, _dir: dir, _broker: broker }
    }
}

/// The alert outbox (#14): the firing is decided while its receiver is down; the daemon is
/// SIGKILLed while it retries; after the restart the receiver is up and gets the firing,
/// then, when the drift ends, its resolution: once each, in order.
#[test]
fn an_alert_its_receiver_cannot_take_survives_a_sigkill_and_arrives_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let hook_port = free_port();
    let port = free_port();
    let state = dir.path().join("state");
    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-alert-outbox")
        .kafka_option("auto.commit.interval.ms", "200")
        .listen(port)
        .state(&state)
        .episode_defaults()
        .section(&format!("[[alerts]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/wh\"\nsecret = \"s\""))
        .model(MODEL, "")
        .write(&dir.path().join("driftd.toml"));
    // 2 clean windows, 3 drifted (the episode fires on the second), 3 clean
    let logs = episode_logs(MODEL, 1000, 2, 3, 3);
    let (drifting, recovering) = logs.split_at(5000);
    let p = producer(&broker.bootstrap());
    let mut d = Process::start(&cfg, port);
    produce(&p, drifting, MODEL, None);
    // nothing listens on the receiver's port: the firing waits in the outbox, retried
    let outbox = wait_until("the firing retried in the alert outbox", Duration::from_secs(90), || {
        let saved: Value = serde_json::from_slice(&std::fs::read(state.join("alerts.json")).ok()?).ok()?;
        let first = saved["deliveries"].get(0)?.clone();
        (first["attempts"].as_u64()? >= 1).then_some(first)
    });
    assert_eq!(outbox["phase"], json!("firing"));
    let episode = outbox["notice"]["episode"]["id"].as_str().unwrap().to_string();
    assert!(metric(port, "driftd_alert_outbox_pending").unwrap() >= 1.0);
    d.signal("-KILL");

    let hook =
        Receiver::start_on(std::net::TcpListener::bind(("127.0.0.1", hook_port)).unwrap(), vec![], Reply::status(200));
    let _d = Process::start(&cfg, port);
    let fired = hook.wait_for("/wh", 1, Duration::from_secs(60));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].json()["type"], json!("driftd.alert.firing"));
    assert_eq!(fired[0].json()["data"]["episode"], json!(episode));
    produce(&p, recovering, MODEL, None);
    let got = hook.wait_for("/wh", 2, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(2));
    let types: Vec<Value> = hook.requests().iter().map(|q| q.json()["type"].clone()).collect();
    assert_eq!(types, [json!("driftd.alert.firing"), json!("driftd.alert.resolved")], "{types:?}");
    assert_eq!(got[1].json()["data"]["episode"], json!(episode));
    wait_until("an empty alert outbox", Duration::from_secs(10), || {
        let saved: Value = serde_json::from_slice(&std::fs::read(state.join("alerts.json")).ok()?).ok()?;
        saved["deliveries"].as_array()?.is_empty().then_some(())
    });
}
