//! The daemon put together: wiring at start, the run loop (`run_loop.rs`), the publisher
//! of closed windows (`publish.rs`), and the ordered shutdown.
//!
//! At least once without double counting: offsets are stored by hand and only below the
//! oldest event still in an open window, after the windows below it were reported. On a
//! revoke, the windows holding the revoked partitions' events are closed and reported and
//! the offsets committed before the partitions go; on shutdown the open windows are kept
//! (not reported) and the committed offsets make the next start read their events again.

mod decode_batch;
mod partials;
mod publish;
mod references;
mod run_loop;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;

use crate::actions::{Actions, Shutdown, Workers};
use crate::config::Settings;
use crate::http::{self, ApiState, ModelView};
use crate::kafka::TopicWorker;
use crate::kafka::{self, DeadLetter};
use crate::pipeline::{Pipeline, WindowReport};
use crate::sinks::reports::ReportSinks;
use crate::source::kafka::{ConsumerHooks, KafkaConsumer};
use crate::state::changelog::Changelog;
use crate::state::{Checkpoint, CheckpointFile, Loaded, StateLock};
use crate::telemetry::events::{CheckpointSetAside, PreviousRunUnclean, RepublishingReports};
use crate::telemetry::Telemetry;
use partials::PartialsOut;
pub use publish::Publisher;
use references::References;
use run_loop::RunLoop;

/// Hooks for embedding the daemon (the demo, tests).
#[derive(Default)]
pub struct Hooks {
    /// Every window report, as it is published.
    pub reports: Option<mpsc::UnboundedSender<WindowReport>>,
}

/// What the daemon runs with.
pub struct App {
    /// The config file, re-read on reload.
    pub config_path: PathBuf,
    pub settings: Settings,
    pub hooks: Hooks,
}

impl App {
    /// Loads the config file.
    pub fn load(config_path: PathBuf) -> anyhow::Result<App> {
        let settings = Settings::load(&config_path).map_err(|e| anyhow::anyhow!("config {e}"))?;
        Ok(App { config_path, settings, hooks: Hooks::default() })
    }
}

/// Serves the API on `listener`, and its admin endpoints there or on `[server]
/// admin_listen` when an admin token is set; stopped when the returned sender fires.
async fn serve_api(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    api: &Arc<ApiState>,
) -> anyhow::Result<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
    let s = &settings.server;
    let limits = http::Limits {
        max_connections: s.max_connections,
        header_timeout: s.header_timeout.get(),
        request_timeout: s.request_timeout.get(),
    };
    let tls = match &s.tls {
        Some(t) => Some(http::tls_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let token = s.admin_token.resolve().map_err(|e| anyhow::anyhow!("config server.admin_token: {e}"))?;
    let admin = token.as_deref().map(|t| http::admin_router(api.clone(), t));
    let admin_listener = match &s.admin_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("server.admin_listen: cannot bind {addr}"))?,
        ),
        None => None,
    };
    let mut main = http::router(api.clone());
    let mut apart = None;
    match (admin, admin_listener) {
        (Some(admin), Some(l)) => apart = Some((admin, l)),
        (Some(admin), None) => main = main.merge(admin),
        (None, _) => {}
    }
    let has_admin = token.is_some();
    tracing::info!(
        addr = %listener.local_addr()?,
        tls = tls.is_some(),
        admin = if !has_admin { "off (no server.admin_token)" } else if apart.is_some() { "apart" } else { "here" },
        "serving /metrics and /api/v1"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let mut servers = vec![tokio::spawn(http::serve(listener, main, limits, tls.clone(), until(stopped.clone())))];
    if let Some((admin, l)) = apart {
        tracing::info!(addr = %l.local_addr()?, "serving the admin endpoints");
        servers.push(tokio::spawn(http::serve(l, admin, limits, tls, until(stopped))));
    }
    let all = tokio::spawn(async move {
        for s in servers {
            if let Ok(Err(e)) = s.await {
                tracing::warn!(error = %e, "the HTTP server stopped");
            }
        }
    });
    Ok((stop, all))
}

/// Runs the daemon, serving HTTP on `listener`, until `shutdown` resolves.
pub async fn run(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = app.settings;
    if settings.kafka.topics.is_empty() {
        anyhow::bail!("config kafka.topics: give at least one topic");
    }
    // refused before the references load and calibrate (minutes with many models)
    if let Some(e) = settings.unreadable_secrets().into_iter().next() {
        anyhow::bail!("config {e}");
    }
    let state_lock = StateLock::acquire(&settings.state.dir).map_err(|e| anyhow::anyhow!("state.dir: {e}"))?;
    let telemetry = Arc::new(Telemetry::new());
    if let Some(pid) = state_lock.unclean_end {
        telemetry.emit(PreviousRunUnclean { pid, dir: &settings.state.dir });
    }
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let api = Arc::new(ApiState::new(telemetry.clone(), reload_tx));
    let (http_stop, server) = serve_api(&settings, listener, &api).await?;

    let (resolver, refs) = References::resolve(&settings).await?;
    let references = References::start(resolver, &settings, &refs, &telemetry, &api);
    let (publisher, workers, unpublished) = restore(&settings, refs, &telemetry, &api, app.hooks, state_lock).await?;
    let partials = match &settings.kafka.partials_topic {
        Some(topic) => {
            let (out, setup) = PartialsOut::start(&settings, topic).await?;
            publisher.pipeline().lock().expect("pipeline lock").enable_merge(setup);
            Some(out)
        }
        None => {
            let spread = partials::spread_models(&settings);
            if !spread.is_empty() {
                anyhow::bail!(
                    "config models ({}): spread = true needs kafka.partials_topic, where replicas send their parts \
                     of each window",
                    spread.join(", ")
                );
            }
            None
        }
    };
    let assigned = api.assigned.clone();
    let hooks = ConsumerHooks::new(telemetry.clone(), publisher.clone(), assigned, api.consumer.clone())
        .with_internal_topic(settings.kafka.partials_topic.clone())
        .with_options(&settings.kafka.options);
    let consumer = subscribe(&settings, hooks)?;
    let (producer, mut sinks, dead_letter) = outputs(&settings, &telemetry)?;
    publisher.track_sinks(&sinks);
    // Reports of windows closed before a crash whose publication was not confirmed go
    // first: the file sink skips the ones it already has; the topic may get a repeat
    // (its key and window_start identify it).
    if !unpublished.is_empty() {
        telemetry.emit(RepublishingReports { reports: unpublished.len() });
        if let Some(file) = &settings.reports.file {
            let bytes: u64 = unpublished.iter().map(|l| l.len() as u64 + 1).sum();
            sinks.skip_written(file, bytes + (4 << 20));
        }
        publisher.requeue(unpublished);
    }
    let actions = api.actions().expect("the actions are started");
    let mut run = RunLoop {
        config_path: app.config_path,
        publisher,
        sinks,
        dead_letter,
        telemetry,
        actions,
        api: api.clone(),
        references,
        reload_rx,
        counters: Vec::new(),
        running: settings.clone(),
        partials,
        preparing: None,
        paused: false,
        deferred: Default::default(),
        scratches: Vec::new(),
    };
    run.track_models();
    run.publish(&consumer).await;
    run.sinks.forget_written();
    run.run(&consumer, shutdown).await?;
    stop(run, consumer, workers, producer).await;
    let _ = http_stop.send(true);
    let _ = server.await;
    Ok(())
}

/// Builds the pipeline on the references, restores the checkpoint (window marks, drift
/// states) and starts the actions. Returns the publisher, the action workers and the
/// reports the last run left unconfirmed.
async fn restore(
    settings: &Settings,
    refs: std::collections::BTreeMap<String, crate::reference::ModelReferences>,
    telemetry: &Arc<Telemetry>,
    api: &Arc<ApiState>,
    hooks: Hooks,
    state_lock: StateLock,
) -> anyhow::Result<(Arc<Publisher>, Workers, Vec<String>)> {
    let mut pipeline = Pipeline::new(settings, refs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let checkpoint_file = CheckpointFile::in_dir(&settings.state.dir);
    let mut checkpoint = match checkpoint_file.read() {
        Ok(Loaded::Fresh) => Checkpoint::default(),
        Ok(Loaded::Read(c)) => c,
        Ok(Loaded::SetAside { to, error }) => {
            telemetry.emit(CheckpointSetAside { to: &to, error: &error });
            Checkpoint::default()
        }
        Err(e) => anyhow::bail!("state.dir: cannot read {}: {e}", checkpoint_file.path().display()),
    };
    // the changelog's state of each model, where another replica wrote it after this
    // directory's checkpoint (or this directory is new)
    let changelog = match &settings.state.changelog_topic {
        Some(topic) => Some(Arc::new(Changelog::start(settings, topic, telemetry.clone())?)),
        None => None,
    };
    let mut taken = Vec::new();
    if let Some(c) = &changelog {
        let local_ms = std::fs::metadata(checkpoint_file.path())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MIN, |d| d.as_millis() as i64);
        let reader = c.clone();
        let records = tokio::task::spawn_blocking(move || reader.catch_up()).await?;
        for rec in &records {
            checkpoint.adopt(rec.state.clone(), rec.at_ms > local_ms);
        }
        taken = records;
    }
    pipeline.restore_marks(checkpoint.marks());
    let (actions, workers) = Actions::start(settings, telemetry.clone()).map_err(|e| anyhow::anyhow!("config {e}"))?;
    actions.restore(checkpoint.trackers());
    actions.take_requests(checkpoint.pending_retrains());
    *api.actions.write().expect("lock") = Some(actions.clone());
    *api.models.write().expect("lock") = pipeline.models().iter().map(ModelView::of).collect();
    api.references_loaded.store(true, Ordering::Relaxed);
    let pipeline = Arc::new(Mutex::new(pipeline));
    let publisher = Publisher::new(pipeline, telemetry.clone(), actions, api.clone(), checkpoint_file)
        .with_changelog(changelog)
        .with_state_lock(state_lock);
    publisher.taken(&taken);
    Ok((Arc::new(publisher.with_hook(hooks.reports)), workers, checkpoint.unpublished))
}

/// The producer (when a topic needs one), the report sinks and the dead-letter topic.
fn outputs(
    settings: &Settings,
    telemetry: &Arc<Telemetry>,
) -> anyhow::Result<(Option<FutureProducer>, ReportSinks, Option<DeadLetter>)> {
    let producer: Option<FutureProducer> =
        if settings.kafka.dead_letter_topic.is_some() || settings.reports.topic.is_some() {
            Some(kafka::producer_config(settings).create().map_err(kafka::refused(settings, "the producer"))?)
        } else {
            None
        };
    let topic_sink = settings
        .reports
        .topic
        .clone()
        .and_then(|t| producer.clone().map(|p| TopicWorker::start(p, t, "topic", telemetry.clone())));
    let file = settings.reports.file.as_deref();
    let sinks = ReportSinks::open(file, topic_sink, Some(telemetry.clone()))
        .with_context(|| format!("reports.file: cannot open {}", file.unwrap_or(std::path::Path::new("")).display()))?;
    let dead_letter = settings
        .kafka
        .dead_letter_topic
        .clone()
        .and_then(|t| producer.clone().map(|p| DeadLetter::start(p, t, telemetry.clone())));
    Ok((producer, sinks, dead_letter))
}

fn subscribe(settings: &Settings, hooks: ConsumerHooks) -> anyhow::Result<KafkaConsumer> {
    let consumer: KafkaConsumer = kafka::consumer_config(settings)
        .create_with_context(hooks)
        .map_err(kafka::refused(settings, "the consumer"))?;
    let topics: Vec<&str> =
        settings.kafka.topics.iter().chain(&settings.kafka.partials_topic).map(String::as_str).collect();
    consumer.subscribe(&topics).context("kafka: cannot subscribe")?;
    Ok(consumer)
}

/// How long a shutdown waits for held reports to be decided.
const HOLD_AT_STOP: Duration = Duration::from_secs(5);

/// Ordered shutdown: stop fetching, keep the open windows (the committed offsets make the
/// next start read them again), flush the sinks, commit, let the workers finish what is
/// decided, leave the group.
async fn stop(mut run: RunLoop, consumer: KafkaConsumer, workers: Workers, producer: Option<FutureProducer>) {
    tracing::info!("shutting down");
    // reports waiting for their claims: decided once due (another replica's claim of the
    // same window has come by then), what is undecided reported
    let holding = Instant::now();
    while run.publisher.holds() && holding.elapsed() < HOLD_AT_STOP {
        run.publish(&consumer).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.publisher.release_held(true);
    run.publish(&consumer).await;
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit");
    }
    // alerts already decided go out; retrain requests not yet delivered stay in the outbox
    workers.shutdown(&run.actions, Shutdown::Stop).await;
    consumer.context().closing();
    // Closing the consumer leaves the group; done off the async threads, bounded in time.
    let closing = tokio::task::spawn_blocking(move || drop(consumer));
    if tokio::time::timeout(Duration::from_secs(10), closing).await.is_err() {
        tracing::warn!("the Kafka consumer did not close within 10 s");
    }
    if let Some(p) = producer {
        use rdkafka::producer::Producer as _;
        let _ = p.flush(Duration::from_secs(5));
    }
    if let Some(p) = &run.partials {
        p.flush();
    }
}
