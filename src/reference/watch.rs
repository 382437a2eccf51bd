//! The watcher: polls every model's reference source (files and URLs every
//! `reference_poll`, the registry every `[mlflow] poll`) and tells the daemon what changed.
//! It only fetches and profiles; the daemon swaps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Loaded, ModelReferences, ReferenceError, ReferenceIdentity, Resolver};
use crate::config::ModelConfig;

/// What the watcher tells the daemon.
#[derive(Debug)]
pub enum Change {
    /// A new reference for the model (and version): swap it in.
    Swap { model: String, version: Option<String>, loaded: Loaded },
    /// The source failed: the reference in use stays, stale.
    Failed { model: String, version: Option<String>, error: ReferenceError },
    /// The source answers again, with the reference in use.
    Recovered { model: String, version: Option<String> },
}

/// What the daemon asks of the watcher.
#[derive(Debug)]
pub enum Want {
    /// Traffic of a version with no reference yet (per-version registry references).
    Version { model: String, version: String },
}

/// One (model, version)'s reference as the watcher last saw it.
struct Watched {
    identity: Option<ReferenceIdentity>,
    features: Vec<String>,
    failing: bool,
}

pub struct Watcher {
    resolver: Arc<Resolver>,
    models: Vec<ModelConfig>,
    watched: BTreeMap<(String, Option<String>), Watched>,
}

impl Watcher {
    /// Watches `models`, whose references in use are `current`.
    pub fn new(
        resolver: Arc<Resolver>,
        models: Vec<ModelConfig>,
        current: &BTreeMap<String, ModelReferences>,
    ) -> Watcher {
        let mut watched = BTreeMap::new();
        for m in &models {
            let refs = current.get(&m.name);
            let entry = |l: Option<&Loaded>| Watched {
                identity: l.map(|l| l.identity.clone()),
                features: l.map(|l| l.profile.features.iter().map(|f| f.name.clone()).collect()).unwrap_or_default(),
                failing: refs.is_some_and(|r| r.stale.is_some()),
            };
            if m.reference.per_version() {
                for (v, l) in refs.map(|r| &r.by_version).into_iter().flatten() {
                    watched.insert((m.name.clone(), Some(v.clone())), entry(Some(l)));
                }
            } else {
                watched.insert((m.name.clone(), None), entry(refs.and_then(|r| r.shared.as_ref())));
            }
        }
        Watcher { resolver, models, watched }
    }

    fn poll_of(&self, m: &ModelConfig) -> Duration {
        match m.reference.is_registry() {
            true => self.resolver.registry_poll().unwrap_or(m.reference_poll),
            false => m.reference_poll,
        }
    }

    /// Runs until the daemon hangs up either channel.
    pub async fn run(mut self, changes: mpsc::Sender<Change>, mut wants: mpsc::Receiver<Want>) {
        let mut due: Vec<Instant> = self.models.iter().map(|m| Instant::now() + self.poll_of(m)).collect();
        loop {
            let next = due.iter().min().copied().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                want = wants.recv() => match want {
                    Some(Want::Version { model, version }) => {
                        let Some(i) = self.models.iter().position(|m| m.name == model) else { continue };
                        let key = (model, Some(version));
                        if !self.watched.contains_key(&key) {
                            self.watched.insert(key.clone(), Watched { identity: None, features: Vec::new(), failing: false });
                            if !self.check(i, key, &changes).await {
                                return;
                            }
                        }
                        continue;
                    }
                    None => return,
                },
            }
            let now = Instant::now();
            let due_now: Vec<usize> = (0..due.len()).filter(|i| due[*i] <= now).collect();
            for i in due_now {
                due[i] = now + self.poll_of(&self.models[i]);
                let keys: Vec<_> = self.watched.keys().filter(|(m, _)| *m == self.models[i].name).cloned().collect();
                for key in keys {
                    if !self.check(i, key, &changes).await {
                        return;
                    }
                }
            }
        }
    }

    /// Looks at one reference; false when the daemon is gone.
    async fn check(&mut self, i: usize, key: (String, Option<String>), changes: &mpsc::Sender<Change>) -> bool {
        let model = &self.models[i];
        let w = self.watched.get(&key).expect("watched");
        let result = self.resolver.resolve(model, key.1.as_deref(), w.identity.as_ref(), &w.features).await;
        let (name, version) = key.clone();
        let change = match result {
            Ok(Some(loaded)) => {
                let w = self.watched.get_mut(&key).expect("watched");
                w.identity = Some(loaded.identity.clone());
                w.features = loaded.profile.features.iter().map(|f| f.name.clone()).collect();
                w.failing = false;
                Some(Change::Swap { model: name, version, loaded })
            }
            Ok(None) => {
                let w = self.watched.get_mut(&key).expect("watched");
                std::mem::take(&mut w.failing).then_some(Change::Recovered { model: name, version })
            }
            Err(error) => {
                self.watched.get_mut(&key).expect("watched").failing = true;
                Some(Change::Failed { model: name, version, error })
            }
        };
        match change {
            Some(c) => changes.send(c).await.is_ok(),
            None => !changes.is_closed(),
        }
    }
}
