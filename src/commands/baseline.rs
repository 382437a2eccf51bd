//! `driftd baseline`: a reference dataset summarised into the profile the daemon and
//! `analyze` use instead of the dataset.

use super::analyze::selection;
use crate::analysis::calibration::CalibrationPlan;
use crate::analysis::dataset::Dataset;
use crate::analysis::plan::plan_single;
use crate::analysis::profile::Profile;
use crate::cli::BaselineArgs;
use crate::error::InputError;

pub fn baseline(args: &BaselineArgs) -> Result<Profile, InputError> {
    if args.bins == 0 {
        return Err(InputError::flag("--bins", "must be at least 1"));
    }
    let selection = selection(&args.cols);
    selection.validate()?;
    let data = Dataset::load(&args.data, None)?;
    let (plan, skipped) = plan_single(&data, &selection)?;
    for s in &skipped {
        tracing::warn!(column = %s.name, reason = %s.reason, "column left out of the profile");
    }
    let mut profile = Profile::build(&data, &plan, args.bins);
    if args.replicates > 0 {
        let started = std::time::Instant::now();
        profile.calibrate(&CalibrationPlan { replicates: args.replicates, ..CalibrationPlan::default() });
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(features = profile.features.len(), replicates = args.replicates, ms, "thresholds calibrated");
    }
    profile.save(&args.out)?;
    Ok(profile)
}
