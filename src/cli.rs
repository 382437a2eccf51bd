//! The command line: `driftd <command>`. Each command's `--help` explains it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analyze::{self, AnalyzeOptions, Mode, Selection, TestChoice};
use crate::dataset::Dataset;
use crate::error::InputError;
use crate::profile::{Profile, DEFAULT_BINS};
use crate::report::Report;
use crate::stats::StatTest;

#[derive(Debug, Parser)]
#[command(
    name = "driftd",
    version,
    about = "Drift monitoring and auto-retrain for ML models in production",
    long_about = "driftd compares live data with a model's reference data and reports drift.\n\n\
                  Offline, `driftd analyze` and `driftd check` compare two datasets (CSV, Parquet \
                  or JSON Lines); `check` is the CI/CD gate: exit 0 no dataset drift, 1 dataset \
                  drift, 2 bad usage or input."
)]
pub struct Cli {
    /// Log filter for stderr (error, warn, info, debug, or a tracing directive).
    #[arg(long, global = true, default_value = "warn", env = "DRIFTD_LOG")]
    pub log_level: String,
    /// Log format on stderr: text, or json (one object per line).
    #[arg(long, global = true, value_enum, default_value = "text", env = "DRIFTD_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare a current dataset with a reference and print a drift report.
    ///
    /// Exits 0 when the report was produced (drift or not) and 2 on bad usage or input.
    Analyze(AnalyzeArgs),
    /// Like `analyze`, as a CI/CD gate: exit 0 no dataset drift, 1 dataset drift, 2 bad usage or input.
    Check(AnalyzeArgs),
    /// Summarise a reference dataset into a profile (JSON) the daemon and `analyze` use
    /// instead of the dataset: per feature its kind, bin edges and counts, quantiles,
    /// categories with counts, missing share and row counts.
    Baseline(BaselineArgs),
    /// Run the daemon: consume inference logs from Kafka, window them per model, compute
    /// drift against each model's reference, serve /metrics and the JSON API. SIGHUP or
    /// `POST /api/v1/reload` reloads the config; SIGINT / SIGTERM stop it in order.
    Run(RunArgs),
    /// The main job on an embedded default: an in-process Kafka cluster (librdkafka's mock),
    /// inference logs built from datasets/ (stable, then drifting), the real consumer path,
    /// /metrics on a printed address, and a line per window.
    Demo(DemoArgs),
    /// Run the streaming pipeline over a JSON Lines file of inference logs instead of
    /// Kafka: one window report per line on stdout (or --output), deterministic. Windows
    /// still open at the end of the file are closed and reported.
    Replay(ReplayArgs),
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load a config file with its DRIFTD__SECTION__KEY overrides, validate it, and print
    /// the resolved config (secrets masked), or the first error with its key.
    Check {
        /// The TOML config file.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ColumnArgs {
    /// Compare only these columns (comma separated).
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub columns: Option<Vec<String>>,
    /// Leave these columns out (comma separated).
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub exclude: Vec<String>,
    /// Treat these columns as numerical.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub numerical: Vec<String>,
    /// Treat these columns as categorical.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub categorical: Vec<String>,
}

impl ColumnArgs {
    fn selection(&self) -> Selection {
        Selection {
            columns: self.columns.clone(),
            exclude: self.exclude.clone(),
            numerical: self.numerical.clone(),
            categorical: self.categorical.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Reference data: a dataset (.csv, .tsv, .parquet, .jsonl) or a profile (.json) from `driftd baseline`.
    #[arg(long, value_name = "PATH")]
    pub reference: PathBuf,
    /// Current data: a dataset (.csv, .tsv, .parquet, .jsonl).
    #[arg(long, value_name = "PATH")]
    pub current: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `evidently` reproduces Evidently 0.7's legacy data-drift numbers; `native` (the
    /// default) bins by the reference's quantiles, as the streaming daemon does.
    #[arg(long, value_enum, default_value = "native", value_name = "MODE")]
    pub compat: Mode,
    /// Test for every feature: ks, psi, wasserstein, jensenshannon, kl_div, hellinger, chisquare, z.
    #[arg(long, value_name = "NAME")]
    pub stattest: Option<String>,
    /// Test for numerical features (takes precedence over --stattest).
    #[arg(long, value_name = "NAME")]
    pub num_stattest: Option<String>,
    /// Test for categorical features (takes precedence over --stattest).
    #[arg(long, value_name = "NAME")]
    pub cat_stattest: Option<String>,
    /// Test for one feature, as COLUMN=NAME (repeatable; takes precedence over the others).
    #[arg(long, value_name = "COLUMN=NAME")]
    pub per_feature_stattest: Vec<String>,
    /// Threshold for every feature (default: the test's own, 0.05 for p-values, 0.1 for distances).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub threshold: Option<f64>,
    /// Threshold for numerical features.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub num_threshold: Option<f64>,
    /// Threshold for categorical features.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub cat_threshold: Option<f64>,
    /// Threshold for one feature, as COLUMN=X (repeatable).
    #[arg(long, value_name = "COLUMN=X")]
    pub per_feature_threshold: Vec<String>,
    /// Dataset drift when at least this share of features drifted.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE", allow_negative_numbers = true)]
    pub drift_share: f64,
    /// Native mode: quantile bins per numerical feature.
    #[arg(long, default_value_t = DEFAULT_BINS, value_name = "N")]
    pub bins: usize,
    #[command(flatten)]
    pub cols: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The TOML config.
    #[arg(long, value_name = "FILE", default_value = "config/driftd.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the California housing pair lives.
    #[arg(long, value_name = "DIR", default_value = "datasets")]
    pub datasets: PathBuf,
    /// Address for /metrics and the API (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Keep serving after the scenario ends, until Ctrl-C.
    #[arg(long)]
    pub forever: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The TOML config (models, references, windows, thresholds).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Inference logs, one JSON message per line.
    #[arg(long, value_name = "LOGS.jsonl")]
    pub input: PathBuf,
    /// Write the window reports to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The reference dataset (.csv, .tsv, .parquet, .jsonl).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Where to write the profile (JSON).
    #[arg(long, value_name = "PROFILE.json")]
    pub out: PathBuf,
    /// Quantile bins per numerical feature.
    #[arg(long, default_value_t = DEFAULT_BINS, value_name = "N")]
    pub bins: usize,
    #[command(flatten)]
    pub cols: ColumnArgs,
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

impl AnalyzeArgs {
    pub fn options(&self) -> Result<AnalyzeOptions, InputError> {
        let tests = TestChoice {
            stattest: parse_test("--stattest", &self.stattest)?,
            num_stattest: parse_test("--num-stattest", &self.num_stattest)?,
            cat_stattest: parse_test("--cat-stattest", &self.cat_stattest)?,
            per_feature_stattest: parse_pairs("--per-feature-stattest", &self.per_feature_stattest, StatTest::parse)?,
            threshold: self.threshold,
            num_threshold: self.num_threshold,
            cat_threshold: self.cat_threshold,
            per_feature_threshold: parse_pairs("--per-feature-threshold", &self.per_feature_threshold, |s| {
                s.parse::<f64>().map_err(|_| format!("'{s}' is not a number"))
            })?,
        };
        for (flag, t) in [
            ("--threshold", self.threshold),
            ("--num-threshold", self.num_threshold),
            ("--cat-threshold", self.cat_threshold),
        ] {
            if let Some(t) = t {
                if !(t > 0.0 && t.is_finite()) {
                    return Err(InputError::flag(flag, format!("{t} is out of range (expected a positive number)")));
                }
            }
        }
        if self.bins == 0 {
            return Err(InputError::flag("--bins", "must be at least 1"));
        }
        Ok(AnalyzeOptions {
            mode: self.compat,
            tests,
            drift_share: self.drift_share,
            selection: self.cols.selection(),
            bins: self.bins,
        })
    }
}

/// Runs `analyze` / `check` and returns the report.
pub fn run_analyze(args: &AnalyzeArgs) -> Result<Report, InputError> {
    let opts = args.options()?;
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
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(report)
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

/// Runs `baseline`: profile the dataset and write it.
pub fn run_baseline(args: &BaselineArgs) -> Result<Profile, InputError> {
    if args.bins == 0 {
        return Err(InputError::flag("--bins", "must be at least 1"));
    }
    let selection = args.cols.selection();
    selection.validate()?;
    let data = Dataset::load(&args.data, None)?;
    let opts = AnalyzeOptions { mode: Mode::Native, selection, bins: args.bins, ..AnalyzeOptions::default() };
    let (plan, skipped) = analyze::plan_single(&data, &opts)?;
    for s in &skipped {
        tracing::warn!(column = %s.name, reason = %s.reason, "column left out of the profile");
    }
    let profile = Profile::build(&data, &plan, args.bins);
    profile.save(&args.out)?;
    Ok(profile)
}

/// Runs `replay`; the summary (events, windows, bad messages by reason) goes to stderr.
/// With `[retrain]` or `[[alerts]]` configured, the policy acts as the daemon would: the
/// retrain requests and alerts go out, and the replay ends once they are delivered.
pub fn run_replay(args: &ReplayArgs) -> Result<crate::stream::ReplaySummary, InputError> {
    let settings = crate::config::Settings::load(&args.config).map_err(|e| InputError::flag(&e.key, e.reason))?;
    let acting = settings.retrain.is_some() || !settings.alerts.is_empty();
    let runtime = if acting {
        Some(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime"))
    } else {
        None
    };
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let started = match &runtime {
        Some(rt) => {
            let _guard = rt.enter();
            Some(
                crate::actions::Actions::start(&settings, metrics.clone())
                    .map_err(|e| InputError::flag("config", e))?,
            )
        }
        None => None,
    };
    let mut on_report = |r: &crate::stream::WindowReport| {
        if let Some((actions, _)) = &started {
            actions.observe(r);
        }
    };
    let mut summary = match &args.output {
        Some(p) => {
            let file = std::fs::File::create(p).map_err(|e| InputError::file(p, format!("cannot write: {e}")))?;
            let mut w = std::io::BufWriter::new(file);
            let s = crate::stream::replay(&settings, &args.input, &mut w, &mut on_report)?;
            w.flush().map_err(|e| InputError::file(p, format!("cannot write: {e}")))?;
            s
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let s = crate::stream::replay(&settings, &args.input, &mut w, &mut on_report)?;
            let _ = w.flush();
            s
        }
    };
    if let (Some(rt), Some((actions, workers))) = (runtime, started) {
        rt.block_on(workers.shutdown(&actions, crate::actions::Mode::Drain));
        let mut episodes = serde_json::Map::new();
        let mut retrains = std::collections::BTreeMap::<String, u64>::new();
        for m in &settings.models {
            let st = actions.state_of(&m.name).unwrap_or_default();
            episodes.insert(m.name.clone(), serde_json::json!(st.episodes));
            for e in actions.history(&m.name) {
                *retrains.entry(e.status.as_str().to_string()).or_default() += 1;
            }
        }
        let alerts: std::collections::BTreeMap<String, u64> = settings
            .alerts
            .iter()
            .map(|a| {
                let name = a.receiver_name();
                let sent = metrics.alerts_sent_total.with_label_values(&[name.as_str(), "sent"]).get();
                (name, sent)
            })
            .collect();
        summary.actions = Some(
            serde_json::json!({ "drift_episodes": episodes, "retrain_requests": retrains, "alerts_sent": alerts }),
        );
    }
    Ok(summary)
}
