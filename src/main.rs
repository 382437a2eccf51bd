use std::process::ExitCode;

use clap::Parser;
use driftd::cli::{self, Cli, Command, ConfigCommand};
use driftd::config::Settings;

/// Exit codes of `driftd check` (and of every command on bad input).
const EXIT_DRIFT: u8 = 1;
const EXIT_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(EXIT_INPUT);
            }
            // One line naming the flag at fault, as for every other input error.
            let rendered = e.render().to_string();
            let line: Vec<&str> =
                rendered.lines().map(str::trim).take_while(|l| !l.is_empty() && !l.starts_with("Usage:")).collect();
            eprintln!("{}", line.join(" "));
            return ExitCode::from(EXIT_INPUT);
        }
    };
    init_tracing(&cli.log_level, cli.log_format);
    match &cli.command {
        Command::Analyze(args) => match cli::run_analyze(args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => input_error(e),
        },
        Command::Check(args) => match cli::run_analyze(args) {
            Ok(report) if report.dataset_drift => ExitCode::from(EXIT_DRIFT),
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => input_error(e),
        },
        Command::Baseline(args) => match cli::run_baseline(args) {
            Ok(p) => {
                eprintln!("wrote {} ({} features from {} rows)", args.out.display(), p.features.len(), p.rows);
                ExitCode::SUCCESS
            }
            Err(e) => input_error(e),
        },
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let result =
                runtime.block_on(driftd::daemon::run(args.config.clone(), shutdown_signal(), Default::default()));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_INPUT)
                }
            }
        }
        Command::Demo(args) => {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let opts = driftd::demo::DemoOptions {
                datasets: args.datasets.clone(),
                listen: args.listen.clone(),
                forever: args.forever,
            };
            match runtime.block_on(driftd::demo::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Replay(args) => match cli::run_replay(args) {
            Ok(summary) => {
                eprintln!("replay: {}", serde_json::to_string(&summary).expect("summary serializes"));
                ExitCode::SUCCESS
            }
            Err(e) => input_error(e),
        },
        Command::Config { command: ConfigCommand::Check { file } } => match Settings::load(file) {
            Ok(settings) => {
                println!("{}", serde_json::to_string_pretty(&settings).expect("settings serialize"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_INPUT)
            }
        },
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn input_error(e: driftd::error::InputError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_INPUT)
}

fn init_tracing(level: &str, format: cli::LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}
