//! A reference's bytes → the profile windows are compared with, checked against the
//! features the model monitors.

use std::path::Path;

use super::fetch::Fetched;
use super::ReferenceError;
use crate::analysis::calibration::CalibrationPlan;
use crate::analysis::dataset::{Dataset, Format};
use crate::analysis::plan::{plan_single, Selection};
use crate::analysis::profile::{Profile, DEFAULT_BINS};
use crate::analysis::thresholds::ThresholdMode;
use crate::config::ModelConfig;

/// The profile in `fetched`: a profile as `driftd baseline` writes it (`.json`), or a
/// dataset (CSV, TSV, Parquet, JSON Lines, by the name's extension) profiled on the spot
/// (`scratch` is a directory for the file polars reads). `monitored` are the features
/// the model watches now: a new reference must hold every one.
pub fn profile_from(
    fetched: &Fetched,
    model: &ModelConfig,
    monitored: &[String],
    scratch: &Path,
) -> Result<Profile, ReferenceError> {
    let name = if fetched.name.is_empty() { "reference.json" } else { fetched.name.as_str() };
    let label = Path::new(name);
    let profile = if Profile::is_profile_path(label) || looks_like_profile(&fetched.bytes) {
        Profile::from_slice(label, &fetched.bytes).map_err(|e| ReferenceError::Unreadable(e.to_string()))?
    } else {
        if Format::of(label).is_none() {
            return Err(ReferenceError::Unreadable(format!(
                "{name}: not a profile, and its extension names no dataset format (.csv, .tsv, .parquet, .jsonl)"
            )));
        }
        std::fs::create_dir_all(scratch)
            .map_err(|e| ReferenceError::Unreadable(format!("{}: {e}", scratch.display())))?;
        let tmp = tempfile::Builder::new()
            .suffix(&format!("-{name}"))
            .tempfile_in(scratch)
            .map_err(|e| ReferenceError::Unreadable(format!("{}: {e}", scratch.display())))?;
        std::fs::write(tmp.path(), &fetched.bytes).map_err(|e| ReferenceError::Unreadable(e.to_string()))?;
        let data = Dataset::load(tmp.path(), None)
            .map_err(|e| ReferenceError::Unreadable(shown_error(&e, tmp.path(), name)))?;
        let selection = Selection {
            columns: model.features.clone(),
            categorical: model.categorical.clone(),
            ..Selection::default()
        };
        let (plan, _) = plan_single(&data, &selection).map_err(|e| ReferenceError::SchemaMismatch(e.to_string()))?;
        let mut profile = Profile::build(&data, &plan, DEFAULT_BINS);
        profile.source = name.to_string();
        profile
    };
    check_monitored(&profile, model, monitored, name)?;
    let mut profile = profile;
    if model.thresholds.mode == ThresholdMode::Calibrated && !profile.is_calibrated() {
        let started = std::time::Instant::now();
        profile.calibrate(&CalibrationPlan::default());
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(model = %model.name, features = profile.features.len(), ms, "thresholds calibrated");
    }
    Ok(profile)
}

/// The longest reading error shown: polars quotes the field it could not read, and a field
/// may be megabytes long.
const ERROR_CHARS: usize = 500;

/// A reading error as logs and the API show it: naming the reference, not the temporary
/// copy polars read, and cut to `ERROR_CHARS`.
fn shown_error(e: &dyn std::fmt::Display, copy: &Path, name: &str) -> String {
    let text = e.to_string().replace(&copy.display().to_string(), name);
    match text.char_indices().nth(ERROR_CHARS) {
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
        None => text,
    }
}

/// Every feature the model names and every one it watches now is in the profile.
pub fn check_monitored(
    profile: &Profile,
    model: &ModelConfig,
    monitored: &[String],
    name: &str,
) -> Result<(), ReferenceError> {
    let wanted: Vec<&String> = model.features.iter().flatten().chain(monitored).collect();
    let mut missing: Vec<&str> = wanted.iter().filter(|f| profile.feature(f).is_none()).map(|f| f.as_str()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.dedup();
    Err(ReferenceError::SchemaMismatch(format!("{name} lacks monitored feature(s): {}", missing.join(", "))))
}

/// What makes two models' profiles of the same bytes the same: the bytes, how they are
/// read (the name's format), the features and categories asked for, and calibration.
pub fn profile_key(digest: &str, fetched_name: &str, model: &ModelConfig) -> String {
    let calibrated = model.thresholds.mode == ThresholdMode::Calibrated;
    format!("{digest}\u{0}{fetched_name}\u{0}{:?}\u{0}{:?}\u{0}{calibrated}", model.features, model.categorical)
}

/// A JSON object that says it is a driftd profile.
fn looks_like_profile(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    head.first() == Some(&b'{') && String::from_utf8_lossy(head).contains("driftd-profile/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn model(features: &str) -> ModelConfig {
        let s = Settings::from_toml(&format!("[[models]]\nname = \"m\"\nreference = \"r.csv\"\n{features}\n")).unwrap();
        s.model_configs().unwrap().remove(0)
    }

    #[test]
    fn a_dataset_is_profiled_and_a_profile_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let csv = Fetched { bytes: b"a,b\n1,x\n2,y\n3,x\n4,y\n".to_vec(), name: "train.csv".into(), etag: None };
        let p = profile_from(&csv, &model(""), &[], dir.path()).unwrap();
        assert_eq!(p.features.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(p.source, "train.csv");
        let json = Fetched { bytes: serde_json::to_vec(&p).unwrap(), name: "whatever".into(), etag: None };
        assert_eq!(profile_from(&json, &model(""), &[], dir.path()).unwrap(), p, "sniffed as a profile");
    }

    #[test]
    fn a_reading_error_names_the_reference_and_is_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let field = "x".repeat(100_000);
        let csv =
            Fetched { bytes: format!("a,b\n1,2\n3,\"{field}\n").into_bytes(), name: "train.csv".into(), etag: None };
        let e = profile_from(&csv, &model(""), &[], dir.path()).unwrap_err().to_string();
        assert!(e.len() < 1_000, "{} bytes: {}", e.len(), &e[..200]);
        assert!(e.contains("train.csv") && !e.contains(".tmp"), "{e}");
    }

    #[test]
    fn a_reference_without_a_monitored_feature_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let csv = Fetched { bytes: b"a,b\n1,x\n2,y\n".to_vec(), name: "train.csv".into(), etag: None };
        let e = profile_from(&csv, &model("features = [\"a\", \"c\"]"), &[], dir.path()).unwrap_err();
        assert!(matches!(e, ReferenceError::SchemaMismatch(_)), "{e}");
        let e = profile_from(&csv, &model(""), &["z".into()], dir.path()).unwrap_err();
        assert_eq!(e.reason(), "schema_mismatch");
        assert!(e.to_string().contains('z'), "{e}");
        let junk = Fetched { bytes: b"\x00\x01".to_vec(), name: "blob.bin".into(), etag: None };
        assert_eq!(profile_from(&junk, &model(""), &[], dir.path()).unwrap_err().reason(), "unreadable");
    }
}
