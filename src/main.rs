use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use driftd::app::App;
use driftd::cli::{Cli, Command, ConfigCommand, LogFormat};
use driftd::commands;

/// Exit codes of `driftd check` (and of every command on bad input).
const EXIT_DRIFT: u8 = 1;
const EXIT_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let (level, format) = (cli.log_level.clone(), cli.log_format);
    if let Command::Run(args) = &cli.command {
        return run(args.config.clone(), level, format);
    }
    init_tracing(level, format);
    match &cli.command {
        Command::Analyze(args) => exit_on_input(commands::analyze::analyze(args).map(|_| ExitCode::SUCCESS)),
        Command::Check(args) => exit_on_input(commands::analyze::analyze(args).map(|report| {
            if report.dataset_drift {
                ExitCode::from(EXIT_DRIFT)
            } else {
                ExitCode::SUCCESS
            }
        })),
        Command::Baseline(args) => exit_on_input(commands::baseline::baseline(args).map(|p| {
            eprintln!("wrote {} ({} features from {} rows)", args.out.display(), p.features.len(), p.rows);
            ExitCode::SUCCESS
        })),
        Command::Replay(args) => exit_on_input(commands::replay::replay(args).map(|summary| {
            eprintln!("replay: {}", serde_json::to_string(&summary).expect("summary serializes"));
            ExitCode::SUCCESS
        })),
        Command::Demo(args) => {
            let opts = commands::demo::DemoOptions {
                datasets: args.datasets.clone(),
                listen: args.listen.clone(),
                forever: args.forever,
            };
            commands::demo::run(opts).map_or_else(|e| failure(e, 1), |_| ExitCode::SUCCESS)
        }
        Command::Config { command: ConfigCommand::Check { file } } => {
            match commands::config_check::config_check(file) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_INPUT)
                }
            }
        }
        Command::Run(_) => unreachable!("handled above"),
    }
}

/// `driftd run`: the config first, since its `[log]` sets up the logs (the flags and
/// `DRIFTD_LOG*` win over it).
fn run(config: std::path::PathBuf, level: Option<String>, format: Option<LogFormat>) -> ExitCode {
    let app = match App::load(config) {
        Ok(app) => app,
        Err(e) => return failure(e, EXIT_INPUT),
    };
    let log = &app.settings.log;
    init_tracing(level.or_else(|| Some(log.level.clone())), format.or(Some(log.format)));
    commands::run::run(app).map_or_else(|e| failure(e, EXIT_INPUT), |_| ExitCode::SUCCESS)
}

/// Help and version print and succeed; anything else is one line naming the flag at fault.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return ExitCode::from(EXIT_INPUT);
    }
    let rendered = e.render().to_string();
    let line: Vec<&str> =
        rendered.lines().map(str::trim).take_while(|l| !l.is_empty() && !l.starts_with("Usage:")).collect();
    eprintln!("{}", line.join(" "));
    ExitCode::from(EXIT_INPUT)
}

/// The command's exit code, or 2 with the one line naming the input at fault.
fn exit_on_input(result: Result<ExitCode, driftd::error::InputError>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_INPUT)
    })
}

fn failure(e: anyhow::Error, code: u8) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(code)
}

/// Logs to stderr: `warn` and text unless told otherwise; colour only on a terminal.
fn init_tracing(level: Option<String>, format: Option<LogFormat>) {
    let level = level.unwrap_or_else(|| "warn".into());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format.unwrap_or_default() {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
