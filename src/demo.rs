//! `driftd demo`: the whole daemon against librdkafka's in-process mock cluster, fed with
//! inference logs built from `datasets/`: a stable period (rows of the reference period)
//! then a drifting one (the analysis period). Prints one line per window.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use polars::prelude::DataType;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tokio::sync::mpsc;

use crate::daemon::{self, Hooks};
use crate::stream::time::format_rfc3339_ms;

const MODEL: &str = "california-housing";
const TOPIC: &str = "inference-logs";
const FEATURES: [&str; 8] =
    ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"];
/// One event per simulated minute; a window is one simulated day.
const STEP_MS: i64 = 60_000;
const STABLE_WINDOWS: usize = 4;
/// Stable windows after the drifting period: enough for the episode to resolve.
const RECOVERY_WINDOWS: usize = 3;
/// The demo's signing secret for its own receivers (never a real one).
const DEMO_SECRET: &str = "whsec_ZHJpZnRkLWRlbW8tc2lnbmluZy1zZWNyZXQ=";

/// What the demo's in-process receivers saw.
#[derive(Debug)]
enum Received {
    Retrain { run_id: String, drifted: usize, verified: bool },
    Alert { kind: String, model: String, verified: bool },
}

/// A local HTTP receiver standing in for the orchestrator and the alert inbox: it checks
/// the Standard Webhooks signature of every request.
async fn receivers(tx: mpsc::UnboundedSender<Received>) -> anyhow::Result<std::net::SocketAddr> {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    fn verified(h: &HeaderMap, body: &[u8]) -> bool {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let ts = get("webhook-timestamp").parse().unwrap_or(0);
        crate::webhook::verify(DEMO_SECRET, &get("webhook-id"), ts, body, &get("webhook-signature"))
    }
    let t1 = tx.clone();
    let app = axum::Router::new()
        .route(
            "/retrain",
            axum::routing::post(move |h: HeaderMap, body: Bytes| async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let data = &v["data"];
                let _ = t1.send(Received::Retrain {
                    run_id: data["run_id"].as_str().unwrap_or_default().to_string(),
                    drifted: data["drifted_features"].as_array().map_or(0, Vec::len),
                    verified: verified(&h, &body),
                });
                axum::http::StatusCode::ACCEPTED
            }),
        )
        .route(
            "/alerts",
            axum::routing::post(move |h: HeaderMap, body: Bytes| async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let _ = tx.send(Received::Alert {
                    kind: v["type"].as_str().unwrap_or_default().to_string(),
                    model: v["data"]["model"].as_str().unwrap_or_default().to_string(),
                    verified: verified(&h, &body),
                });
                axum::http::StatusCode::NO_CONTENT
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn print_received(r: &Received) {
    let sig = |v: bool| if v { "signature verified" } else { "SIGNATURE INVALID" };
    match r {
        Received::Retrain { run_id, drifted, verified } => {
            println!("  >> retrain request received: run {run_id}, {drifted} drifted features ({})", sig(*verified))
        }
        Received::Alert { kind, model, verified } => println!("  >> alert {kind} for {model} ({})", sig(*verified)),
    }
}

pub struct DemoOptions {
    pub datasets: PathBuf,
    pub listen: String,
    pub forever: bool,
}

fn rows(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let df = crate::dataset::read_frame(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cols: Vec<Vec<f64>> = FEATURES
        .iter()
        .map(|f| {
            let s = df.column(f)?.as_materialized_series().cast(&DataType::Float64)?;
            Ok(s.f64()?.downcast_iter().flat_map(|a| a.iter()).map(|v| v.copied().unwrap_or(f64::NAN)).collect())
        })
        .collect::<polars::prelude::PolarsResult<_>>()?;
    Ok((0..df.height()).map(|i| cols.iter().map(|c| c[i]).collect()).collect())
}

fn event(ts_ms: i64, values: &[f64], i: usize) -> String {
    let features: serde_json::Map<String, serde_json::Value> =
        FEATURES.iter().zip(values).map(|(f, v)| (f.to_string(), serde_json::json!(v))).collect();
    serde_json::json!({
        "model": MODEL,
        "model_version": "1",
        "timestamp": format_rfc3339_ms(ts_ms),
        "request_id": format!("r-{i}"),
        "features": features,
    })
    .to_string()
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let reference_path = opts.datasets.join("california_housing_reference.csv");
    let analysis_path = opts.datasets.join("california_housing_analysis.csv");
    let reference = rows(&reference_path).with_context(|| format!("reading {}", reference_path.display()))?;
    let analysis = rows(&analysis_path).with_context(|| format!("reading {}", analysis_path.display()))?;

    let cluster = MockCluster::new(1).context("starting the mock Kafka cluster")?;
    cluster.create_topic(TOPIC, 2, 1).context("creating the topic")?;
    let brokers = cluster.bootstrap_servers();

    let (recv_tx, mut recv_rx) = mpsc::unbounded_channel();
    let recv_addr = receivers(recv_tx).await.context("starting the demo's receivers")?;

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("driftd.toml");
    let features: Vec<String> = FEATURES.iter().map(|f| format!("\"{f}\"")).collect();
    std::fs::write(
        &config,
        format!(
            r#"[kafka]
brokers = "{brokers}"
topics = ["{TOPIC}"]
group_id = "driftd-demo"

[server]
listen = "{listen}"

[state]
dir = "{state}"

[[models]]
name = "{MODEL}"
reference = "{reference}"
features = [{features}]
window = {{ size = "1d" }}
idle_timeout = "2s"
min_events = 200
fire_after = 2
resolve_after = 2

[retrain]
preset = "webhook"
url = "http://{recv_addr}/retrain"
secret = "{DEMO_SECRET}"
cooldown = "7d"

[[alerts]]
kind = "webhook"
name = "demo-inbox"
url = "http://{recv_addr}/alerts"
secret = "{DEMO_SECRET}"
"#,
            listen = opts.listen,
            state = dir.path().join("state").display(),
            reference = reference_path.canonicalize()?.display(),
            features = features.join(", "),
        ),
    )?;

    // A stable period drawn from the reference period's rows, then the drifting period.
    let per_window = (86_400_000 / STEP_MS) as usize;
    let mut events = Vec::new();
    let start_ms = 1_795_910_400_000; // 2026-11-29T00:00:00Z
                                      // a fixed xorshift sequence over the reference rows: the same demo every run
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut stable_row = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        &reference[(state % reference.len() as u64) as usize]
    };
    for i in 0..STABLE_WINDOWS * per_window {
        events.push(event(start_ms + i as i64 * STEP_MS, stable_row(), i));
    }
    let offset = events.len();
    for (j, row) in analysis.iter().enumerate() {
        events.push(event(start_ms + (offset + j) as i64 * STEP_MS, row, offset + j));
    }
    // back to stable traffic, starting on a window boundary, until the episode resolves
    let resume = events.len().div_ceil(per_window) * per_window;
    for i in 0..RECOVERY_WINDOWS * per_window {
        events.push(event(start_ms + (resume + i) as i64 * STEP_MS, stable_row(), resume + i));
    }
    let total = events.len() as u64;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(daemon::run(
        config,
        async move {
            let _ = stop_rx.await;
        },
        Hooks { reports: Some(tx), bound: Some(bound_tx) },
    ));
    let addr = bound_rx.await.context("the daemon did not start")?;
    println!("driftd demo: mock Kafka at {brokers}, topic {TOPIC}");
    println!("metrics: http://{addr}/metrics   latest report: http://{addr}/api/v1/models/{MODEL}/reports/latest");
    println!(
        "producing {total} inference logs: {} from the reference period (stable), then {} from the analysis period (drifting), then {} stable again",
        offset,
        analysis.len(),
        RECOVERY_WINDOWS * per_window
    );
    println!("policy: drifting after 2 drifted windows, ok after 2 clean ones; retrain and alerts go to a local signed-webhook receiver at http://{recv_addr}");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .context("creating the producer")?;
    let produce = tokio::spawn(async move {
        for (i, e) in events.iter().enumerate() {
            let record = FutureRecord::to(TOPIC).key(MODEL).payload(e);
            if let Err((err, _)) = producer.send(record, Duration::from_secs(10)).await {
                eprintln!("produce failed at event {i}: {err}");
            }
        }
    });

    println!("\n{:<20}  {:>6}  {:>11}  {:<5}  drifted features", "window start", "events", "drift share", "drift");
    let mut seen = 0u64;
    let mut received: Vec<Received> = Vec::new();
    let mut daemon = daemon;
    loop {
        tokio::select! {
            report = rx.recv() => {
                let Some(r) = report else { break };
                seen += r.events;
                let (share, drift, drifted) = match &r.report {
                    Some(rep) => (
                        rep.share_of_drifted_features,
                        rep.dataset_drift,
                        rep.features.iter().filter(|f| f.drifted).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
                    ),
                    None => (0.0, false, r.error.clone().unwrap_or_default()),
                };
                let note = if r.insufficient_events { " (too few events to flag)" } else { "" };
                println!(
                    "{:<20}  {:>6}  {:>11.2}  {:<5}  {}{}",
                    r.window_start,
                    r.events,
                    share,
                    if drift { "YES" } else { "no" },
                    drifted,
                    note
                );
                if seen >= total && !opts.forever {
                    break;
                }
            }
            Some(r) = recv_rx.recv() => {
                print_received(&r);
                received.push(r);
            }
            res = &mut daemon => {
                return res.context("daemon task")?;
            }
        }
    }
    produce.await?;
    // the last notifications are in flight: give them a moment
    let resolved =
        |rs: &[Received]| rs.iter().any(|r| matches!(r, Received::Alert { kind, .. } if kind.ends_with("resolved")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !resolved(&received) {
        match tokio::time::timeout_at(deadline, recv_rx.recv()).await {
            Ok(Some(r)) => {
                print_received(&r);
                received.push(r);
            }
            _ => break,
        }
    }
    if opts.forever {
        println!("\nscenario done; serving on http://{addr} until interrupted (Ctrl-C)");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(());
    daemon.await.context("daemon task")??;
    let retrains = received.iter().filter(|r| matches!(r, Received::Retrain { .. })).count();
    let alerts = received.iter().filter(|r| matches!(r, Received::Alert { .. })).count();
    println!("\n{seen} events in windows; {retrains} retrain request(s) and {alerts} alert notification(s) received; scenario complete");
    Ok(())
}
