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
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..STABLE_WINDOWS * per_window {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let row = &reference[(state % reference.len() as u64) as usize];
        events.push(event(start_ms + i as i64 * STEP_MS, row, i));
    }
    let offset = events.len();
    for (j, row) in analysis.iter().enumerate() {
        events.push(event(start_ms + (offset + j) as i64 * STEP_MS, row, offset + j));
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
        "producing {total} inference logs: {} from the reference period (stable), then {} from the analysis period (drifting)",
        offset,
        analysis.len()
    );

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
            res = &mut daemon => {
                return res.context("daemon task")?;
            }
        }
    }
    produce.await?;
    if opts.forever {
        println!("\nscenario done; serving on http://{addr} until interrupted (Ctrl-C)");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(());
    daemon.await.context("daemon task")??;
    println!("\n{seen} events in windows; scenario complete");
    Ok(())
}
