//! The false-alarm benchmark: how often a feature is flagged when nothing drifted, and how
//! often it is when something did, with fixed thresholds and with calibrated ones, at each
//! window size. A benchmark to rerun, not a test (see benches/false_alarms/README.md).
//!
//! The design: each dataset's rows are a population. A reference of `--reference-rows`
//! rows is drawn from it (with replacement), profiled and calibrated as `driftd baseline`
//! does; windows of n rows are drawn from the same population, so every window is a true
//! no-drift sample, at any n, and every (window, feature) flag is a false alarm. Repeated
//! over `--references` references (the rate is an average over references, as a budget
//! is), `--windows` windows each, per size. Power: the same, with one numerical feature
//! shifted by 0.1, 0.25 and 0.5 standard deviations (of the population), or one category's
//! share raised by 5, 10 and 20 points.
//!
//! cargo run --release --example false_alarms -- [--references 50] [--windows 20]
//!     [--reference-rows 5000] [--rate 0.01] [DATASET...]
//! (benches/false_alarms/make_data.py writes the datasets first)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftd::analysis::analyze::{analyze, AnalyzeOptions, Reference};
use driftd::analysis::calibration::CalibrationPlan;
use driftd::analysis::dataset::{read_frame, Column, Dataset, Key, Values};
use driftd::analysis::plan::Selection;
use driftd::analysis::profile::{Profile, DEFAULT_BINS};
use driftd::analysis::report::Report;
use driftd::analysis::thresholds::{DatasetRule, ThresholdMode, ThresholdOptions};
use driftd::rand::XorShift64;
use driftd::stats::{sort_floats, Kind};
use rayon::prelude::*;

const SIZES: [usize; 6] = [200, 500, 1_000, 2_000, 5_000, 10_000];
const SHIFTS: [f64; 3] = [0.1, 0.25, 0.5];
const POINTS: [f64; 3] = [0.05, 0.10, 0.20];

struct Args {
    references: usize,
    windows: usize,
    power_windows: usize,
    reference_rows: usize,
    rate: f64,
    datasets: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        references: 50,
        windows: 20,
        power_windows: 10,
        reference_rows: 5_000,
        rate: 0.01,
        datasets: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--references" => a.references = value().parse().expect("a count"),
            "--windows" => a.windows = value().parse().expect("a count"),
            "--power-windows" => a.power_windows = value().parse().expect("a count"),
            "--reference-rows" => a.reference_rows = value().parse().expect("a count"),
            "--rate" => a.rate = value().parse().expect("a rate"),
            _ => a.datasets.push(arg),
        }
    }
    if a.datasets.is_empty() {
        a.datasets = vec!["california".into(), "breast_cancer".into(), "anes96".into()];
    }
    a
}

/// A dataset's rows, column by column (categorical codes as numbers).
struct Population {
    name: String,
    columns: Vec<(String, Kind, Vec<f64>)>,
    rows: usize,
    shift_numerical: String,
    shift_categorical: Option<(String, f64, f64)>,
}

fn load(dir: &Path, name: &str, manifest: &serde_json::Value) -> Population {
    let m = &manifest[name];
    let df = read_frame(&dir.join(m["file"].as_str().expect("a file"))).expect("the dataset reads");
    let categorical: Vec<&str> =
        m["categorical"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    let columns: Vec<(String, Kind, Vec<f64>)> = df
        .columns()
        .iter()
        .map(|c| {
            let name = c.name().to_string();
            let s = c.as_materialized_series().cast(&polars::prelude::DataType::Float64).expect("numbers");
            let values: Vec<f64> = s.f64().expect("f64").into_no_null_iter().collect();
            let kind = if categorical.contains(&name.as_str()) { Kind::Categorical } else { Kind::Numerical };
            (name, kind, values)
        })
        .collect();
    let rows = df.height();
    // the categorical shift: the category whose share is nearest 1/k
    let shift_categorical = m["shift_categorical"].as_str().map(|f| {
        let values = &columns.iter().find(|c| c.0 == f).expect("the shifted category's feature").2;
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for v in values {
            *counts.entry(*v as i64).or_default() += 1;
        }
        let k = counts.len() as f64;
        let (code, n) = counts
            .iter()
            .min_by(|a, b| {
                let d = |n: usize| (n as f64 / rows as f64 - 1.0 / k).abs();
                d(*a.1).total_cmp(&d(*b.1))
            })
            .expect("categories");
        (f.to_string(), *code as f64, *n as f64 / rows as f64)
    });
    Population {
        name: name.to_string(),
        columns,
        rows,
        shift_numerical: m["shift_numerical"].as_str().expect("a numerical feature").to_string(),
        shift_categorical,
    }
}

/// What is done to a window's rows.
#[derive(Clone, Copy)]
enum Change {
    None,
    /// The shift feature moved by this many standard deviations.
    Shift(f64),
    /// The chosen category's share raised by this many points.
    Share(f64),
}

/// `n` rows drawn from the population (with replacement), changed, as a dataset.
fn sample(pop: &Population, n: usize, rng: &mut XorShift64, change: Change) -> Dataset {
    let rows: Vec<usize> = (0..n).map(|_| rng.below(pop.rows)).collect();
    let columns = pop
        .columns
        .iter()
        .map(|(name, kind, values)| {
            let mut v: Vec<f64> = rows.iter().map(|r| values[*r]).collect();
            match change {
                Change::Shift(d) if *name == pop.shift_numerical => {
                    let (_, sd) = driftd::stats::mean_std(values);
                    v.iter_mut().for_each(|x| *x += d * sd);
                }
                Change::Share(p) => {
                    if let Some((f, code, share)) = &pop.shift_categorical {
                        if f == name {
                            let move_p = p / (1.0 - share);
                            for x in v.iter_mut().filter(|x| **x != *code) {
                                if rng.next_f64() < move_p {
                                    *x = *code;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            column(name, *kind, v)
        })
        .collect();
    Dataset { path: PathBuf::from(format!("{}-window", pop.name)), rows: n, columns }
}

fn column(name: &str, kind: Kind, mut v: Vec<f64>) -> Column {
    let rows = v.len();
    let values = match kind {
        Kind::Numerical => {
            sort_floats(&mut v);
            let integer = v.iter().all(|x| x.fract() == 0.0);
            Values::Numeric { sorted: v, integer }
        }
        Kind::Categorical => {
            let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
            for x in v {
                *counts.entry(x as i64).or_default() += 1;
            }
            Values::Categorical { counts: counts.into_iter().map(|(k, c)| (Key::Num(k as f64), c)).collect() }
        }
    };
    Column { name: name.to_string(), rows, missing: 0, invalid: 0, values }
}

/// Per mode: flags per feature, dataset-level alarms, windows.
#[derive(Default, Clone)]
struct Tally {
    flagged: BTreeMap<String, usize>,
    dataset: usize,
    windows: usize,
}

impl Tally {
    fn add(&mut self, r: &Report) {
        self.windows += 1;
        self.dataset += usize::from(r.dataset_drift);
        for f in &r.features {
            *self.flagged.entry(f.name.clone()).or_default() += usize::from(f.drifted);
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.windows += o.windows;
        self.dataset += o.dataset;
        for (k, v) in &o.flagged {
            *self.flagged.entry(k.clone()).or_default() += v;
        }
    }

    fn rate(&self, feature: &str) -> f64 {
        self.flagged.get(feature).copied().unwrap_or(0) as f64 / self.windows.max(1) as f64
    }

    /// Share of (window, feature) pairs flagged, and the worst feature.
    fn pairs(&self) -> (f64, String, f64) {
        let total: usize = self.flagged.values().sum();
        let pairs = total as f64 / (self.windows * self.flagged.len().max(1)) as f64;
        let (worst, n) = self.flagged.iter().max_by_key(|(_, n)| **n).map(|(k, n)| (k.clone(), *n)).unwrap_or_default();
        (pairs, worst, n as f64 / self.windows.max(1) as f64)
    }
}

const MODES: [&str; 3] = ["fixed", "calibrated", "calibrated+bh"];

fn options(mode: &str, rate: f64, categorical: &[String]) -> AnalyzeOptions {
    let thresholds = ThresholdOptions {
        mode: if mode == "fixed" { ThresholdMode::Fixed } else { ThresholdMode::Calibrated },
        false_alarm_rate: rate,
        dataset_rule: if mode == "calibrated+bh" { DatasetRule::Bh } else { DatasetRule::Share },
        ..ThresholdOptions::default()
    };
    let selection = Selection { categorical: categorical.to_vec(), ..Selection::default() };
    AnalyzeOptions { thresholds, selection, ..AnalyzeOptions::default() }
}

/// Results for one reference: per (change, size, mode), a tally.
type Results = BTreeMap<(String, usize, &'static str), Tally>;

fn one_reference(pop: &Population, a: &Args, r: usize) -> Results {
    let mut rng = XorShift64::new(0x0dd5_eed5 ^ ((r as u64 + 1) << 20) ^ pop.rows as u64);
    let reference = sample(pop, a.reference_rows, &mut rng, Change::None);
    let kinds: Vec<(String, Kind)> = pop.columns.iter().map(|(n, k, _)| (n.clone(), *k)).collect();
    let mut profile = Profile::build(&reference, &kinds, DEFAULT_BINS);
    profile.calibrate(&CalibrationPlan { seed: 0x5eed ^ r as u64, ..CalibrationPlan::default() });
    let reference = Reference::Profile(Arc::new(profile), PathBuf::from(format!("{}-reference", pop.name)));
    let categorical: Vec<String> =
        pop.columns.iter().filter(|c| c.1 == Kind::Categorical).map(|c| c.0.clone()).collect();
    let opts: Vec<AnalyzeOptions> = MODES.iter().map(|m| options(m, a.rate, &categorical)).collect();
    let mut changes: Vec<(String, Change, usize)> = vec![("none".into(), Change::None, a.windows)];
    changes.extend(SHIFTS.iter().map(|d| (format!("shift {d} sd"), Change::Shift(*d), a.power_windows)));
    if pop.shift_categorical.is_some() {
        changes.extend(
            POINTS.iter().map(|p| (format!("share +{:.0} pts", p * 100.0), Change::Share(*p), a.power_windows)),
        );
    }
    let mut out = Results::new();
    for (label, change, windows) in &changes {
        for &n in &SIZES {
            for _ in 0..*windows {
                let window = sample(pop, n, &mut rng, *change);
                for (mode, o) in MODES.iter().zip(&opts) {
                    let report = analyze(&reference, &window, o).expect("the window analyses");
                    out.entry((label.clone(), n, *mode)).or_default().add(&report);
                }
            }
        }
    }
    out
}

fn main() {
    let a = args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/false_alarms");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("run benches/false_alarms/make_data.py first"),
    )
    .expect("a manifest");
    println!(
        "# False alarms and power: {} references of {} rows, {} no-drift and {} shifted windows per reference and size, budget {}\n",
        a.references, a.reference_rows, a.windows, a.power_windows, a.rate
    );
    for name in &a.datasets {
        let pop = load(&dir, name, &manifest);
        let started = std::time::Instant::now();
        let per_ref: Vec<Results> = (0..a.references).into_par_iter().map(|r| one_reference(&pop, &a, r)).collect();
        let mut all = Results::new();
        for res in &per_ref {
            for (k, t) in res {
                all.entry(k.clone()).or_default().merge(t);
            }
        }
        report(&pop, &a, &all, &per_ref, started.elapsed().as_secs_f64());
    }
}

/// A feature's no-drift rate at size `n` in `mode`, and its standard error counting each
/// reference as one draw (windows on one reference are not independent: an unlucky
/// reference alarms on many of its windows).
fn rate_and_error(per_ref: &[Results], n: usize, mode: &'static str, feature: &str) -> (f64, f64) {
    let key = ("none".to_string(), n, mode);
    let rates: Vec<f64> = per_ref.iter().filter_map(|r| r.get(&key)).map(|t| t.rate(feature)).collect();
    let k = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / k;
    let var = rates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (k - 1.0).max(1.0);
    (mean, (var / k).sqrt())
}

fn report(pop: &Population, a: &Args, all: &Results, per_ref: &[Results], secs: f64) {
    let features = pop.columns.len();
    let categorical = pop.columns.iter().filter(|c| c.1 == Kind::Categorical).count();
    println!(
        "## {} ({} rows, {} features, {} categorical; {:.0} s)\n",
        pop.name, pop.rows, features, categorical, secs
    );
    println!(
        "No drift: share of (window, feature) pairs flagged, the worst feature's rate, the features whose rate is \
         above the budget by more than two standard errors (counted per reference), and the share of windows with \
         dataset drift.\n"
    );
    println!("| events per window | fixed: pairs | fixed: worst feature | fixed: dataset | calibrated: pairs | calibrated: worst feature | calibrated: over budget | calibrated: dataset | calibrated + BH: dataset |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for &n in &SIZES {
        let t = |m: &'static str| all.get(&("none".to_string(), n, m)).cloned().unwrap_or_default();
        let (f, c, b) = (t("fixed"), t("calibrated"), t("calibrated+bh"));
        let (fp, fw, fr) = f.pairs();
        let (cp, cw, cr) = c.pairs();
        let ds = |t: &Tally| t.dataset as f64 / t.windows.max(1) as f64;
        let over: Vec<String> = pop
            .columns
            .iter()
            .filter_map(|(name, _, _)| {
                let (rate, se) = rate_and_error(per_ref, n, "calibrated", name);
                (rate > a.rate + 2.0 * se).then(|| format!("{name} {:.1}±{:.1}%", rate * 100.0, se * 100.0))
            })
            .collect();
        let over = if over.is_empty() { "none".to_string() } else { over.join(", ") };
        let (_, cse) = rate_and_error(per_ref, n, "calibrated", &cw);
        println!(
            "| {n} | {:.2}% | {:.1}% ({fw}) | {:.1}% | {:.2}% | {:.1}±{:.1}% ({cw}) | {over} | {:.1}% | {:.1}% |",
            fp * 100.0,
            fr * 100.0,
            ds(&f) * 100.0,
            cp * 100.0,
            cr * 100.0,
            cse * 100.0,
            ds(&c) * 100.0,
            ds(&b) * 100.0
        );
    }
    let windows = a.references * a.windows;
    let se = (a.rate * (1.0 - a.rate) / windows as f64).sqrt();
    println!(
        "\n{windows} no-drift windows per size on {} references: were they independent, a rate at the budget {:.1}% \
         would have a sampling error of {:.2} points; windows on one reference are not, so the errors above are \
         counted per reference.\n",
        a.references,
        a.rate * 100.0,
        se * 100.0,
    );
    let mut power_rows: Vec<(String, String)> =
        SHIFTS.iter().map(|d| (format!("shift {d} sd"), pop.shift_numerical.clone())).collect();
    if let Some((f, code, share)) = &pop.shift_categorical {
        power_rows.extend(POINTS.iter().map(|p| {
            (format!("share +{:.0} pts", p * 100.0), format!("{f} (category {code}, {:.1}% of rows)", share * 100.0))
        }));
    }
    println!("Power: share of shifted windows in which the shifted feature is flagged, fixed / calibrated.\n");
    let head: Vec<String> = SIZES.iter().map(|n| n.to_string()).collect();
    println!("| change | feature | {} |", head.join(" | "));
    println!("| --- | --- |{}", " --- |".repeat(SIZES.len()));
    for (label, feature) in power_rows {
        let name = feature.split(' ').next().unwrap_or_default().to_string();
        let cells: Vec<String> = SIZES
            .iter()
            .map(|&n| {
                let t = |m: &'static str| all.get(&(label.clone(), n, m)).map_or(0.0, |t| t.rate(&name));
                format!("{:.0}% / {:.0}%", t("fixed") * 100.0, t("calibrated") * 100.0)
            })
            .collect();
        println!("| {label} | {feature} | {} |", cells.join(" | "));
    }
    println!();
}
