//! The daemon's one loop: messages in, windows out, idle tracks closed, reference changes
//! swapped in, reloads taken between two messages, and the sinks fed after each step.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::message::{BorrowedMessage, Message as _};
use tokio::sync::mpsc;

use super::decode_batch::decode_batch;
use super::publish::Publisher;
use super::references::References;
use crate::actions::{ActionConfig, Actions};
use crate::config::Settings;
use crate::http::{ApiState, ReloadRequest};
use crate::kafka::DeadLetter;
use crate::pipeline::Pipeline;
use crate::policy::Resolution;
use crate::reference::watch::Change;
use crate::sinks::reports::ReportSinks;
use crate::source::kafka::{store_offsets, KafkaConsumer, Offsets};
use crate::telemetry::events::{
    Backpressure, DecodeFailed, LiveVersions, ModelIdle, Pairing, Partials, ReferenceFailed, ReferenceInUse,
    ReferenceRecovered, Reloaded, VersionRetired,
};
use crate::telemetry::{EventsAccepted, Telemetry};

/// How often idle tracks are looked for.
const TICK: Duration = Duration::from_millis(500);

pub(super) struct RunLoop {
    pub config_path: PathBuf,
    pub publisher: Arc<Publisher>,
    pub sinks: ReportSinks,
    pub dead_letter: Option<DeadLetter>,
    pub telemetry: Arc<Telemetry>,
    pub actions: Arc<Actions>,
    pub api: Arc<ApiState>,
    pub references: References,
    pub reload_rx: mpsc::Receiver<ReloadRequest>,
    /// Per model (pipeline order): its events counter.
    pub counters: Vec<EventsAccepted>,
    /// The config the process started with: the sections a reload cannot change.
    pub running: Settings,
    /// The partials topic's producer, when spread models' windows are merged.
    pub partials: Option<super::partials::PartialsOut>,
    /// A reload being prepared off the loop (config read, references resolved and
    /// profiled, pipeline built), and who asked for it.
    pub preparing: Preparing,
    /// The input partitions are paused: the report topic's worker is full.
    pub paused: bool,
    /// With the state changelog: offsets waiting until the changelog holds the state
    /// they were computed with (its mark then).
    pub deferred: std::collections::VecDeque<(u64, Offsets)>,
    /// One decoding buffer per message of a batch, reused.
    pub scratches: Vec<crate::pipeline::Scratch>,
}

/// A reload being prepared, and who asked for it.
pub(super) type Preparing = Option<(tokio::task::JoinHandle<Result<Prepared, String>>, Option<ReloadRequest>)>;

/// A reloaded config made ready to apply: everything slow is done.
pub(super) struct Prepared {
    settings: Settings,
    action_config: ActionConfig,
    resolver: Arc<crate::reference::Resolver>,
    refs: std::collections::BTreeMap<String, crate::reference::ModelReferences>,
    pipeline: Pipeline,
}

/// Reads the config file and does the slow part of a reload: references fetched and
/// profiled (the store spares what did not change), the new pipeline built.
async fn prepare(path: PathBuf) -> Result<Prepared, String> {
    let settings = tokio::task::spawn_blocking(move || Settings::load(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let action_config = ActionConfig::from_settings(&settings).map_err(|e| e.to_string())?;
    let (resolver, refs) = References::resolve(&settings).await.map_err(|e| e.to_string())?;
    let pipeline = Pipeline::new(&settings, refs.clone()).map_err(|e| e.to_string())?;
    Ok(Prepared { settings, action_config, resolver, refs, pipeline })
}

/// The reload being prepared, once it is done (never, when none is).
async fn prepared(preparing: &mut Preparing) -> Result<Prepared, String> {
    match preparing {
        Some((handle, _)) => handle.await.map_err(|e| e.to_string()).and_then(|r| r),
        None => std::future::pending().await,
    }
}

/// Sections a reload does not apply (the consumer, the listener, the state directory, the
/// report sinks and logging are set up once): their changes wait for a restart.
fn restart_needed(running: &Settings, new: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let changed = [
        ("kafka", running.kafka != new.kafka),
        ("server", running.server != new.server),
        ("log", running.log != new.log),
        ("state", running.state != new.state),
        ("reports", running.reports != new.reports),
    ];
    for (section, differs) in changed {
        if differs {
            out.push(section.to_string());
        }
    }
    out
}

/// Messages taken per turn of the loop when they are already there.
const BATCH: usize = 256;

/// The next item of a stream that never ends (a consumer's message stream).
fn next_message<S: futures_core::Stream + Unpin>(s: &mut S) -> impl Future<Output = S::Item> + '_ {
    std::future::poll_fn(move |cx| {
        std::pin::Pin::new(&mut *s).poll_next(cx).map(|m| m.expect("kafka streams never terminate"))
    })
}

/// A future's output if it is ready now (polled once, never waits).
fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

impl RunLoop {
    fn pipeline(&self) -> &Arc<Mutex<Pipeline>> {
        self.publisher.pipeline()
    }

    /// Looks up each model's counter once (again after a reload).
    pub fn track_models(&mut self) {
        let pipeline = self.publisher.pipeline().lock().expect("pipeline lock");
        self.counters = pipeline.models().iter().map(|m| self.telemetry.events_accepted(m.name())).collect();
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(&mut self, consumer: &KafkaConsumer, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(TICK);
        let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::pin!(shutdown);
        // one stream for the loop's life: `recv` makes one per message, registering and
        // unregistering its waker under a lock each time
        let mut stream = consumer.stream();
        loop {
            let mut reload: Option<Option<ReloadRequest>> = None;
            tokio::select! {
                _ = &mut shutdown => break,
                _ = sighup.recv() => reload = Some(None),
                Some(req) = self.reload_rx.recv() => reload = Some(Some(req)),
                Some(change) = self.references.changes.recv() => self.on_reference(change),
                ready = prepared(&mut self.preparing) => {
                    let reply = self.preparing.take().and_then(|(_, reply)| reply);
                    self.finish_reload(ready, reply);
                }
                _ = tick.tick() => {
                    self.publisher.check_state_dir();
                    self.publisher.in_flight_confirmed();
                    self.close_idle();
                    self.merge().await;
                }
                msg = next_message(&mut stream) => match msg {
                    Ok(m) => {
                        // what the consumer already holds is taken without another round
                        // of the select (timers, signals, channels polled per message)
                        let mut batch = vec![m];
                        while batch.len() < BATCH {
                            match ready_now(next_message(&mut stream)) {
                                Some(Ok(m)) => batch.push(m),
                                Some(Err(error)) => {
                                    consumer.context().consumer_error(&error);
                                    break;
                                }
                                None => break,
                            }
                        }
                        self.on_batch(&batch);
                    }
                    Err(error) => consumer.context().consumer_error(&error),
                },
            }
            if let Some(reply) = reload {
                self.start_reload(reply);
            }
            self.publish(consumer).await;
        }
        Ok(())
    }

    /// Hands what closed to the sinks (and spread models' parts to the partials topic),
    /// and stores the offsets below it.
    pub async fn publish(&mut self, consumer: &KafkaConsumer) {
        let sent = self.send_partials().await;
        self.publisher.release_held(false);
        if self.publisher.has_unpublished() || self.sinks.file_retry_due() {
            let offsets = self.publisher.publish(&mut self.sinks).await;
            self.store(offsets);
        } else if self.publisher.save_failing() {
            // no offset moves until the checkpoint is written again
            if self.publisher.retry_save() {
                let offsets = self.pipeline().lock().expect("pipeline lock").safe_offsets();
                self.store(offsets);
            }
        } else if sent {
            let offsets = self.pipeline().lock().expect("pipeline lock").safe_offsets();
            self.store(offsets);
        }
        self.store_due(consumer);
        self.backpressure(consumer);
    }

    /// Queues offsets to store: at once without the state changelog; with it, once the
    /// changelog holds every state written so far, so that a replica taking a partition
    /// over never reads from an offset past the windows its marks say are open.
    fn store(&mut self, offsets: Offsets) {
        let mark = self.publisher.changelog().map_or(0, |c| c.mark());
        self.deferred.push_back((mark, offsets));
        // a later entry covers an earlier one: the queue only needs to stay short
        if self.deferred.len() > 256 {
            self.deferred.pop_front();
        }
    }

    /// Stores the newest queued offsets whose state the changelog holds.
    fn store_due(&mut self, consumer: &KafkaConsumer) {
        let mut due = None;
        while let Some((mark, _)) = self.deferred.front() {
            if self.publisher.changelog().is_some_and(|c| !c.taken_upto(*mark)) {
                break;
            }
            due = self.deferred.pop_front().map(|(_, o)| o);
        }
        if let Some(offsets) = due {
            tracing::trace!(?offsets, "offsets stored");
            store_offsets(consumer, offsets);
        }
    }

    /// While the report topic's worker has no room, the partitions are paused and the
    /// loop goes on (ticks, reloads, rebalances: the group keeps the member); once the
    /// backlog is handed over they resume. Nothing is dropped.
    fn backpressure(&mut self, consumer: &KafkaConsumer) {
        let left = self.sinks.drain().unwrap_or(0);
        if left == 0 && !self.paused {
            return;
        }
        let Ok(held) = consumer.assignment() else { return };
        if left > 0 {
            // again on every pass: partitions assigned meanwhile come unpaused
            if let Err(error) = consumer.pause(&held) {
                tracing::debug!(%error, "pause");
            }
            if !self.paused {
                self.telemetry.emit(Backpressure { paused: held.count(), backlog: left });
                self.paused = true;
            }
        } else {
            if let Err(error) = consumer.resume(&held) {
                tracing::debug!(%error, "resume");
            }
            self.telemetry.emit(Backpressure { paused: 0, backlog: 0 });
            self.paused = false;
        }
    }

    /// Sends the partials waiting; those not acknowledged are kept. Returns whether any
    /// was acknowledged (their offsets may be stored).
    async fn send_partials(&self) -> bool {
        let Some(out) = &self.partials else { return false };
        let records = self.pipeline().lock().expect("pipeline lock").take_outgoing();
        if records.is_empty() {
            return false;
        }
        let n = records.len();
        let unsent = out.send(records).await;
        let (sent, unsent_n) = ((n - unsent.len()) as u64, unsent.len() as u64);
        self.pipeline().lock().expect("pipeline lock").return_outgoing(unsent);
        self.telemetry.emit(Partials { sent, unsent: unsent_n, merged: Default::default() });
        sent > 0
    }

    /// Spread models, every tick: panes their partition's event time has passed are sent;
    /// then, once every partial before them is acknowledged, how far each partition has
    /// come; then the windows whose parts are all in are merged and reported, and their
    /// `Done` records sent.
    async fn merge(&mut self) {
        let Some(out) = &self.partials else { return };
        let clock = self.api.consumer.idle_clock();
        self.pipeline().lock().expect("pipeline lock").advance_parts(Instant::now(), clock);
        self.send_partials().await;
        let progress = {
            let pipeline = self.pipeline().lock().expect("pipeline lock");
            // a progress record must not overtake a partial before it
            if pipeline.has_outgoing() {
                Vec::new()
            } else {
                pipeline.progress_records()
            }
        };
        let unsent = out.send(progress).await.len();
        let (done, counts) = {
            let mut pipeline = self.pipeline().lock().expect("pipeline lock");
            let done = pipeline.merge_ready(Instant::now());
            if pipeline.has_closed() {
                self.publisher.report_closed(&mut pipeline);
            }
            (done, pipeline.take_merge_counts())
        };
        let unsent_done = out.send(done).await;
        if !unsent_done.is_empty() {
            tracing::warn!(
                records = unsent_done.len(),
                "done records not acknowledged: a new owner may merge those windows again"
            );
        }
        self.telemetry.emit(Partials { sent: 0, unsent: 0, merged: counts });
        if unsent > 0 {
            tracing::debug!(unsent, "progress records not acknowledged");
        }
    }

    /// Messages read in a row: decoded (on both cores when there are many), then taken
    /// one by one in the order read, their events stamped with one processing time.
    fn on_batch(&mut self, batch: &[BorrowedMessage<'_>]) {
        let pipeline = self.publisher.pipeline().clone();
        let decoding = pipeline.lock().expect("pipeline lock").decoding();
        let partials = self.partials.as_ref().map(|p| p.topic());
        let internal = |topic: &str| partials == Some(topic);
        let threads = self.running.kafka.decode_threads;
        let topics: Vec<&str> = batch.iter().map(|m| m.topic()).collect();
        let decoded = decode_batch(&decoding, batch, &topics, &internal, &mut self.scratches, threads);
        let mut failed = Vec::new();
        let wanted = {
            let mut pipeline = pipeline.lock().expect("pipeline lock");
            pipeline.hold_clock(true);
            for (((m, topic), decoded), scratch) in batch.iter().zip(&topics).zip(decoded).zip(&self.scratches) {
                self.api.consumer.message();
                let (topic, partition, offset) = (*topic, m.partition(), m.offset());
                let Some(decoded) = decoded else {
                    pipeline.ingest_internal(m.payload().unwrap_or_default(), topic, partition, offset);
                    continue;
                };
                let pid = pipeline.partition_id(topic, partition);
                let result = pipeline.ingest_decoded_at(decoded, scratch, m.timestamp().to_millis(), pid, offset);
                if pipeline.has_closed() {
                    self.publisher.report_closed(&mut pipeline);
                }
                match result {
                    Ok(routed) => self.counters[routed.model].inc_by(routed.events, routed.reread),
                    Err(reason) => failed.push((m, reason)),
                }
            }
            pipeline.hold_clock(false);
            pipeline.take_wanted()
        };
        for (model, version) in wanted {
            self.references.want(model, version);
        }
        for (m, reason) in failed {
            let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
            self.telemetry.emit(DecodeFailed { reason, topic, partition, offset });
            if let Some(dl) = &self.dead_letter {
                dl.send(m.payload().unwrap_or_default(), m.key(), reason.reason(), &self.telemetry);
            }
        }
    }

    /// Closes the windows of tracks whose traffic stopped for their `idle_timeout`; idle
    /// versions are retired (their series go, their drift state stays); the API's view of
    /// the models is brought up to date.
    fn close_idle(&mut self) {
        let mut pipeline = self.publisher.pipeline().lock().expect("pipeline lock");
        pipeline.expire_pairs(Instant::now());
        for later in pipeline.take_later() {
            match later.result {
                Ok(events) => self.counters[later.model].inc_by(events, false),
                Err(reason) => {
                    let (pid, offset) = later.at.unwrap_or((u32::MAX, -1));
                    let (topic, partition) = pipeline.partition_name(pid).unwrap_or(("", -1));
                    self.telemetry.emit(DecodeFailed { reason, topic, partition, offset });
                }
            }
        }
        let (joined, unpaired, pending_rows) = pipeline.pairing();
        self.telemetry.emit(Pairing { joined, unpaired, pending_rows });
        let idle = pipeline.close_idle(Instant::now(), self.api.consumer.idle_clock());
        for i in &idle {
            match (&i.retired, &i.version) {
                (Some(spec), Some(version)) => {
                    let features: Vec<String> = spec.features().cloned().collect();
                    let (model, reference) = (i.model.as_str(), &spec.reference);
                    self.telemetry.emit(VersionRetired { model, version, features: &features, reference });
                }
                _ => self.telemetry.emit(ModelIdle { model: &i.model }),
            }
        }
        for m in pipeline.models().iter().filter(|m| m.config.split_by_version) {
            self.telemetry.emit(LiveVersions { model: m.name(), versions: m.tracks.len() });
        }
        if pipeline.has_closed() {
            self.publisher.report_closed(&mut pipeline);
        }
        // the API's counts (events, open windows) at most a tick old, whether or not a
        // window closed since
        self.publisher.show_models(&pipeline);
    }

    /// A reference changed: a new one is swapped in (the windows it replaces are reported
    /// against the old one first; an episode in course ends with `reference_updated`), or
    /// its source failed (the one in use stays, stale), or answers again.
    fn on_reference(&mut self, change: Change) {
        match change {
            Change::Swap { model, version, loaded } => {
                let mut pipeline = self.pipeline().lock().expect("pipeline lock");
                let Some(idx) = pipeline.model_index(&model) else { return };
                let per_version = pipeline.models()[idx].config.reference.per_version();
                let key = version.as_deref().filter(|_| per_version);
                let previous = {
                    let m = &pipeline.models()[idx];
                    key.map_or(m.shared.as_ref(), |v| m.by_version.get(v)).map(|s| s.reference.clone())
                };
                pipeline.swap(&model, key, &loaded);
                self.publisher.report_closed(&mut pipeline);
                let resolution = Resolution::ReferenceUpdated {
                    version: loaded.identity.version.clone(),
                    digest: loaded.identity.digest.clone(),
                };
                self.actions.reference_updated(&model, key, resolution);
                let (identity, previous) = (&loaded.identity, previous.as_ref());
                self.telemetry.emit(ReferenceInUse { model: &model, version: key, identity, previous, swapped: true });
                self.api.missing_references.write().expect("lock").remove(&model);
                self.publisher.checkpoint(&pipeline);
                self.publisher.show_models(&pipeline);
            }
            Change::Failed { model, version, error } => {
                self.telemetry.emit(ReferenceFailed { model: &model, version: version.as_deref(), error: &error });
            }
            Change::Recovered { model, version } => {
                self.telemetry.emit(ReferenceRecovered { model: &model, version: version.as_deref() });
            }
        }
    }

    /// Starts re-reading the config off the loop: messages keep flowing while references
    /// are fetched and profiled. One reload at a time.
    fn start_reload(&mut self, reply: Option<ReloadRequest>) {
        if self.preparing.is_some() {
            let busy = "a reload is in progress; ask again when it is done".to_string();
            self.telemetry.emit(Reloaded { error: Some(&busy), restart_needed: &[] });
            if let Some(tx) = reply {
                let _ = tx.send(Err(busy));
            }
            return;
        }
        self.preparing = Some((tokio::spawn(prepare(self.config_path.clone())), reply));
    }

    /// Applies a prepared reload between two messages: taken whole, or refused with the
    /// key and the running config kept.
    fn finish_reload(&mut self, prepared: Result<Prepared, String>, reply: Option<ReloadRequest>) {
        let result = prepared.and_then(|p| self.apply(p));
        let restart: &[String] = result.as_ref().map_or(&[], Vec::as_slice);
        self.telemetry.emit(Reloaded { error: result.as_ref().err().map(String::as_str), restart_needed: restart });
        if result.is_ok() {
            self.track_models();
        }
        if let Some(tx) = reply {
            let _ = tx.send(result);
        }
    }

    /// Applies a prepared config; returns the changed sections that need a restart.
    fn apply(&mut self, prepared: Prepared) -> Result<Vec<String>, String> {
        let Prepared { settings, action_config, resolver, refs, pipeline } = prepared;
        self.actions.apply(action_config).map_err(|e| e.to_string())?;
        {
            let mut current = self.pipeline().lock().expect("pipeline lock");
            current.reload(pipeline);
            // the windows of changed and removed models, closed as they were
            if current.has_closed() {
                self.publisher.report_closed(&mut current);
            }
            self.publisher.show_models(&current);
        }
        self.references.restart(resolver, &settings, &refs, &self.telemetry, &self.api);
        Ok(restart_needed(&self.running, &settings))
    }
}
