//! What a model's windows are compared with, and how: its reference profile, its feature
//! slots, the statistics options and the policy. Fixed until a reload.

use std::path::PathBuf;
use std::sync::Arc;

use polars::prelude::PlHashMap;

use super::accumulate::Shape;
use crate::config::{ModelConfig, WindowSpec};
use crate::error::InputError;
use crate::offline::analyze::{AnalyzeOptions, TestChoice};
use crate::offline::dataset::Dataset;
use crate::offline::plan::{plan_single, Selection};
use crate::offline::profile::{Profile, DEFAULT_BINS};
use crate::offline::report::Mode;
use crate::policy::Policy;
use crate::stats::Kind;

#[derive(Debug)]
pub struct ModelSpec {
    pub name: String,
    pub profile: Arc<Profile>,
    pub profile_path: PathBuf,
    pub opts: AnalyzeOptions,
    pub window: WindowSpec,
    pub lateness_ms: i64,
    /// Processing time without events after which the open windows close.
    pub idle_timeout: Option<std::time::Duration>,
    pub policy: Policy,
    /// feature name → (kind, slot in the numeric or categorical accumulators)
    slots: PlHashMap<String, (Kind, usize)>,
    numeric: Vec<String>,
    categorical: Vec<String>,
}

impl ModelSpec {
    /// Loads the model's reference (a profile, or a dataset profiled on the spot).
    pub fn load(model: &ModelConfig) -> Result<ModelSpec, InputError> {
        let opts = options(model);
        let profile = load_profile(model, &opts)?;
        let mut slots = PlHashMap::default();
        let (mut numeric, mut categorical) = (Vec::new(), Vec::new());
        for f in &profile.features {
            if model.features.as_ref().is_some_and(|cols| !cols.contains(&f.name)) {
                continue;
            }
            let list = match f.kind {
                Kind::Numerical => &mut numeric,
                Kind::Categorical => &mut categorical,
            };
            slots.insert(f.name.clone(), (f.kind, list.len()));
            list.push(f.name.clone());
        }
        Ok(ModelSpec {
            name: model.name.clone(),
            profile: Arc::new(profile),
            profile_path: model.reference.clone(),
            opts: AnalyzeOptions { selection: Selection::default(), ..opts },
            window: model.window,
            lateness_ms: model.allowed_lateness.as_millis() as i64,
            idle_timeout: model.idle_timeout,
            policy: model.policy.clone(),
            slots,
            numeric,
            categorical,
        })
    }

    /// A feature's kind and slot, when the model monitors it.
    pub fn slot(&self, feature: &str) -> Option<(Kind, usize)> {
        self.slots.get(feature).copied()
    }

    pub fn numeric(&self) -> &[String] {
        &self.numeric
    }

    pub fn categorical(&self) -> &[String] {
        &self.categorical
    }

    pub fn shape(&self) -> Shape {
        Shape { numeric: self.numeric.len(), categorical: self.categorical.len() }
    }

    /// Whether open windows accumulated under `self` fit `other` (same windows, same
    /// features in the same slots): a reload keeps them then.
    pub fn keeps_windows_of(&self, other: &ModelSpec) -> bool {
        self.window == other.window && self.slots == other.slots
    }
}

/// The native statistics options of a model: its tests, thresholds, share and columns.
fn options(model: &ModelConfig) -> AnalyzeOptions {
    let mut tests =
        TestChoice { num_stattest: model.num_stattest, cat_stattest: model.cat_stattest, ..TestChoice::default() };
    for (feature, o) in &model.per_feature {
        if let Some(t) = o.stattest {
            tests.per_feature_stattest.insert(feature.clone(), t);
        }
        if let Some(th) = o.threshold {
            tests.per_feature_threshold.insert(feature.clone(), th);
        }
    }
    AnalyzeOptions {
        mode: Mode::Native,
        tests,
        drift_share: model.drift_share,
        selection: Selection {
            columns: model.features.clone(),
            categorical: model.categorical.clone(),
            ..Selection::default()
        },
        bins: DEFAULT_BINS,
    }
}

/// The reference as a profile: read, or built from the dataset.
fn load_profile(model: &ModelConfig, opts: &AnalyzeOptions) -> Result<Profile, InputError> {
    if Profile::is_profile_path(&model.reference) {
        let p = Profile::load(&model.reference)?;
        if let Some(missing) = model.features.iter().flatten().find(|c| p.feature(c).is_none()) {
            return Err(InputError::column(&model.reference, missing, "is not in the profile"));
        }
        return Ok(p);
    }
    let data = Dataset::load(&model.reference, None)?;
    let (plan, _) = plan_single(&data, &opts.selection)?;
    Ok(Profile::build(&data, &plan, DEFAULT_BINS))
}
