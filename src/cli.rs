//! The command line: `driftd <command>`, as clap structs only. Each command's `--help`
//! explains it; `commands/` turns these into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::analyze::DEFAULT_DRIFT_SHARE;
use crate::analysis::calibration::REPLICATES;
use crate::analysis::profile::DEFAULT_BINS;
use crate::analysis::report::Mode;
use crate::analysis::thresholds::{DatasetRule, ThresholdMode, DEFAULT_FALSE_ALARM_RATE};
pub use crate::config::LogFormat;

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
    /// Log filter for stderr (error, warn, info, debug, or a tracing directive). Default:
    /// `[log] level` of the config for `run`, else warn.
    #[arg(long, global = true, env = "DRIFTD_LOG")]
    pub log_level: Option<String>,
    /// Log format on stderr: text, or json (one object per line). Default: `[log] format`
    /// of the config for `run`, else text.
    #[arg(long, global = true, value_enum, env = "DRIFTD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
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
pub enum OutputFormat {
    Text,
    Json,
    /// One self-contained page: the verdict, then each feature's distributions drawn.
    Html,
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

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Reference data: a dataset (.csv, .tsv, .parquet, .jsonl) or a profile (.json) from `driftd baseline`.
    #[arg(long, value_name = "PATH")]
    pub reference: PathBuf,
    /// Current data: a dataset (.csv, .tsv, .parquet, .jsonl).
    #[arg(long, value_name = "PATH")]
    pub current: PathBuf,
    /// Report format (`html`: one self-contained page; give it --output).
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the report as an HTML page to FILE (whatever --format is), e.g. a CI
    /// artifact beside `check`'s exit code.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
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
    #[arg(long, default_value_t = DEFAULT_DRIFT_SHARE, value_name = "SHARE", allow_negative_numbers = true)]
    pub drift_share: f64,
    /// Native mode: quantile bins per numerical feature.
    #[arg(long, default_value_t = DEFAULT_BINS, value_name = "N")]
    pub bins: usize,
    /// Native mode: `fixed` thresholds (the tests' defaults), or `calibrated` to the
    /// false-alarm rate for the current data's size (from the profile's calibration, or
    /// simulated from the reference now).
    #[arg(long, value_enum, default_value = "fixed", value_name = "MODE")]
    pub thresholds: ThresholdMode,
    /// Calibrated thresholds: the share of no-drift datasets of this size allowed to flag a
    /// feature.
    #[arg(long, default_value_t = DEFAULT_FALSE_ALARM_RATE, value_name = "RATE", allow_negative_numbers = true)]
    pub false_alarm_rate: f64,
    /// Calibrated thresholds: the smallest effect worth flagging for a test, as TEST=X
    /// (repeatable; defaults in docs/tuning.md).
    #[arg(long, value_name = "TEST=X")]
    pub min_effect: Vec<String>,
    /// How features make the dataset verdict: `share` (--drift-share of them) or `bh`
    /// (Benjamini-Hochberg at the false-alarm rate; calibrated thresholds only).
    #[arg(long, value_enum, default_value = "share", value_name = "RULE")]
    pub dataset_rule: DatasetRule,
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
    /// Where the replay keeps its retrain outbox and alert state (with `[retrain]` or
    /// `[[alerts]]`). Default: `replay/` inside the config's `[state] dir`, never the
    /// daemon's own files, so a replay of history cannot mark the daemon's retrain
    /// requests as already made.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The lines' payload format (default: `--topic`'s in `[kafka.formats]`, else driftd's
    /// layout).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<InputFormat>,
    /// Read the lines as messages of this topic: its `[kafka.formats]` and
    /// `[kafka.topic_models]` entries apply (a Seldon Core 2 topic name gives the model).
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
}

/// What a line of a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// driftd's layout (or `[kafka.mapping]`'s).
    Driftd,
    /// Open Inference Protocol (KServe V2) requests and responses, JSON, one per line;
    /// KServe's structured CloudEvents and V1 bodies too (`kserve-cloudevents` is another
    /// name for it).
    #[value(alias = "kserve-cloudevents")]
    OpenInference,
    /// SageMaker Data Capture's JSON Lines (as exported from S3): an invocation's input
    /// and output together, CSV or JSON, BASE64 or not. The model: `--topic`'s in
    /// `[kafka.topic_models]`, else the config's only model.
    SagemakerCapture,
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
    /// No-drift windows simulated per window size for calibrated thresholds (0: none; a
    /// daemon with calibrated thresholds then simulates them when it loads the profile).
    #[arg(long, default_value_t = REPLICATES, value_name = "N")]
    pub replicates: usize,
    #[command(flatten)]
    pub cols: ColumnArgs,
}
