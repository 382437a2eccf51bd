//! `driftd demo`: the whole daemon against librdkafka's in-process mock cluster, fed with
//! inference logs built from `datasets/` (`scenario.rs`), its retrain requests and alerts
//! going to a local signed-webhook receiver (`receivers.rs`) that also plays the retrain
//! pipeline. The story: the world shifts for good, driftd asks for one retrain, the
//! pipeline publishes the new model's reference, driftd swaps it in, the episode ends
//! (`reference_updated`) and the shifted traffic is clean against it. One line per window.

mod receivers;
mod scenario;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tokio::sync::mpsc;

use crate::app::{self, App, Hooks};
use crate::config::Settings;
use crate::pipeline::WindowReport;
use receivers::Received;
use scenario::{Scenario, FEATURES, MODEL};

const TOPIC: &str = "inference-logs";
/// The demo's signing secret for its own receivers (never a real one).
const DEMO_SECRET: &str = "whsec_ZHJpZnRkLWRlbW8tc2lnbmluZy1zZWNyZXQ=";

pub struct DemoOptions {
    pub datasets: PathBuf,
    pub listen: String,
    pub forever: bool,
}

pub fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(demo(opts))
}

/// The daemon's config: the model on the reference, daily windows, the episode policy,
/// retrain and alerts to the local receiver.
fn config(brokers: &str, state: &Path, reference: &Path, receiver: std::net::SocketAddr) -> String {
    let features: Vec<String> = FEATURES.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        r#"[kafka]
brokers = "{brokers}"
topics = ["{TOPIC}"]
group_id = "driftd-demo"

[state]
dir = "{state}"

[[models]]
name = "{MODEL}"
reference = "{reference}"
features = [{features}]
window = {{ size = "1d" }}
idle_timeout = "2s"
# the scenario's clock runs days ahead of the wall clock: its events are not from a
# broken clock
max_future = "3650d"
reference_poll = "500ms"
min_events = 200
fire_after = 2
resolve_after = 2

[retrain]
preset = "webhook"
url = "http://{receiver}/retrain"
secret = "{DEMO_SECRET}"
cooldown = "7d"

[[alerts]]
kind = "webhook"
name = "demo-inbox"
url = "http://{receiver}/alerts"
secret = "{DEMO_SECRET}"
"#,
        state = state.display(),
        reference = reference.display(),
        features = features.join(", "),
    )
}

async fn demo(opts: DemoOptions) -> anyhow::Result<()> {
    let (reference, analysis) =
        (opts.datasets.join("california_housing_reference.csv"), opts.datasets.join("california_housing_analysis.csv"));
    let scenario = scenario::build(&reference, &analysis)?;
    let cluster = MockCluster::new(1).context("starting the mock Kafka cluster")?;
    cluster.create_topic(TOPIC, 2, 1).context("creating the topic")?;
    let brokers = cluster.bootstrap_servers();
    // the model's reference is a file the retrain pipeline replaces when it deploys
    let dir = tempfile::tempdir()?;
    let model_reference = dir.path().join("california-housing-reference.csv");
    std::fs::copy(&reference, &model_reference).with_context(|| format!("copying {}", reference.display()))?;
    let pipeline = receivers::Pipeline { data: analysis.canonicalize()?, reference: model_reference.clone() };
    let (recv_tx, recv_rx) = mpsc::unbounded_channel();
    let receiver = receivers::start(DEMO_SECRET, pipeline, recv_tx).await.context("starting the demo's receivers")?;

    let config_path = dir.path().join("driftd.toml");
    let text = config(&brokers, &dir.path().join("state"), &model_reference, receiver);
    std::fs::write(&config_path, &text)?;
    let settings = Settings::from_toml(&text).map_err(|e| anyhow::anyhow!("demo config {e}"))?;
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("--listen: cannot bind {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = App { config_path, settings, hooks: Hooks { reports: Some(tx) } };
    let daemon = tokio::spawn(app::run(app, listener, async move {
        let _ = stop_rx.await;
    }));
    println!("driftd demo: mock Kafka at {brokers}, topic {TOPIC}");
    println!(
        "metrics: http://{addr}/metrics   models: http://{addr}/   latest report: http://{addr}/api/v1/models/{MODEL}/reports/latest(.html)"
    );
    println!(
        "the story: {} inference logs drawn from the reference period (stable), then the world shifts for good: \
         {} drawn from the analysis period, then {} more once the model is retrained",
        scenario.stable,
        scenario.drifting,
        scenario.after.len()
    );
    println!(
        "policy: drifting after 2 drifted windows; retrain and alerts go to a local signed-webhook receiver at \
         http://{receiver}, which plays the retrain pipeline: it publishes the new model's reference over {}",
        model_reference.display()
    );
    let watched = watch(Watch { reports: rx, requests: recv_rx, daemon, brokers, scenario }).await?;
    if opts.forever {
        println!(
            "\nscenario done; serving on http://{addr} until interrupted (Ctrl-C): the models at http://{addr}/, \
             the latest window's page at http://{addr}/api/v1/models/{MODEL}/reports/latest.html"
        );
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(());
    watched.daemon.await.context("daemon task")??;
    let retrains = watched.received.iter().filter(|r| matches!(r, Received::Retrain { .. })).count();
    let alerts = watched.received.iter().filter(|r| matches!(r, Received::Alert { .. })).count();
    println!(
        "\n{} events in windows; {retrains} retrain request(s) and {alerts} alert notification(s) received; \
         {} window(s) of the shifted traffic after the swap, {} of them drifted; scenario complete",
        watched.events, watched.after_swap, watched.drifted_after_swap
    );
    Ok(())
}

async fn produce(brokers: String, events: Vec<String>) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .context("creating the producer")?;
    // queued without waiting for each delivery (awaiting each send waited out the linger
    // once per event); deliveries awaited by the thousand, in order
    let mut pending = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut record = FutureRecord::to(TOPIC).key(MODEL).payload(e);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push((i, delivery));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    delivered(&mut pending).await;
                }
                Err((err, _)) => {
                    eprintln!("produce failed at event {i}: {err}");
                    break;
                }
            }
        }
        if pending.len() >= 1_000 {
            delivered(&mut pending).await;
        }
    }
    delivered(&mut pending).await;
    Ok(())
}

/// Waits for the queued deliveries; a failed one is said.
async fn delivered(pending: &mut Vec<(usize, rdkafka::producer::DeliveryFuture)>) {
    for (i, delivery) in pending.drain(..) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((err, _))) => eprintln!("produce failed at event {i}: {err}"),
            Err(_) => eprintln!("produce failed at event {i}: the producer went away"),
        }
    }
}

/// What the demo watches.
struct Watch {
    reports: mpsc::UnboundedReceiver<WindowReport>,
    requests: mpsc::UnboundedReceiver<Received>,
    daemon: tokio::task::JoinHandle<anyhow::Result<()>>,
    brokers: String,
    scenario: Scenario,
}

/// What the demo saw by the end of the scenario.
struct Watched {
    events: u64,
    received: Vec<Received>,
    after_swap: usize,
    drifted_after_swap: usize,
    daemon: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Produces the traffic up to the retrain, then (once the episode resolved on the new
/// reference) the rest; prints a line per window and per request the receiver gets, until
/// every event is in a window.
async fn watch(w: Watch) -> anyhow::Result<Watched> {
    let Watch { mut reports, mut requests, mut daemon, brokers, scenario } = w;
    let total = (scenario.before.len() + scenario.after.len()) as u64;
    let mut after = Some(scenario.after);
    let mut producing = tokio::spawn(produce(brokers.clone(), scenario.before));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    println!(
        "\n{:<20}  {:>6}  {:>11}  {:<5}  {:<12}  drifted features",
        "window start", "events", "drift share", "drift", "reference"
    );
    let (mut events, mut received, mut first_digest) = (0u64, Vec::new(), None::<String>);
    let (mut after_swap, mut drifted_after_swap) = (0, 0);
    loop {
        tokio::select! {
            report = reports.recv() => {
                let Some(r) = report else { break };
                events += r.events;
                let first = first_digest.get_or_insert_with(|| r.reference.digest.clone());
                if *first != r.reference.digest {
                    after_swap += 1;
                    drifted_after_swap += usize::from(r.report.as_ref().is_some_and(|x| x.dataset_drift));
                }
                print_window(&r);
                if events >= total {
                    break;
                }
            }
            Some(r) = requests.recv() => {
                r.print();
                // the retrained model's reference is in and the episode ended: its traffic comes
                if r.is_resolution() {
                    if let Some(rest) = after.take() {
                        producing.await??;
                        producing = tokio::spawn(produce(brokers.clone(), rest));
                    }
                }
                received.push(r);
            }
            res = &mut daemon => {
                res.context("daemon task")??;
                anyhow::bail!("the daemon stopped before the scenario ended");
            }
            _ = tokio::time::sleep_until(deadline) => anyhow::bail!("the scenario did not finish within two minutes"),
        }
    }
    producing.await??;
    Ok(Watched { events, received, after_swap, drifted_after_swap, daemon })
}

fn print_window(r: &WindowReport) {
    let (share, drift, drifted) = match &r.report {
        Some(rep) => (rep.share_of_drifted_features, rep.dataset_drift, r.drifted_features().join(", ")),
        None => (0.0, false, r.error.clone().unwrap_or_default()),
    };
    let note = if r.insufficient_events { " (too few events to flag)" } else { "" };
    println!(
        "{:<20}  {:>6}  {:>11.2}  {:<5}  {:<12}  {}{}",
        r.bounds.start_rfc3339(),
        r.events,
        share,
        if drift { "YES" } else { "no" },
        r.reference.short_digest(),
        drifted,
        note
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid() {
        let text = config("127.0.0.1:1", Path::new("/tmp/s"), Path::new("/tmp/r.csv"), "127.0.0.1:2".parse().unwrap());
        let s = Settings::from_toml(&text).unwrap();
        assert_eq!(s.models[0].name, MODEL);
    }
}
