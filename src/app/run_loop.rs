//! The daemon's one loop: messages in, windows out, idle models closed, reloads taken
//! between two messages, and the sinks fed after each step.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Message as _};
use tokio::sync::mpsc;

use super::publish::Publisher;
use crate::actions::{ActionConfig, Actions};
use crate::config::Settings;
use crate::http::ReloadRequest;
use crate::pipeline::Pipeline;
use crate::sinks::reports::ReportSinks;
use crate::source::kafka::{store_offsets, DeadLetter, KafkaConsumer};
use crate::telemetry::events::{ConsumerError, DeadLetterNotProduced, DecodeFailed, ModelIdle, Reloaded};
use crate::telemetry::{EventsAccepted, Telemetry};

/// How often idle models are looked for.
const TICK: Duration = Duration::from_millis(500);

pub(super) struct RunLoop {
    pub config_path: PathBuf,
    pub publisher: Arc<Publisher>,
    pub sinks: ReportSinks,
    pub dead_letter: Option<DeadLetter>,
    pub telemetry: Arc<Telemetry>,
    pub actions: Arc<Actions>,
    pub reload_rx: mpsc::Receiver<ReloadRequest>,
    /// Per model (pipeline order): its events counter and when its last event came.
    pub models: Vec<(EventsAccepted, Option<Instant>)>,
}

impl RunLoop {
    fn pipeline(&self) -> &Arc<Mutex<Pipeline>> {
        self.publisher.pipeline()
    }

    /// Looks up each model's counter once (again after a reload).
    pub fn track_models(&mut self) {
        let pipeline = self.publisher.pipeline().lock().expect("pipeline lock");
        self.models = pipeline.models().iter().map(|m| (self.telemetry.events_accepted(&m.spec.name), None)).collect();
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(&mut self, consumer: &KafkaConsumer, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(TICK);
        let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::pin!(shutdown);
        loop {
            let mut reload: Option<Option<ReloadRequest>> = None;
            tokio::select! {
                _ = &mut shutdown => break,
                _ = sighup.recv() => reload = Some(None),
                Some(req) = self.reload_rx.recv() => reload = Some(Some(req)),
                _ = tick.tick() => self.close_idle(),
                msg = consumer.recv() => match msg {
                    Ok(m) => self.on_message(&m).await,
                    Err(error) => self.telemetry.emit(ConsumerError { error: &error }),
                },
            }
            if let Some(reply) = reload {
                self.reload(reply).await;
            }
            self.publish(consumer).await;
        }
        Ok(())
    }

    /// Hands what closed to the sinks and stores the offsets below it.
    pub async fn publish(&mut self, consumer: &KafkaConsumer) {
        if self.publisher.has_unpublished() {
            let offsets = self.publisher.publish(&mut self.sinks).await;
            store_offsets(consumer, offsets);
        }
    }

    async fn on_message(&mut self, m: &BorrowedMessage<'_>) {
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        let payload = m.payload().unwrap_or_default();
        let result = {
            let mut pipeline = self.pipeline().lock().expect("pipeline lock");
            let pid = pipeline.partition_id(topic, partition);
            let r = pipeline.ingest_at(payload, m.timestamp().to_millis(), Some(topic), pid, offset);
            if pipeline.has_closed() {
                self.publisher.report_closed(&mut pipeline);
            }
            r
        };
        match result {
            Ok(idx) => {
                let (counter, last) = &mut self.models[idx];
                counter.inc();
                *last = Some(Instant::now());
            }
            Err(reason) => {
                self.telemetry.emit(DecodeFailed { reason, topic, partition, offset });
                if let Some(dl) = &self.dead_letter {
                    if let Err(error) = dl.send(payload, m.key(), reason.reason()).await {
                        self.telemetry.emit(DeadLetterNotProduced { error: &error });
                    }
                }
            }
        }
    }

    /// Closes the open windows of models whose traffic stopped for their `idle_timeout`.
    fn close_idle(&mut self) {
        let mut pipeline = self.publisher.pipeline().lock().expect("pipeline lock");
        for (i, (_, last)) in self.models.iter().enumerate() {
            let m = &pipeline.models()[i];
            let (Some(timeout), Some(last)) = (m.spec.idle_timeout, last) else { continue };
            if last.elapsed() >= timeout && m.windows.open_events() > 0 {
                self.telemetry.emit(ModelIdle { model: &m.spec.name });
                pipeline.close_model(i);
            }
        }
        if pipeline.has_closed() {
            self.publisher.report_closed(&mut pipeline);
        }
    }

    /// Re-reads the config: taken whole, or refused with the key and the running config
    /// kept. References are profiled off the async threads.
    async fn reload(&mut self, reply: Option<ReloadRequest>) {
        let result = self.load_and_apply().await;
        self.telemetry.emit(Reloaded { error: result.as_ref().err().map(String::as_str) });
        if result.is_ok() {
            self.track_models();
        }
        if let Some(tx) = reply {
            let _ = tx.send(result);
        }
    }

    async fn load_and_apply(&self) -> Result<(), String> {
        let path = self.config_path.clone();
        let (pipeline, action_config) = tokio::task::spawn_blocking(move || {
            let settings = Settings::load(&path).map_err(|e| e.to_string())?;
            let action_config = ActionConfig::from_settings(&settings).map_err(|e| e.to_string())?;
            let pipeline = Pipeline::from_settings(&settings).map_err(|e| e.to_string())?;
            Ok::<_, String>((pipeline, action_config))
        })
        .await
        .map_err(|e| e.to_string())??;
        self.actions.apply(action_config).map_err(|e| e.to_string())?;
        self.pipeline().lock().expect("pipeline lock").reload(pipeline);
        Ok(())
    }
}
