//! A model's reference now: from its source when it changed, profiled once, kept in the
//! store; the store stands in when the source cannot be reached.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use super::fetch::{self, read_file, Fetched};
use super::load::{check_monitored, profile_key};
use super::mlflow::Registry;
use super::{
    digest, profile_from, Loaded, ModelReferences, ReferenceError, ReferenceIdentity, ReferenceSource, ReferenceStore,
};
use crate::analysis::profile::Profile;
use crate::analysis::thresholds::ThresholdMode;
use crate::config::{ConfigError, ModelConfig, Settings};
use crate::error::InputError;

pub struct Resolver {
    http: reqwest::Client,
    registry: Option<Registry>,
    /// Absent for `replay`, which keeps no state.
    store: Option<ReferenceStore>,
    scratch: PathBuf,
    timeout: std::time::Duration,
    /// Profiles in use, by what makes them (`profile_key`): models that share a reference
    /// share one profile, made once.
    profiles: Mutex<HashMap<String, Weak<Profile>>>,
}

impl Resolver {
    /// `store`: where references are kept (the daemon); `None` keeps nothing (`replay`).
    pub fn new(settings: &Settings, store: Option<ReferenceStore>) -> Result<Resolver, ConfigError> {
        let http = crate::outbound::client();
        let mlflow = settings.mlflow.as_ref().map(|m| m.resolve()).transpose()?;
        let timeout = mlflow.as_ref().map_or(std::time::Duration::from_secs(10), |m| m.timeout);
        let scratch = store.as_ref().map_or_else(std::env::temp_dir, ReferenceStore::scratch);
        Ok(Resolver {
            registry: mlflow.map(|m| Registry::new(http.clone(), m)),
            http,
            store,
            scratch,
            timeout,
            profiles: Mutex::new(HashMap::new()),
        })
    }

    /// How often registry references are looked up.
    pub fn registry_poll(&self) -> Option<std::time::Duration> {
        self.registry.as_ref().map(Registry::poll)
    }

    pub fn store(&self) -> Option<&ReferenceStore> {
        self.store.as_ref()
    }

    /// The reference `model`'s source names now (`version`: for a per-version registry
    /// reference), or `None` when it is `current` still. `monitored`: the features the
    /// model watches now, which a new reference must hold.
    pub async fn resolve(
        &self,
        model: &ModelConfig,
        version: Option<&str>,
        current: Option<&ReferenceIdentity>,
        monitored: &[String],
    ) -> Result<Option<Loaded>, ReferenceError> {
        let source = model.reference.to_string();
        let (fetched, reg_version) = match &model.reference {
            ReferenceSource::File(path) => (read_file(path)?, None),
            ReferenceSource::Url(url) => {
                let etag = self.stored_etag(model, current);
                match fetch::get(&self.http, url, |r| r, etag.as_deref(), self.timeout).await? {
                    Some(f) => (f, None),
                    None => return Ok(None),
                }
            }
            ReferenceSource::Registry { model: name, alias } => {
                let registry = self
                    .registry
                    .as_ref()
                    .ok_or_else(|| ReferenceError::Unreachable("no [mlflow] tracking_uri is configured".into()))?;
                let info = match (alias, version) {
                    (Some(a), _) => registry.alias(name, a).await?,
                    (None, Some(v)) => registry.version(name, v).await?,
                    (None, None) => return Err(ReferenceError::NotFound(format!("{source}: which version?"))),
                };
                if current.is_some_and(|c| c.version.as_deref() == Some(info.version.as_str())) {
                    return Ok(None);
                }
                (registry.reference_of(&info).await?, Some(info.version))
            }
        };
        let identity = ReferenceIdentity { source, version: reg_version, digest: digest(&fetched.bytes) };
        if current.is_some_and(|c| c.digest == identity.digest) {
            return Ok(None);
        }
        let key_version = version.map(str::to_string);
        let key_version = key_version.or_else(|| identity.version.clone().filter(|_| model.reference.per_version()));
        self.load(model, key_version.as_deref(), identity, fetched, monitored).await.map(Some)
    }

    /// The `ETag` to send: the stored one, when the stored reference is the one in use.
    fn stored_etag(&self, model: &ModelConfig, current: Option<&ReferenceIdentity>) -> Option<String> {
        let (stored, etag) = self.store.as_ref()?.get(&model.name, None)?;
        (current == Some(&stored.identity)).then_some(etag).flatten()
    }

    /// Profiles the bytes (or takes the stored profile of the same digest) and keeps it.
    async fn load(
        &self,
        model: &ModelConfig,
        version: Option<&str>,
        identity: ReferenceIdentity,
        fetched: Fetched,
        monitored: &[String],
    ) -> Result<Loaded, ReferenceError> {
        let key = profile_key(&identity.digest, &fetched.name, model);
        let shared = self.profiles.lock().expect("profiles lock").get(&key).and_then(Weak::upgrade);
        if let Some(profile) = shared {
            let name = if fetched.name.is_empty() { "reference.json" } else { fetched.name.as_str() };
            check_monitored(&profile, model, monitored, name)?;
            let loaded = Loaded { identity, profile };
            self.keep(model, version, &loaded, fetched.etag.as_deref());
            return Ok(loaded);
        }
        if let Some((stored, _)) = self.store.as_ref().and_then(|s| s.get(&model.name, version)) {
            let calibrated = stored.profile.is_calibrated() || model.thresholds.mode != ThresholdMode::Calibrated;
            if stored.identity.digest == identity.digest && stored.identity.version == identity.version && calibrated {
                self.share(key, &stored.profile);
                return Ok(stored);
            }
        }
        let (cfg, monitored, scratch) = (model.clone(), monitored.to_vec(), self.scratch.clone());
        let etag = fetched.etag.clone();
        let profile = tokio::task::spawn_blocking(move || profile_from(&fetched, &cfg, &monitored, &scratch))
            .await
            .map_err(|e| ReferenceError::Unreadable(format!("profiling stopped: {e}")))??;
        let loaded = Loaded { identity, profile: Arc::new(profile) };
        self.share(key, &loaded.profile);
        self.keep(model, version, &loaded, etag.as_deref());
        Ok(loaded)
    }

    /// Offers a profile to the models that come next with the same reference.
    fn share(&self, key: String, profile: &Arc<Profile>) {
        let mut profiles = self.profiles.lock().expect("profiles lock");
        profiles.retain(|_, p| p.strong_count() > 0);
        profiles.insert(key, Arc::downgrade(profile));
    }

    /// Keeps the reference in the state directory (the daemon).
    fn keep(&self, model: &ModelConfig, version: Option<&str>, loaded: &Loaded, etag: Option<&str>) {
        if let Some(store) = &self.store {
            if let Err(e) = store.put(&model.name, version, loaded, etag) {
                tracing::warn!(model = %model.name, error = %e, "cannot keep the reference in the state directory");
            }
        }
    }

    /// Every model's references at start: from the sources, else (daemon) from the store.
    /// An unreadable file reference is an input error; a registry or URL that cannot be
    /// reached leaves the stored reference in use, or the model without one (not ready).
    pub async fn initial(&self, models: &[ModelConfig]) -> Result<BTreeMap<String, ModelReferences>, InputError> {
        let mut out = BTreeMap::new();
        for m in models {
            let refs = if m.reference.per_version() {
                self.initial_versions(m).await
            } else {
                match self.resolve(m, None, None, &[]).await {
                    Ok(loaded) => ModelReferences { shared: loaded, ..Default::default() },
                    Err(e) if matches!(m.reference, ReferenceSource::File(_)) || self.store.is_none() => {
                        return Err(InputError::flag(&format!("models.{}.reference", m.name), e));
                    }
                    Err(e) => self.stored_instead(m, e),
                }
            };
            out.insert(m.name.clone(), refs);
        }
        Ok(out)
    }

    fn stored_instead(&self, m: &ModelConfig, e: ReferenceError) -> ModelReferences {
        match self.store.as_ref().and_then(|s| s.get(&m.name, None)) {
            Some((stored, _)) => {
                tracing::warn!(model = %m.name, error = %e, "reference source failed: using the stored reference");
                ModelReferences { shared: Some(stored), stale: Some(e), ..Default::default() }
            }
            None => {
                tracing::error!(model = %m.name, error = %e, "no reference: the source failed and none is stored");
                ModelReferences { missing: Some(e.to_string()), stale: Some(e), ..Default::default() }
            }
        }
    }

    /// A per-version registry reference at start: the newest versions that name a
    /// reference, else the versions stored.
    async fn initial_versions(&self, m: &ModelConfig) -> ModelReferences {
        let ReferenceSource::Registry { model: name, .. } = &m.reference else { return ModelReferences::default() };
        let mut refs = ModelReferences::default();
        let listed = match &self.registry {
            Some(r) => r.tagged_versions(name, m.max_live_versions).await.map_err(ReferenceError::from),
            None => Err(ReferenceError::Unreachable("no [mlflow] tracking_uri is configured".into())),
        };
        let versions: Vec<String> = match &listed {
            Ok(v) => v.iter().map(|v| v.version.clone()).collect(),
            Err(_) => self.store.as_ref().map(|s| s.versions(&m.name)).unwrap_or_default(),
        };
        for v in versions {
            match self.resolve(m, Some(&v), None, &[]).await {
                Ok(Some(l)) => {
                    refs.by_version.insert(v, l);
                }
                Ok(None) => {}
                Err(e) => match self.store.as_ref().and_then(|s| s.get(&m.name, Some(&v))) {
                    Some((stored, _)) => {
                        refs.by_version.insert(v, stored);
                        refs.stale = Some(e);
                    }
                    None => tracing::warn!(model = %m.name, version = %v, error = %e, "no reference for this version"),
                },
            }
        }
        if let Err(e) = listed {
            tracing::warn!(model = %m.name, error = %e, "cannot list the registry's versions");
            if refs.by_version.is_empty() {
                refs.missing = Some(e.to_string());
            }
            refs.stale = Some(e);
        }
        refs
    }
}
