//! The daemon's references: resolved at start (the store stands in for a source that
//! fails), announced (metrics, readiness), and watched by a task of their own whose
//! changes the run loop swaps in.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Settings;
use crate::error::InputError;
use crate::http::ApiState;
use crate::reference::watch::{Change, Want, Watcher};
use crate::reference::{ModelReferences, ReferenceStore, Resolver};
use crate::telemetry::events::{ReferenceFailed, ReferenceInUse};
use crate::telemetry::Telemetry;

pub(super) struct References {
    /// What the watcher found.
    pub changes: mpsc::Receiver<Change>,
    wants: mpsc::Sender<Want>,
    task: tokio::task::JoinHandle<()>,
}

impl References {
    /// Every model's references now, from their sources or the state directory's store.
    pub async fn resolve(
        settings: &Settings,
    ) -> Result<(Arc<Resolver>, BTreeMap<String, ModelReferences>), InputError> {
        let store = ReferenceStore::in_dir(&settings.state.dir);
        let resolver = Resolver::new(settings, Some(store)).map_err(|e| InputError::flag(&e.key, e.reason))?;
        let configs = settings.model_configs().map_err(|e| InputError::flag(&e.key, e.reason))?;
        let refs = resolver.initial(&configs).await?;
        if let Some(store) = resolver.store() {
            let removed = store.collect_garbage();
            if removed > 0 {
                tracing::info!(removed, "stored profiles no reference names any more removed");
            }
        }
        Ok((Arc::new(resolver), refs))
    }

    /// Announces the references in use and starts watching their sources.
    pub fn start(
        resolver: Arc<Resolver>,
        settings: &Settings,
        refs: &BTreeMap<String, ModelReferences>,
        telemetry: &Telemetry,
        api: &ApiState,
    ) -> References {
        announce(refs, telemetry, api);
        let (changes_tx, changes) = mpsc::channel(64);
        let (wants, wants_rx) = mpsc::channel(256);
        let configs = settings.model_configs().unwrap_or_default();
        let task = tokio::spawn(Watcher::new(resolver, configs, refs).run(changes_tx, wants_rx));
        References { changes, wants, task }
    }

    /// Watches a reloaded config's models instead.
    pub fn restart(
        &mut self,
        resolver: Arc<Resolver>,
        settings: &Settings,
        refs: &BTreeMap<String, ModelReferences>,
        telemetry: &Telemetry,
        api: &ApiState,
    ) {
        self.task.abort();
        *self = References::start(resolver, settings, refs, telemetry, api);
    }

    /// Asks for the reference of a version whose traffic came with none.
    pub fn want(&self, model: String, version: String) {
        let _ = self.wants.try_send(Want::Version { model, version });
    }
}

impl Drop for References {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Metrics and readiness for the references at start.
fn announce(refs: &BTreeMap<String, ModelReferences>, telemetry: &Telemetry, api: &ApiState) {
    let mut missing = BTreeMap::new();
    for (model, r) in refs {
        if let Some(l) = &r.shared {
            telemetry.emit(ReferenceInUse {
                model,
                version: None,
                identity: &l.identity,
                previous: None,
                swapped: false,
            });
        }
        for (v, l) in &r.by_version {
            let version = Some(v.as_str());
            telemetry.emit(ReferenceInUse { model, version, identity: &l.identity, previous: None, swapped: false });
        }
        if let Some(error) = &r.stale {
            telemetry.emit(ReferenceFailed { model, version: None, error });
        }
        if let Some(why) = &r.missing {
            missing.insert(model.clone(), why.clone());
        }
    }
    *api.missing_references.write().expect("lock") = missing;
}
