//! `driftd analyze` and `driftd check`: two datasets in, one drift report out.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::analysis::analyze::{self, AnalyzeOptions, TestChoice};
use crate::analysis::dataset::Dataset;
use crate::analysis::html;
use crate::analysis::plan::Selection;
use crate::analysis::report::Report;
use crate::analysis::thresholds::{EffectFloors, ThresholdOptions};
use crate::cli::{AnalyzeArgs, ColumnArgs, OutputFormat};
use crate::error::InputError;
use crate::stats::StatTest;

/// Runs `analyze` / `check`: prints the report and returns it (`check` exits on its
/// verdict).
pub fn analyze(args: &AnalyzeArgs) -> Result<Report, InputError> {
    let opts = options(args)?;
    opts.selection.validate()?;
    let started = Instant::now();
    let (reference, current) =
        rayon::join(|| analyze::load_reference(&args.reference, &opts), || Dataset::load(&args.current, None));
    let (reference, current) = (reference?, current?);
    let loaded = started.elapsed();
    let report = analyze::analyze(&reference, &current, &opts)?;
    tracing::info!(
        load_ms = loaded.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        features = report.features_total,
        "analyzed"
    );
    let text = match args.format {
        OutputFormat::Text => report.to_text(),
        OutputFormat::Json => report.to_json() + "\n",
        OutputFormat::Html => html::analyze_page(&report),
    };
    write_output(args.output.as_deref(), &text)?;
    if let Some(path) = &args.html {
        std::fs::write(path, html::analyze_page(&report))
            .map_err(|e| InputError::file(path, format!("cannot write the HTML report: {e}")))?;
    }
    Ok(report)
}

/// The columns flags as a selection.
pub fn selection(cols: &ColumnArgs) -> Selection {
    Selection {
        columns: cols.columns.clone(),
        exclude: cols.exclude.clone(),
        numerical: cols.numerical.clone(),
        categorical: cols.categorical.clone(),
    }
}

/// The flags as analysis options, or the flag at fault.
fn options(args: &AnalyzeArgs) -> Result<AnalyzeOptions, InputError> {
    let tests = TestChoice {
        stattest: parse_test("--stattest", &args.stattest)?,
        num_stattest: parse_test("--num-stattest", &args.num_stattest)?,
        cat_stattest: parse_test("--cat-stattest", &args.cat_stattest)?,
        per_feature_stattest: parse_pairs("--per-feature-stattest", &args.per_feature_stattest, StatTest::parse)?,
        threshold: args.threshold,
        num_threshold: args.num_threshold,
        cat_threshold: args.cat_threshold,
        per_feature_threshold: parse_pairs("--per-feature-threshold", &args.per_feature_threshold, |s| {
            s.parse::<f64>().map_err(|_| format!("'{s}' is not a number"))
        })?,
    };
    for (flag, t) in [
        ("--threshold", args.threshold),
        ("--num-threshold", args.num_threshold),
        ("--cat-threshold", args.cat_threshold),
    ] {
        if let Some(t) = t {
            if !(t > 0.0 && t.is_finite()) {
                return Err(InputError::flag(flag, format!("{t} is out of range (expected a positive number)")));
            }
        }
    }
    if args.bins == 0 {
        return Err(InputError::flag("--bins", "must be at least 1"));
    }
    let floors = parse_pairs("--min-effect", &args.min_effect, |s| {
        s.parse::<f64>().map_err(|_| format!("'{s}' is not a number"))
    })?;
    let thresholds = ThresholdOptions {
        mode: args.thresholds,
        false_alarm_rate: args.false_alarm_rate,
        min_effect: EffectFloors::with(floors).map_err(|e| InputError::flag("--min-effect", e))?,
        dataset_rule: args.dataset_rule,
    };
    thresholds.validate().map_err(|(key, e)| {
        let setting = key.split('.').next().unwrap_or_default();
        InputError::flag(&format!("--{}", setting.replace('_', "-")), e)
    })?;
    Ok(AnalyzeOptions {
        mode: args.compat,
        tests,
        drift_share: args.drift_share,
        selection: selection(&args.cols),
        bins: args.bins,
        thresholds,
    })
}

fn parse_test(flag: &str, v: &Option<String>) -> Result<Option<StatTest>, InputError> {
    v.as_deref().map(|s| StatTest::parse(s).map_err(|e| InputError::flag(flag, e))).transpose()
}

fn parse_pairs<T>(
    flag: &str,
    items: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<BTreeMap<String, T>, InputError> {
    items
        .iter()
        .map(|item| {
            let (col, value) =
                item.split_once('=').ok_or_else(|| InputError::flag(flag, format!("'{item}' is not COLUMN=VALUE")))?;
            let v = parse(value).map_err(|e| InputError::flag(flag, e))?;
            Ok((col.to_string(), v))
        })
        .collect()
}

fn write_output(path: Option<&Path>, text: &str) -> Result<(), InputError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| InputError::file(p, format!("cannot write the report: {e}"))),
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`driftd analyze | head`) is not an input error.
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}
