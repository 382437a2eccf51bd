//! `driftd run`: the Kafka consumer group → the streaming pipeline → metrics, the JSON
//! API and the report sinks; ordered shutdown; reload on SIGHUP and `POST /api/v1/reload`.
//!
//! At least once without double counting: offsets are stored by hand
//! (`enable.auto.offset.store=false`) and only up to the oldest event still in an open
//! window, after the windows below it were reported. On a revoke, the windows holding the
//! revoked partitions' events are closed and reported and the offsets committed before the
//! partitions go; on shutdown the open windows are kept (not reported) and the committed
//! offsets make the next start read their events again.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::actions::{ActionConfig, Actions, Mode};
use crate::config::{parse_duration, Settings, WindowSpec};
use crate::policy::ModelPolicyState;
use crate::server::{self, AppState, ModelInfo, ReloadRequest};
use crate::stream::{window_report, Checkpoint, Engine, WindowReport};

/// Hooks for embedding the daemon (the demo, tests).
#[derive(Default)]
pub struct Hooks {
    /// Every window report, as it is published.
    pub reports: Option<mpsc::UnboundedSender<WindowReport>>,
    /// Told the address the HTTP server bound.
    pub bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
}

struct Ctx {
    engine: Arc<Mutex<Engine>>,
    state: Arc<AppState>,
    hook: Option<mpsc::UnboundedSender<WindowReport>>,
    /// Reports made during a rebalance, for the main loop's sinks.
    pending: Arc<Mutex<Vec<WindowReport>>>,
    checkpoint: PathBuf,
    actions: Arc<Actions>,
    /// Set on shutdown: the open windows are kept, not reported, when the partitions go.
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientContext for Ctx {
    /// librdkafka's statistics (every `statistics.interval.ms`) carry each assigned
    /// partition's lag: the gauge follows them.
    fn stats(&self, stats: rdkafka::Statistics) {
        let lag = &self.state.metrics.kafka_consumer_lag;
        lag.reset();
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    lag.with_label_values(&[topic.as_str(), &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if self.shutting_down.load(Ordering::Relaxed) {
                return;
            }
            let revoked: Vec<(String, i32)> =
                tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            // Runs inside our own poll: the engine is not in use elsewhere. The windows
            // holding the revoked partitions' events are closed and reported now, then
            // the offsets after them committed, before the partitions go.
            let mut engine = self.engine.lock().expect("engine lock");
            engine.flush_partitions(&revoked);
            let reports = report_closed(&mut engine, &self.state, &self.actions, &self.hook);
            tracing::info!(partitions = revoked.len(), windows = reports.len(), "partitions revoked");
            let mut pending = self.pending.lock().expect("pending lock");
            pending.extend(reports);
            if let Err(err) = save_checkpoint(&self.checkpoint, &engine, &self.actions, &lines_of(&pending)) {
                tracing::warn!(error = %err, "cannot write the checkpoint");
            }
            store_offsets(consumer, &engine);
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "commit on revoke");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions assigned");
            self.state.assigned.store(true, Ordering::Relaxed);
        }
    }
}

fn store_offsets<C: Consumer<X>, X: ConsumerContext>(consumer: &C, engine: &Engine) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in engine.safe_offsets() {
        let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset));
    }
    if tpl.count() > 0 {
        // A partition no longer assigned refuses the store: nothing to do for it.
        let _ = consumer.store_offsets(&tpl);
    }
}

fn checkpoint_path(settings: &Settings) -> PathBuf {
    settings.state.dir.join("checkpoint.json")
}

/// What `checkpoint.json` holds: the engine's closed-window marks, the policy states, and
/// the reports of windows closed but not yet confirmed in the sinks. The marks and those
/// reports are written together, so a crash after a window closed either re-reads its
/// events (mark not written) or re-publishes its report (mark written), never both.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct DaemonCheckpoint {
    #[serde(flatten)]
    engine: Checkpoint,
    #[serde(default)]
    policy: std::collections::BTreeMap<String, ModelPolicyState>,
    /// Report lines (JSON) to publish before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unpublished: Vec<String>,
}

fn load_checkpoint(path: &Path) -> DaemonCheckpoint {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save_checkpoint(path: &Path, engine: &Engine, actions: &Actions, unpublished: &[String]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let c =
        DaemonCheckpoint { engine: engine.checkpoint(), policy: actions.snapshot(), unpublished: unpublished.to_vec() };
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&c).expect("checkpoint serializes"))?;
        f.sync_data()?;
    }
    std::fs::rename(tmp, path)
}

fn lines_of(reports: &[WindowReport]) -> Vec<String> {
    reports.iter().map(|r| serde_json::to_string(r).expect("report serializes")).collect()
}

fn window_label(w: &WindowSpec) -> String {
    match w {
        WindowSpec::Tumbling { size } => format!("tumbling {}s", size.as_secs()),
        WindowSpec::Sliding { size, slide } => format!("sliding {}s every {}s", size.as_secs(), slide.as_secs()),
        WindowSpec::Count { events } => format!("every {events} events"),
    }
}

fn model_infos(engine: &Engine) -> Vec<ModelInfo> {
    engine
        .models
        .iter()
        .map(|m| ModelInfo {
            name: m.spec.name.clone(),
            reference: m.spec.profile_path.display().to_string(),
            window: window_label(&m.spec.window),
            features: m.spec.profile.features.len(),
            events_total: m.events_total,
            late_events_total: m.late_total,
            open_window_events: m.open_events(),
        })
        .collect()
}

/// Report sinks: a JSON Lines file and a Kafka topic.
struct Sinks {
    file: Option<std::io::BufWriter<std::fs::File>>,
    topic: Option<(FutureProducer, String)>,
}

impl Sinks {
    /// `to_file` false: the file already has the line (republishing after a crash).
    async fn publish(&mut self, model: &str, line: &str, to_file: bool) {
        if let Some(f) = self.file.as_mut().filter(|_| to_file) {
            if let Err(e) = writeln!(f, "{line}").and_then(|_| f.flush()) {
                tracing::warn!(error = %e, "cannot write the report file");
            }
        }
        if let Some((producer, topic)) = &self.topic {
            let record = FutureRecord::to(topic).key(model).payload(line);
            if let Err((e, _)) = producer.send(record, Duration::from_secs(5)).await {
                tracing::warn!(error = %e, topic = %topic, "cannot produce the report");
            }
        }
    }
}

/// The report file's last `bytes` (or all of it): reports are appended in order, so the
/// ones written just before a crash are there.
fn file_tail(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = String::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(bytes))).is_ok() {
        let _ = f.read_to_string(&mut buf);
    }
    buf
}

/// Logs bad messages at a bounded rate: the first of each second, and a count.
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn warn(&mut self, reason: &str, topic: &str, partition: i32, offset: i64) {
        let now = Instant::now();
        if self.last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            tracing::warn!(reason, topic, partition, offset, suppressed = self.suppressed, "bad message skipped");
            self.last = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }
}

fn consumer_config(settings: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka.brokers)
        .set("group.id", &settings.kafka.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("statistics.interval.ms", "5000")
        // librdkafka pauses a partition's fetching for fetch.queue.backoff.ms (1 s by
        // default) whenever its local queue is full; a consumer that does real work per
        // message then idles waiting for it. Short pauses keep the queue fed.
        .set("fetch.queue.backoff.ms", "10");
    for (k, v) in &settings.kafka.options {
        c.set(k, v);
    }
    c
}

fn producer_config(settings: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka.brokers);
    for (k, v) in &settings.kafka.options {
        // consumer-only keys would make the producer refuse to start
        if !k.starts_with("session.") && !k.starts_with("group.") && !k.starts_with("auto.offset") {
            c.set(k, v);
        }
    }
    c
}

/// Runs the daemon until `shutdown` resolves (or SIGINT / SIGTERM when run from the CLI).
pub async fn run(
    config_path: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let settings = Settings::load(&config_path).map_err(|e| anyhow::anyhow!("config {e}"))?;
    if settings.kafka.topics.is_empty() {
        anyhow::bail!("config kafka.topics: give at least one topic");
    }
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let state = Arc::new(AppState::new(reload_tx));

    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("server.listen: cannot bind {}", settings.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics and /api/v1");
    if let Some(tx) = hooks.bound {
        let _ = tx.send(addr);
    }
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(server::serve(listener, state.clone(), async {
        let _ = http_stop_rx.await;
    }));

    let mut engine = tokio::task::spawn_blocking({
        let settings = settings.clone();
        move || Engine::from_settings(&settings)
    })
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ckpt_path = checkpoint_path(&settings);
    let checkpoint = load_checkpoint(&ckpt_path);
    engine.apply_checkpoint(&checkpoint.engine);
    let (actions, workers) =
        Actions::start(&settings, state.metrics.clone()).map_err(|e| anyhow::anyhow!("config {e}"))?;
    actions.restore(checkpoint.policy);
    *state.actions.write().expect("lock") = Some(actions.clone());
    *state.models.write().expect("lock") = model_infos(&engine);
    state.references_loaded.store(true, Ordering::Relaxed);
    let engine = Arc::new(Mutex::new(engine));

    let pending = Arc::new(Mutex::new(Vec::new()));
    let shutting_down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ctx = Ctx {
        shutting_down: shutting_down.clone(),
        engine: engine.clone(),
        state: state.clone(),
        hook: hooks.reports.clone(),
        pending: pending.clone(),
        checkpoint: ckpt_path.clone(),
        actions: actions.clone(),
    };
    let consumer: StreamConsumer<Ctx> =
        consumer_config(&settings).create_with_context(ctx).context("kafka: cannot create the consumer")?;
    let topics: Vec<&str> = settings.kafka.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).context("kafka: cannot subscribe")?;

    let needs_producer = settings.kafka.dead_letter_topic.is_some() || settings.reports.topic.is_some();
    let producer: Option<FutureProducer> = if needs_producer {
        Some(producer_config(&settings).create().context("kafka: cannot create the producer")?)
    } else {
        None
    };
    let mut sinks = Sinks {
        file: match &settings.reports.file {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("reports.file: cannot open {}", p.display()))?,
            )),
            None => None,
        },
        topic: settings.reports.topic.clone().and_then(|t| producer.clone().map(|p| (p, t))),
    };
    let dead_letter = settings.kafka.dead_letter_topic.clone().and_then(|t| producer.clone().map(|p| (p, t)));

    // Reports of windows closed before a crash whose publication was not confirmed: the
    // file sink skips the ones it already has; the topic may get a repeat (its key and
    // window_start identify it).
    if !checkpoint.unpublished.is_empty() {
        tracing::info!(reports = checkpoint.unpublished.len(), "publishing the reports left by the last run");
        let unpublished_bytes: u64 = checkpoint.unpublished.iter().map(|l| l.len() as u64 + 1).sum();
        let tail =
            settings.reports.file.as_deref().map(|p| file_tail(p, unpublished_bytes + (4 << 20))).unwrap_or_default();
        let written: std::collections::HashSet<&str> = tail.lines().collect();
        for line in &checkpoint.unpublished {
            let model = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["model"].as_str().map(str::to_string))
                .unwrap_or_default();
            sinks.publish(&model, line, !written.contains(line.as_str())).await;
        }
        let e = engine.lock().expect("engine lock");
        if let Err(err) = save_checkpoint(&ckpt_path, &e, &actions, &[]) {
            tracing::warn!(error = %err, "cannot write the checkpoint");
        }
    }

    let idle_timeouts = |settings: &Settings, engine: &Engine| -> Vec<Option<Duration>> {
        engine
            .models
            .iter()
            .map(|m| {
                settings
                    .models
                    .iter()
                    .find(|x| x.name == m.spec.name)
                    .and_then(|x| settings.policy_for(x).idle_timeout)
                    .and_then(|d| parse_duration(&d).ok())
            })
            .collect()
    };
    let mut settings = settings;
    let mut idle = idle_timeouts(&settings, &engine.lock().expect("engine lock"));
    let mut last_event: Vec<Option<Instant>> = vec![None; idle.len()];
    let mut badlog = RateLimitedLog { last: None, suppressed: 0 };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::pin!(shutdown);

    // Per-model event counters, looked up once (not per event); rebuilt after a reload.
    let mut event_counters: Vec<prometheus::IntCounter> = Vec::new();
    loop {
        let mut reload_request: Option<Option<ReloadRequest>> = None;
        let mut has_closed = true;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sighup.recv() => reload_request = Some(None),
            Some(req) = reload_rx.recv() => reload_request = Some(Some(req)),
            _ = tick.tick() => {
                let mut e = engine.lock().expect("engine lock");
                for (i, t) in idle.iter().enumerate() {
                    if let (Some(t), Some(last)) = (t, last_event.get(i).copied().flatten()) {
                        if last.elapsed() >= *t && e.models[i].open_events() > 0 {
                            tracing::info!(model = %e.models[i].spec.name, "idle: closing open windows");
                            e.flush_model(i);
                        }
                    }
                }
            }
            msg = consumer.recv() => match msg {
                Ok(m) => {
                    let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
                    let payload = m.payload().unwrap_or_default();
                    let result = {
                        let mut e = engine.lock().expect("engine lock");
                        let pid = e.partition_id(topic, partition);
                        let r = e.ingest_at(payload, m.timestamp().to_millis(), Some(topic), pid, offset);
                        has_closed = e.has_closed();
                        r
                    };
                    match result {
                        Ok(idx) => {
                            if event_counters.len() != last_event.len() {
                                let e = engine.lock().expect("engine lock");
                                event_counters = e.models.iter().map(|m| state.metrics.events_total.with_label_values(&[m.spec.name.as_str()])).collect();
                            }
                            event_counters[idx].inc();
                            last_event[idx] = Some(Instant::now());
                        }
                        Err(err) => {
                            state.metrics.decode_errors_total.with_label_values(&[err.reason()]).inc();
                            badlog.warn(err.reason(), topic, partition, offset);
                            if let Some((p, t)) = &dead_letter {
                                let headers = OwnedHeaders::new().insert(Header { key: "driftd-reason", value: Some(err.reason()) });
                                let record = FutureRecord::<[u8], [u8]>::to(t).payload(payload).headers(headers);
                                let record = match m.key() { Some(k) => record.key(k), None => record };
                                if let Err((e, _)) = p.send(record, Duration::from_secs(5)).await {
                                    tracing::warn!(error = %e, "cannot produce to the dead-letter topic");
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "kafka"),
            },
        }
        if let Some(req) = reload_request {
            let result = reload(&config_path, &engine, &actions).await;
            match &result {
                Ok(new_settings) => {
                    settings = new_settings.clone();
                    let e = engine.lock().expect("engine lock");
                    idle = idle_timeouts(&settings, &e);
                    last_event = vec![None; idle.len()];
                    event_counters.clear();
                    tracing::info!("config reloaded");
                }
                Err(err) => tracing::warn!(error = %err, "reload refused; the running config stays"),
            }
            if let Some(tx) = req {
                let _ = tx.send(result.map(|_| ()));
            }
        }
        // After a plain event nothing closed most of the time: skip the publishing pass.
        if has_closed || !pending.lock().expect("pending lock").is_empty() {
            publish(&engine, &state, &actions, &mut sinks, &hooks.reports, &pending, &consumer, &ckpt_path).await;
        }
    }

    // Ordered shutdown: stop fetching, keep the open windows (the committed offsets make
    // the next start read them again), flush the sinks, commit.
    tracing::info!("shutting down");
    publish(&engine, &state, &actions, &mut sinks, &hooks.reports, &pending, &consumer, &ckpt_path).await;
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit");
    }
    // alerts already decided go out; retrain requests not yet delivered stay in the outbox
    workers.shutdown(&actions, Mode::Stop).await;
    shutting_down.store(true, Ordering::Relaxed);
    // Closing the consumer leaves the group; done off the async threads, bounded in time.
    let closing = tokio::task::spawn_blocking(move || drop(consumer));
    if tokio::time::timeout(Duration::from_secs(10), closing).await.is_err() {
        tracing::warn!("the Kafka consumer did not close within 10 s");
    }
    if let Some(p) = producer {
        use rdkafka::producer::Producer as _;
        let _ = p.flush(Duration::from_secs(5));
    }
    let _ = http_stop_tx.send(());
    let _ = http.await;
    Ok(())
}

async fn reload(config_path: &Path, engine: &Arc<Mutex<Engine>>, actions: &Actions) -> Result<Settings, String> {
    let path = config_path.to_path_buf();
    let (settings, new_engine, action_config) = tokio::task::spawn_blocking(move || {
        let settings = Settings::load(&path).map_err(|e| e.to_string())?;
        let action_config = ActionConfig::from_settings(&settings)?;
        let engine = Engine::from_settings(&settings).map_err(|e| e.to_string())?;
        Ok::<_, String>((settings, engine, action_config))
    })
    .await
    .map_err(|e| e.to_string())??;
    actions.apply(action_config)?;
    engine.lock().expect("engine lock").reload(new_engine);
    Ok(settings)
}

/// Computes the reports of the windows that closed and makes them visible: metrics, the
/// API's latest report, the hook. Returns them for the sinks.
fn report_closed(
    engine: &mut Engine,
    state: &AppState,
    actions: &Actions,
    hook: &Option<mpsc::UnboundedSender<WindowReport>>,
) -> Vec<WindowReport> {
    let closed = engine.take_closed();
    let mut out = Vec::with_capacity(closed.len());
    for (spec, acc) in closed {
        let end_ms = acc.end_ms;
        let report = window_report(&spec, acc);
        state.metrics.observe_window(&report, end_ms);
        // decided (and a retrain request on disk) before the window is checkpointed
        actions.observe(&report);
        if let Some(tx) = hook {
            let _ = tx.send(report.clone());
        }
        state.latest.write().expect("lock").insert(report.model.clone(), report.clone());
        out.push(report);
    }
    out
}

/// Reports the windows that closed, then checkpoints and stores the offsets below them.
#[allow(clippy::too_many_arguments)]
async fn publish(
    engine: &Arc<Mutex<Engine>>,
    state: &Arc<AppState>,
    actions: &Actions,
    sinks: &mut Sinks,
    hook: &Option<mpsc::UnboundedSender<WindowReport>>,
    pending: &Arc<Mutex<Vec<WindowReport>>>,
    consumer: &StreamConsumer<Ctx>,
    ckpt_path: &Path,
) {
    let mut reports = std::mem::take(&mut *pending.lock().expect("pending lock"));
    let fresh = report_closed(&mut engine.lock().expect("engine lock"), state, actions, hook);
    if reports.is_empty() && fresh.is_empty() {
        return;
    }
    reports.extend(fresh);
    // the windows' marks and their reports land on disk together before any sink sees them
    let lines = lines_of(&reports);
    {
        let e = engine.lock().expect("engine lock");
        if let Err(err) = save_checkpoint(ckpt_path, &e, actions, &lines) {
            tracing::warn!(error = %err, "cannot write the checkpoint");
        }
    }
    for (report, line) in reports.iter().zip(&lines) {
        sinks.publish(&report.model, line, true).await;
    }
    let e = engine.lock().expect("engine lock");
    if let Err(err) = save_checkpoint(ckpt_path, &e, actions, &[]) {
        tracing::warn!(error = %err, "cannot write the checkpoint");
    }
    store_offsets(consumer, &e);
    *state.models.write().expect("lock") = model_infos(&e);
}
