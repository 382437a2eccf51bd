//! What a model's windows are compared with, and how: its reference profile, its feature
//! slots, the statistics options and the policy. Fixed until a reload or a swap.

use std::sync::Arc;

use polars::prelude::PlHashMap;

use super::accumulate::Shape;
use crate::analysis::analyze::{AnalyzeOptions, TestChoice};
use crate::analysis::plan::Selection;
use crate::analysis::profile::{Profile, DEFAULT_BINS};
use crate::analysis::report::Mode;
use crate::config::{ModelConfig, WindowSpec};
use crate::policy::Policy;
use crate::reference::{Loaded, ReferenceIdentity};
use crate::stats::{clip_range, Kind};

pub use crate::stats::binned::FINE_BINS;

#[derive(Debug)]
pub struct ModelSpec {
    pub name: String,
    pub profile: Arc<Profile>,
    /// Which reference this is.
    pub reference: ReferenceIdentity,
    pub opts: AnalyzeOptions,
    pub window: WindowSpec,
    pub lateness_ms: i64,
    /// Event times further ahead of the wall clock are refused.
    pub max_future_ms: i64,
    /// Processing time without events after which the open windows close.
    pub idle_timeout: Option<std::time::Duration>,
    pub policy: Policy,
    /// feature name → (kind, slot in the numeric or categorical accumulators)
    slots: PlHashMap<String, (Kind, usize)>,
    numeric: Vec<String>,
    categorical: Vec<String>,
    shape: Shape,
    /// What a window's parts must share to be merged: the reference's digest, the
    /// features in their slots, the window and how values are held.
    id: String,
}

impl ModelSpec {
    /// The model compared with a loaded reference; the features are the profile's (those
    /// the model monitors, when it names them).
    pub fn new(model: &ModelConfig, reference: &Loaded) -> ModelSpec {
        let profile = &reference.profile;
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
        // continuous features: fine bins from the reference; discrete ones: counted by value
        let bins = numeric.iter().map(|name| profile.fine_bins(name)).collect();
        // one message's weight is bounded: values far outside the reference are clipped
        let clip = numeric
            .iter()
            .map(|name| {
                let summary = profile.features.iter().find(|f| &f.name == name).and_then(|f| f.numeric.as_ref());
                summary.map_or((f64::NEG_INFINITY, f64::INFINITY), |s| clip_range(s.min, s.max))
            })
            .collect();
        let shape = Shape {
            numeric: numeric.len(),
            categorical: categorical.len(),
            bins: Arc::new(bins),
            exact_up_to: model.exact_values,
            clip: Arc::new(clip),
        };
        let layout = format!(
            "{:?}|{:?}|{}|{}|{}",
            numeric,
            categorical,
            model.window,
            model.exact_values,
            shape.bins.iter().map(|b| b.as_ref().map_or(0, |b| b.len())).sum::<usize>()
        );
        let id = format!("{}:{:016x}", reference.identity.digest, crate::rand::fnv1a(&layout));
        let mut opts = options(model);
        opts.selection.columns = Some(numeric.iter().chain(&categorical).cloned().collect());
        ModelSpec {
            name: model.name.clone(),
            profile: profile.clone(),
            reference: reference.identity.clone(),
            opts,
            window: model.window,
            lateness_ms: model.allowed_lateness.as_millis() as i64,
            max_future_ms: model.max_future.as_millis().min(i64::MAX as u128) as i64,
            idle_timeout: model.idle_timeout,
            policy: model.policy.clone(),
            slots,
            numeric,
            categorical,
            shape,
            id,
        }
    }

    /// What a window's parts must share to be merged (see the field).
    pub fn id(&self) -> &str {
        &self.id
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

    /// The features monitored, numerical first.
    /// The monitored features in the reference's column order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.profile.features.iter().map(|f| f.name.as_str()).filter(|n| self.slots.contains_key(*n))
    }

    pub fn features(&self) -> impl Iterator<Item = &String> {
        self.numeric.iter().chain(&self.categorical)
    }

    pub fn shape(&self) -> Shape {
        self.shape.clone()
    }

    /// Whether open windows accumulated under `self` fit `other` (same windows, same
    /// features in the same slots): a reload keeps them then.
    pub fn keeps_windows_of(&self, other: &ModelSpec) -> bool {
        self.window == other.window && self.slots == other.slots && self.shape == other.shape
    }
}

/// The native statistics options of a model: its tests, thresholds and share.
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
        selection: Selection::default(),
        bins: DEFAULT_BINS,
        thresholds: model.thresholds.clone(),
    }
}
