//! `driftd replay`: the streaming pipeline over a JSON Lines file. With `[retrain]` or
//! `[[alerts]]` configured, the policy acts as the daemon would: the retrain requests and
//! alerts go out, and the replay ends once they are delivered. Its outbox and alert state
//! live in a directory of their own (`--state-dir`), never in the daemon's.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use crate::actions::{Actions, Shutdown, Workers};
use crate::cli::{InputFormat, ReplayArgs};
use crate::config::{Format, Settings};
use crate::error::InputError;
use crate::pipeline::{Pipeline, WindowReport};
use crate::source::file::{self, ReplaySummary};
use crate::state::StateLock;
use crate::telemetry::Telemetry;

/// Runs the replay; the summary (events, windows, bad messages by reason, actions) is the
/// caller's to print.
pub fn replay(args: &ReplayArgs) -> Result<ReplaySummary, InputError> {
    let started = std::time::Instant::now();
    let mut settings = Settings::load(&args.config).map_err(|e| InputError::flag(&e.key, e.reason))?;
    settings.state.dir = args.state_dir.clone().unwrap_or_else(|| settings.state.dir.join("replay"));
    let mut pipeline = Pipeline::new(&settings, crate::reference::resolve_blocking(&settings)?)?;
    let topic = args.topic.as_deref();
    let format = match args.format {
        Some(InputFormat::Driftd) => Format::Driftd,
        Some(InputFormat::OpenInference) => Format::OpenInference,
        Some(InputFormat::SagemakerCapture) => Format::SagemakerCapture,
        None => topic.and_then(|t| settings.kafka.formats.get(t).copied()).unwrap_or(Format::Driftd),
    };
    pipeline.set_file_format(format);
    pipeline.pair_by_event_time();
    let load_s = started.elapsed().as_secs_f64();
    let acting = settings.retrain.is_some() || !settings.alerts.is_empty();
    let runtime = acting.then(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime")
    });
    // one replay at a time on its state (a daemon's is another directory)
    let _lock = match acting {
        true => Some(StateLock::acquire(&settings.state.dir).map_err(|e| InputError::flag("--state-dir", e))?),
        false => None,
    };
    let started = match &runtime {
        Some(rt) => {
            let _guard = rt.enter();
            Some(
                Actions::start(&settings, Arc::new(Telemetry::new()))
                    .map_err(|e| InputError::flag(&e.key, e.reason))?,
            )
        }
        None => None,
    };
    let mut on_report = |r: &WindowReport| {
        if let Some((actions, _)) = &started {
            actions.observe(r);
        }
    };
    let mut summary = match &args.output {
        Some(p) => {
            let file = std::fs::File::create(p).map_err(|e| InputError::file(p, format!("cannot write: {e}")))?;
            let mut w = std::io::BufWriter::new(file);
            let s = file::replay(pipeline, &args.input, topic, &mut w, &mut on_report)?;
            w.flush().map_err(|e| InputError::file(p, format!("cannot write: {e}")))?;
            s
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            let s = file::replay(pipeline, &args.input, topic, &mut w, &mut on_report)?;
            let _ = w.flush();
            s
        }
    };
    summary.timing.load_s = load_s;
    if let (Some(rt), Some((actions, workers))) = (runtime, started) {
        summary.actions = Some(rt.block_on(drain(&settings, &actions, workers)));
    }
    Ok(summary)
}

/// Delivers what the policy decided, then sums it up: episodes per model, retrain
/// requests by outcome, alerts sent per receiver.
async fn drain(settings: &Settings, actions: &Actions, workers: Workers) -> serde_json::Value {
    let alerts_sent = workers.shutdown(actions, Shutdown::Drain).await;
    let mut episodes = serde_json::Map::new();
    let mut retrains = BTreeMap::<String, u64>::new();
    for m in &settings.models {
        let n: u64 = actions.states_of(&m.name).iter().map(|(_, st)| st.episodes).sum();
        episodes.insert(m.name.clone(), serde_json::json!(n));
        for e in actions.history(&m.name) {
            *retrains.entry(e.status.as_str().to_string()).or_default() += 1;
        }
    }
    let alerts: BTreeMap<String, u64> = settings
        .alerts
        .iter()
        .map(|a| {
            let name = a.receiver_name();
            let sent = alerts_sent.get(&name).copied().unwrap_or(0);
            (name, sent)
        })
        .collect();
    serde_json::json!({ "drift_episodes": episodes, "retrain_requests": retrains, "alerts_sent": alerts })
}
