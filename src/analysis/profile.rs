//! Reference profiles: what the streaming daemon needs of the training data so it never
//! reloads it. Per feature: kind, quantile bin edges and counts, a quantile sketch, the
//! distinct values when there are few, category counts, missing share and row counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::calibration::{Calibration, CalibrationPlan};
use super::dataset::{Column, Dataset, Key, Values};
use crate::error::InputError;
use crate::stats::binned::{Bins, FINE_BINS};
use crate::stats::binning::{n_unique_sorted, native_counts_sorted, quantiles_sorted, value_counts_sorted};
use crate::stats::{mean_std, Kind};

/// Format tag written into every profile.
pub const PROFILE_FORMAT: &str = "driftd-profile/1";
/// Quantile points kept per numerical feature; a reference with at most this many values
/// is kept whole, so its KS and Wasserstein numbers are exact.
pub const SKETCH_POINTS: usize = 10_001;
/// Up to this many distinct values, a numerical feature is binned by value (Evidently's
/// rule: more than 20 distinct reference values means histogram bins).
pub const DISCRETE_MAX: usize = 20;
/// Default number of quantile bins between the reference's minimum and maximum.
pub const DEFAULT_BINS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub format: String,
    /// The dataset the profile was built from.
    pub source: String,
    /// Rows in that dataset.
    pub rows: usize,
    /// Quantile bins requested per numerical feature.
    pub bins: usize,
    pub features: Vec<FeatureProfile>,
    /// The fine bins of the continuous features, made once per profile and shared by
    /// every model and window that uses it.
    #[serde(skip)]
    pub fine_bins: FineBins,
}

/// Fine bins per continuous feature, made on first use (`Profile::fine_bins`).
#[derive(Debug, Clone, Default)]
pub struct FineBins(OnceLock<BTreeMap<String, Arc<Bins>>>);

/// A cache, not content: two profiles equal in content are equal.
impl PartialEq for FineBins {
    fn eq(&self, _: &FineBins) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureProfile {
    pub name: String,
    pub kind: Kind,
    /// Non-missing values the summary holds.
    pub count: usize,
    /// Missing values (null, NaN, ±inf) dropped before summarising.
    pub missing: usize,
    pub missing_share: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<(Key, u64)>>,
    /// The scores' null quantiles per window size, for calibrated thresholds
    /// (`driftd baseline` computes them; a profile without them is calibrated on load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericSummary {
    /// True for an integer column without missing values.
    pub integer: bool,
    pub n_unique: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Quantile edges from minimum to maximum (deduplicated). Native bins are an
    /// underflow bin, the bins between these edges, and an overflow bin.
    pub edges: Vec<f64>,
    /// Reference counts over the native bins (`edges.len() + 1` entries).
    pub bin_counts: Vec<u64>,
    /// Quantiles at evenly spaced probabilities from 0 to 1 (every value, sorted, when
    /// the reference holds at most `SKETCH_POINTS` of them).
    pub quantiles: Vec<f64>,
    /// Distinct values with counts, when there are at most `DISCRETE_MAX` of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<(f64, u64)>>,
}

impl NumericSummary {
    pub fn from_sorted(sorted: &[f64], integer: bool, bins: usize) -> NumericSummary {
        let n_unique = n_unique_sorted(sorted);
        let (mean, std) = mean_std(sorted);
        let mut edges = quantiles_sorted(sorted, bins.max(1) + 1);
        edges.dedup();
        let bin_counts = native_counts_sorted(sorted, &edges).into_iter().map(|c| c as u64).collect();
        let quantiles =
            if sorted.len() <= SKETCH_POINTS { sorted.to_vec() } else { quantiles_sorted(sorted, SKETCH_POINTS) };
        let values = (n_unique <= DISCRETE_MAX).then(|| value_counts_sorted(sorted));
        NumericSummary {
            integer,
            n_unique,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            mean,
            std,
            edges,
            bin_counts,
            quantiles,
            values,
        }
    }
}

impl FeatureProfile {
    /// Summarises one cleaned column as the given kind.
    pub fn build(column: &Column, kind: Kind, bins: usize) -> Option<FeatureProfile> {
        let (count, numeric, categories) = match (kind, &column.values) {
            (Kind::Numerical, Values::Numeric { sorted, integer }) => {
                (sorted.len(), Some(NumericSummary::from_sorted(sorted, *integer, bins)), None)
            }
            (Kind::Categorical, _) => {
                let counts = column.to_categorical()?;
                (counts.iter().map(|(_, c)| *c as usize).sum(), None, Some(counts))
            }
            _ => return None,
        };
        Some(FeatureProfile {
            name: column.name.clone(),
            kind,
            count,
            missing: column.missing,
            missing_share: column.missing_share(),
            numeric,
            categories,
            calibration: None,
        })
    }
}

impl Profile {
    pub fn build(dataset: &Dataset, kinds: &[(String, Kind)], bins: usize) -> Profile {
        let features = kinds
            .iter()
            .filter_map(|(name, kind)| dataset.column(name).and_then(|c| FeatureProfile::build(c, *kind, bins)))
            .collect();
        Profile {
            format: PROFILE_FORMAT.to_string(),
            source: dataset.path.display().to_string(),
            rows: dataset.rows,
            bins,
            features,
            fine_bins: FineBins::default(),
        }
    }

    /// The fine bins of a continuous numerical feature (`None` for a discrete one, whose
    /// windows count values, and for categories).
    pub fn fine_bins(&self, feature: &str) -> Option<Arc<Bins>> {
        let all = self.fine_bins.0.get_or_init(|| {
            self.features
                .iter()
                .filter_map(|f| {
                    let p = f.numeric.as_ref().filter(|p| p.values.is_none())?;
                    Some((f.name.clone(), Arc::new(Bins::new(&p.quantiles, &p.edges, FINE_BINS))))
                })
                .collect()
        });
        all.get(feature).cloned()
    }

    /// Simulates every feature's null (see `calibration`), unless it has one already.
    pub fn calibrate(&mut self, plan: &CalibrationPlan) {
        let missing: Vec<usize> =
            (0..self.features.len()).filter(|i| self.features[*i].calibration.is_none()).collect();
        let wanted: Vec<FeatureProfile> = missing.iter().map(|i| self.features[*i].clone()).collect();
        for (i, c) in missing.into_iter().zip(Calibration::all(&wanted, plan)) {
            self.features[i].calibration = Some(c);
        }
    }

    /// True when every feature carries its null calibration.
    pub fn is_calibrated(&self) -> bool {
        self.features.iter().all(|f| f.calibration.is_some())
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Writes the profile, making its directory when it is not there (a pipeline stage's
    /// output folder).
    pub fn save(&self, path: &Path) -> Result<(), InputError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| InputError::file(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| InputError::file(path, format!("cannot make its folder: {e}")))?;
        }
        std::fs::write(path, json).map_err(|e| InputError::file(path, format!("cannot write: {e}")))
    }

    /// Reads a profile written by `driftd baseline`.
    pub fn load(path: &Path) -> Result<Profile, InputError> {
        let bytes = std::fs::read(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
        Profile::from_slice(path, &bytes)
    }

    pub fn from_slice(path: &Path, bytes: &[u8]) -> Result<Profile, InputError> {
        let profile: Profile =
            serde_json::from_slice(bytes).map_err(|e| InputError::file(path, format!("not a driftd profile: {e}")))?;
        if profile.format != PROFILE_FORMAT {
            return Err(InputError::file(
                path,
                format!("unsupported profile format '{}' (expected '{PROFILE_FORMAT}')", profile.format),
            ));
        }
        for f in &profile.features {
            let ok = match f.kind {
                Kind::Numerical => f.numeric.as_ref().is_some_and(|n| {
                    n.bin_counts.len() == n.edges.len() + 1
                        && !n.quantiles.is_empty()
                        && n.quantiles.windows(2).all(|w| w[0] <= w[1])
                }),
                Kind::Categorical => f.categories.is_some(),
            };
            if !ok || f.count == 0 {
                return Err(InputError::column(path, &f.name, "profile entry is incomplete or inconsistent"));
            }
        }
        Ok(profile)
    }

    /// True when `path` holds a driftd profile rather than a dataset.
    pub fn is_profile_path(path: &Path) -> bool {
        path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("json"))
    }
}
